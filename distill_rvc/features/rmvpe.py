"""RMVPE: RVC's neural F0 estimator (`rmvpe.pt`), as our own module with its real key layout.

The network is RVC's `E2E(n_blocks=4, n_gru=1, kernel_size=(2, 2))`: a deep U-Net over a
128-bin log-mel spectrogram [B, 1, T, 128], a 3-channel conv head, a bidirectional GRU and a
sigmoid layer giving a salience over 360 pitch bins 20 cents apart. Module names match the
checkpoint's keys, so `rmvpe.pt` (a plain state dict) loads strictly; sizes are read off
the weights, so small random checkpoints in the same layout load too.

Decoding (rvc-format.md §5.2): cents = weighted mean over +-4 bins around the argmax, with
cents_i = 20 i + 1997.379...; a frame whose peak salience is <= 0.03 is unvoiced; f0 =
10 * 2^(cents / 1200), and exactly 10 Hz (zero cents) becomes 0.

Not for: harvest/dio or coarse pitch (`pitch.py`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DistillRVCError
from ..safe_load import safe_torch_load

SAMPLE_RATE, N_FFT, HOP, N_MELS, FMIN, FMAX = 16000, 1024, 160, 128, 30.0, 8000.0
N_BINS = 360
CENTS = 20.0 * np.arange(N_BINS) + 1997.3794084376191
THRESHOLD = 0.03


@dataclass(frozen=True)
class RMVPEConfig:
    """Sizes of an RMVPE network; the defaults are RVC's rmvpe.pt."""

    n_blocks: int = 4  # ConvBlockRes per encoder/intermediate/decoder block
    en_de_layers: int = 5
    inter_layers: int = 4
    channels: int = 16  # first encoder block's width, doubled per level
    gru_hidden: int = 256
    gru_layers: int = 1


class ConvBlockRes(nn.Module):
    """Two 3x3 conv-BN-ReLU with a residual (1x1 conv when the width changes). [B, C, T, F]"""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + (self.shortcut(x) if self.shortcut is not None else x)


