"""Backends: torch and onnxruntime give the same audio for the same inputs and noise; ONNX files
are read by their interface, with or without metadata; `convert` runs on onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import soundfile as sf

from distill_rvc import DistillRVCError, load_model
from distill_rvc.backends import TorchBackend, open_backend
from distill_rvc.onnx.runtime import OrtBackend
from distill_rvc.timing import synthetic_inputs
from distill_rvc.convert import ChunkSizes, Converter, ConvertSettings
from distill_rvc.features import load_content_encoder
from tests.fixtures import TINY_TEACHER
from examples.make_stand_in_hubert import write_hubert
from tests.fixtures.onnx_files import tiny_teacher_onnx
from tests.fixtures.audio import speech_like


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)  # tiny models: a second thread on shared cores only spin-waits


@pytest.fixture(scope="module")
def exported():
    return {interface: tiny_teacher_onnx(interface) for interface in ("rvc", "wokada")}


def test_torch_and_onnxruntime_agree(exported):
    torch_b = open_backend(TINY_TEACHER, deterministic=True)
    ort_b = open_backend(exported["rvc"], deterministic=True)
    assert isinstance(torch_b, TorchBackend) and isinstance(ort_b, OrtBackend)
    x = synthetic_inputs(*torch_b.info.widths, 1.3, seed=3)
    a = torch_b.run(x["phone"], x["pitch"], x["pitchf"], 0, x["noise"])
    b = ort_b.run(x["phone"], x["pitch"], x["pitchf"], 0, x["noise"])
    assert a.shape == b.shape == (1, 130 * 400)
    assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max()
    # the same noise is what makes them agree: other noise, other audio
    c = ort_b.run(x["phone"], x["pitch"], x["pitchf"], 0, synthetic_inputs(*torch_b.info.widths, 1.3, seed=4)["noise"])
    assert np.abs(a - c).max() > 0.1 * np.abs(a).max()


def test_onnx_info_with_and_without_metadata(exported, tmp_path):
    rvc, wokada = OrtBackend(exported["rvc"]), OrtBackend(exported["wokada"])
    assert (rvc.interface, rvc.info.sr, rvc.info.hop, rvc.info.f0, rvc.info.phone_dim, rvc.info.inter_channels) == \
        ("rvc", 40000, 400, True, 768, 192)
    assert wokada.interface == "wokada" and wokada.info.inter_channels is None and not wokada.accepts_noise
    # the initializers are the weights, folded; the exporter stores identical tensors once (the tiny
    # teacher's decoder biases are all zero), so a few hundred of its 188k values are shared
    n_torch = sum(p.numel() for p in load_model(TINY_TEACHER).remove_weight_norm().parameters())
    assert 0.99 * n_torch <= rvc.info.params <= 1.01 * n_torch

    # the rvc file's rate comes from our entry: it has no w-okada `metadata` (w-okada would take it as a slot)
    assert {p.key for p in onnx.load(str(exported["rvc"])).metadata_props} == {"distill_rvc"}
    theirs = onnx.load(str(exported["wokada"]))  # as w-okada's own exporter writes it: its entry only
    kept = [p for p in theirs.metadata_props if p.key == "metadata"]
    del theirs.metadata_props[:]
    theirs.metadata_props.extend(kept)
    onnx.save(theirs, str(tmp_path / "theirs.onnx"))
    assert (OrtBackend(tmp_path / "theirs.onnx").info.sr, OrtBackend(tmp_path / "theirs.onnx").info.hop) == (40000, 400)

    bare = onnx.load(str(exported["rvc"]))  # what RVC's own exporter writes: no metadata at all
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    probed = OrtBackend(tmp_path / "bare.onnx")
    assert (probed.info.sr, probed.info.hop) == (40000, 400)

    x = synthetic_inputs(*rvc.info.widths, 0.5)
    y = wokada.run(x["phone"], x["pitch"], x["pitchf"], 0)
    assert y.shape == (1, 50 * 400) and np.abs(y).max() <= 1.0
    with pytest.raises(DistillRVCError, match="w-okada-interface graph draws its noise"):
        OrtBackend(exported["wokada"], deterministic=True)


def test_bad_onnx_files(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(DistillRVCError, match="not a readable ONNX model"):
        open_backend(tmp_path / "junk.onnx")
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(tmp_path / "other.onnx"))
    with pytest.raises(DistillRVCError, match="neither the w-okada"):
        open_backend(tmp_path / "other.onnx")
    with pytest.raises(DistillRVCError, match="no such model file"):
        open_backend(tmp_path / "missing.pth")


def test_convert_on_onnxruntime(exported, tmp_path):
    hubert = load_content_encoder(write_hubert(tmp_path / "hubert_base.pt", embed_dim=768, layers=2))
    sf.write(tmp_path / "in.wav", speech_like(16000, 3.1), 16000)
    sizes = ChunkSizes(pad=0.5, query=0.3, center=1.5, max=1.8)
    for interface, path in exported.items():
        conv = Converter(open_backend(path), hubert, ConvertSettings(f0_method="dio", chunks=sizes))
        result = conv.convert_file(tmp_path / "in.wav", tmp_path / f"out_{interface}.wav")
        out, sr = sf.read(tmp_path / f"out_{interface}.wav")
        assert sr == 40000 and len(out) == round(3.1 * 16000) * 40000 // 16000 and result.chunks == 2
        assert np.isfinite(out).all() and np.abs(out).max() > 0.01
