from __future__ import annotations

import numpy as np
import pytest

from distill_rvc import DistillRVCError
from distill_rvc.data.dataset import Dataset, DatasetWriter
from distill_rvc.features import coarse_pitch


def _segment(rng, t_h=20, dim=768, hop=400):
    phone = rng.standard_normal((t_h, dim)).astype(np.float32)
    f0 = np.full(2 * t_h + 1, 150.0, dtype=np.float32)  # one frame longer, as real extractors give
    audio = rng.standard_normal(2 * t_h * hop - 7).astype(np.float32)  # a little short
    return phone, f0, None, audio


def test_write_read_resume(tmp_path):
    rng = np.random.default_rng(0)
    w = DatasetWriter(tmp_path, version="v2", feature_dim=768, sample_rate=40000, f0=True)
    w.add_source("a.wav", [_segment(rng), _segment(rng, t_h=10)])
    ds = Dataset(tmp_path)
    assert len(ds) == 2 and ds.has_audio and ds.hop_length == 400
    seg = ds[0]
    t = 2 * 20 - 1  # audio is 7 samples short of 40 frames
    assert seg.phone.shape == (t, 768) and seg.pitch.shape == (t,) and seg.audio.shape == (t * 400,)
    assert int(seg.pitch[0]) == int(coarse_pitch(np.array([150.0]))[0]) == 37
    raw = np.load(tmp_path / "segments" / "0_0.phone.npy", mmap_mode="r")
    assert isinstance(raw, np.memmap)
    assert np.array_equal(seg.phone[0::2].numpy(), raw[:20]) and np.array_equal(seg.phone[1::2].numpy(), raw[:19])

    again = DatasetWriter(tmp_path, version="v2", feature_dim=768, sample_rate=40000, f0=True)
    assert again.done("a.wav") and not again.done("b.wav")
    again.add_source("b.wav", [_segment(rng)])
    assert len(Dataset(tmp_path)) == 3
    with pytest.raises(DistillRVCError, match="other settings .*sample_rate"):
        DatasetWriter(tmp_path, version="v2", feature_dim=768, sample_rate=48000, f0=True)


def test_bad_caches(tmp_path):
    with pytest.raises(DistillRVCError, match="not a prepared dataset"):
        Dataset(tmp_path)
    rng = np.random.default_rng(0)
    w = DatasetWriter(tmp_path, version="v1", feature_dim=256, sample_rate=40000, f0=False)
    phone = rng.standard_normal((10, 256)).astype(np.float32)
    phone[3, 4] = np.nan
    w.add_source("nan.wav", [(phone, None, None, None)])
    with pytest.raises(DistillRVCError, match="NaN"):
        Dataset(tmp_path)[0]
    with pytest.raises(DistillRVCError, match=r"expected \[T, 256\]"):
        w.add_source("wide.wav", [(np.zeros((4, 768)), None, None, None)])



def _three_segments(tmp_path):
    rng = np.random.default_rng(0)
    w = DatasetWriter(tmp_path, version="v2", feature_dim=768, sample_rate=40000, f0=True)
    w.add_source("take1.wav", [_segment(rng)])
    w.add_source("take3.wav", [_segment(rng), _segment(rng, t_h=10)])
    return Dataset(tmp_path)


def test_check_finds_a_missing_or_truncated_segment(tmp_path):
    ds = _three_segments(tmp_path / "ok")
    ds.check()  # an intact cache passes

    ds = _three_segments(tmp_path / "missing")
    (ds.root / "segments" / "1_1.phone.npy").unlink()
    with pytest.raises(DistillRVCError, match=r"segment 1_1 \(from take3.wav\): content features file "
                                              r"1_1.phone.npy is missing; .*distill-rvc prepare"):
        ds.check()

    ds = _three_segments(tmp_path / "truncated")
    path = ds.root / "segments" / "1_0.audio.npy"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(DistillRVCError, match=r"segment 1_0 \(from take3.wav\): audio file 1_0.audio.npy is "
                                              "truncated"):
        ds.check()

    ds = _three_segments(tmp_path / "header")
    path = ds.root / "segments" / "0_0.f0.npy"
    path.write_bytes(path.read_bytes()[:20])  # cut inside the header
    with pytest.raises(DistillRVCError, match=r"segment 0_0 \(from take1.wav\): F0 file 0_0.f0.npy is truncated"):
        ds.check()
