"""open_encoder: one FeatureEncoder whatever the file, told apart by content, and one-line
refusals of everything else (features/encoders.py)."""
from __future__ import annotations

import shutil
import sys
import types

import numpy as np
import pytest
import torch

from distill_rvc import DistillRVCError
from distill_rvc.backends import open_backend
from distill_rvc.chunking import chunk_sizes
from distill_rvc.features import load_audio, load_content_encoder
from distill_rvc.features.content import ContentEncoder
from distill_rvc.features.encoders import FeatureEncoder, open_encoder
from distill_rvc.onnx.encoder import ExportEncoderSettings, export_encoder
from distill_rvc.onnx.runtime import OnnxEncoder
from examples.make_stand_in_hubert import write_hubert
from tests.fixtures import SPEECH, TINY_TEACHER


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("encoders")
    hubert = write_hubert(root / "hubert_base.pt", embed_dim=768, layers=2)
    onnx_path = export_encoder(hubert, root / "encoder.onnx", ExportEncoderSettings(threads=1)).out
    return root, hubert, onnx_path


def _one_line_error(path, match: str) -> str:
    with pytest.raises(DistillRVCError, match=match) as e:
        open_encoder(path)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_hubert_is_the_content_encoder_unchanged(files):
    _, hubert, _ = files
    enc = open_encoder(hubert)
    assert isinstance(enc, ContentEncoder) and isinstance(enc, FeatureEncoder)
    assert (enc.kind, enc.device, enc.min_samples, enc.path) == ("hubert", "cpu", 400, hubert)
    assert enc.params == sum(p.numel() for p in load_content_encoder(hubert).parameters())
    assert enc.file_bytes == hubert.stat().st_size
    audio = load_audio(SPEECH / "f2_0.wav", 16000)
    np.testing.assert_array_equal(enc.extract(audio, "v2"), load_content_encoder(hubert).extract(audio, "v2"))


def test_frames_is_hubert_formula(files):
    _, hubert, onnx_path = files
    encs = [open_encoder(hubert), open_encoder(onnx_path)]
    for n in (0, 399, 400, 719, 720, 16000, 16399, 54321):
        want = (n - 400) // 320 + 1 if n >= 400 else 0
        assert [e.frames(n) for e in encs] == [want, want]
    audio = np.random.default_rng(0).standard_normal(16399).astype(np.float32) * 0.1
    assert [len(e.extract(audio, "v2")) for e in encs] == [50, 50]


def test_hubert_memory_is_its_weights_plus_activations(files):
    _, hubert, _ = files
    enc = open_encoder(hubert)
    mem = enc.memory("v2")
    assert mem.weights == 4 * enc.params  # float32 parameters, no buffers
    assert list(mem.peaks) == sorted(mem.peaks) and mem.peaks[0] > mem.weights


def test_onnx_encoder_dispatch_by_content_not_name(files):
    root, hubert, onnx_path = files
    enc = open_encoder(onnx_path)
    assert isinstance(enc, OnnxEncoder) and isinstance(enc, FeatureEncoder)
    assert (enc.kind, enc.device, enc.min_samples, enc.dim("v2")) == ("onnx", "cpu", 400, 768)
    assert enc.file_bytes == onnx_path.stat().st_size and enc.params > 0
    renamed = shutil.copy(onnx_path, root / "looks_like.pt")
    assert isinstance(open_encoder(renamed), OnnxEncoder)
    renamed = shutil.copy(hubert, root / "hubert.bin")
    assert isinstance(open_encoder(renamed), ContentEncoder)


def test_onnx_encoder_refuses_another_version(files):
    _, _, onnx_path = files
    with pytest.raises(DistillRVCError, match=r"exported for v2 .*--version v1"):
        open_encoder(onnx_path).extract(np.zeros(1600, np.float32), "v1")
    with pytest.raises(DistillRVCError, match="shorter than one content frame"):
        open_encoder(onnx_path).extract(np.zeros(399, np.float32), "v2")


def test_distilled_encoder_goes_to_the_encoder_package(files, monkeypatch):
    root, _, _ = files
    student = root / "student_encoder.pt"
    torch.save({"format": "distill-rvc-encoder", "weights": {"w": torch.zeros(2)}}, student)
    calls = []
    fake = types.ModuleType("distill_rvc.encoder.checkpoint")
    fake.load_encoder = lambda path, device: calls.append((path, device)) or "the student"
    monkeypatch.setitem(sys.modules, "distill_rvc.encoder", types.ModuleType("distill_rvc.encoder"))
    monkeypatch.setitem(sys.modules, "distill_rvc.encoder.checkpoint", fake)
    assert open_encoder(student, "cpu") == "the student" and calls == [(student, "cpu")]

    monkeypatch.setitem(sys.modules, "distill_rvc.encoder.checkpoint", None)  # import fails
    _one_line_error(student, "this build cannot read distilled encoders")


def test_foreign_and_damaged_files_are_one_line(files, tmp_path):
    _, hubert, onnx_path = files
    _one_line_error(TINY_TEACHER, "an RVC voice model, not a content encoder")
    _one_line_error(SPEECH / "f2_0.wav", "a WAV file, not a content encoder; expected RVC's hubert_base.pt")
    (tmp_path / "notes.pt").write_text("hello, not a model")
    _one_line_error(tmp_path / "notes.pt", "a text file .*not a content encoder")
    (tmp_path / "empty.onnx").write_bytes(b"")
    _one_line_error(tmp_path / "empty.onnx", "the file is empty")
    _one_line_error(tmp_path / "missing.pt", "no such file")
    _one_line_error(tmp_path, "is a folder")
    data = hubert.read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    _one_line_error(tmp_path / "half.pt", "not a readable PyTorch file")
    data = onnx_path.read_bytes()
    (tmp_path / "half.onnx").write_bytes(data[: len(data) // 2])
    _one_line_error(tmp_path / "half.onnx", "not a readable ONNX model")
    torch.save({"a": torch.zeros(3), "b": 1}, tmp_path / "dict.pt")
    _one_line_error(tmp_path / "dict.pt", "a PyTorch file holding a, b, not a content encoder")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    _one_line_error(tmp_path / "tensor.pt", "a PyTorch file holding a Tensor")


def test_synthesizer_onnx_is_not_an_encoder():
    from tests.fixtures.onnx_files import tiny_teacher_onnx

    _one_line_error(tiny_teacher_onnx("rvc"), "a synthesizer, not a content encoder .*export-encoder")


def test_chunk_sizes_with_an_onnx_encoder_follow_the_synthesizer(files):
    _, hubert, onnx_path = files
    backend = open_backend(TINY_TEACHER)
    with_onnx = chunk_sizes(backend, open_encoder(onnx_path), budget_gb=4.0)
    with_hubert = chunk_sizes(backend, open_encoder(hubert), budget_gb=4.0)
    # the stand-in encoder is tiny: at 4 GB neither bounds the chunks below RVC's largest centre
    assert with_onnx == with_hubert
    assert with_onnx.center == 60.0
