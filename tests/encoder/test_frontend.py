"""The log-mel front end against numpy's FFT, and where its frames sit in time."""
from __future__ import annotations

import numpy as np
import torch

from distill_rvc.encoder.frontend import LogMel, mel_filterbank


def numpy_logmel(audio: np.ndarray, n_mels: int) -> np.ndarray:
    """An independent log-mel: frames [160 j, 160 j + 400), periodic Hann, rfft, |X|^2."""
    n = np.arange(400)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / 400)
    frames = np.stack([audio[j:j + 400] * window for j in range(0, len(audio) - 399, 160)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [M, 201]
    x = np.log(power @ mel_filterbank(n_mels).T.astype(np.float64) + 1e-6).T  # [n_mels, M]
    return (x - x.mean()) / (x.std() + 1e-5)


def test_logmel_matches_numpy_fft():
    rng = np.random.default_rng(0)
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000) + 0.05 * rng.standard_normal(8000))
    ours = LogMel(40)(torch.from_numpy(audio.astype(np.float32))[None])[0].numpy()
    ref = numpy_logmel(audio, 40)
    assert ours.shape == ref.shape == (40, (8000 - 400) // 160 + 1)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_mel_filterbank_is_a_partition_of_the_band():
    fb = mel_filterbank(40)
    centres = fb.argmax(axis=1)
    assert (np.diff(centres) >= 0).all()  # filters rise in frequency
    inner = fb[:, centres[0] + 1:centres[-1]].sum(axis=0)  # neighbouring triangles sum to 1 between the centres
    np.testing.assert_allclose(inner, 1.0, atol=1e-5)


def test_a_click_lands_in_the_frame_centred_on_it():
    """Mel frame j covers samples [160 j, 160 j + 400): a click at its centre peaks there."""
    for j in (3, 10):
        audio = np.zeros(16000, np.float32)
        audio[160 * j + 200] = 1.0
        x = LogMel(40)(torch.from_numpy(audio)[None])[0]
        assert int(x.mean(dim=0).argmax()) == j
