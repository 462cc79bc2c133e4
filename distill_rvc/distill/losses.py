"""The distillation terms: how far the student is from the teacher, part by part.

Teacher and student see the same content, pitch, speaker and prior noise, with the NSF noise
off, so their outputs are comparable sample by sample. Terms (weights in `LossConfig`):

    mel          L1 between RVC's log-mels of the two waveforms
    stft         multi-resolution STFT: spectral convergence + L1 of log magnitudes
    prior        L1 between (m_p, logs_p), through learned 1x1 projections where widths differ
    latent       L1 between the decoder inputs z (after the flow), projected likewise
    features     decoder feature maps at matching stages (forward hooks on named modules,
                 e.g. "dec.ups.*"), student projected to the teacher's width by a 1x1 conv,
                 L1 relative to the teacher's mean magnitude so every stage counts alike
    adversarial  LSGAN + feature matching against a small multi-period discriminator that
                 learns to tell the teacher's waveform from the student's
    ground_truth L1 between the student's log-mel and the dataset's real audio (if present)

`DistillLoss` holds every trainable helper (projections, discriminator), so the trainer
optimises it with the student and checkpoints it as one module.
"""
from __future__ import annotations

import fnmatch
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DistillRVCError
from ..models import Synthesizer
from ..models.synthesizer import SynthOutput
from .discriminator import MultiPeriodDiscriminator, discriminator_loss, feature_matching_loss, generator_loss
from .recipes import LossConfig
from .spectral import MelSpectrogram, stft_magnitude

# (n_fft, hop, win) of the multi-resolution STFT loss (Parallel WaveGAN's set).
STFT_RESOLUTIONS = ((512, 50, 240), (1024, 120, 600), (2048, 240, 1200))
TERMS = ("mel", "stft", "prior", "latent", "features", "adversarial", "ground_truth")


