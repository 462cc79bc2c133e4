"""Staged distillation: block-wise, then end to end, then adversarial; each stage's length from the recipe.

    stage_at(loss_cfg, step) -> "blockwise" | "end-to-end" | "adversarial"
    forced_forward(student, batch, teacher_out, noise) -> SynthOutput     the block-wise pass

A student starts close to its teacher (function_init.py), but end to end its blocks' errors
compound: the flow reads enc_p's mistakes, the decoder the flow's. In the block-wise stage
(steps 1 .. `[loss] blockwise_steps`) each block is fed the *teacher's* input instead and
matched to the teacher's output through the same DistillLoss terms (and projections):

    enc_p(phone, pitch)           -> m_p, logs_p     against the teacher's (prior term)
    flow(teacher's z_p, reverse)  -> z               against the teacher's z (latent term)
    dec(teacher's z, pitchf)      -> audio, features against the teacher's (mel, stft, features)

The teacher's z_p is rebuilt exactly from its m_p, logs_p and the step's shared noise, so the
teacher cache (teacher_cache.py) serves this stage as it serves the others. Then end to end
until `[loss] adversarial_start`, then with the discriminator. Forcing needs the teacher's
latent width (z goes straight into the student's decoder): a recipe that narrows
`inter_channels` cannot have a block-wise stage (student.py refuses it).

Not here: the loss terms (losses.py) or the step (trainer.py).
"""
from __future__ import annotations

import torch

from ..models import Synthesizer
from ..models.synthesizer import NOISE_SCALE, SynthOutput
from .batches import Batch
from .recipes import LossConfig

STAGES = ("blockwise", "end-to-end", "adversarial")


def stage_at(cfg: LossConfig, step: int, adversarial: bool = True) -> str:
    """The stage step `step` (1-based) is in; `adversarial`: whether the run has a discriminator."""
    if step <= cfg.blockwise_steps:
        return "blockwise"
    return "adversarial" if adversarial and step >= cfg.adversarial_start else "end-to-end"


def forced_forward(student: Synthesizer, batch: Batch, teacher: SynthOutput, noise: torch.Tensor,
                   noise_scale: float = NOISE_SCALE) -> SynthOutput:
    """Each block of `student` on the teacher's input for it (module docstring); z_p is the teacher's."""
    f0 = student.config.f0
    g = student.emb_g(batch.sid).unsqueeze(-1)
    m_p, logs_p, mask = student.enc_p(batch.phone, batch.pitch if f0 else None, batch.lengths)
    dtype = m_p.dtype
    t_m, t_logs, t_z = (x.to(dtype) for x in (teacher.m_p, teacher.logs_p, teacher.z))
    z_p = (t_m + torch.exp(t_logs) * noise.to(dtype) * noise_scale) * mask
    z = student.flow(z_p, mask, g=g, reverse=True)
    audio = student.dec(t_z * mask, batch.pitchf if f0 else None, g=g, source_noise=False)
    return SynthOutput(audio, z, z_p, m_p, logs_p, mask)
