"""The held-out evaluation of a distillation run: how far the student's voice is from the teacher's.

    evaluate(session, items, seed) -> (mean log-mel L1, [EvalItem])   student vs teacher, held-out segments
    EvalItem                                                          one item's audio and log-mels, for logging
    fidelity(items, sr) -> {mcd_db, f0_rmse_cents, vuv_error, ...}    the voice metrics of metrics.py on them

Every item gets its own fixed prior noise (from `seed` and its position) and the NSF noise is
off, so a number moves only when the student does. The trainer calls it at step 0, every
`eval_every` steps and at the end; pruning scores its candidates with it. Not here: the
held-out split (batches.split_eval), logging the items (tb.py) or the training step (trainer.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from .. import metrics
from ..models import Synthesizer
from .batches import Batch
from .losses import DistillLoss
from .recipes import TrainConfig


@dataclass
class EvalItem:
    teacher_audio: torch.Tensor  # [N]
    student_audio: torch.Tensor  # [N]
    teacher_mel: torch.Tensor  # [n_mels, frames]
    student_mel: torch.Tensor


class _Precision(Protocol):
    teacher_dtype: torch.dtype


class EvalSession(Protocol):
    """What `evaluate` reads of a run: a trainer.Session (typed here so this module needs no trainer)."""

    student: Synthesizer
    teacher: Synthesizer
    loss: DistillLoss  # its `mel`: RVC's log-mel
    train_cfg: TrainConfig  # its `speaker`
    device: torch.device
    precision: _Precision


def item_noise(i: int, seed: int, channels: int, frames: int) -> torch.Tensor:
    """The fixed standard-normal prior noise [1, channels, frames] of held-out item `i`."""
    return torch.randn(1, channels, frames, generator=torch.Generator().manual_seed(seed + 7919 * (i + 1)))


@torch.no_grad()
def evaluate(session: EvalSession, items: list[Batch], seed: int) -> tuple[float, list[EvalItem]]:
    """Mean log-mel L1 (student vs teacher) over held-out items, with a fixed prior noise per
    item and the NSF noise off, plus the audio and mels for logging."""
    student, teacher = session.student, session.teacher
    student.eval()
    out, total = [], 0.0
    try:
        for i, item in enumerate(items):
            noise = item_noise(i, seed, teacher.config.inter_channels, item.phone.shape[1])
            item = Batch(item.phone, item.lengths, item.pitch, item.pitchf,
                         torch.full((1,), session.train_cfg.speaker, dtype=torch.long), noise, None,
                         student_phone=item.student_phone)
            # the teacher on its content features; the student on its own where it has them (teach --encoder)
            t_in, s_in = item.to(session.device, session.precision.teacher_dtype), item.to(session.device).for_student()
            t_audio = teacher.infer(t_in.phone, t_in.lengths, t_in.pitch, t_in.pitchf, t_in.sid, noise=t_in.noise,
                                    source_noise=False)[0, 0].float()
            s_audio = student.infer(s_in.phone, s_in.lengths, s_in.pitch, s_in.pitchf, s_in.sid,
                                    noise=s_in.noise[:, :student.config.inter_channels], source_noise=False)[0, 0].float()
            t_mel, s_mel = session.loss.mel(t_audio[None])[0], session.loss.mel(s_audio[None])[0]
            total += float(torch.mean(torch.abs(t_mel - s_mel)))
            out.append(EvalItem(t_audio.cpu(), s_audio.cpu(), t_mel.cpu(), s_mel.cpu()))
    finally:
        student.train()
    return total / max(len(items), 1), out


def fidelity(items: list[EvalItem], sr: int) -> dict[str, float | None]:
    """MCD (dB), F0 RMSE (cents), its gross-error share and fine RMSE, F0 correlation and V/UV
    disagreement of the student against the teacher, pooled frame by frame over `items`
    (WORLD analysis, metrics.compare_clip); TensorBoard's fidelity/ scalars."""
    comparisons = [metrics.compare_clip(it.teacher_audio.numpy(), it.student_audio.numpy(), sr) for it in items]
    out = metrics.pooled(comparisons)
    out.pop("log_mel_l1", None)  # the trainer's own log-mel L1 (RVC's mel) is eval/mel_l1
    out.update(metrics.pitch_errors(comparisons))
    return out
