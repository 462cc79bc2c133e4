"""CPU speed of the audio front end on one input: harvest, dio, rmvpe, fcpe and the content encoder.

    python bench/bench_features.py                    # 60 s of audio, 2 threads, 3 runs each
    python bench/bench_features.py --seconds 10 --threads 4 --runs 1

RMVPE and the content encoder are real-size (RVC's rmvpe.pt: 90.4 M parameters; ContentVec /
hubert_base.pt: 94.6 M) with random weights: speed does not depend on the values. FCPE runs on
its real weights (10.8 M; found as `--f0 fcpe` finds them); its accuracy is in bench_f0.py. Each
extractor sees the whole input in one call. Prints one JSON line per extractor with the median
time and "x_realtime" = seconds of audio per second of compute (above 1 is faster than real time).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

from distill_rvc.features import extract_f0
from distill_rvc.features.content import ContentConfig, ContentEncoder
from distill_rvc.features.rmvpe import RMVPE

HUBERT_BASE = ContentConfig(conv_layers=((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2, conv_bias=False,
                            embed_dim=768, ffn_dim=3072, heads=12, layers=12, pos_conv_kernel=128, pos_conv_groups=16,
                            final_dim=256, normalize=False)


def speech_like(seconds: float, sr: int = 16000) -> np.ndarray:
    """Harmonic syllables (0.7 s on, 0.5 s off) with a gliding F0 and a little noise."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    f = 140 * (1 + 0.2 * np.sin(2 * np.pi * 0.3 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 30))
    x = 0.3 * x / np.abs(x).max() * ((t % 1.2) < 0.7) + 0.001 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def timed(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=["harvest", "dio", "rmvpe", "fcpe", "content-v2", "content-v1"])
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    audio = speech_like(args.seconds)
    warm = audio[:16000]
    rmvpe = RMVPE().eval() if "rmvpe" in args.only else None
    encoder = ContentEncoder(HUBERT_BASE).eval() if any(o.startswith("content") for o in args.only) else None
    jobs = {
        "harvest": lambda x: extract_f0(x, "harvest"),
        "dio": lambda x: extract_f0(x, "dio"),
        "rmvpe": lambda x: rmvpe.infer(x),
        "fcpe": lambda x: extract_f0(x, "fcpe"),
        "content-v2": lambda x: encoder.extract(x, "v2"),
        "content-v1": lambda x: encoder.extract(x, "v1"),
    }
    for name in args.only:
        jobs[name](warm)  # warm-up: imports, allocator, kernels
        times = timed(lambda: jobs[name](audio), args.runs)
        median = statistics.median(times)
        print(json.dumps({
            "extractor": name, "seconds_of_audio": args.seconds, "threads": args.threads, "runs": args.runs,
            "median_s": round(median, 2), "min_s": round(min(times), 2), "x_realtime": round(args.seconds / median, 2),
            "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        }), flush=True)


if __name__ == "__main__":
    main()
