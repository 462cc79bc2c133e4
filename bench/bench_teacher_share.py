"""How much of a distillation step is the teacher's forward: what a teacher-output cache saves at most.

    python bench/bench_teacher_share.py                  # v2 40k teacher; tiny, 4gb, 6gb; batch 4 x 32 frames; 2 threads
    python bench/bench_teacher_share.py --recipes 4gb --batch 4 --threads 1 --runs 5

A cached step runs only the student: its forward, the losses, backward and the optimiser. So
the teacher's share of today's step (its no-grad forward with the decoder feature maps the
losses read, fp32 on the CPU) bounds the saving of caching its outputs: a step would take
(1 - share) of today's. Both jobs run side by side in every run (timing.side_by_side) on the
same synthetic batch of the recipe's shapes, with the recipe's loss terms; random weights
(speed does not depend on them), or `--teacher` for a real file. Not measured: reading the
cache (memory-mapped arrays, small next to either) and the adversarial term (off at step 0).

Measured 2026-12-02, random v2 40k teacher, batch 4 x 32 frames, 2 threads on a 2-core box busy
with two other training jobs (so the seconds are slow; the shares are side by side):

    recipe   step s  teacher fwd s  share  cached step
      tiny    8.660          5.557    64%  36% of today's
       4gb   18.903          5.647    30%  70% of today's
       6gb   22.017          5.694    26%  74% of today's
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill_rvc import Synthesizer, load_model, rvc_config  # noqa: E402
from distill_rvc.distill.losses import capture  # noqa: E402
from distill_rvc.distill.planner import synthetic_batch  # noqa: E402
from distill_rvc.distill.recipes import load_recipe  # noqa: E402
from distill_rvc.distill.student import build_student  # noqa: E402
from distill_rvc.distill.trainer import Precision, Session  # noqa: E402
from distill_rvc.timing import cpu_name, side_by_side, timed, torch_threads  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", type=Path, help="a teacher file (default: a random v2 40k teacher)")
    ap.add_argument("--recipes", default="tiny,4gb,6gb")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    torch.manual_seed(0)
    teacher = load_model(args.teacher) if args.teacher else Synthesizer(rvc_config("v2", 40000)).remove_weight_norm()
    teacher = teacher.eval().requires_grad_(False)
    print(f"teacher {args.teacher or 'random v2 40k'}; batch {args.batch} x {args.frames} frames; fp32 CPU, "
          f"{args.threads} thread(s) on {cpu_name()}; median of {args.runs} runs, interleaved")
    print(f"{'recipe':>6} {'step s':>8} {'teacher fwd s':>13} {'share':>6} {'cached step':>12}")
    with torch_threads(args.threads):
        for name in args.recipes.split(","):
            recipe = load_recipe(name).replace(train=dict(batch_size=args.batch, accumulation=1,
                                                          segment_frames=args.frames))
            student = build_student(teacher, recipe.student)
            session = Session(student, teacher, recipe.train, recipe.loss, torch.device("cpu"),
                              Precision(None, torch.float32, False))
            batch = synthetic_batch(teacher.config, args.batch, args.frames, with_audio=True)
            names = session.loss.feature_names

            def teacher_forward() -> None:
                with torch.no_grad(), capture(teacher, names):
                    teacher(batch.phone, batch.lengths, batch.pitch, batch.pitchf, batch.sid, noise=batch.noise,
                            source_noise=False)

            step_s, teacher_s = side_by_side([timed(lambda: session.step(batch, 1, args.batch)),
                                              timed(teacher_forward)], args.runs, 1)
            share = teacher_s / step_s
            print(f"{name:>6} {step_s:8.3f} {teacher_s:13.3f} {share:6.0%} {1 - share:11.0%} of today's")


if __name__ == "__main__":
    main()