class ResBlocks(nn.Module):
    """n_blocks ConvBlockRes (the first changes the width); RVC's ResEncoderBlock without its pool."""

    def __init__(self, c_in: int, c_out: int, n_blocks: int):
        super().__init__()
        self.conv = nn.ModuleList(ConvBlockRes(c_in if j == 0 else c_out, c_out) for j in range(n_blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.conv:
            x = block(x)
        return x


class Encoder(nn.Module):
    def __init__(self, config: RMVPEConfig):
        super().__init__()
        self.bn = nn.BatchNorm2d(1)
        widths = [1] + [config.channels * 2 ** i for i in range(config.en_de_layers)]
        self.layers = nn.ModuleList(ResBlocks(widths[i], widths[i + 1], config.n_blocks)
                                    for i in range(config.en_de_layers))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """[B, 1, T, 128] -> (downsampled [B, C, T/32, 4], skip tensors before each pooling)"""
        skips = []
        x = self.bn(x)
        for layer in self.layers:
            x = layer(x)
            skips.append(x)
            x = F.avg_pool2d(x, 2)
        return x, skips


class DecoderBlock(nn.Module):
    """Transposed conv x2 upsampling, concat with the skip, then ConvBlockRes. [B, C, T, F]"""

    def __init__(self, c_in: int, c_out: int, n_blocks: int):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU())
        self.conv2 = nn.ModuleList(ConvBlockRes(2 * c_out if j == 0 else c_out, c_out) for j in range(n_blocks))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat((self.conv1(x), skip), dim=1)
        for block in self.conv2:
            x = block(x)
        return x


class Decoder(nn.Module):
    def __init__(self, config: RMVPEConfig):
        super().__init__()
        c = config.channels * 2 ** config.en_de_layers
        self.layers = nn.ModuleList(DecoderBlock(c >> i, c >> (i + 1), config.n_blocks)
                                    for i in range(config.en_de_layers))

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for layer, skip in zip(self.layers, reversed(skips)):
            x = layer(x, skip)
        return x


class Intermediate(nn.Module):
    def __init__(self, config: RMVPEConfig):
        super().__init__()
        c = config.channels * 2 ** config.en_de_layers
        self.layers = nn.ModuleList(ResBlocks(c // 2 if i == 0 else c, c, config.n_blocks)
                                    for i in range(config.inter_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class UNet(nn.Module):
    def __init__(self, config: RMVPEConfig):
        super().__init__()
        self.encoder = Encoder(config)
        self.intermediate = Intermediate(config)
        self.decoder = Decoder(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.encoder(x)
        return self.decoder(self.intermediate(x), skips)


class BiGRU(nn.Module):
    def __init__(self, n_in: int, hidden: int, layers: int):
        super().__init__()
        self.gru = nn.GRU(n_in, hidden, num_layers=layers, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


class RMVPE(nn.Module):
    """RVC's E2E pitch network plus its log-mel front end and decoding."""

    def __init__(self, config: RMVPEConfig = RMVPEConfig()):
        super().__init__()
        self.config = config
        self.unet = UNet(config)
        self.cnn = nn.Conv2d(config.channels, 3, 3, padding=1)
        self.fc = nn.Sequential(BiGRU(3 * N_MELS, config.gru_hidden, config.gru_layers),
                                nn.Linear(2 * config.gru_hidden, N_BINS), nn.Dropout(0.25), nn.Sigmoid())
        self.register_buffer("mel_basis", _mel_basis(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """16 kHz audio [B, N] -> log-mel [B, 128, N // 160 + 1] (HTK mel 30-8000 Hz, log clamp 1e-5)."""
        spec = torch.stft(audio, N_FFT, HOP, window=self.window, center=True, pad_mode="reflect",
                          return_complex=True).abs()
        return torch.log(torch.clamp(self.mel_basis @ spec, min=1e-5))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel [B, 128, T] (T a multiple of 32) -> salience [B, T, 360] in (0, 1)."""
        x = self.cnn(self.unet(mel.transpose(1, 2).unsqueeze(1)))  # [B, 3, T, 128]
        return self.fc(x.transpose(1, 2).flatten(-2))

    @torch.no_grad()
    def salience(self, audio_16k: np.ndarray) -> np.ndarray:
        """Mono 16 kHz audio [N] -> salience [N // 160 + 1, 360] (float32)."""
        device = self.mel_basis.device
        n = len(audio_16k)
        x = torch.from_numpy(np.ascontiguousarray(audio_16k, dtype=np.float32)).to(device)
        if n <= N_FFT // 2:  # reflect padding needs more samples than half a window
            x = F.pad(x, (0, N_FFT // 2 + 1 - n))
        mel = self.log_mel(x.unsqueeze(0))[..., : n // HOP + 1]
        frames = mel.shape[-1]
        pad = -frames % 32  # five 2x poolings
        if pad:
            mel = F.pad(mel, (0, pad), mode="reflect" if pad < frames else "replicate")
        return self(mel.to(self.cnn.weight.dtype))[0, :frames].float().cpu().numpy()

    def infer(self, audio_16k: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
        """Mono 16 kHz audio [N] -> F0 in Hz [N // 160 + 1] (float32, 0 = unvoiced)."""
        return decode(self.salience(audio_16k), threshold)


def decode(salience: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Salience [T, 360] -> F0 in Hz [T]: local weighted average of cents around the peak."""
    salience = np.asarray(salience, dtype=np.float32)
    center = salience.argmax(axis=1)
    padded = np.pad(salience, ((0, 0), (4, 4)))
    idx = center[:, None] + np.arange(9)[None, :]  # bins center-4 .. center+4, in padded coordinates
    weights = np.take_along_axis(padded, idx, axis=1)
    cents = np.pad(CENTS, (4, 4))[idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (weights * cents).sum(axis=1) / weights.sum(axis=1)
    mean[salience.max(axis=1) <= threshold] = 0.0
    f0 = 10.0 * 2.0 ** (mean / 1200.0)
    f0[f0 == 10.0] = 0.0
    return f0.astype(np.float32)


def _mel_basis() -> torch.Tensor:
    import librosa

    return torch.from_numpy(librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX,
                                                htk=True)).float()


def infer_config(weights: dict[str, torch.Tensor]) -> RMVPEConfig:
    """The sizes of an RMVPE state dict (RVC's layout)."""

    def count(pattern: str) -> int:
        return len({m.group(1) for k in weights if (m := re.match(pattern, k))})

    first = weights.get("unet.encoder.layers.0.conv.0.conv.0.weight")
    gru = weights.get("fc.0.gru.weight_hh_l0")
    if first is None or gru is None:
        raise DistillRVCError("not an RMVPE checkpoint (no unet.encoder / fc.0.gru weights); pass RVC's rmvpe.pt")
    return RMVPEConfig(n_blocks=count(r"unet\.encoder\.layers\.0\.conv\.(\d+)\."),
                       en_de_layers=count(r"unet\.encoder\.layers\.(\d+)\."),
                       inter_layers=count(r"unet\.intermediate\.layers\.(\d+)\."),
                       channels=int(first.shape[0]), gru_hidden=int(gru.shape[1]),
                       gru_layers=count(r"fc\.0\.gru\.weight_ih_l(\d+)$"))


def load_rmvpe(path: str | Path, device: str | torch.device = "cpu") -> RMVPE:
    """Read RVC's `rmvpe.pt` (a plain state dict) -> `RMVPE` in eval mode, float32, on `device`."""
    weights = safe_torch_load(path, what="RMVPE model (rmvpe.pt)")
    if isinstance(weights, dict) and isinstance(weights.get("model"), dict):
        weights = weights["model"]  # RMVPE's own training checkpoints wrap the state dict
    if not isinstance(weights, dict):
        raise DistillRVCError(f"{path}: not an RMVPE checkpoint (expected a state dict); pass RVC's rmvpe.pt")
    try:
        model = RMVPE(infer_config(weights))
    except DistillRVCError as e:
        raise DistillRVCError(f"{path}: {e}") from None
    expected = model.state_dict()
    problems = sorted(set(expected) ^ set(weights))
    if problems or any(weights[k].shape != v.shape for k, v in expected.items()):
        detail = f" ({problems[0]})" if problems else ""
        raise DistillRVCError(f"{path}: the weights do not fit RVC's RMVPE layout{detail}; damaged or another model")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.items()})
    return model.to(device).eval()
