"""`dec`: the HiFi-GAN decoder, with RVC's neural source filter (NSF) for pitch models.

z [B, inter, T] (+ f0 in Hz [B, T]) -> audio [B, 1, T * hop]. `Generator(nsf=True)` is
RVC's `GeneratorNSF`; `nsf=False` is the plain `Generator` of the no-f0 (`_nono`) models.
Details that matter for matching RVC: the sine source's phase convention, the final
leaky-ReLU slope of 0.01 (torch's default, not 0.1) and `conv_post` without bias.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .commons import same_padding

LRELU_SLOPE = 0.1


class ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs, each residual: x += c2(lrelu(c1(lrelu(x))))."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: tuple[int, ...] = (1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=same_padding(kernel_size, d))
            for d in dilation)
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=same_padding(kernel_size)) for _ in dilation)
        for conv in [*self.convs1, *self.convs2]:
            nn.init.normal_(conv.weight, 0.0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, L] -> [B, C, L]"""
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            x = x + c2(F.leaky_relu(xt, LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    """Dilated convs, each residual: x += c(lrelu(x)) (cheaper than ResBlock1)."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: tuple[int, ...] = (1, 3)):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=same_padding(kernel_size, d))
            for d in dilation)
        for conv in self.convs:
            nn.init.normal_(conv.weight, 0.0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, L] -> [B, C, L]"""
        for c in self.convs:
            x = x + c(F.leaky_relu(x, LRELU_SLOPE))
        return x


class SineGen(nn.Module):
    """f0 [B, T] in Hz -> excitation [B, T * upp, 1]: 0.1 sin(2 pi phase) where voiced, plus noise.

    Phase at sample k = 1..upp of frame t is sum_{t'<t} f0[t'] upp / sr + f0[t] k / sr (mod 1);
    the per-frame increments are wrapped to [-0.5, 0.5) and summed in float64, which keeps
    the phase exact over long inputs, in torch and in exported graphs alike. `noise=False` turns the random part off.
    """

    def __init__(self, sampling_rate: int, sine_amp: float = 0.1, noise_std: float = 0.003,
                 voiced_threshold: float = 0.0):
        super().__init__()
        self.sampling_rate = sampling_rate
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.voiced_threshold = voiced_threshold

    def phase(self, f0: torch.Tensor, upp: int) -> torch.Tensor:
        """f0 [B, T, 1] -> phase in cycles [B, T * upp, 1] (not wrapped to [0, 1) within a frame)."""
        k = torch.arange(1, upp + 1, dtype=f0.dtype, device=f0.device)
        rad = f0 / self.sampling_rate * k  # [B, T, upp]
        step = torch.fmod(rad[:, :-1, -1:].float() + 0.5, 1.0) - 0.5  # whole-frame increments, wrapped
        # The running sum still grows (~0.2 cycles a frame); summed in float32 its rounding
        # depends on the summation order (torch vs onnxruntime differ by 4e-4 at 10 s). In
        # float64 it stays exact to float32 precision, whatever the order.
        start = step.double().cumsum(dim=1).fmod(1.0).to(f0)  # phase at the start of frames 1..T-1
        rad = rad + F.pad(start, (0, 0, 1, 0))
        return rad.reshape(f0.shape[0], -1, 1)

    def forward(self, f0: torch.Tensor, upp: int, noise: bool = True) -> torch.Tensor:
        """f0 [B, T] -> [B, T * upp, 1]"""
        with torch.no_grad():
            f0 = f0.unsqueeze(-1)
            sine = torch.sin(2 * math.pi * self.phase(f0, upp)) * self.sine_amp
            uv = (f0 > self.voiced_threshold).to(sine.dtype).repeat_interleave(upp, dim=1)
            out = sine * uv
            if noise:
                noise_amp = uv * self.noise_std + (1 - uv) * self.sine_amp / 3
                out = out + noise_amp * torch.randn_like(sine)
        return out


class SourceModuleHnNSF(nn.Module):
    """Harmonic source: tanh(l_linear(SineGen(f0))) (harmonic_num = 0, so one channel)."""

    def __init__(self, sampling_rate: int):
        super().__init__()
        self.l_sin_gen = SineGen(sampling_rate)
        self.l_linear = nn.Linear(1, 1)

    def forward(self, f0: torch.Tensor, upp: int, noise: bool = True) -> torch.Tensor:
        """f0 [B, T] -> [B, T * upp, 1]"""
        sine = self.l_sin_gen(f0, upp, noise).to(self.l_linear.weight.dtype)
        return torch.tanh(self.l_linear(sine))


class Generator(nn.Module):
    """HiFi-GAN generator; with `nsf=True` each stage also adds a conv of the harmonic source.

    Stage i: lrelu(0.1) -> ups[i] -> (+ noise_convs[i](source)) -> mean of its resblocks.
    """

    def __init__(self, initial_channel: int, resblock: str, resblock_kernel_sizes, resblock_dilation_sizes,
                 upsample_rates, upsample_initial_channel: int, upsample_kernel_sizes, gin_channels: int,
                 sr: int, nsf: bool = True):
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.upp = math.prod(upsample_rates)
        self.nsf = nsf
        block = ResBlock1 if resblock == "1" else ResBlock2
        if nsf:
            self.m_source = SourceModuleHnNSF(sr)
            self.noise_convs = nn.ModuleList()
        self.conv_pre = nn.Conv1d(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            ch = upsample_initial_channel // 2 ** (i + 1)
            up = nn.ConvTranspose1d(upsample_initial_channel // 2**i, ch, k, u, padding=(k - u) // 2)
            nn.init.normal_(up.weight, 0.0, 0.01)
            self.ups.append(up)
            if nsf:
                if i + 1 < len(upsample_rates):
                    s = math.prod(upsample_rates[i + 1:])  # the source runs at the output rate
                    self.noise_convs.append(nn.Conv1d(1, ch, kernel_size=2 * s, stride=s, padding=s // 2))
                else:
                    self.noise_convs.append(nn.Conv1d(1, ch, kernel_size=1))
            for rk, rd in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block(ch, rk, rd))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, x: torch.Tensor, f0: torch.Tensor | None = None, g: torch.Tensor | None = None,
                source_noise: bool = True) -> torch.Tensor:
        """x [B, inter, T], f0 [B, T] Hz (NSF only), g [B, gin, 1] -> audio [B, 1, T * hop]"""
        if self.nsf:
            source = self.m_source(f0, self.upp, source_noise).transpose(1, 2)  # [B, 1, T * hop]
        x = self.conv_pre(x)
        if g is not None:
            x = x + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            if self.nsf:
                x = x + self.noise_convs[i](source)
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs + block(x)
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01, as RVC
        return torch.tanh(x)
