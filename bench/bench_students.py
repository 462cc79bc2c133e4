"""CPU speed of every recipe's student against its teacher, side by side in one run.

    python bench/bench_students.py                       # v2 40k teacher, 10 s of audio, 2 threads
    python bench/bench_students.py --seconds 5 --threads 1 --runs 3

Random weights (speed does not depend on them); each model is timed on the same input with
`infer` (prior noise given, NSF noise off), median of --runs after a warm-up, interleaved so
that a busy machine slows every model alike. Also times two decoder variants of the tiny
student that answer "what does the speed come from": its channel cuts with RVC's ResBlock1
(channel cuts alone), and ResBlock2 with a single kernel.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill_rvc import Synthesizer, rvc_config  # noqa: E402
from distill_rvc.memory import macs_per_second  # noqa: E402
from distill_rvc.distill.recipes import list_recipes, load_recipe  # noqa: E402
from distill_rvc.distill.student import student_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", default="v2", choices=["v1", "v2"])
    ap.add_argument("--sr", type=int, default=40000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    teacher_cfg = rvc_config(args.version, args.sr, True)
    configs = {"teacher": teacher_cfg}
    for recipe in list_recipes():
        configs[recipe.name] = student_config(teacher_cfg, recipe.student)
    tiny = load_recipe("tiny").student
    configs["tiny, ResBlock1 (channel cuts only)"] = student_config(teacher_cfg, tiny).replace(
        resblock="1", resblock_kernel_sizes=(3, 7, 11), resblock_dilation_sizes=((1, 3, 5),) * 3)
    configs["tiny, ResBlock2 k3 only"] = student_config(teacher_cfg, tiny).replace(
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),))

    t = int(args.seconds * 100)
    inputs = (torch.randn(1, t, teacher_cfg.phone_dim), torch.tensor([t]), torch.randint(1, 256, (1, t)),
              torch.full((1, t), 180.0), torch.tensor([0]))
    noise = torch.randn(1, teacher_cfg.inter_channels, t)
    models = {name: Synthesizer(cfg).eval() for name, cfg in configs.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():
        model.infer(*inputs, noise=noise, source_noise=False)  # warm-up
    for _ in range(args.runs):
        for name, model in models.items():
            start = time.perf_counter()
            model.infer(*inputs, noise=noise, source_noise=False)
            times[name].append(time.perf_counter() - start)

    base = statistics.median(times["teacher"])
    rows = []
    for name, model in models.items():
        median = statistics.median(times[name])
        rows.append({"model": name, "params": sum(p.numel() for p in model.parameters()),
                     "gmac_per_s": round(macs_per_second(configs[name]) / 1e9, 2), "median_s": round(median, 3),
                     "rtf": round(median / args.seconds, 4), "speedup_vs_teacher": round(base / median, 1)})
    print(json.dumps({"teacher": f"{args.version} {args.sr} f0", "seconds_of_audio": args.seconds,
                      "threads": args.threads, "runs": args.runs, "torch": torch.__version__,
                      "cpu": platform.processor() or platform.machine(), "models": rows}, indent=1))


if __name__ == "__main__":
    main()
