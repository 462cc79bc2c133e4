"""Audio loading, RVC's input conditioning and WAV writing, against hand-computed expectations."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from distill_rvc import DistillRVCError
from distill_rvc.features import condition_audio, highpass, load_audio, write_wav


def tone(freq, sr, seconds, amp=0.5):
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


def amplitude_at(x, freq, sr):
    """Amplitude of the `freq` component of x (least squares over the middle half)."""
    n = len(x)
    mid = slice(n // 4, 3 * n // 4)
    t = np.arange(n)[mid] / sr
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x[mid].astype(np.float64), rcond=None)
    return float(np.hypot(*coef))


@pytest.mark.parametrize("suffix,sr_in,channels,subtype", [
    (".wav", 22050, 1, "PCM_16"), (".flac", 44100, 2, "PCM_24"), (".ogg", 48000, 2, "VORBIS"),
    (".wav", 16000, 1, "FLOAT"),
])
def test_load_resamples_and_downmixes(tmp_path, suffix, sr_in, channels, subtype):
    left = tone(440, sr_in, 1.0, 0.6)
    data = np.stack([left, np.zeros_like(left)], axis=1) if channels == 2 else left
    path = tmp_path / f"a{suffix}"
    sf.write(path, data, sr_in, subtype=subtype)
    out = load_audio(path, 16000)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - 16000) <= 1
    expected = 0.6 / channels  # stereo channels are averaged
    assert amplitude_at(out, 440, 16000) == pytest.approx(expected, rel=0.02)
    assert amplitude_at(out, 440, 16000) > 20 * amplitude_at(out, 660, 16000)


def test_bad_audio_is_named_in_one_line(tmp_path):
    cases = {}
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty.wav"] = "empty"
    (tmp_path / "garbage.wav").write_bytes(b"RIFF\x00\x01garbage" * 40)
    cases["garbage.wav"] = "cannot read audio"
    sf.write(tmp_path / "noframes.wav", np.zeros(0, dtype=np.float32), 16000)
    cases["noframes.wav"] = "empty"
    sf.write(tmp_path / "silent.flac", np.zeros(16000, dtype=np.float32), 16000)
    cases["silent.flac"] = "silent"
    sf.write(tmp_path / "short.wav", tone(440, 16000, 0.02), 16000)
    cases["short.wav"] = "shorter than one frame"
    nan = tone(440, 16000, 0.5)
    nan[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    cases["nan.wav"] = "NaN"
    for name, match in cases.items():
        with pytest.raises(DistillRVCError, match=match) as info:
            load_audio(tmp_path / name, 16000)
        message = str(info.value)
        assert name in message and "\n" not in message
    with pytest.raises(DistillRVCError, match="no such file"):
        load_audio(tmp_path / "nope.wav", 16000)


def test_condition_audio_peak_and_zero_phase_highpass():
    sr = 16000
    # Scaled to a peak of 0.95 before filtering (the filter's edge transients may overshoot, as in RVC).
    np.testing.assert_allclose(condition_audio(tone(1000, sr, 1.0, amp=2.0)),
                               condition_audio(tone(1000, sr, 1.0, amp=0.95)), atol=1e-5)
    assert amplitude_at(condition_audio(tone(1000, sr, 1.0, amp=2.0)), 1000, sr) == pytest.approx(0.95, rel=1e-3)
    assert amplitude_at(condition_audio(tone(1000, sr, 1.0, amp=0.5)), 1000, sr) == pytest.approx(0.5, rel=1e-3)
    for freq in (30.0, 48.0, 100.0):
        # Butterworth high-pass of order 5: |H|^2 = 1 / (1 + (fc/f)^10); filtfilt applies it twice.
        expected = 0.5 / (1 + (48.0 / freq) ** 10)
        assert amplitude_at(condition_audio(tone(freq, sr, 4.0)), freq, sr) == pytest.approx(expected, rel=0.03,
                                                                                            abs=1e-3)
    # Zero phase: a 200 Hz tone comes out in place.
    x = tone(200, sr, 1.0)
    y = condition_audio(x)
    assert np.abs(y[4000:12000] - x[4000:12000]).max() < 0.01


def test_causal_highpass_gain():
    sr = 40000
    for freq in (40.0, 48.0, 150.0):
        expected = 0.5 / np.sqrt(1 + (48.0 / freq) ** 10)
        y = highpass(tone(freq, sr, 4.0), sr, zero_phase=False)
        assert amplitude_at(y, freq, sr) == pytest.approx(expected, rel=0.03)


def test_write_wav_round_trip_and_atomicity(tmp_path):
    x = tone(300, 40000, 0.5, amp=0.7)
    x[10] = 1.5  # clipped in 16-bit, kept in float
    write_wav(tmp_path / "a.wav", x, 40000)
    y, sr = sf.read(tmp_path / "a.wav", dtype="float32")
    info = sf.info(tmp_path / "a.wav")
    assert sr == 40000 and info.subtype == "PCM_16"
    assert y[10] == pytest.approx(1 - 2 ** -15)
    mask = np.arange(len(x)) != 10
    assert np.abs(y[mask] - x[mask]).max() <= 2 ** -15
    write_wav(tmp_path / "f.wav", x, 40000, subtype="FLOAT")
    assert np.array_equal(sf.read(tmp_path / "f.wav", dtype="float32")[0], x)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "f.wav"]  # no temp files left
    with pytest.raises(DistillRVCError, match="NaN"):
        write_wav(tmp_path / "n.wav", np.full(10, np.nan), 16000)
    assert not (tmp_path / "n.wav").exists()
