"""`teach` on 2 processes (torchrun, gloo) against 1, on CPU: steps per second at the same
global batch, side by side in one run.

    python bench/bench_ddp.py                                   # the tiny teacher, example data
    python bench/bench_ddp.py --teacher /work/shared/teachers/ref_v2_40k.pth \\
        --data /work/fid-data/cache_train --recipes tiny 4gb --batch 4 --steps 6

Each recipe runs `python -m distill_rvc teach --threads 2` (1 process x 2 threads) and
`torchrun --nproc-per-node 2 --standalone -m distill_rvc teach --threads 1` (2 processes x
1 thread), and 1 process x 1 thread as the baseline, in turn, --repeats times. On a 2-core
machine 2 x 1 against 1 x 2 is the honest comparison: both use the two cores, one by
intra-op threads, the other by splitting the batch. The time
of a step is rank 0's `train/step_s` in TensorBoard (forward, backward, the all-reduce and
the optimiser; the step-0 evaluation and start-up are not counted), median over the steps
after --skip warm-up steps.

Measured 2026-12-02 on the shared 2-core VM with other engineers' jobs running (load
average 3-18 during the runs), so the numbers are noisy: read the ratios of interleaved runs,
and not too closely. Shared trained teacher ref_v2_40k.pth (v2 40k), /work/fid-data/cache_train,
global batch 4 x 32 frames, fp32, 6 steps, median of steps 3-6, steps/s:

    run A: --layouts 1x1 2x1 --repeats 2 (load 18 -> 10)
    recipe   1 x 1 thread   2 x 1 thread   2x1 vs 1x1
    4gb         0.161          0.220          1.37x
    tiny        0.338          0.527          1.56x

    run B: all three layouts, --repeats 1 (load 6 -> 3)
    recipe   1 x 1 thread   1 x 2 threads   2 x 1 thread   2x1 vs 1x2   2x1 vs 1x1
    tiny        0.542          0.055           0.742         13.4x        1.37x
    4gb         0.291          0.050           0.233          4.65x       0.80x

1 process x 2 threads is 5-10x *slower* than 1 x 1 here: on cores shared with other
runnable processes, torch's two intra-op threads spin-wait for each other (the same effect
tests/distill/conftest.py measured). That makes the 2x1 vs 1x2 column an artefact of this
machine, not a DDP result. Against one thread, 2 processes gave 0.8x to 1.6x: the second
core helps when it is free, and with 2 cores shared by other jobs, whether it is free changes
from minute to minute (4gb: 1.37x in run A, 0.80x in run B).

Not a GPU measurement: on several GPUs each process has its own device, and nccl's
all-reduce is far cheaper than a step.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ((1, 1), (1, 2), (2, 1))  # (processes, threads each)
sys.path.insert(0, str(ROOT))


def recipe_file(name: str, folder: Path, **sections: dict) -> Path:
    """The shipped recipe `name` with these sections' values changed, as a .toml `teach` reads."""
    from distill_rvc.distill.recipes import shipped_recipes

    data = tomllib.loads(shipped_recipes()[name].read_text(encoding="utf-8"))
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)

    def value(v) -> str:
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, values in data.items():
        if isinstance(values, dict):
            lines += ["", f"[{section}]", *(f"{k} = {value(v)}" for k, v in values.items())]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def step_seconds(run: Path, skip: int) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    return [e.value for e in sorted(events.Scalars("train/step_s"), key=lambda e: e.step) if e.step > skip]


def run_teach(processes: int, threads: int, teacher: Path, data: Path, recipe: Path, out: Path) -> None:
    teach = ["teach", "--teacher", str(teacher), "--recipe", str(recipe), "--data", str(data), "--out", str(out),
             "--device", "cpu", "--no-budget-check", "--quiet", "--threads", str(threads)]
    if processes == 1:
        cmd = [sys.executable, "-m", "distill_rvc", *teach]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes), "--standalone",
               "-m", "distill_rvc", *teach]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", type=Path, default=None, help="[default: examples/tiny_teacher.pth]")
    ap.add_argument("--data", type=Path, default=None, help="a dataset cache [default: a new example dataset]")
    ap.add_argument("--recipes", nargs="+", default=["tiny", "4gb"])
    ap.add_argument("--batch", type=int, default=4, help="the global batch")
    ap.add_argument("--frames", type=int, default=32, help="segment_frames")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--skip", type=int, default=2, help="warm-up steps not timed")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--layouts", nargs="+", default=["1x1", "1x2", "2x1"],
                    help="processes x threads each, among 1x1 1x2 2x1")
    args = ap.parse_args()
    layouts = [tuple(int(n) for n in text.split("x")) for text in args.layouts]
    if not set(layouts) <= set(LAYOUTS) or (2, 1) not in layouts:
        ap.error(f"--layouts: 2x1 and any of 1x1 1x2, not {args.layouts}")

    with tempfile.TemporaryDirectory(prefix="bench_ddp_") as tmp:
        tmp = Path(tmp)
        teacher = args.teacher or ROOT / "examples" / "tiny_teacher.pth"
        data = args.data
        if data is None:
            from examples.make_example_dataset import make_example_dataset

            data = Path(make_example_dataset(tmp / "data", utterances=8, seconds=1.2))
        rows = []
        for name in args.recipes:
            # the magnitude init: the data-driven one takes minutes on a CPU and a step's time does not depend on it
            recipe = recipe_file(name, tmp, student=dict(init="magnitude"), train=dict(
                batch_size=args.batch, segment_frames=args.frames, steps=args.steps, precision="fp32", log_every=1,
                eval_every=10**6, eval_items=1, eval_frames=50, eval_fidelity=False, checkpoint_every=10**6,
                checkpoint_seconds=10.0**6))
            times: dict[tuple[int, int], list[float]] = {layout: [] for layout in layouts}
            for r in range(args.repeats):
                for processes, threads in layouts:  # interleaved: a busier moment slows every layout alike
                    out = tmp / f"{name}-{processes}x{threads}-{r}"
                    run_teach(processes, threads, teacher, data, recipe, out)
                    times[processes, threads] += step_seconds(out, args.skip)
            medians = {layout: statistics.median(t) for layout, t in times.items()}
            rows.append((name, medians))
            print(name, {f"{p}x{t}": f"{1 / s:.3f} steps/s" for (p, t), s in medians.items()}, flush=True)
        print(f"\nteacher {teacher.name}, global batch {args.batch} x {args.frames} frames, {args.steps} steps, "
              f"median of steps {args.skip + 1}-{args.steps}, {args.repeats} repeat(s), load average "
              f"{os.getloadavg()[0]:.1f} at the end")
        print("recipe   1 process x 1 thread   1 process x 2 threads   2 processes x 1 thread   2x1 vs 1x2   "
              "2x1 vs 1x1")
        for name, m in rows:
            def rate(layout: tuple[int, int], width: int) -> str:
                return f"{1 / m[layout]:{width}.3f} steps/s" if layout in m else f"{'-':>{width + 8}s}"

            def ratio(layout: tuple[int, int]) -> str:
                return f"{m[layout] / m[2, 1]:11.2f}x" if layout in m else f"{'-':>12s}"
            print(f"{name:8s} {rate((1, 1), 10)} {rate((1, 2), 15)} {rate((2, 1), 16)} {ratio((1, 2))} "
                  f"{ratio((1, 1))}")


if __name__ == "__main__":
    main()
