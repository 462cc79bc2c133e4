"""teach-f0 students against the shipped FCPE: F0 agreement on held-out speech, size and speed.

    python bench/bench_fcpe_student.py --student f0.pt --held speech/held
    python bench/bench_fcpe_student.py --student a.pt --student b.pt --held DIR --threads 1 --runs 5

For each held-out file (16 kHz, RVC's input conditioning), the teacher FCPE (fcpe_c_v001.pt),
each student and harvest give F0 for the whole file; pooled over all frames:
  - vs teacher: median and 95th-percentile |cents| over the frames both call voiced, gross =
    share of those off by more than 50 cents, V/UV = share of frames with the same voicing;
  - vs harvest: the same median and V/UV, for the teacher and each student (harvest is RVC's
    reference tracker here; which one is right where they disagree is not measured);
  - sweep: a 3 s 100 -> 400 Hz glide with 8 harmonics against its true F0.
Speed: salience of 10 s of the held-out speech (front end included), at --threads, the models
taking turns in each of --runs runs, the median kept; the ratio is teacher / student.

Measured 2026-12-03 on the shared dev machine (2 cores, load 5-8 from other jobs), torch 2.13
CPU, 1 thread, after `distill-rvc teach-f0` on 330 espeak-ng clips (11 voices, pitches -p
30..80, 18.8 min, + 40 sweeps) with two other voices held out (en-us+m3, en+f4: 28 clips):
see the table in distill_rvc/fcpe_student/teach.py's docstring (filled in from this script's output).

Not for: training (teach-f0) or the whole chain's timing (bench_chain.py, `bench --chain`).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill_rvc.encoder.data import find_audio  # noqa: E402
from distill_rvc.features import extract_f0, load_fcpe  # noqa: E402
from distill_rvc.features.audio import condition_audio, load_audio  # noqa: E402


def cents(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(1200.0 * np.log2(a / b))


def agreement(f0: np.ndarray, ref: np.ndarray) -> tuple[float, float, float, float]:
    """(median c, p95 c, gross > 50 c, V/UV agreement) over pooled frames."""
    both = (f0 > 0) & (ref > 0)
    c = cents(f0[both], ref[both])
    vuv = float(((f0 > 0) == (ref > 0)).mean())
    return float(np.median(c)), float(np.percentile(c, 95)), float((c > 50).mean()), vuv


def sweep() -> tuple[np.ndarray, np.ndarray]:
    sr, seconds = 16000, 3.0
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(100.0 * 4.0 ** (t / seconds)) / sr
    x = 0.25 * sum(np.sin(k * phase) / k for k in range(1, 9))
    return x.astype(np.float32), 100.0 * 4.0 ** (np.arange(len(x) // 160 + 1) * 160 / sr / seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", action="append", required=True, help="a teach-f0 student (repeatable)")
    ap.add_argument("--teacher", default=None, help="fcpe_c_v001.pt [default: as --fcpe finds it]")
    ap.add_argument("--held", required=True, help="a folder of held-out speech")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = {"teacher": load_fcpe(args.teacher)} | {Path(p).name: load_fcpe(p) for p in args.student}
    files = find_audio(args.held, "--held")
    clips = [condition_audio(load_audio(p, 16000)) for p in files]
    f0 = {name: np.concatenate([m.infer(a) for a in clips]) for name, m in models.items()}
    harvest = np.concatenate([extract_f0(a, "harvest") for a in clips])
    seconds = sum(len(a) for a in clips) / 16000
    print(f"held out: {len(files)} files, {seconds:.1f} s; {args.threads} thread(s)")
    print(f"{'model':<16}{'params':>9}{'MB':>7}  vs teacher: {'med c':>6}{'p95 c':>7}{'gross':>7}{'V/UV':>7}"
          f"   vs harvest: {'med c':>6}{'V/UV':>7}   sweep med c")
    from distill_rvc.features.fcpe import find_fcpe

    paths = {"teacher": find_fcpe(args.teacher)} | {Path(p).name: Path(p) for p in args.student}
    x, true = sweep()
    for name, m in models.items():
        params = sum(p.numel() for p in m.parameters())
        vt = agreement(f0[name], f0["teacher"])
        vh = agreement(f0[name], harvest)
        s = m.infer(x)
        sw = float(np.median(cents(s[s > 0], true[s > 0]))) if (s > 0).any() else float("nan")
        print(f"{name:<16}{params / 1e6:>8.2f}M{paths[name].stat().st_size / 1e6:>7.1f}  {'':>12}{vt[0]:>6.2f}"
              f"{vt[1]:>7.1f}{vt[2]:>7.3f}{vt[3]:>7.3f}   {'':>12}{vh[0]:>6.2f}{vh[3]:>7.3f}   {sw:>6.2f}")
    audio = np.resize(np.concatenate(clips), 160000)
    times = {name: [] for name in models}
    for _ in range(args.runs + 1):  # the first is a warm-up
        for name, m in models.items():
            t0 = time.perf_counter()
            m.salience(audio)
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(t[1:]) for name, t in times.items()}
    print("salience of 10 s: " + "   ".join(
        f"{n} {t:.3f} s" + ("" if n == "teacher" else f" (x{med['teacher'] / t:.1f})") for n, t in med.items()))


if __name__ == "__main__":
    main()
