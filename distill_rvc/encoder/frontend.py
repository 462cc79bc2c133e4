"""The student encoder's front end: 16 kHz audio -> normalised log-mel at 100 frames/s.

    LogMel(n_mels)(audio [B, N]) -> [B, n_mels, M],  M = floor((N - 400) / 160) + 1

A fixed-basis STFT as a strided conv (25 ms Hann window, 10 ms hop, no padding), a mel
filterbank (HTK mel scale, 0-8 kHz) and log, then one mean and standard deviation over the
whole input (time and mels), so the features, like HuBERT's GroupNorm'd first conv, do not
depend on the input's gain. Mel frame j covers samples [160 j, 160 j + 400): frame 2t has
the same centre as HuBERT's frame t. Every op exports to ONNX with a dynamic length.

HuBERT's own waveform CNN costs about 5.4 GFLOP per second of audio; this costs about
0.03. Not for: the network after it (model.py).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms: HuBERT's receptive field of one frame
HOP = 160  # 10 ms: half of HuBERT's 320-sample frame step


def mel_filterbank(n_mels: int, n_fft: int = WINDOW, sr: int = SAMPLE_RATE, f_max: float | None = None) -> np.ndarray:
    """Triangular filters on the HTK mel scale (2595 log10(1 + f / 700)) -> [n_mels, n_fft // 2 + 1]."""
    f_max = f_max or sr / 2
    mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(0.0), mel(f_max), n_mels + 2))
    bins = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    lower = (bins[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    upper = (edges[2:, None] - bins[None, :]) / (edges[2:, None] - edges[1:-1, None])
    return np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)


class LogMel(nn.Module):
    """[B, N] audio -> [B, n_mels, M] log-mel, normalised over each whole input."""

    def __init__(self, n_mels: int):
        super().__init__()
        n_bins = WINDOW // 2 + 1
        n = np.arange(WINDOW)
        window = 0.5 - 0.5 * np.cos(2 * math.pi * n / WINDOW)  # periodic Hann
        freqs = np.arange(n_bins)[:, None] * n[None, :] * 2 * math.pi / WINDOW
        basis = np.concatenate([np.cos(freqs), -np.sin(freqs)]) * window[None, :]  # [2 * bins, WINDOW]
        self.n_mels = n_mels
        self.register_buffer("basis", torch.from_numpy(basis.astype(np.float32)).unsqueeze(1), persistent=False)
        self.register_buffer("mel", torch.from_numpy(mel_filterbank(n_mels)), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, N] -> [B, n_mels, floor((N - 400) / 160) + 1]"""
        spec = F.conv1d(audio.unsqueeze(1), self.basis, stride=HOP)  # [B, 2 * bins, M]
        re, im = spec.chunk(2, dim=1)
        power = re * re + im * im
        x = torch.log(torch.matmul(self.mel, power) + 1e-6)  # [B, n_mels, M]
        mean = x.mean(dim=(1, 2), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(1, 2), keepdim=True).sqrt()
        return (x - mean) / (std + 1e-5)
