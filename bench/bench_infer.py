"""CPU time of `Synthesizer.infer` on a real-size RVC teacher (random weights).

    python bench/bench_infer.py                      # v2 40k f0, 10 s, 2 threads
    python bench/bench_infer.py --version v1 --sr 48000 --seconds 5 --threads 4

Prints the median over `--runs` timed runs after one warm-up, and the real-time factor
(seconds of compute per second of audio; below 1 is faster than real time).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from distill_rvc import Synthesizer, rvc_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", default="v2", choices=["v1", "v2"])
    ap.add_argument("--sr", type=int, default=40000)
    ap.add_argument("--no-f0", action="store_true")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = rvc_config(args.version, args.sr, not args.no_f0)
    model = Synthesizer(cfg).eval()
    t = int(args.seconds * 100)
    inputs = (torch.randn(1, t, cfg.phone_dim), torch.tensor([t]),
              torch.randint(1, 256, (1, t)) if cfg.f0 else None,
              torch.full((1, t), 180.0) if cfg.f0 else None, torch.tensor([0]))
    noise = torch.randn(1, cfg.inter_channels, t)
    model.infer(*inputs, noise=noise, source_noise=False)  # warm-up
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        model.infer(*inputs, noise=noise, source_noise=False)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(json.dumps({
        "model": f"{args.version} {args.sr} {'f0' if cfg.f0 else 'nono'}", "seconds_of_audio": args.seconds,
        "threads": args.threads, "runs": args.runs, "median_s": round(median, 3), "min_s": round(min(times), 3),
        "rtf": round(median / args.seconds, 3), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
    }))


if __name__ == "__main__":
    main()
