"""Fidelity metrics against hand-computed cases and the formulas of compression-notes.md §6."""
from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest

from distill_rvc import metrics
from distill_rvc.metrics import (ClipComparison, dnsmos_ovrl, f0_corr, f0_rmse_cents, log_mel_l1, mcd_db,
                                 mcd_from_cepstra, pooled, secs, vuv_error, world_analysis)

SR = 16000


def harmonic(f0: float, seconds: float = 1.5, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    """A buzzy vowel-less tone: 14 harmonics, on for 0.7 s of every second, a -80 dB noise floor."""
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 15))
    x = amp * x / np.abs(x).max() * ((t % 1.0) < 0.7)
    return (x + 1e-4 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)


def test_f0_rmse_in_cents_by_hand():
    ref = np.array([100.0, 200.0, 0.0, 300.0, 150.0])
    shifted = ref * 2 ** (100 / 1200)
    shifted[4] = 0.0  # voiced in one track only: not counted
    assert f0_rmse_cents(ref, shifted) == pytest.approx(100.0)
    # +100 and -100 cents -> 100; 0 and 200 -> sqrt((0 + 200^2) / 2)
    assert f0_rmse_cents([100.0, 100.0], [100 * 2 ** (1 / 12), 100 * 2 ** (-1 / 12)]) == pytest.approx(100.0)
    assert f0_rmse_cents([100.0, 100.0], [100.0, 100 * 2 ** (2 / 12)]) == pytest.approx(math.sqrt(20000))
    assert f0_rmse_cents([0.0, 100.0], [100.0, 0.0]) is None  # no frame voiced in both


def test_vuv_error_and_f0_corr_by_hand():
    ref = np.array([120.0, 130.0, 0.0, 0.0, 140.0])
    test = np.array([121.0, 0.0, 0.0, 90.0, 150.0])
    assert vuv_error(ref, test) == pytest.approx(2 / 5)
    assert vuv_error(ref, test[:4]) == pytest.approx(2 / 4)  # over the shorter track
    assert f0_corr([100.0, 200.0, 300.0], [150.0, 250.0, 350.0]) == pytest.approx(1.0)
    assert f0_corr([100.0, 200.0, 300.0], [300.0, 200.0, 100.0]) == pytest.approx(-1.0)
    assert f0_corr([100.0, 0.0], [100.0, 50.0]) is None  # one frame voiced in both


def test_mcd_formula_by_hand():
    c = np.zeros((4, 25))
    d = c.copy()
    d[:, 1] = 1.0  # Δc1 = 1 on every frame: (10 / ln 10) * sqrt(2)
    assert mcd_from_cepstra(c, d) == pytest.approx(10 / math.log(10) * math.sqrt(2))
    d[:, 0] = 5.0  # c0 (level) is not part of MCD
    d[:, 24] = 2.0  # c24 is: sqrt(2 * (1 + 4))
    assert mcd_from_cepstra(c, d) == pytest.approx(10 / math.log(10) * math.sqrt(10))
    e = c.copy()
    e[:2, 3] = 3.0
    assert mcd_from_cepstra(c, e, np.array([True, False, False, False])) == pytest.approx(
        10 / math.log(10) * math.sqrt(18))
    assert mcd_from_cepstra(c, e, np.zeros(4, bool)) is None


def test_mcd_of_signals():
    x = harmonic(150.0)
    assert mcd_db(x, x, SR) == 0.0
    # a level change moves only c0, the frame's mean log power: 2 ln(0.5)
    a, b = world_analysis(x, SR), world_analysis(0.5 * x, SR)
    voiced = a.f0 > 0
    np.testing.assert_allclose(b.cepstra[voiced, 0] - a.cepstra[voiced, 0], 2 * math.log(0.5), atol=1e-3)
    assert mcd_db(x, 0.5 * x, SR) < 0.01
    assert mcd_db(x, harmonic(150.0 * 2 ** (4 / 12)), SR) > 1.0  # a different spectrum is seen


def test_f0_metrics_of_signals_a_semitone_apart():
    a, b = world_analysis(harmonic(150.0), SR), world_analysis(harmonic(150.0 * 2 ** (100 / 1200)), SR)
    assert f0_rmse_cents(a.f0, b.f0) == pytest.approx(100.0, abs=10.0)  # harvest edges wobble a little
    assert vuv_error(a.f0, b.f0) < 0.05


def test_log_mel_l1():
    noise = (0.1 * np.random.default_rng(0).standard_normal(40000)).astype(np.float32)
    assert log_mel_l1(noise, noise, 40000) == 0.0
    # twice the amplitude: every magnitude doubles, so every natural-log mel rises by ln 2
    assert log_mel_l1(noise, 2 * noise, 40000) == pytest.approx(math.log(2), rel=0.01)


def test_pooled_weighs_frames_not_clips():
    def clip(mel, mcd, cents, vuv):
        pairs = np.array([[100.0, 100.0 * 2 ** (c / 1200)] for c in cents]).reshape(-1, 2)
        return ClipComparison(mel_abs=np.array(mel), mcd=np.array(mcd), cents=np.array(cents, float),
                              f0_pairs=pairs, vuv_differs=np.array(vuv), teacher_f0=np.zeros(0),
                              student_f0=np.zeros(0))

    out = pooled([clip([1.0], [2.0], [100.0], [True]),
                  clip([0.0, 0.0, 0.0], [4.0, 4.0, 4.0], [0.0, 0.0, 0.0], [False, False, False])])
    assert out["log_mel_l1"] == pytest.approx(0.25) and out["mcd_db"] == pytest.approx(3.5)
    assert out["f0_rmse_cents"] == pytest.approx(50.0) and out["vuv_error"] == pytest.approx(0.25)
    empty = pooled([clip([0.5], [], [], [False])])
    assert empty["mcd_db"] is None and empty["f0_rmse_cents"] is None and empty["f0_corr"] is None


def test_optional_metrics_absent_give_none(monkeypatch):
    monkeypatch.setitem(sys.modules, "speechmos", None)  # import fails
    monkeypatch.setitem(sys.modules, "resemblyzer", None)
    metrics._voice_encoder.cache_clear()
    x = harmonic(150.0)
    assert dnsmos_ovrl(x, SR) is None and secs(x, x, SR) is None
    metrics._voice_encoder.cache_clear()


def test_secs_is_the_cosine_of_the_embeddings(monkeypatch):
    fake = types.ModuleType("resemblyzer")

    class VoiceEncoder:
        def __init__(self, device, verbose=False):
            pass

        def embed_utterance(self, wav):  # [level, 1]: louder input, a different "speaker"
            return np.array([float(np.abs(wav).max()), 1.0])

    fake.VoiceEncoder = VoiceEncoder
    fake.preprocess_wav = lambda wav, source_sr: wav
    monkeypatch.setitem(sys.modules, "resemblyzer", fake)
    metrics._voice_encoder.cache_clear()
    x = np.array([0.0, 1.0, -1.0], np.float32)
    assert secs(x, x, SR) == pytest.approx(1.0)
    assert secs(x, 0 * x, SR) == pytest.approx(1 / math.sqrt(2))  # [1, 1] vs [0, 1]
    metrics._voice_encoder.cache_clear()


def test_dnsmos_when_installed():
    pytest.importorskip("speechmos")
    score = dnsmos_ovrl(harmonic(150.0, seconds=2.0), SR)
    assert 1.0 <= score <= 5.0
