"""Which prior noise should the student train with? Measured on the bundled tiny teacher.

    python bench/bench_prior_noise.py                 # 120 steps per setting, example data
    python bench/bench_prior_noise.py --steps 300 --threads 2

Teacher and student always get the same standard-normal noise N (z_p = m_p + exp(logs_p) N 0.66666).
Where the student's latent is narrower it gets a fixed slice of the teacher's N. The
alternative is the noise-free mean path (z_p = m_p) for a share of the steps. Each setting
trains the same student from the same init on the same batches; the score is the held-out
log-mel L1 to the teacher *with* noise, as at inference (lower is better).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill_rvc import load_model  # noqa: E402
from distill_rvc.data.dataset import Dataset  # noqa: E402
from distill_rvc.distill.recipes import LossConfig, StudentSpec, TrainConfig, load_recipe  # noqa: E402
from distill_rvc.distill.student import build_student  # noqa: E402
from distill_rvc.distill.trainer import train  # noqa: E402
from examples.make_example_dataset import make_example_dataset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    teacher_path = ROOT / "examples" / "tiny_teacher.pth"
    tiny = load_recipe("tiny")
    train_cfg = TrainConfig(steps=args.steps, batch_size=4, segment_frames=32, lr=1e-3, warmup_steps=5,
                            eval_items=2, eval_frames=200, eval_every=10**6, checkpoint_every=10**6, log_every=10**6)
    settings = [
        ("latent kept (192), shared noise", "1x", 0.0),
        ("latent kept (192), mean path on 50 % of steps", "1x", 0.5),
        ("latent 96, slice of the teacher's noise", "0.5x", 0.0),
        ("latent 96, slice, mean path on 50 % of steps", "0.5x", 0.5),
        ("latent 96, mean path only", "0.5x", 1.0),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        data = Dataset(make_example_dataset(Path(tmp) / "data", utterances=12, seconds=2.0))
        for i, (name, inter, fraction) in enumerate(settings):
            spec = StudentSpec(**{**tiny.student.__dict__, "inter_channels": inter})
            teacher = load_model(teacher_path)
            torch.manual_seed(0)
            student = build_student(teacher, spec)
            loss = LossConfig(**{**tiny.loss.__dict__, "adversarial": 0.0, "mean_path_fraction": fraction})
            result = train(student, teacher, data, train_cfg, loss, Path(tmp) / f"run{i}", progress=False)
            print(json.dumps({"setting": name, "steps": args.steps, **{k: round(v, 4) for k, v in
                                                                       result.fidelity.items()}}), flush=True)


if __name__ == "__main__":
    main()
