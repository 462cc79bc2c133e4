"""A small multi-period discriminator for the optional adversarial term.

RVC's `DiscriminatorP` (rvc-format.md §7) reshapes audio [B, 1, N] to [B, 1, N/p, p] and runs
(5, 1) convs with stride (3, 1) over it, so each period p sees the waveform folded at p samples.
Here the widths are c, 4c, 16c, 16c (RVC: 32, 128, 512, 1024) and there is no scale
discriminator: the teacher's waveform is a strong target, so D only has to sharpen the fine
periodic structure that spectral losses blur. With c = 16 and periods 2, 3, 5, 7, 11 it has
about 3.7 M parameters, against 71 M for RVC v2's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

LRELU_SLOPE = 0.1


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, channels: int = 16):
        super().__init__()
        self.period = period
        widths = [1, channels, 4 * channels, 16 * channels, 16 * channels]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(cin, cout, (5, 1), (3, 1), padding=(2, 0)))
            for cin, cout in zip(widths[:-1], widths[1:]))
        self.convs.append(weight_norm(nn.Conv2d(widths[-1], widths[-1], (5, 1), 1, padding=(2, 0))))
        self.conv_post = weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """audio [B, 1, N] -> (scores [B, frames], feature maps)"""
        b, c, n = x.shape
        if n % self.period:
            pad = self.period - n % self.period
            x = F.pad(x, (0, pad), "reflect")
            n += pad
        x = x.view(b, c, n // self.period, self.period)
        fmaps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmaps.append(x)
        x = self.conv_post(x)
        fmaps.append(x)
        return x.flatten(1), fmaps


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), channels: int = 16):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels) for p in periods)

    def forward(self, real: torch.Tensor, fake: torch.Tensor):
        """real, fake audio [B, 1, N] -> (real scores, fake scores, real feature maps, fake feature maps),
        one entry per period. Both in one call, as RVC's discriminator: the memory planner traces
        each top-level module once per step."""
        real_scores, fake_scores, real_maps, fake_maps = [], [], [], []
        for d in self.discriminators:
            s, f = d(real)
            real_scores.append(s)
            real_maps.append(f)
            s, f = d(fake)
            fake_scores.append(s)
            fake_maps.append(f)
        return real_scores, fake_scores, real_maps, fake_maps


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN: sum over periods of mean((1 - D(real))^2) + mean(D(fake)^2)."""
    return sum(torch.mean((1 - r.float()) ** 2) + torch.mean(f.float() ** 2) for r, f in zip(real, fake))


def generator_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN: sum over periods of mean((1 - D(fake))^2)."""
    return sum(torch.mean((1 - f.float()) ** 2) for f in fake)


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """2 x sum of mean |fmap_real - fmap_fake| (real detached), as RVC."""
    return 2 * sum(torch.mean(torch.abs(r.detach().float() - f.float())) for rs, fs in zip(real, fake)
                   for r, f in zip(rs, fs))
