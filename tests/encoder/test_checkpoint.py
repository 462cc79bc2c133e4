"""encoder.pt: a weights_only round trip, and foreign, damaged or newer files refused in one line."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from distill_rvc.encoder import EncoderArch, StudentEncoder, load_encoder, save_encoder
from distill_rvc.errors import DistillRVCError
from tests.fixtures import TINY_TEACHER


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = StudentEncoder(EncoderArch(n_mels=20, dim=16, blocks=2, out_dim=32)).eval()
    path = save_encoder(tmp_path / "encoder.pt", model, {"sha256": "ab" * 32, "layer": "12"}, {"steps": 3})
    return model, path


def test_round_trip_gives_the_same_features(saved):
    model, path = saved
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "distill-rvc-encoder" and raw["format_version"] == 1 and raw["dim"] == 32
    loaded = load_encoder(path)
    audio = np.random.default_rng(1).standard_normal(5000).astype(np.float32) * 0.1
    np.testing.assert_array_equal(loaded.extract(audio, "v2"), model.extract(audio, "v2"))
    assert not loaded.training and loaded.path == path and loaded.file_bytes == path.stat().st_size
    assert loaded.params == model.params and loaded.device == "cpu" and loaded.dim("v2") == 32


def _rewrite(path, change):
    data = torch.load(path, weights_only=True)
    change(data)
    torch.save(data, path)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="something-else"), "not a distill-rvc student encoder"),
    (lambda d: d.update(format_version=2), "newer than this distill-rvc reads"),
    (lambda d: d.pop("weights"), "without weights"),
    (lambda d: d["weights"].pop("head.weight"), "missing: head.weight"),
    (lambda d: d["weights"].update({"head.weight": torch.zeros(3, 3)}), "weight head.weight is \\[3, 3\\]"),
    (lambda d: d["arch"].update(blocks=0), "model.blocks = 0"),
])
def test_damaged_or_newer_files_are_refused(saved, change, message):
    _, path = saved
    _rewrite(path, change)
    with pytest.raises(DistillRVCError, match=message):
        load_encoder(path)


def test_truncated_and_foreign_files_are_refused(saved, tmp_path):
    _, path = saved
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DistillRVCError, match="truncated"):
        load_encoder(cut)
    with pytest.raises(DistillRVCError, match="not a distill-rvc student encoder"):
        load_encoder(TINY_TEACHER)


def test_convert_runs_with_a_distilled_encoder(tmp_path):
    """`convert --hubert encoder.pt` end to end: chunking sizes the encoder's passes
    (StudentEncoder.memory; without it convert and compare failed with an AttributeError)."""
    from distill_rvc.convert import ConvertSettings, convert
    from distill_rvc.features import write_wav
    from distill_rvc.features.encoders import open_encoder

    torch.manual_seed(0)
    model = StudentEncoder(EncoderArch(n_mels=20, dim=16, blocks=2, out_dim=768)).eval()
    path = save_encoder(tmp_path / "encoder.pt", model, {"sha256": "ab" * 32, "layer": "12"}, {"steps": 3})
    enc = open_encoder(path)
    mem = enc.memory("v2")
    assert mem.weights >= 4 * model.params and mem.peaks[-1] > mem.peaks[0] > mem.weights  # grows with length
    t = np.arange(32000) / 16000
    wav = write_wav(tmp_path / "in.wav", (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 16000)
    out = convert(TINY_TEACHER, path, wav, tmp_path / "out.wav", ConvertSettings(f0_method="dio"), threads=1)
    assert len(out.files) == 1 and (tmp_path / "out.wav").stat().st_size > 1000
