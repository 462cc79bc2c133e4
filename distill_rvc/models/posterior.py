"""`enc_q`, the posterior encoder (training only; absent from inference files).

Linear spectrogram [B, spec_channels, T] -> z, m_q, logs_q [B, inter, T] via a 16-layer WN.
distill-rvc never trains through it, but G_*.pth files and pretrained bases carry it, so
the model can hold it and round-trip it.
"""
from __future__ import annotations

import torch
from torch import nn

from .commons import sequence_mask
from .flow import WN


class PosteriorEncoder(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, kernel_size: int = 5,
                 dilation_rate: int = 1, n_layers: int = 16, gin_channels: int = 0):
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, spec: torch.Tensor, lengths: torch.Tensor, g: torch.Tensor | None = None):
        """spec [B, F, T], lengths [B], g [B, gin, 1] -> z, m, logs [B, inter, T], mask [B, 1, T]"""
        x_mask = sequence_mask(lengths, spec.size(2)).unsqueeze(1).to(spec.dtype)
        x = self.pre(spec) * x_mask
        x = self.enc(x, x_mask, g=g)
        m, logs = torch.split(self.proj(x) * x_mask, self.out_channels, dim=1)
        z = (m + torch.randn_like(m) * torch.exp(logs)) * x_mask
        return z, m, logs, x_mask
