"""What the teacher cache saves: a step without the teacher's forward against today's step, side by side.

    python bench/bench_teacher_cache.py --data /work/fid-data/cache_train --held /work/fid-data/cache_held
        [--recipes tiny,4gb,6gb] [--batch 4] [--frames 32] [--threads 2] [--runs 3] [--segments 4] [--seeds 2]

On the shared trained teacher (bench/shared_teacher.py; skips without it), CPU fp32:
1. builds the cache (teacher_cache.teacher_batches) for the first --segments training segments of
   DATA and --seeds seeds, timed, with its size on disk; both scaled to the whole of DATA;
2. per recipe, one `Session.step` on today's batch (Batches: the teacher runs inside the step)
   and one on a cached batch (CachedBatches: read from the cache, only the student runs), in
   turns (timing.side_by_side), each including its batch's draw; the student is the recipe's
   with random weights (speed does not depend on them);
3. what float16 storage changes in the loss: the same cached batch's loss terms against float16
   targets and against a fresh float32 teacher forward;
4. why the cache holds crops and not whole segments: the teacher on a whole segment, sliced to a
   crop, against the teacher on that crop (same noise), as log-mel L1 and as the mel loss term,
   next to the student-teacher mel loss of a fresh tiny student.

Measured 2026-12-02, ref_v2_40k.pth, /work/fid-data/cache_train, batch 4 x 32 frames, 2 threads,
on the 2-core box while it was quiet (load below 2), `--runs 3 --warmup 1 --segments 1 --seeds 1`:

    recipe  today s  cached s  cached/today  speed-up   CPU s today  cached  cached/today
      tiny    0.596     0.136          23%     4.39x         1.190   0.264          22%
       4gb    1.084     0.658          61%     1.65x         2.157   1.302          60%
       6gb    1.330     0.884          66%     1.50x         2.631   1.750          67%

    build: 3.2 s of crops in 1.6 s (0.50 s per second of audio: the teacher's forward at batch 4
    plus the writes), 83.4 KiB a frame: all of cache_train (659 s of full crops) x 2 seeds would
    take about 11 min and 10.5 GiB; the teacher's work of 2 x 65,900 frames / (4 x 32) = 1030
    steps at batch 4 (86 steps of the 4gb recipe's batch 48, out of its 20,000).
    float16 targets: the loss terms of a random student change by <= 7e-7 (relative); the
    teacher against its own float16 copy scores prior 4.9e-5, latent 1.1e-4, features 1.8e-4
    (audio is float32: mel and stft 0). With float16 audio the mel term's floor was 4.6e-3 and
    stft's 4.8e-2, hence float32 audio (1 % of the bytes).
    whole segment vs crop: the teacher's whole-segment output sliced to a crop differs from its
    output on the crop by 24 % of the waveform in the middle half, log-mel L1 0.354 (max 0.462;
    2 crops of one segment), about a trained student's whole held-out L1 (0.2-0.5,
    bench_fidelity_curve.py); hence crops.

On the same box busy with other jobs the ratios swung: load 3-5, 3 runs: 33 / 63 / 90 %; load 15,
2 runs: 81 / 84 / 65 %; 5 runs of 6gb and 4gb: 64 % / 111 %; at such loads the seconds (wall and
CPU alike, two threads spin-waiting) say little. bench_teacher_share.py measured the teacher's
share of a step at 64 / 30 / 26 % on a busy box, i.e. cached steps of about 36 / 70 / 74 %.

    --tiny-fidelity 60 (bundled tiny teacher, example data, batch 4 x 24, 1 thread), held-out
    log-mel L1 against the real teacher:
    teacher_cache=False  0.521 -> 0.201 (0.38x)  median step 1.032 s  wall 123 s
    teacher_cache=True   0.521 -> 0.204 (0.39x)  median step 0.885 s  wall 91 s (build included)
    (the same on one training run of 60 steps: no measurable loss from K = 2 crop offsets, not
    checked on the shared teacher or over longer runs)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from shared_teacher import parse_args  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="tiny,4gb,6gb")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--segments", type=int, default=4, help="training segments cached (the build is timed on them)")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--tiny-fidelity", type=int, default=0, metavar="STEPS",
                    help="only run the fidelity check on the bundled tiny teacher: STEPS with and without the cache")
    args = parse_args(ap)
    if args.tiny_fidelity:
        return tiny_fidelity(args.tiny_fidelity)

    from distill_rvc.checkpoint import load_model
    from distill_rvc.data.dataset import Dataset
    from distill_rvc.distill.batches import Batches, split_eval
    from distill_rvc.distill.losses import capture
    from distill_rvc.distill.recipes import load_recipe
    from distill_rvc.distill.student import build_student
    from distill_rvc.distill.teacher_cache import teacher_batches
    from distill_rvc.distill.trainer import Precision, Session
    from distill_rvc.memory import GB
    from distill_rvc.safe_load import file_sha256
    from distill_rvc.timing import cpu_name, side_by_side, timed

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    teacher = load_model(args.teacher).eval().requires_grad_(False)
    data = Dataset(args.data)
    sha = file_sha256(args.teacher)
    cpu, fp32 = torch.device("cpu"), Precision(None, torch.float32, False)
    print(f"teacher {args.teacher.name}; data {args.data} ({len(data)} segments, "
          f"{sum(data.frames(i) for i in range(len(data))) / 100:.0f} s); batch {args.batch} x {args.frames} frames; "
          f"fp32 CPU, {args.threads} thread(s) on {cpu_name()}; median of {args.runs} runs, interleaved")
    folder = Path(tempfile.mkdtemp(prefix="tcache-")) / "teacher_cache"
    rows, first = [], True
    for name in args.recipes.split(","):
        recipe = load_recipe(name).replace(train=dict(batch_size=args.batch, accumulation=1, segment_frames=args.frames,
                                                      teacher_cache=True, teacher_cache_seeds=args.seeds))
        cfg = recipe.train
        train_idx, _ = split_eval(data, cfg.eval_items, cfg.seed, cfg.segment_frames)
        sub = train_idx[:args.segments]
        student = build_student(teacher, recipe.student, init=False)
        session = Session(student, teacher, cfg, recipe.loss, cpu, fp32)
        t0 = time.perf_counter()
        cached = teacher_batches(folder, session, data, sub, cfg, recipe.loss, sha, progress=False)
        build_s = time.perf_counter() - t0
        if first:  # the same cache serves every recipe (same teacher, crops and feature maps)
            first = False
            frames = sum(len(__import__("numpy").load(p)) for p in folder.glob("*.starts.npy")) * cfg.segment_frames
            size = sum(p.stat().st_size for p in folder.glob("*.npy"))
            total = sum(data.frames(i) // cfg.segment_frames * cfg.segment_frames for i in train_idx)
            print(f"build: {len(sub)} segments x {args.seeds} seeds = {frames / 100:.1f} s of crops in {build_s:.1f} s "
                  f"({build_s / (frames / 100):.2f} s per second of audio), {size / GB:.3f} GB "
                  f"({size / frames / 1024:.1f} KiB a frame); for all of DATA ({total / 100:.0f} s x {args.seeds}): "
                  f"about {build_s * total * args.seeds / frames / 60:.0f} min, {size * total * args.seeds / frames / GB:.1f} GB")
            fidelity_checks(session, cached, capture)
        today = Batches(data, sub, cfg, teacher.config.inter_channels, teacher.config.hop_length, teacher.config.f0)
        counter = iter(range(1, 10**6))
        cpu_times: list[list[float]] = [[], []]  # process CPU seconds: less swayed by other jobs than the wall

        def job(source, slot: int):
            def once() -> None:
                c0 = time.process_time()
                session.step(source.draw(next(counter)), 1, args.batch)
                cpu_times[slot].append(time.process_time() - c0)
            return timed(once)

        step_s, cached_s = side_by_side([job(today, 0), job(cached, 1)], args.runs, args.warmup)
        cpu_s = [statistics.median(t[args.warmup:]) for t in cpu_times]
        rows.append((name, step_s, cached_s, *cpu_s))
    print(f"\n{'recipe':>6} {'today s':>8} {'cached s':>9} {'cached/today':>13} {'speed-up':>9}   "
          f"{'CPU s today':>11} {'cached':>7} {'cached/today':>13}")
    for name, step_s, cached_s, cpu_today, cpu_cached in rows:
        print(f"{name:>6} {step_s:8.3f} {cached_s:9.3f} {cached_s / step_s:12.0%} {step_s / cached_s:8.2f}x   "
              f"{cpu_today:11.3f} {cpu_cached:7.3f} {cpu_cached / cpu_today:12.0%}")


def fidelity_checks(session, cached, capture) -> None:
    """float16 storage against a fresh fp32 teacher; crops against slices of whole segments."""
    from distill_rvc.distill.losses import DistillLoss

    teacher, loss = session.teacher, session.loss
    names = loss.feature_names
    batch = cached.draw(1)
    with torch.no_grad():
        with capture(teacher, names) as feats:
            fresh = teacher(batch.phone, batch.lengths, batch.pitch, batch.pitchf, batch.sid, noise=batch.noise,
                            source_noise=False)
        s_in = batch
        with capture(session.student, names) as s_feats:
            s_out = session.student(s_in.phone, s_in.lengths, s_in.pitch, s_in.pitchf, s_in.sid,
                                    noise=s_in.noise[:, :session.student.config.inter_channels], source_noise=False)
        t16, f16 = batch.teacher.outputs(torch.device("cpu"), torch.float32)
        a = loss(s_out, fresh, dict(s_feats), dict(feats), None, adversarial=False)
        b = loss(s_out, t16, dict(s_feats), dict(f16), None, adversarial=False)
        same = DistillLoss(teacher, teacher, session.loss_cfg)  # the teacher as its own student: no projections
        floor = same(fresh, t16, dict(feats), dict(f16), None, adversarial=False)
    print("float16 targets vs a fresh fp32 teacher on one batch: loss terms of a random-weight student with each,\n"
          "and the floor float16 adds (the fresh teacher scored against its float16 copy):")
    for k in a:
        print(f"    {k:>9} {float(a[k]):10.5f} vs {float(b[k]):10.5f}  rel diff "
              f"{abs(float(a[k] - b[k])) / abs(float(a[k])):.1e}   floor {float(floor[k]):.2e}")

    # whole segment vs crop: the alternative design (slices of whole-segment targets)
    ds, cfg = cached.dataset, cached.config
    t, hop = cfg.segment_frames, teacher.config.hop_length
    diffs, mel_terms = [], []
    g = torch.Generator().manual_seed(0)
    for n in range(min(4, len(cached.train))):
        seg = ds[cached.train[n]]
        frames = min(seg.phone.shape[0], ds.frames(cached.train[n]))
        noise = torch.randn(1, teacher.config.inter_channels, frames, generator=g)
        sid = torch.zeros(1, dtype=torch.long)
        with torch.no_grad():
            whole = teacher.infer(seg.phone[None], torch.tensor([frames]), seg.pitch[None, :frames],
                                  seg.pitchf[None, :frames], sid, noise=noise, source_noise=False)[0, 0]
            for start in (frames // 3, frames // 2):
                crop = teacher.infer(seg.phone[None, start:start + t], torch.tensor([t]),
                                     seg.pitch[None, start:start + t], seg.pitchf[None, start:start + t], sid,
                                     noise=noise[:, :, start:start + t], source_noise=False)[0, 0]
                piece = whole[start * hop:(start + t) * hop]
                mel_terms.append(float(F.l1_loss(loss.mel(crop[None]), loss.mel(piece[None]))))
                mid = slice(t // 4 * hop, 3 * t // 4 * hop)
                diffs.append(float((crop[mid] - piece[mid]).abs().mean() / crop[mid].abs().mean()))
    print(f"whole-segment target sliced to a crop vs the teacher on the crop ({len(diffs)} crops of {t} frames):\n"
          f"    waveform |diff| / |crop| in the crop's middle half: mean {sum(diffs) / len(diffs):.2f}\n"
          f"    log-mel L1 between them (the mel term): mean {sum(mel_terms) / len(mel_terms):.3f}, "
          f"max {max(mel_terms):.3f}")


def tiny_fidelity(steps: int) -> None:
    """Held-out log-mel L1 against the real teacher after `steps`, with and without the cache:
    the bundled tiny teacher on the example dataset (8 utterances of 1.2 s), 1 thread."""
    from examples.make_example_dataset import make_example_dataset
    from distill_rvc.distill.teach import TeachSettings, teach
    from tests.fixtures import TINY_TEACHER
    from tests.fixtures.distill_helpers import quick_recipe

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="tcache-fid-"))
    data = make_example_dataset(root / "cache", utterances=8, seconds=1.2)
    for cache in (False, True):
        recipe = quick_recipe("tiny", steps=steps, batch_size=4, segment_frames=24, eval_frames=80,
                              teacher_cache=cache)
        t0 = time.perf_counter()
        r = teach(TINY_TEACHER, data, root / f"run-{cache}", TeachSettings(recipe=recipe, progress=False))
        f = r.train.fidelity
        step_s = sorted(h["step_s"] for h in r.train.history)[len(r.train.history) // 2]
        print(f"teacher_cache={cache!s:5}  held-out mel L1 {f['mel_l1_init']:.3f} -> {f['mel_l1']:.3f} "
              f"({f['mel_l1_ratio']:.2f}x)  median step {step_s:.3f} s  wall {time.perf_counter() - t0:.0f} s "
              "(build included)")


if __name__ == "__main__":
    main()
