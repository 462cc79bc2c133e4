"""The memory plan against one real training step, for every recipe, on a real-size teacher.

    python bench/bench_plan.py                    # v2 40k teacher (random weights), micro-batch 8
    python bench/bench_plan.py --batch 4 --recipe 4gb --recipe tiny

For each recipe: the plan traced on fake tensors (`plan_training`, in fp32 on the CPU so that
both sides run the same arithmetic), then the same step run for real on the CPU, counting
weights, gradients, optimiser state and the activations saved for backward
(`measure_step_memory`). Prints both and their ratio; the issue asks for agreement within 20 %.
The recipe's own plan (its precision and CUDA overheads, at its batch) is printed alongside.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill_rvc import Synthesizer, rvc_config  # noqa: E402
from distill_rvc.distill.planner import measure_step_memory, plan_training  # noqa: E402
from distill_rvc.distill.recipes import list_recipes, load_recipe  # noqa: E402
from distill_rvc.distill.student import build_student  # noqa: E402

MB = 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", action="append", help="recipe name (repeat); default: all")
    ap.add_argument("--batch", type=int, default=8, help="micro-batch of the compared step")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    teacher = Synthesizer(rvc_config("v2", 40000, True)).eval()
    recipes = [load_recipe(n) for n in args.recipe] if args.recipe else list_recipes()
    rows = []
    for recipe in recipes:
        own = plan_training(teacher.config, recipe)
        cpu = dataclasses.replace(recipe.replace(train={"batch_size": args.batch, "accumulation": 1}), device="cpu")
        t0 = time.perf_counter()
        plan = plan_training(teacher.config, cpu)
        t_plan = time.perf_counter() - t0
        student = build_student(teacher, recipe.student)
        t0 = time.perf_counter()
        measured = measure_step_memory(teacher, student, cpu)
        t_step = time.perf_counter() - t0
        p = plan.parts
        predicted = {"weights": p["student_weights"] + p["teacher_weights"] + p["helper_weights"],
                     "gradients": p["gradients"], "optimizer_state": p["optimizer_state"],
                     "activations": p["activations"]}
        rows.append({
            "recipe": recipe.name, "micro_batch": args.batch, "segment_frames": recipe.train.segment_frames,
            "checkpointing": recipe.train.grad_checkpointing,
            "planned_MiB": {k: round(v / MB, 1) for k, v in predicted.items()},
            "measured_MiB": {k: round(v / MB, 1) for k, v in measured.items()},
            "activations_ratio": round(predicted["activations"] / measured["activations"], 3),
            "total_ratio": round(sum(predicted.values()) / sum(measured.values()), 3),
            "plan_s": round(t_plan, 1), "real_step_s": round(t_step, 1),
            "recipe_plan": {"precision": own.precision, "micro_batch": own.micro_batch,
                            "planned_peak_MiB": round(own.total / MB), "budget_MiB": round(own.budget_bytes / MB),
                            "fits": own.fits},
        })
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
