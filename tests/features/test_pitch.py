"""F0 extraction against signals of known F0, plus the pyworld install trap."""
from __future__ import annotations

import subprocess
import sys
import tomllib

import numpy as np
import pytest

from distill_rvc import DistillRVCError
from distill_rvc.features import coarse_pitch, extract_f0, transpose_f0
from tests.fixtures import ROOT

SR = 16000


def harmonic(f0_of_t, seconds: float, rng, snr_db: float = 25.0) -> np.ndarray:
    """A band-limited harmonic tone (amplitudes 1/k) following f0_of_t, plus white noise."""
    t = np.arange(int(seconds * SR)) / SR
    f = f0_of_t(t)
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.where(k * f < 7000, np.sin(k * phase) / k, 0.0) for k in range(1, 60))
    x = 0.3 * x / np.abs(x).max()
    noise = rng.standard_normal(len(x)) * np.sqrt(np.mean(x ** 2) / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


def scores(est: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(median |error| in cents over frames voiced in both, fraction of frames with the same voicing)."""
    both = (est > 0) & (ref > 0)
    cents = np.abs(1200 * np.log2(est[both] / ref[both]))
    return float(np.median(cents)), float(np.mean((est > 0) == (ref > 0)))


def sweep(t):
    return 80.0 * 10.0 ** (t / 2.0)  # 80 -> 800 Hz in 2 s


@pytest.mark.parametrize("method", ["harvest", "dio"])
def test_harmonic_sweep_80_to_800_hz_with_noise(method):
    x = harmonic(sweep, 2.0, np.random.default_rng(0))
    est = extract_f0(x, method)
    assert est.shape == (len(x) // 160 + 1,) and est.dtype == np.float32
    times = np.arange(len(est)) * 0.01
    ref = np.where(times < 2.0, sweep(times), 0.0)
    median_cents, agreement = scores(est, ref)
    assert median_cents <= 10.0
    assert agreement >= 0.95


def test_harvest_with_silent_gaps():
    rng = np.random.default_rng(1)

    def vibrato(t):
        return 220.0 * 2.0 ** (0.5 * np.sin(2 * np.pi * 1.5 * t) / 12)  # +-50 cents at 1.5 Hz

    voiced = [(0.1, 0.7), (1.1, 1.5), (1.9, 2.4)]
    x = harmonic(vibrato, 2.6, rng)
    t = np.arange(len(x)) / SR
    on = np.zeros(len(x), dtype=bool)
    for a, b in voiced:
        on |= (t >= a) & (t < b)
    x = np.where(on, x, 0.0).astype(np.float32)
    est = extract_f0(x, "harvest")
    times = np.arange(len(est)) * 0.01
    ref_on = np.zeros(len(est), dtype=bool)
    for a, b in voiced:
        ref_on |= (times >= a) & (times < b)
    median_cents, agreement = scores(est, np.where(ref_on, vibrato(times), 0.0))
    assert median_cents <= 10.0
    assert agreement >= 0.95


def test_median_filter_of_rvc_inference():
    x = harmonic(lambda t: np.full_like(t, 200.0), 0.5, np.random.default_rng(2))
    plain = extract_f0(x, "harvest")
    filtered = extract_f0(x, "harvest", filter_radius=3)
    padded = np.pad(plain, 1)  # scipy's medfilt pads with zeros
    expected = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    np.testing.assert_allclose(filtered, expected, rtol=1e-6)


def test_coarse_pitch_check_values_and_transpose():
    assert coarse_pitch(np.array([50.0, 100, 220, 440, 880, 1100, 0])).tolist() == [1, 20, 60, 122, 217, 255, 1]
    f0 = np.array([0.0, 110.0, 220.0])
    np.testing.assert_allclose(transpose_f0(f0, 12), [0, 220, 440])
    np.testing.assert_allclose(transpose_f0(f0, -7), [0, 110 * 2 ** (-7 / 12), 220 * 2 ** (-7 / 12)])


def test_bad_input():
    x = np.zeros(1600, dtype=np.float32)
    with pytest.raises(DistillRVCError, match="unknown F0 method 'crepe'"):
        extract_f0(x, "crepe")
    with pytest.raises(DistillRVCError, match="--rmvpe"):
        extract_f0(x, "rmvpe")
    with pytest.raises(DistillRVCError, match="NaN"):
        extract_f0(np.full(1600, np.inf, dtype=np.float32))
    with pytest.raises(DistillRVCError, match="mono"):
        extract_f0(np.zeros((2, 1600), dtype=np.float32))


def test_pyworld_imports_in_a_fresh_interpreter():
    """pyworld 0.3.5 imports pkg_resources, which setuptools >= 81 removed: keep the pin."""
    code = ("import importlib.metadata as m, pyworld\n"
            "major = int(m.version('setuptools').split('.')[0])\n"
            "import pkg_resources\n"
            "print(major)")
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    assert int(done.stdout.split()[-1]) < 81
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "setuptools<81" in [d.replace(" ", "") for d in deps]
