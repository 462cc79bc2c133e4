"""Spectra of waveforms: RVC's log-mel and plain STFT magnitudes, in torch (no torchaudio).

RVC's mel (rvc-format.md §7, `mel_processing.py`): reflect-pad (n_fft - hop) / 2 per side,
`torch.stft` with a periodic Hann window and center=False, magnitude sqrt(re^2 + im^2 + 1e-6),
librosa's Slaney mel filterbank (fmin 0, fmax sr/2), then ln(clamp(mel, 1e-5)).
Both run in fp32 whatever the autocast state: spectra of half-precision audio are too coarse.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import SynthConfig


def stft_magnitude(audio: torch.Tensor, n_fft: int, hop: int, win: int, window: torch.Tensor,
                   eps: float = 1e-6) -> torch.Tensor:
    """audio [B, N] -> |STFT| [B, n_fft // 2 + 1, frames] (RVC's padding, center=False)."""
    pad = (n_fft - hop) // 2
    audio = F.pad(audio.float().unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(audio, n_fft, hop_length=hop, win_length=win, window=window, center=False,
                      return_complex=True)
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + eps)


class MelSpectrogram(nn.Module):
    """RVC's log-mel: audio [B, N] or [B, 1, N] -> [B, n_mels, N // hop]."""

    def __init__(self, sr: int, n_fft: int, hop: int, win: int, n_mels: int, fmin: float = 0.0,
                 fmax: float | None = None):
        super().__init__()
        import librosa

        self.n_fft, self.hop, self.win = n_fft, hop, win
        basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        self.register_buffer("basis", torch.from_numpy(np.asarray(basis, dtype=np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(win), persistent=False)

    @classmethod
    def for_model(cls, config: SynthConfig) -> "MelSpectrogram":
        """The mel RVC trains this model with (n_fft = filter_length, hop, n_mels of its rate)."""
        return cls(config.sr, config.n_fft, config.hop_length, config.n_fft, config.n_mels)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.dim() == 3:
            audio = audio.squeeze(1)
        with torch.autocast(audio.device.type, enabled=False):
            mag = stft_magnitude(audio, self.n_fft, self.hop, self.win, self.window)
            return torch.log(torch.clamp(self.basis @ mag, min=1e-5))
