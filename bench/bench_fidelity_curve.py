"""Fidelity-versus-time curve of a recipe distilling the shared trained teacher (issue 13).

    python bench/bench_fidelity_curve.py --data CAL_CACHE --held HELD_CACHE [--recipe 4gb] [--steps 200]

DATA: a `distill-rvc prepare` cache (v2, 40 kHz, features from `../shared/tools/make_hubert.py
--variant a`) of voices other than the teacher's: the training data and the init's calibration;
HELD: the same for other sentences of other voices. The student starts from the function-
preserving init (function_init.function_init) or, with --init magnitude, `init_from_teacher`; it
trains through `trainer.train` at --batch on CPU, and is measured on the held-out clips
(fidelity.HeldOut: fixed prior noise per clip, NSF noise off, speaker 0) at the --at steps:
log-mel L1, MCD, F0 RMSE, V/UV against the teacher, with the training's wall seconds (the
init's and the measurements' time left out), and first what the metrics score for the teacher
against itself plus white noise at 40 dB SNR (their floor). Skips (exit 0) when ../shared or a
cache is absent.

Measured 2026-12-02 on ../shared/teachers/ref_v2_40k.pth, 4gb recipe, batch 4, CPU fp32, 1 thread,
nice 10 on a 2-core box shared with 3-5 other jobs (seconds: training only, noisy; 2.4-8 s a step).
Train/calibration: espeak-ng en-us+m3 -p 50, en+f2 -p 60, en-us+m1 -p 45, en+f5 -p 65 (40 of the
120 training sentences each, 700 s; `distill-rvc prepare --f0 dio --hubert hubert_a.pt`); held-out:
en-gb+m1 -p 50, en-us+f4 -p 65 on 40 other sentences (182 s), 8 clips of 2 s, 4 per voice.
Gross = frames voiced in both more than 20 % apart; fine = the RMSE of the others (fidelity.py).

    metric floor, teacher + noise at 60 / 50 / 40 dB SNR:
        L1 0.096 / 0.290 / 0.554, MCD 0.71 / 1.06 / 1.49 dB, F0 RMSE 199 / 152 / 175 cents,
        V/UV 4.1 / 5.1 / 5.9 %, F0 gross 3.1 / 2.0 / 2.8 %, fine 22 / 26 / 25 cents

    init                     loss            step  seconds  L1     MCD    F0 RMSE  V/UV   gross  fine
    magnitude                as shipped      0        0     3.982  14.24  1522     25.4   92.8   76
    (init_from_teacher)                      20     165     2.412  13.83  1550      2.3   93.2   86
                                             50     332     1.112  11.07  1530      2.1   93.2   45
                                             100    529     0.694  10.46  1592     11.5  100.0    –
                                             200   1036     0.575   9.94  1465     22.0   89.0  137
    function_init            as shipped      0        0     0.454   4.13   169      7.9    2.1   43
    (48 crops, ridge to 0,                   20      92     0.425   4.53   211      2.5
    353-543 s)                               50     336     0.386   4.73   221      4.1
                                             100    744     0.323   4.34   264      4.8
                                             200   1243     0.273   3.74   188      3.1
    function_init            features = 0    20     104     0.423   4.53   199      2.4
                                             50     248     0.358   4.84   250      7.7
                                             100    366     0.337   4.86   326      3.7
                                             200    826     0.272   3.68   213      1.7
    function_init            features = 0,   20     109     0.431   4.50   179      2.5    3.5   50
                             stft = 10       50     222     0.318   4.25   157      2.6    2.9   52
                                             100    344     0.340   4.35   264      3.9    4.7   58
                                             200    878     0.235   3.42   158      2.2    2.3   52
    function_init            stft = 10       20     115     0.429   4.51   199      2.8    3.9   49
                                             50     270     0.343   4.64   195      1.7    3.6   53
                                             100    524     0.319   4.81   195      0.8    3.8   57
                                             200    768     0.229   3.37   280      2.3    6.8   51
    So stft = 10 is what lowers L1 and MCD (0.273 -> 0.229-0.235); features = 0 changes nothing
    measurable (0.273 vs 0.272, 0.229 vs 0.235). The plain F0 RMSE swings 158-280 cents between runs
    that agree on everything else: it is the gross-error rate (2-7 % of frames) times ~1200 cents,
    at the floor of the measurement (harvest on this buzzy teacher), not a pitch the student misses.
    6gb, function_init       as shipped      0        0     0.377   3.13   245      5.1    3.3   41
    (334 s)                                  20      68     0.454   4.52   232      2.2    4.8   56
                                             50     153     0.347   4.70   144      1.6    2.3   50
                                             100    291     0.381   4.62   201      2.3    4.6   57
                                             200    569     0.195   3.00   205      1.1    4.4   52
    tiny, function_init      as shipped      0        0     0.852   7.34   372      7.1    9.0   77
    (49 s; dec fitted stage                  20      29     0.744   7.47   314     11.5    5.5   76
    by stage: ResBlock2 [3, 5]               50      68     0.641   7.47   504     10.1   14.0   83
    vs ResBlock1 [3, 7, 11];                 100    135     0.506   6.82   260     11.6    6.4   85
    enc_p not refitted: 4 vs 6)              200    269     0.484   6.49   279      8.9    6.9   82
    tiny, data-driven channels only (no decoder refit; dropped):
                                             0        0     2.663  14.39  1520      3.9   93.1   47
                                             200    326     0.646  10.69  1568      9.5   98.1  168
    tiny, magnitude          as shipped      0        0     4.618  17.50  2006     91.6   90.6  225
                                             20      26     3.765  15.09  1523      3.5   93.1   45
                                             50      63     1.320  12.62  1527      2.3   93.2   45
                                             100    123     0.802  11.37  1550      2.3   94.4   77
                                             200    245     0.724  10.97  1536      2.9   94.6  105
    function_init, ridge towards the copy (--anchor), as shipped: step 0 0.495 / 4.06 dB / 115 cents /
        8.1 %, step 20 0.451 / 4.59 / 181 / 3.0 % (stopped: worse L1 than ridge towards zero)

    python bench/bench_fidelity_curve.py --data /work/fid-data/cache_train --held /work/fid-data/cache_held \
        [--init magnitude] [--loss features=0 --loss stft=10] [--init-cache init.pt]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from shared_teacher import parse_args  # noqa: E402


def fmt(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def line(m: dict) -> str:
    pct = lambda v: None if v is None else 100 * v  # noqa: E731
    return (f"L1 {fmt(m['log_mel_l1'], '.3f')}  MCD {fmt(m['mcd_db'], '.2f')} dB  F0 {fmt(m['f0_rmse_cents'], '.0f')} "
            f"cents  V/UV {fmt(pct(m['vuv_error']), '.1f')} %  F0 gross {fmt(pct(m.get('f0_gross_error')), '.1f')} % "
            f" F0 fine {fmt(m.get('f0_rmse_fine_cents'), '.0f')} cents")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--at", default="0,20,50,100,200", help="steps to measure at (comma-separated)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init", choices=("function", "magnitude"), default="function")
    ap.add_argument("--anchor", action=argparse.BooleanOptionalAction, default=False,
                    help="function init: ridge refits pull towards the copied weights (not towards zero)")
    ap.add_argument("--init-cache", type=Path, help="the initialised student's weights: loaded if the file exists, "
                                                    "else written (same teacher, recipe and init options only)")
    ap.add_argument("--cal-items", type=int, default=48)
    ap.add_argument("--cal-frames", type=int, default=64)
    ap.add_argument("--held-items", type=int, default=8)
    ap.add_argument("--held-frames", type=int, default=200)
    ap.add_argument("--train", action="append", default=[], metavar="KEY=VALUE",
                    help="override a [train] value of the recipe (JSON value), e.g. lr=5e-5")
    ap.add_argument("--loss", action="append", default=[], metavar="KEY=VALUE",
                    help="override a [loss] value of the recipe (JSON value), e.g. features=0")
    ap.add_argument("--save", type=Path, help="write the curve as JSON here")
    ap.add_argument("--out", type=Path, help="the training's folder (default: a temporary one)")
    ap.add_argument("--keep", type=Path, help="write the trained student's weights (a state dict) here")
    args = parse_args(ap)
    torch.set_num_threads(args.threads)

    from distill_rvc.checkpoint import load_model
    from distill_rvc.data.dataset import Dataset
    from distill_rvc.distill import function_init as fi
    from distill_rvc.distill.fidelity import HeldOut
    from distill_rvc.distill.recipes import load_recipe
    from distill_rvc.distill.student import build_student
    from distill_rvc.distill.trainer import train
    from distill_rvc.safe_load import safe_torch_load

    def overrides(pairs: list[str]) -> dict:
        return {k: json.loads(v) for k, v in (p.split("=", 1) for p in pairs)}

    at = sorted({int(s) for s in args.at.split(",")} | {args.steps})
    recipe = load_recipe(args.recipe)
    recipe = recipe.replace(train={"steps": args.steps, "batch_size": args.batch, "accumulation": 1,
                                   "eval_every": args.steps, "eval_items": 1, "checkpoint_every": args.steps,
                                   "checkpoint_seconds": 1e9, "log_every": max(args.steps, 1),
                                   **overrides(args.train)},
                            loss=overrides(args.loss))
    teacher = load_model(args.teacher).eval()
    data = Dataset(args.data)
    t0 = time.perf_counter()
    held = HeldOut(teacher, Dataset(args.held), args.held_items, args.held_frames)
    print(f"teacher {args.teacher.name}; recipe {recipe.name} (batch {args.batch}, lr {recipe.train.lr:g}, "
          f"warm-up {recipe.train.warmup_steps}; loss {json.dumps(overrides(args.loss)) or 'as shipped'}); "
          f"{len(held.items)} held-out clips of <= {args.held_frames} frames from {args.held}; train data "
          f"{args.data} ({len(data)} segments); {args.threads} thread(s); held-out setup "
          f"{time.perf_counter() - t0:.0f} s", flush=True)

    t = time.perf_counter()
    torch.manual_seed(0)
    if args.init_cache and args.init_cache.is_file():
        student = build_student(teacher, recipe.student, init=False)
        student.load_state_dict(safe_torch_load(args.init_cache, what="initialised student (--init-cache)"))
        init_note = f"{args.init} init loaded from {args.init_cache}"
    elif args.init == "function":
        student = build_student(teacher, recipe.student, init=False)
        cal = fi.calibration_crops(data, args.cal_items, args.cal_frames)
        fi.function_init(student, teacher, cal, anchor=args.anchor)
        init_note = (f"function_init on {len(cal)} crops of {args.cal_frames} frames, "
                     f"ridge towards {'the copy' if args.anchor else 'zero'}")
    else:
        student = build_student(teacher, recipe.student)
        init_note = "init_from_teacher (magnitude)"
    init_s = time.perf_counter() - t
    if args.init_cache and not args.init_cache.is_file():
        torch.save(student.state_dict(), args.init_cache)
    print(f"init: {init_note}, {init_s:.0f} s", flush=True)

    rows = []
    clock = {"measuring": 0.0, "began": None}

    def record(step: int, losses: dict | None) -> None:
        m0 = time.perf_counter()
        secs = 0.0 if clock["began"] is None else m0 - clock["began"] - clock["measuring"]
        m = held.measure(student)
        clock["measuring"] += time.perf_counter() - m0
        row = {"step": step, "seconds": secs, **m, "loss_mel": None if losses is None else losses.get("mel")}
        rows.append(row)
        print(f"step {step:5d}  {secs:7.0f} s  {line(m)}  train mel {fmt(row['loss_mel'], '.3f')}", flush=True)

    floor = held.floor(40.0)
    print(f"metric floor (teacher + white noise at 40 dB SNR): {line(floor)}", flush=True)
    record(0, None)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "run"
        clock["began"] = time.perf_counter()
        clock["measuring"] = 0.0
        train(student, teacher, data, recipe.train, recipe.loss, out, device="cpu", progress=False,
              callback=lambda step, losses: record(step, losses) if step in at else None)

    if args.keep:
        torch.save(student.state_dict(), args.keep)
    pct = lambda v: None if v is None else 100 * v  # noqa: E731
    print(f"\n{'step':>5} {'seconds':>8} {'log-mel L1':>10} {'MCD dB':>7} {'F0 RMSE c':>9} {'V/UV %':>7} "
          f"{'F0 gross %':>10} {'F0 fine c':>9}")
    for r in rows:
        print(f"{r['step']:5d} {r['seconds']:8.0f} {fmt(r['log_mel_l1'], '10.3f')} {fmt(r['mcd_db'], '7.2f')} "
              f"{fmt(r['f0_rmse_cents'], '9.0f')} {fmt(pct(r['vuv_error']), '7.1f')} "
              f"{fmt(pct(r.get('f0_gross_error')), '10.1f')} {fmt(r.get('f0_rmse_fine_cents'), '9.0f')}")
    if args.save:
        args.save.write_text(json.dumps({"recipe": recipe.to_dict(), "init": init_note, "init_s": init_s,
                                         "floor_40db": floor, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
