"""On a CUDA machine: does each recipe train inside its budget, and how close is the plan?

    python bench/gpu_recipes.py --out $OUT/gpu_recipes.json       # all recipes, 5 steps each
    python bench/gpu_recipes.py --recipe 4gb --steps 10

For each recipe: a real-size v2 40k teacher (random weights), the recipe's student and batch,
the card capped at the recipe's budget with `torch.cuda.set_per_process_memory_fraction`
(an OOM then means the recipe does not fit a card of that size; the trainer would halve the
micro-batch and say so), a few training steps on the example data, then the measured
`torch.cuda.max_memory_allocated` beside the plan (whose total also counts the CUDA context,
which max_memory_allocated does not see) and steps per second. Needs a GPU; prints JSON lines.
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

from distill_rvc import Synthesizer, rvc_config  # noqa: E402
from distill_rvc.atomic import write_json  # noqa: E402
from distill_rvc.data.dataset import Dataset  # noqa: E402
from distill_rvc.distill.planner import plan_training  # noqa: E402
from distill_rvc.distill.recipes import list_recipes, load_recipe  # noqa: E402
from distill_rvc.distill.student import build_student  # noqa: E402
from distill_rvc.distill.trainer import train  # noqa: E402
from distill_rvc.memory import GB  # noqa: E402
from examples.make_example_dataset import make_example_dataset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", action="append", help="recipe name (repeat); default: every CUDA recipe")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", help="also write the results to this JSON file")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("needs a CUDA device")
    recipes = [load_recipe(n) for n in args.recipe] if args.recipe else [r for r in list_recipes()
                                                                          if r.device == "cuda"]
    total = torch.cuda.get_device_properties(0).total_memory
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Dataset(make_example_dataset(Path(tmp) / "data", utterances=24, seconds=2.0))
        for recipe in recipes:
            torch.manual_seed(0)
            teacher = Synthesizer(rvc_config("v2", 40000, True)).eval()
            plan = plan_training(teacher.config, recipe)
            # The discriminator from the first step: the budget must hold its peak too.
            recipe = recipe.replace(train={"steps": args.steps, "eval_items": 1, "eval_every": 10**6,
                                           "checkpoint_every": 10**6}, loss={"adversarial_start": 0})
            student = build_student(teacher, recipe.student)
            torch.cuda.empty_cache()
            torch.cuda.set_per_process_memory_fraction(min(1.0, recipe.budget_gb * GB / total))
            t0 = time.perf_counter()
            row = {"recipe": recipe.name, "budget_GiB": recipe.budget_gb, "planned_total_GiB": round(plan.total / GB, 3),
                   "planned_tensors_GiB": round(plan.tracked_peak / GB, 3), "batch": recipe.train.batch_size}
            try:
                result = train(student, teacher, data, recipe.train, recipe.loss, Path(tmp) / recipe.name,
                               device="cuda", progress=False)
                row.update(measured_max_allocated_GiB=round(result.peak_memory_bytes / GB, 3),
                           measured_over_planned_tensors=round(result.peak_memory_bytes / plan.tracked_peak, 3),
                           micro_batch=result.micro_batch,
                           steps_per_s=round(args.steps / (time.perf_counter() - t0), 2))
            except Exception as e:  # noqa: BLE001 - report and go on to the next recipe
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            finally:
                torch.cuda.set_per_process_memory_fraction(1.0)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        write_json(args.out, rows)


if __name__ == "__main__":
    main()
