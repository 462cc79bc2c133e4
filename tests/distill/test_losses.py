"""Distillation terms against independent computations (numpy STFT, hand values)."""
from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from distill_rvc import DistillRVCError
from distill_rvc.distill.discriminator import discriminator_loss, generator_loss
from distill_rvc.distill.losses import DistillLoss, capture, multi_resolution_stft_loss
from distill_rvc.distill.recipes import LossConfig, StudentSpec
from distill_rvc.distill.spectral import MelSpectrogram
from distill_rvc.distill.student import build_student


def _rvc_mel_numpy(audio: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    """rvc-format.md §7 written out in numpy: reflect pad (n_fft - hop) / 2, periodic Hann,
    frames without centring, sqrt(|X|^2 + 1e-6), Slaney mel, ln(clamp(., 1e-5))."""
    pad = (n_fft - hop) // 2
    x = np.pad(audio.astype(np.float64), pad, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic
    count = (len(x) - n_fft) // hop + 1
    frames = np.stack([x[i * hop:i * hop + n_fft] * window for i in range(count)])
    mag = np.sqrt(np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-6).T
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    return np.log(np.maximum(basis @ mag, 1e-5))


def test_mel_matches_rvc_definition():
    rng = np.random.default_rng(0)
    t = np.arange(12800) / 40000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    ours = MelSpectrogram(40000, 2048, 400, 2048, 125)(torch.from_numpy(audio)[None])[0].numpy()
    ref = _rvc_mel_numpy(audio, 40000, 2048, 400, 125)
    assert ours.shape == ref.shape == (125, 12800 // 400)
    assert np.abs(ours - ref).max() < 1e-3


def test_stft_loss_hand_values():
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(2, 8000, generator=g)
    windows = [torch.hann_window(w) for _, _, w in ((512, 50, 240), (1024, 120, 600), (2048, 240, 1200))]
    assert multi_resolution_stft_loss(teacher, teacher, windows).item() == pytest.approx(0.0, abs=1e-6)
    # Twice the signal: spectral convergence ||t - 2t|| / ||t|| = 1, log-magnitude gap ln 2.
    assert multi_resolution_stft_loss(2 * teacher, teacher, windows).item() == pytest.approx(1 + np.log(2), rel=1e-3)


def test_lsgan_terms():
    real, fake = [torch.full((2, 3), 1.0)], [torch.full((2, 3), 0.5)]
    assert discriminator_loss(real, fake).item() == pytest.approx(0.0 + 0.25)
    assert generator_loss(fake).item() == pytest.approx(0.25)


def _step_inputs(model, frames=30):
    cfg = model.config
    g = torch.Generator().manual_seed(1)
    return (torch.randn(2, frames, cfg.phone_dim, generator=g), torch.full((2,), frames),
            torch.randint(1, 256, (2, frames), generator=g), torch.full((2, frames), 150.0), torch.zeros(2, dtype=torch.long))


def test_every_term_is_zero_for_the_teacher_itself(teacher):
    student = build_student(teacher, StudentSpec())
    loss = DistillLoss(teacher, student, LossConfig(adversarial=1.0))
    assert all(isinstance(p, torch.nn.Identity) for p in loss.feature_proj.values())
    assert loss.feature_names == ["dec.ups.0", "dec.ups.1", "dec.ups.2", "dec.ups.3"]
    inputs = _step_inputs(teacher)
    noise = torch.randn(2, 192, 30)
    with capture(teacher, loss.feature_names) as tf, capture(student, loss.feature_names) as sf:
        t = teacher(*inputs, noise=noise, source_noise=False)
        s = student(*inputs, noise=noise, source_noise=False)
    terms = loss(s, t, sf, tf)
    for name in ("mel", "stft", "prior", "latent", "features"):
        assert terms[name].item() == pytest.approx(0.0, abs=1e-5), name
    assert "adversarial" in terms and terms["total"].item() == pytest.approx(LossConfig().adversarial * 0 +
                                                                          terms["adversarial"].item(), abs=1e-4)


def test_narrower_student_gets_projections_and_gradients_reach_it(teacher):
    spec = StudentSpec(upsample_initial_channel=32, inter_channels=96)
    student = build_student(teacher, spec)
    loss = DistillLoss(teacher, student, LossConfig())
    assert loss.prior_m.in_channels == 96 and loss.prior_m.out_channels == 192 and loss.latent.in_channels == 96
    inputs = _step_inputs(teacher)
    noise = torch.randn(2, 192, 30)
    with capture(teacher, loss.feature_names) as tf, torch.no_grad():
        t = teacher(*inputs, noise=noise, source_noise=False)
    with capture(student, loss.feature_names) as sf:
        s = student(*inputs, noise=noise[:, :96], source_noise=False)
    terms = loss(s, t, sf, tf)
    terms["total"].backward()
    assert student.enc_p.emb_phone.weight.grad.abs().sum() > 0
    assert loss.latent.weight.grad.abs().sum() > 0
    with pytest.raises(DistillRVCError, match="matches no module present in both"):
        DistillLoss(teacher, student, LossConfig(feature_maps=("dec.nothing.*",)))
