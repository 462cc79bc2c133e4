"""Fidelity of a student to its teacher on held-out clips, as training goes (issue 13).

    held = HeldOut(teacher, dataset, items=8, frames=200)   # teacher audio made once
    held.measure(student) -> {"log_mel_l1", "mcd_db", "f0_rmse_cents", "f0_corr", "vuv_error",
                              "f0_gross_error", "f0_rmse_fine_cents"}
    held.floor(snr_db=40) -> the same for the teacher against itself plus white noise

On a buzzy teacher harvest flips octave on a few percent of frames under any perturbation
(measured on the shared teacher: its own output plus noise at 40 dB SNR scores F0 RMSE 175
cents, V/UV 5.9 %), and those flips dominate a plain RMSE in cents. So the F0 error is also
split the usual way: the gross error rate (frames voiced in both more than metrics.GROSS_CENTS apart,
i.e. 20 %) and the RMSE of the other frames; `floor` says what the measurement itself scores.

Both models get the same content, pitch, speaker and prior noise (fixed per clip, drawn as the
trainer's `evaluate` draws it) with the NSF noise off, so their outputs are frame-aligned and
compared with `metrics.compare_clip`, pooled frame by frame (`metrics.pooled`).

Not for: training losses (losses.py) or the trainer's TensorBoard logging (tb.py).
"""
from __future__ import annotations

import numpy as np
import torch

from .. import metrics
from ..models import Synthesizer
from .batches import Batch, eval_items
from .evaluate import item_noise



def spread_indices(dataset, n: int) -> list[int]:
    """`n` segment indices spread evenly over the dataset's sources (voices), round robin."""
    by_source: dict[str, list[int]] = {}
    for i, seg in enumerate(getattr(dataset, "segments", [{"source": ""}] * len(dataset))):
        by_source.setdefault(str(seg.get("source", "")), []).append(i)
    lists = [v for _, v in sorted(by_source.items())]
    picked: list[int] = []
    k = 0
    while len(picked) < min(n, len(dataset)):
        for lst in lists:
            stride = max(1, len(lst) // max(1, -(-n // len(lists))))
            j = k * stride
            if j < len(lst) and len(picked) < n:
                picked.append(lst[j])
        k += 1
    return sorted(picked)


class HeldOut:
    """Held-out clips of `dataset` with the teacher's audio for each, computed once."""

    def __init__(self, teacher: Synthesizer, dataset, items: int = 8, frames: int = 200, seed: int = 1234,
                 speaker: int = 0):
        self.teacher = teacher
        self.sr = teacher.config.sr
        self.speaker = speaker
        self.items = eval_items(dataset, spread_indices(dataset, items), frames, teacher.config.f0)
        inter = teacher.config.inter_channels
        self.noises = [item_noise(i, seed, inter, it.phone.shape[1]) for i, it in enumerate(self.items)]
        self.teacher_audio = [self._audio(teacher, it, n) for it, n in zip(self.items, self.noises)]

    @torch.no_grad()
    def _audio(self, model: Synthesizer, it: Batch, noise: torch.Tensor) -> np.ndarray:
        p = next(model.parameters())
        sid = torch.full((1,), self.speaker, dtype=torch.long, device=p.device)
        was_training = model.training
        model.eval()
        try:
            audio = model.infer(it.phone.to(p.device, p.dtype), it.lengths.to(p.device), it.pitch.to(p.device),
                                it.pitchf.to(p.device), sid, noise=noise[:, :model.config.inter_channels].to(
                                    p.device, p.dtype), source_noise=False)
        finally:
            model.train(was_training)
        return audio[0, 0].float().cpu().numpy()

    def audio(self, student: Synthesizer) -> list[np.ndarray]:
        return [self._audio(student, it, n) for it, n in zip(self.items, self.noises)]

    def measure(self, student: Synthesizer, full: bool = True) -> dict[str, float | None]:
        """log-mel L1 and (with `full`) MCD, F0 RMSE, F0 correlation, V/UV error, pooled over the clips."""
        outs = self.audio(student)
        if not full:
            return {"log_mel_l1": float(np.mean([metrics.log_mel_l1(t, s, self.sr)
                                                 for t, s in zip(self.teacher_audio, outs)]))}
        return self._pooled(outs)

    def _pooled(self, outs: list[np.ndarray]) -> dict[str, float | None]:
        comparisons = [metrics.compare_clip(t, s, self.sr) for t, s in zip(self.teacher_audio, outs)]
        return {**metrics.pooled(comparisons), **metrics.pitch_errors(comparisons)}

    def floor(self, snr_db: float = 40.0, seed: int = 0) -> dict[str, float | None]:
        """The metrics of the teacher's own audio plus white noise at `snr_db`: what the
        measurement scores for a change no listener would call a different voice."""
        rng = np.random.default_rng(seed)
        outs = [a + rng.standard_normal(len(a)).astype(np.float32) * float(np.sqrt(np.mean(a ** 2)))
                * 10 ** (-snr_db / 20) for a in self.teacher_audio]
        return self._pooled(outs)
