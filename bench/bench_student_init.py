"""Step-0 fidelity of student inits on the shared trained teacher (issue 13 research).

    python bench/bench_student_init.py --data CAL_CACHE --held HELD_CACHE [--recipe 4gb]

CAL_CACHE: a `distill-rvc prepare` cache (features from `../shared/tools/make_hubert.py --variant a`,
v2, 40 kHz) of voices other than the teacher's, used for activation statistics and refitting;
HELD_CACHE: the same for held-out clips of other voices. Prints log-mel L1 (RVC's mel, the
trainer's `evaluate` protocol: speaker 0, fixed prior noise per item, NSF noise off) of each
init against the teacher, the silent-output baseline, and teacher/student part swaps.
Skips (exit 0) when ../shared or the caches are absent.

Measured 2026-12-02 (shared teacher ref_v2_40k.pth, 4gb recipe: hidden 72, filter 288, gin 64,
decoder 224; CPU, 1 thread, nice 19 on a busy 2-core box). Calibration: espeak-ng en-us+m3 / en+f2,
138 s prepared (dio, make_hubert --variant a); held-out: en-gb+m1 / en-us+f4, 8 items of 2 s.
log-mel L1 vs the teacher ("dec only": teacher enc_p+flow feeding the student's decoder;
"enc+flow only": the student's latent into the teacher's decoder):

    method (15 calibration crops of 64 frames)   full   dec only  enc+flow only  init time
    silent output                                4.786
    (a) init_from_teacher (magnitude)            3.899   3.234     1.320          0.2 s
    (b) activation importance                    1.712   1.227     0.982          0.3 s
    (b) + dropped-mean bias fold (all)           1.818   1.262     1.138
    (b) + bias fold in dec only                  1.734   1.262     0.982
    (c) (b) + dec fold + dec ridge refit         1.094   0.326     0.982          48 s
    (c) + enc_p.proj + flow post refit           0.515   0.326     0.296          46 s
    (c) + enc_p blocks + proj + flow post        0.519   0.326     0.293          46 s
    (c) + all refits, dec on the student's z     0.533   0.382     0.293          48 s
    (a) + dec fold + all refits                  1.371   0.510     1.113          49 s
    with 45 calibration crops (29 s of speech):
    (b) activation importance                    1.740   1.250     1.001
    (c) + enc_p blocks + proj + flow post        0.452   0.325     0.217          123 s
    ridge strength (45 crops, same method):
    --lam 1e-4                                   0.538   0.366     0.267
    --lam 1e-2                                   0.557   0.466     0.196
    --lam 1e-3 --enc-lam 1e-2 (the defaults)     0.431   0.325     0.196          125 s

Re-measured 2026-12-02 (issue 13 fidelity session), regenerated inputs: calibration espeak-ng
en-us+m3 (-p 50), en+f2 (-p 60), en-us+m1 (-p 45), en+f5 (-p 65), 40 sentences each, 700 s
prepared (dio); held-out en-gb+m1 (-p 50) / en-us+f4 (-p 65), 20 other sentences each, 182 s;
45 calibration crops, the default lams, 1 thread on a 2-core box shared with 4-5 other jobs:

    (a) init_from_teacher (magnitude)            4.043   3.356     1.211          0.5 s
    (c) + enc_p blocks + proj + flow post        0.470   0.329     0.233          376 s
    (d) the same, ridge towards the copy         0.514   0.374     0.231          310 s
        (refit.py anchor=True; dropped here, kept as an option: on a tiny trained
        teacher it is what makes the refits help at these lams, 0.44 vs 1.17)
(the first 8 held-out items are all en-us+f4 here; bench_fidelity_curve.py spreads its 8 over both voices.)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from shared_teacher import parse_args  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval-frames", type=int, default=200)
    ap.add_argument("--eval-items", type=int, default=8)
    ap.add_argument("--cal-items", type=int, default=48)
    ap.add_argument("--cal-frames", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lam", type=float, default=1e-3, help="ridge strength of the decoder refit")
    ap.add_argument("--enc-lam", type=float, default=1e-2, help="ridge strength of the enc_p/flow refits")
    ap.add_argument("--no-swaps", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated substrings of the method names to run")
    args = parse_args(ap)
    torch.set_num_threads(args.threads)
    enc_lam = args.enc_lam

    from distill_rvc.checkpoint import load_model
    from distill_rvc.data.dataset import Dataset
    from distill_rvc.distill import function_init as fi, refit as rf
    from distill_rvc.distill.batches import eval_items
    from distill_rvc.distill.evaluate import item_noise
    from distill_rvc.distill.recipes import load_recipe
    from distill_rvc.distill.spectral import MelSpectrogram
    from distill_rvc.distill.student import build_student
    from distill_rvc.models import NOISE_SCALE

    t0 = time.perf_counter()
    teacher = load_model(args.teacher).eval()
    spec = load_recipe(args.recipe).student
    mel = MelSpectrogram.for_model(teacher.config)
    held = Dataset(args.held)
    items = eval_items(held, list(range(len(held)))[:args.eval_items], args.eval_frames, True)
    cal = fi.calibration_crops(Dataset(args.data), args.cal_items, args.cal_frames)
    inter = teacher.config.inter_channels
    noises = [item_noise(i, 0, inter, it.phone.shape[1]) for i, it in enumerate(items)]
    sid = torch.zeros(1, dtype=torch.long)

    @torch.no_grad()
    def latent(model, it, noise):
        m_p, logs_p, mask = model.enc_p(it.phone, it.pitch, it.lengths)
        z_p = (m_p + torch.exp(logs_p) * noise * NOISE_SCALE) * mask
        return model.flow(z_p, mask, g=model.emb_g(sid).unsqueeze(-1), reverse=True) * mask

    @torch.no_grad()
    def decode(model, z, it):
        return model.dec(z, it.pitchf, g=model.emb_g(sid).unsqueeze(-1), source_noise=False)[0, 0]

    t_mels, t_z = [], []
    for it, noise in zip(items, noises):
        z = latent(teacher, it, noise)
        t_z.append(z)
        t_mels.append(mel(decode(teacher, z, it)[None])[0])
    print(f"teacher {args.teacher.name}, recipe {args.recipe}, {len(items)} held-out items of <= {args.eval_frames} "
          f"frames from {args.held}, {len(cal)} calibration crops from {args.data} "
          f"(setup {time.perf_counter() - t0:.0f} s)")

    def score(enc_model, dec_model) -> float:
        total = 0.0
        for it, noise, tm, tz in zip(items, noises, t_mels, t_z):
            z = tz if enc_model is teacher else latent(enc_model, it, noise)
            audio = decode(dec_model, z, it)
            total += float((mel(audio[None])[0] - tm).abs().mean())
        return total / len(items)

    rows = []
    silent = sum(float((mel(torch.zeros(1, it.phone.shape[1] * teacher.config.hop_length))[0] - tm).abs().mean())
                 for it, tm in zip(items, t_mels)) / len(items)
    rows.append(("silent output", silent, 0.0))

    def student_with(choice_fn, fold=False, refit=False, enc=False, blocks=False, anchor=False):
        t = time.perf_counter()
        torch.manual_seed(0)
        s = build_student(teacher, spec, init=False).eval()
        chosen = choice_fn(s)
        fi.init_with_choice(s, teacher, chosen)
        if fold:
            fi.fold_dropped_means(s, teacher, stats, chosen, prefixes=("",) if fold is True else fold)
        if blocks:
            rf.refit_encoder(s, teacher, cal, chosen, lam=enc_lam, anchor=anchor)
        if enc:
            rf.refit_enc_flow(s, teacher, cal, lam=enc_lam, anchor=anchor)
        if refit:
            zs = []
            for i, c in enumerate(cal):
                noise = torch.randn(1, inter, c.phone.shape[1], generator=torch.Generator().manual_seed(100 + i))
                zs.append((latent(teacher, c, noise), c.pitchf) + ((latent(s, c, noise),) if refit == "own" else ()))
            rf.refit_decoder(s, teacher, zs, chosen, lam=args.lam, anchor=anchor)
        return s, time.perf_counter() - t

    t = time.perf_counter()
    stats = fi.activation_stats(teacher, cal)
    stats_s = time.perf_counter() - t
    print(f"activation statistics: {stats_s:.0f} s")

    def report(name, s, secs):
        full = score(s, s)
        rows.append((name, full, secs))
        line = f"{name:44s} {full:7.3f}   init {secs:6.1f} s"
        if not args.no_swaps:
            rows.append((name + " | teacher enc_p+flow", score(teacher, s), 0.0))
            rows.append((name + " | teacher dec", score(s, teacher), 0.0))
            line += f"   dec only (teacher enc+flow) {rows[-2][1]:7.3f}   enc+flow only (teacher dec) {rows[-1][1]:7.3f}"
        print(line, flush=True)

    mag = lambda s: fi.magnitude_choice(s, teacher)  # noqa: E731
    data = lambda s: fi.data_driven_choice(s, teacher, stats)  # noqa: E731
    print(f"{'silent output':44s} {silent:7.3f}")
    dec_fold = ("dec.",)
    for name, fn, fold, refit, enc, blocks, *anchor in (
            ("(a) init_from_teacher (magnitude)", mag, False, False, False, False),
            ("(b) activation importance", data, False, False, False, False),
            ("(b) + dropped-mean bias fold (all)", data, True, False, False, False),
            ("(b) + bias fold in dec only", data, dec_fold, False, False, False),
            ("(c) (b) + dec fold + dec ridge refit", data, dec_fold, True, False, False),
            ("(c) + enc_p.proj + flow post refit", data, dec_fold, True, True, False),
            ("(c) + enc_p blocks + proj + flow post", data, dec_fold, True, True, True),
            ("(c) + all refits, dec on the student's z", data, dec_fold, "own", True, True),
            ("(a) + dec fold + all refits", mag, dec_fold, True, True, True),
            ("(d) (c) + enc_p blocks + proj + flow post, ridge towards the copy", data, dec_fold, True, True,
             True, True)):
        if args.only and not any(o in name for o in args.only.split(",")):
            continue
        s, secs = student_with(fn, fold, refit, enc, blocks, bool(anchor and anchor[0]))
        report(name, s, secs)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
