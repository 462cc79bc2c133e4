"""`Synthesizer`: RVC's four synthesizer classes as one configurable model.

    content features (+ pitch) --enc_p--> prior (m_p, logs_p)
    z_p = m_p + exp(logs_p) * noise * 0.66666
    z = flow^-1(z_p, g)          g = emb_g(speaker id)
    audio = dec(z, f0, g)

v1/v2 is the width of the content features, f0/no-f0 whether the prior takes coarse pitch
and the decoder has the NSF sine source. A teacher and a student are the same class with
different `SynthConfig`s.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn

from ..config import SynthConfig
from ..errors import DistillRVCError
from .decoder import Generator
from .flow import ResidualCouplingBlock
from .posterior import PosteriorEncoder
from .text_encoder import TextEncoder
from .weight_norm import remove_weight_norm

if TYPE_CHECKING:
    from ..checkpoint import Checkpoint

NOISE_SCALE = 0.66666  # RVC's prior sampling temperature


class SynthOutput(NamedTuple):
    """Everything one inference pass computes; shapes for B items of T frames."""

    audio: torch.Tensor  # [B, 1, T * hop]
    z: torch.Tensor  # [B, inter, T] decoder input (after the reverse flow)
    z_p: torch.Tensor  # [B, inter, T] prior sample
    m_p: torch.Tensor  # [B, inter, T]
    logs_p: torch.Tensor  # [B, inter, T]
    mask: torch.Tensor  # [B, 1, T]


class Synthesizer(nn.Module):
    """`config`: the architecture. `arch`: per-layer widths where pruning left some the config
    cannot express (models/arch.py), else None. `checkpoint`: the parsed file the model was
    loaded from (`load_model`), else None."""

    config: SynthConfig
    arch: dict[str, Any] | None
    checkpoint: "Checkpoint | None"

    def __init__(self, config: SynthConfig, with_posterior: bool = False):
        super().__init__()
        c = self.config = config
        self.arch = None
        self.checkpoint = None
        self.enc_p = TextEncoder(c.inter_channels, c.hidden_channels, c.filter_channels, c.n_heads, c.n_layers,
                                 c.kernel_size, c.phone_dim, f0=c.f0, phone_proj_dim=c.phone_proj_dim,
                                 window_size=c.window_size)
        self.dec = Generator(c.inter_channels, c.resblock, c.resblock_kernel_sizes, c.resblock_dilation_sizes,
                             c.upsample_rates, c.upsample_initial_channel, c.upsample_kernel_sizes,
                             c.gin_channels, c.sr, nsf=c.f0)
        if with_posterior:
            self.enc_q = PosteriorEncoder(c.spec_channels, c.inter_channels, c.hidden_channels, 5, 1, 16,
                                          gin_channels=c.gin_channels)
        self.flow = ResidualCouplingBlock(c.inter_channels, c.hidden_channels, c.flow_kernel_size, 1,
                                          c.flow_wn_layers, c.n_flows, gin_channels=c.gin_channels)
        self.emb_g = nn.Embedding(c.spk_embed_dim, c.gin_channels)

    def forward(self, phone: torch.Tensor, phone_lengths: torch.Tensor, pitch: torch.Tensor | None,
                pitchf: torch.Tensor | None, sid: torch.Tensor, noise: torch.Tensor | None = None,
                source_noise: bool = True, noise_scale: float = NOISE_SCALE) -> SynthOutput:
        """The inference path with its intermediates (see `infer` for the arguments)."""
        if self.config.f0 and (pitch is None or pitchf is None):
            raise DistillRVCError("this is a pitch (f0) model: pitch and pitchf are required")
        g = self.emb_g(sid).unsqueeze(-1)  # [B, gin, 1]
        m_p, logs_p, mask = self.enc_p(phone, pitch if self.config.f0 else None, phone_lengths)
        if noise is None:
            noise = torch.randn_like(m_p)
        z_p = (m_p + torch.exp(logs_p) * noise * noise_scale) * mask
        z = self.flow(z_p, mask, g=g, reverse=True)
        audio = self.dec(z * mask, pitchf if self.config.f0 else None, g=g, source_noise=source_noise)
        return SynthOutput(audio, z, z_p, m_p, logs_p, mask)

    @torch.no_grad()
    def infer(self, phone: torch.Tensor, phone_lengths: torch.Tensor, pitch: torch.Tensor | None,
              pitchf: torch.Tensor | None, sid: torch.Tensor, noise: torch.Tensor | None = None,
              source_noise: bool = True) -> torch.Tensor:
        """Convert content features to audio, as RVC's `infer`.

        phone [B, T, phone_dim] float (features at 100 frames/s), phone_lengths [B] int64,
        pitch [B, T] int64 coarse 1..255 and pitchf [B, T] float Hz (None for no-f0 models),
        sid [B] int64. noise [B, inter, T] is the standard-normal prior noise (drawn if None);
        source_noise=False silences the NSF noise. With both fixed the output is deterministic.
        Returns audio [B, 1, T * hop] in (-1, 1).
        """
        return self.forward(phone, phone_lengths, pitch, pitchf, sid, noise, source_noise).audio

    def remove_weight_norm(self) -> "Synthesizer":
        remove_weight_norm(self)
        return self

    def param_counts(self) -> dict[str, int]:
        """Parameters per top-level part (enc_p, flow, dec, emb_g, enc_q)."""
        return {name: sum(p.numel() for p in child.parameters()) for name, child in self.named_children()}

    @property
    def hop_length(self) -> int:
        return self.config.hop_length