@contextmanager
def capture(model: nn.Module, names: list[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of the named submodules during the forward passes inside the block."""
    store: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    handles = []
    for name in names:
        def hook(_module, _inputs, output, name=name):
            store[name] = output
        handles.append(modules[name].register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def match_modules(patterns: tuple[str, ...], teacher: nn.Module, student: nn.Module) -> list[str]:
    """Module names matching the glob patterns that exist in both models, in the student's order."""
    t_names = {n for n, _ in teacher.named_modules() if n}
    names = []
    for pattern in patterns:
        hits = [n for n, _ in student.named_modules() if n and fnmatch.fnmatchcase(n, pattern) and n in t_names]
        if not hits:
            raise DistillRVCError(f"loss feature_maps: {pattern!r} matches no module present in both teacher and "
                                  "student (e.g. use \"dec.ups.*\" for the decoder's upsamplers)")
        names += [n for n in hits if n not in names]
    return names


def multi_resolution_stft_loss(student: torch.Tensor, teacher: torch.Tensor,
                               windows: list[torch.Tensor]) -> torch.Tensor:
    """audio [B, N] x 2 -> mean over resolutions of spectral convergence + log-magnitude L1."""
    total = 0.0
    for (n_fft, hop, win), window in zip(STFT_RESOLUTIONS, windows):
        s = stft_magnitude(student, n_fft, hop, win, window, eps=1e-7)
        t = stft_magnitude(teacher, n_fft, hop, win, window, eps=1e-7)
        sc = torch.linalg.norm(t - s) / torch.linalg.norm(t).clamp_min(1e-7)
        mag = F.l1_loss(torch.log(s), torch.log(t))
        total = total + sc + mag
    return total / len(STFT_RESOLUTIONS)


def _masked_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, C, T] x 2, mask [B, 1, T] -> mean |a - b| over the unmasked frames."""
    return (torch.abs(a.float() - b.float()) * mask).sum() / (mask.sum() * a.shape[1]).clamp_min(1)


class DistillLoss(nn.Module):
    """All distillation terms and their trainable helpers for one teacher/student pair."""

    def __init__(self, teacher: Synthesizer, student: Synthesizer, config: LossConfig):
        super().__init__()
        self.config = config
        self.mel = MelSpectrogram.for_model(teacher.config)
        for i, (_, _, win) in enumerate(STFT_RESOLUTIONS):
            self.register_buffer(f"window_{i}", torch.hann_window(win), persistent=False)
        t_inter, s_inter = teacher.config.inter_channels, student.config.inter_channels
        if t_inter != s_inter:
            self.prior_m = nn.Conv1d(s_inter, t_inter, 1)
            self.prior_logs = nn.Conv1d(s_inter, t_inter, 1)
            self.latent = nn.Conv1d(s_inter, t_inter, 1)
        self.feature_names = match_modules(config.feature_maps, teacher, student) if config.features else []
        self.feature_proj = nn.ModuleDict()
        if self.feature_names:
            t_shapes, s_shapes = _probe_shapes(teacher, self.feature_names), _probe_shapes(student, self.feature_names)
            for name in self.feature_names:
                (tc, tt), (sc, st) = t_shapes[name], s_shapes[name]
                if tt != st:
                    raise DistillRVCError(f"loss feature_maps: {name} runs at a different time resolution in the "
                                          "student; list only modules at matching stages")
                self.feature_proj[_key(name)] = nn.Conv1d(sc, tc, 1) if sc != tc else nn.Identity()
        if config.adversarial:
            self.disc = MultiPeriodDiscriminator(config.disc_periods, config.disc_channels)

    @property
    def windows(self) -> list[torch.Tensor]:
        return [getattr(self, f"window_{i}") for i in range(len(STFT_RESOLUTIONS))]

    def generator_parameters(self) -> list[nn.Parameter]:
        """Trained with the student (projections); the discriminator has its own optimiser."""
        return [p for n, p in self.named_parameters() if not n.startswith("disc.")]

    def forward(self, s: SynthOutput, t: SynthOutput, s_feats: dict[str, torch.Tensor],
                t_feats: dict[str, torch.Tensor], real_audio: torch.Tensor | None = None,
                adversarial: bool = True) -> dict[str, torch.Tensor]:
        """Every active term (unweighted) plus "total" (weighted sum). audio [B, 1, N], feats [B, C, L]."""
        c = self.config
        mask = s.mask
        s_audio, t_audio = s.audio.squeeze(1).float(), t.audio.squeeze(1).float()
        terms: dict[str, torch.Tensor] = {}
        s_mel = self.mel(s_audio) if (c.mel or c.ground_truth) else None
        if c.mel:
            terms["mel"] = F.l1_loss(s_mel, self.mel(t_audio))
        if c.stft:
            terms["stft"] = multi_resolution_stft_loss(s_audio, t_audio, self.windows)
        if c.prior:
            m, logs = s.m_p, s.logs_p
            if hasattr(self, "prior_m"):
                m, logs = self.prior_m(m.float()), self.prior_logs(logs.float())
            terms["prior"] = _masked_l1(m, t.m_p, mask) + _masked_l1(logs, t.logs_p, mask)
        if c.latent:
            z = self.latent(s.z.float()) if hasattr(self, "latent") else s.z
            terms["latent"] = _masked_l1(z, t.z, mask)
        if self.feature_names:
            total = 0.0
            for name in self.feature_names:
                fs = self.feature_proj[_key(name)](s_feats[name].float())
                ft = t_feats[name].float()
                total = total + torch.mean(torch.abs(fs - ft)) / ft.abs().mean().clamp_min(1e-5)
            terms["features"] = total / len(self.feature_names)
        if c.adversarial and adversarial:
            _, fake, real_maps, fake_maps = self.disc(t.audio.to(s.audio.dtype), s.audio)
            terms["adversarial"] = generator_loss(fake) + feature_matching_loss(real_maps, fake_maps)
        if c.ground_truth and real_audio is not None:
            terms["ground_truth"] = F.l1_loss(s_mel, self.mel(real_audio.squeeze(1).float()))
        terms["total"] = sum(getattr(c, name) * value for name, value in terms.items())
        return terms

    def discriminator_loss(self, student_audio: torch.Tensor, teacher_audio: torch.Tensor) -> torch.Tensor:
        """LSGAN loss of the discriminator: teacher audio is real, student audio (detached) fake."""
        real, fake, _, _ = self.disc(teacher_audio.to(student_audio.dtype), student_audio.detach())
        return discriminator_loss(real, fake)


def _key(name: str) -> str:
    return name.replace(".", "__")


@torch.no_grad()
def _probe_shapes(model: Synthesizer, names: list[str], frames: int = 8) -> dict[str, tuple[int, int]]:
    """(channels, length) of each named module's output on a short dummy input."""
    cfg = model.config
    p = next(model.parameters())
    phone = torch.zeros(1, frames, cfg.phone_dim, device=p.device, dtype=p.dtype)
    pitch = torch.ones(1, frames, dtype=torch.long, device=p.device) if cfg.f0 else None
    pitchf = torch.full((1, frames), 100.0, device=p.device) if cfg.f0 else None
    with capture(model, names) as feats:
        model(phone, torch.tensor([frames], device=p.device), pitch, pitchf, torch.zeros(1, dtype=torch.long,
              device=p.device), noise=torch.zeros(1, cfg.inter_channels, frames, device=p.device, dtype=p.dtype),
              source_noise=False)
    out = {}
    for name in names:
        f = feats[name]
        if not isinstance(f, torch.Tensor) or f.dim() != 3:
            raise DistillRVCError(f"loss feature_maps: {name} does not output a [B, C, T] tensor")
        out[name] = (f.shape[1], f.shape[2])
    return out
