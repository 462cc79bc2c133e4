"""TensorBoard logging of a distillation run, under runs/NAME.

    loss/<term>              every loss term (unweighted) and loss/total (weighted)
    train/lr, train/step_s, train/stage (0 block-wise, 1 end to end, 2 adversarial), train/micro_batch
    memory/peak_bytes        CUDA max_memory_allocated (the process's peak RSS on a CPU)
    memory/planned_bytes     the plan's prediction, to compare with it
    eval/mel_l1              held-out log-mel distance, student vs teacher
    eval/<i>/teacher, eval/<i>/student   the held-out audio, side by side
    eval/<i>/mel             teacher, student and |difference| log-mels, one image
    HParams                  recipe and student size, with the final fidelity as metrics

One run, one curve: a resumed run writes into the same folder with `purge_step` (TensorBoard
drops what the dead attempt logged after its last checkpoint), and a run started afresh
first moves a dead attempt's event files (one that never checkpointed) to
abandoned-logs/<time>/, where TensorBoard shows them as a run of their own.

Under torchrun rank 0 alone logs (the others get a QuietLogger).
Not for metrics computation (evaluate.py) or console output.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .evaluate import EvalItem


EVENTS = "events.out.tfevents.*"


def set_aside_stale_logs(log_dir: str | Path) -> Path | None:
    """Move event files already in `log_dir` (a dead attempt's) to log_dir/abandoned-logs/<time>/
    so a fresh run's curves start clean; returns the folder, or None when there were none."""
    log_dir = Path(log_dir)
    stale = sorted(p for p in log_dir.glob(EVENTS) if p.is_file()) if log_dir.is_dir() else []
    if not stale:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(max(p.stat().st_mtime for p in stale)))
    target = log_dir / "abandoned-logs" / stamp
    n = 1
    while target.exists():
        n += 1
        target = log_dir / "abandoned-logs" / f"{stamp}-{n}"
    target.mkdir(parents=True)
    for p in stale:
        p.rename(target / p.name)
    return target


class RunLogger:
    def __init__(self, log_dir: str | Path, purge_step: int | None = None, sample_rate: int = 40000):
        from torch.utils.tensorboard import SummaryWriter

        from ..atomic import make_folder

        make_folder(log_dir)  # a read-only run folder: one line, not SummaryWriter's OSError

        # purge_step drops events a crashed run wrote after its last checkpoint.
        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)
        self.sample_rate = sample_rate

    def scalars(self, step: int, losses: dict[str, float], micro_batch: int, peak_bytes: int,
                planned_bytes: int | None = None) -> None:
        w = self.writer
        for name, value in losses.items():
            if name == "lr":
                w.add_scalar("train/lr", value, step)
            elif name in ("step_s", "stage"):  # stage: 0 block-wise, 1 end to end, 2 adversarial (stages.py)
                w.add_scalar(f"train/{name}", value, step)
            else:
                w.add_scalar(f"loss/{name}", value, step)
        w.add_scalar("train/micro_batch", micro_batch, step)
        w.add_scalar("memory/peak_bytes", peak_bytes, step)
        if planned_bytes:
            w.add_scalar("memory/planned_bytes", planned_bytes, step)

    def eval(self, step: int, items: list[EvalItem], mel_l1: float,
             fidelity: dict[str, float | None] | None = None) -> None:
        """The held-out evaluation: log-mel L1, the voice metrics (fidelity/: against steps, and
        against wall time with TensorBoard's Relative axis), each item's audio and mels."""
        w = self.writer
        w.add_scalar("eval/mel_l1", mel_l1, step)
        for name, value in (fidelity or {}).items():
            if value is not None:
                w.add_scalar(f"fidelity/{name}", value, step)
        for i, item in enumerate(items):
            w.add_audio(f"eval/{i}/teacher", item.teacher_audio.clamp(-1, 1)[None], step, self.sample_rate)
            w.add_audio(f"eval/{i}/student", item.student_audio.clamp(-1, 1)[None], step, self.sample_rate)
            w.add_image(f"eval/{i}/mel", mel_panel(item.teacher_mel, item.student_mel), step, dataformats="HWC")
        w.flush()

    def hparams(self, step: int, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        """Write the HParams summaries into this run's own folder (SummaryWriter.add_hparams
        would open a sub-run), with each metric also logged as a scalar the plugin reads."""
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        clean = {k: (v if isinstance(v, (bool, int, float, str)) else str(v)) for k, v in hparams.items()}
        tags = {f"hparams/{k}": float(v) for k, v in metrics.items()}
        exp, ssi, sei = hparams_summary(clean, tags)
        writer = self.writer._get_file_writer()
        for summary in (exp, ssi, sei):
            writer.add_summary(summary, step)
        for tag, value in tags.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def mel_panel(teacher: torch.Tensor, student: torch.Tensor) -> np.ndarray:
    """Log-mels [n_mels, frames] -> one RGB image [H, W, 3] uint8: teacher on top, student in
    the middle, |teacher - student| at the bottom (low frequencies down in each band)."""
    from matplotlib import colormaps

    t, s = teacher.float().numpy(), student.float().numpy()
    lo, hi = min(t.min(), s.min()), max(t.max(), s.max())
    spec = colormaps["magma"]
    diff = np.abs(t - s)

    def paint(x: np.ndarray, a: float, b: float, cmap) -> np.ndarray:
        norm = np.clip((x - a) / max(b - a, 1e-6), 0, 1)
        return (cmap(norm[::-1])[..., :3] * 255).astype(np.uint8)

    gap = np.full((2, t.shape[1], 3), 255, dtype=np.uint8)
    return np.concatenate([paint(t, lo, hi, spec), gap, paint(s, lo, hi, spec), gap,
                           paint(diff, 0.0, max(float(diff.max()), 1e-6), colormaps["viridis"])], axis=0)


class QuietLogger:
    """The logger of every rank but 0 under torchrun: RunLogger's methods, writing nothing."""

    def scalars(self, *args: Any, **kwargs: Any) -> None:
        return None

    eval = hparams = scalars

    def close(self) -> None:
        return None
