"""The silence slicer on signals whose loud and quiet stretches are known to the sample."""
from __future__ import annotations

import numpy as np
import pytest

from distill_rvc.data.slicer import SlicerSettings, frame_rms, slice_at_silences

SR = 40000
HOP = 600  # 15 ms
KEEP = 500 / 1000  # max_sil_kept, seconds


def layout(*parts):
    """[(seconds, loud?)] -> audio: a 0.5-amplitude 300 Hz tone where loud, -60 dB noise elsewhere."""
    rng = np.random.default_rng(0)
    out = []
    for seconds, loud in parts:
        n = int(seconds * SR)
        t = np.arange(n) / SR
        out.append(0.5 * np.sin(2 * np.pi * 300 * t) if loud else 0.001 * rng.standard_normal(n))
    return np.concatenate(out).astype(np.float32)


def spans(audio, clips):
    """(start s, end s) of each clip, found from the views' memory offsets."""
    base = audio.__array_interface__["data"][0]
    return [((c.__array_interface__["data"][0] - base) / 4 / SR, ((c.__array_interface__["data"][0] - base) / 4
             + len(c)) / SR) for c in clips]


def close(a, b, tol=0.05):  # the 60 ms RMS window blurs edges by up to 30 ms, plus a 15 ms hop
    return abs(a - b) <= tol


def test_long_pause_cut_keeping_half_a_second_each_side():
    audio = layout((2.0, True), (2.0, False), (2.0, True))
    (s1, e1), (s2, e2) = spans(audio, slice_at_silences(audio, SR))
    assert close(s1, 0.0) and close(e1, 2.0 + KEEP) and close(s2, 4.0 - KEEP) and close(e2, 6.0)


def test_medium_pause_cut_once_at_its_quietest_point():
    audio = layout((2.0, True), (0.7, False), (2.0, True))
    (s1, e1), (s2, e2) = spans(audio, slice_at_silences(audio, SR))
    assert e1 == s2 and 2.0 - 0.05 <= e1 <= 2.7 + 0.05


def test_short_pauses_and_short_clips_are_not_cut():
    audio = layout((2.0, True), (0.3, False), (2.0, True))  # pause < 400 ms
    assert spans(audio, slice_at_silences(audio, SR)) == [(0.0, len(audio) / SR)]
    audio = layout((0.5, True), (0.6, False), (2.0, True))  # cutting would leave a clip < 1.5 s
    assert len(slice_at_silences(audio, SR)) == 1


def test_leading_and_trailing_silence_trimmed():
    audio = layout((1.5, False), (2.0, True), (1.5, False))
    [(s, e)] = spans(audio, slice_at_silences(audio, SR))
    assert close(s, 1.5 - KEEP) and close(e, 3.5 + KEEP)


def test_silent_and_short_inputs():
    assert slice_at_silences(layout((3.0, False)), SR) == []
    short = layout((1.0, True), (0.4, False))
    [clip] = slice_at_silences(short, SR)
    assert len(clip) == len(short)


def test_frame_rms_against_direct_computation():
    x = np.random.default_rng(3).standard_normal(10_000)
    rms = frame_rms(x, 2400, 600)
    padded = np.pad(x, 1200)
    direct = [np.sqrt(np.mean(padded[i * 600: i * 600 + 2400] ** 2)) for i in range(len(x) // 600 + 1)]
    np.testing.assert_allclose(rms, direct, rtol=1e-9)
    assert SlicerSettings().threshold_db == -42.0


@pytest.mark.parametrize("sr", [32000, 48000])
def test_rates(sr):
    t = np.arange(sr * 2) / sr
    tone = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    audio = np.concatenate([tone, np.zeros(sr * 2, dtype=np.float32), tone])
    assert len(slice_at_silences(audio, sr)) == 2
