"""export-encoder: the content encoder as ONNX fp32/int8 against the torch encoder, and the
exported file used by `convert` and `prepare` (onnx/encoder.py, onnx/runtime.OnnxEncoder).

The torch encoder is the reference: tests/features/test_content.py checks it against a float64
re-computation of fairseq's forward."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from distill_rvc import DistillRVCError
from distill_rvc.backends import open_backend
from distill_rvc.chunking import ChunkSizes
from distill_rvc.cli import cli
from distill_rvc.convert import Converter, ConvertSettings
from distill_rvc.data.dataset import Dataset
from distill_rvc.features import load_audio, load_content_encoder
from distill_rvc.features.encoders import open_encoder
from distill_rvc.onnx.encoder import ExportEncoderSettings, export_encoder, similarity
from distill_rvc.onnx.interface import ENCODER_KEYS
from distill_rvc.safe_load import file_sha256
from examples.make_stand_in_hubert import write_hubert
from tests.fixtures import SPEECH, TINY_TEACHER

# Measured on the stand-in (2 layers, random weights) over SPEECH/f2_0 and f5_0: mean cosine
# 0.99955, min 0.9975, relative L2 0.030 (bench/bench_encoder_onnx.py at --hubert stand-in).
INT8_MIN_MEAN_COSINE, INT8_MIN_FRAME_COSINE, INT8_MAX_REL_L2 = 0.998, 0.99, 0.06
# convert's audio on the tiny teacher (seed 0, NSF noise off), int8 vs torch features: RMS difference
# 0.019 / 0.016 of the audio's RMS on f2_0 / f5_0 (a different prior-noise seed alone: 0.73 / 0.69)
INT8_MAX_AUDIO_RMS = 0.05
CHUNKS = ChunkSizes.with_center(10.0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("encoder_export")
    hubert = write_hubert(root / "stand_in_hubert.pt", embed_dim=768, layers=2)
    r = CliRunner().invoke(cli, ["export-encoder", "--encoder", str(hubert), "--out", str(root / "enc.onnx"),
                                 "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "fp32 vs torch at 1 s (49 frames): max_rel" in r.output
    int8 = export_encoder(hubert, root / "enc_int8.onnx", ExportEncoderSettings(int8=True, threads=1))
    return root, hubert, root / "enc.onnx", int8


def _speech():
    return [load_audio(SPEECH / name, 16000) for name in ("f2_0.wav", "f5_0.wav")]


def test_fp32_matches_torch_at_two_lengths(exported):
    _, hubert, fp32, _ = exported
    torch_enc, onnx_enc = load_content_encoder(hubert), open_encoder(fp32)
    for audio in _speech():
        for n in (len(audio), 16000 + 123):
            ref, out = torch_enc.extract(audio[:n], "v2"), onnx_enc.extract(audio[:n], "v2")
            assert out.shape == ref.shape == ((n - 400) // 320 + 1, 768)
            assert np.abs(out - ref).max() / np.abs(ref).max() < 1e-4


def test_group_norm_is_over_the_actual_input(exported):
    """The first conv's GroupNorm normalises over the whole input: a prefix's features differ
    from the full clip's first frames, and the graph computes the prefix's, not a traced N's."""
    _, hubert, fp32, _ = exported
    audio = _speech()[0]
    torch_enc, onnx_enc = load_content_encoder(hubert), open_encoder(fp32)
    prefix = onnx_enc.extract(audio[:8000], "v2")
    full = torch_enc.extract(audio, "v2")[: len(prefix)]
    assert np.abs(prefix - full).max() / np.abs(full).max() > 1e-2
    np.testing.assert_allclose(prefix, torch_enc.extract(audio[:8000], "v2"), atol=1e-4 * np.abs(full).max())


def test_metadata_names_the_source(exported):
    _, hubert, fp32, int8 = exported
    import onnx

    from distill_rvc.onnx.interface import read_metadata

    meta = read_metadata(onnx.load(str(fp32)))
    assert {k: meta[v] for k, v in ENCODER_KEYS.items()} == {
        "version": "v2", "dim": 768, "min_samples": 400, "hop": 320, "kind": "hubert",
        "sha256": file_sha256(hubert), "precision": "fp32"}
    assert read_metadata(onnx.load(str(int8.out)))[ENCODER_KEYS["precision"]] == "int8"
    g = onnx.load(str(fp32)).graph
    assert [i.name for i in g.input] == ["audio"] and [o.name for o in g.output] == ["features"]
    assert g.input[0].type.tensor_type.shape.dim[1].dim_param  # N is dynamic


def test_int8_is_close_and_smaller(exported):
    _, hubert, fp32, int8 = exported
    torch_enc, enc = load_content_encoder(hubert), open_encoder(int8.out)
    speech = _speech()
    sim = similarity(np.concatenate([enc.extract(a, "v2") for a in speech]),
                     np.concatenate([torch_enc.extract(a, "v2") for a in speech]))
    assert sim["cosine"] > INT8_MIN_MEAN_COSINE and sim["cosine_min"] > INT8_MIN_FRAME_COSINE
    assert sim["rel_l2"] < INT8_MAX_REL_L2
    assert int8.parity["int8"][0]["cosine"] > INT8_MIN_MEAN_COSINE
    assert int8.out.stat().st_size < 0.6 * fp32.stat().st_size


def test_export_refusals_are_one_line(exported, tmp_path):
    _, hubert, fp32, _ = exported
    for args, match in ((["--encoder", str(fp32)], "already a graph"),
                        (["--encoder", str(TINY_TEACHER)], "an RVC voice model"),
                        (["--encoder", str(tmp_path / "missing.pt")], "no such file")):
        r = CliRunner().invoke(cli, ["export-encoder", *args, "--out", str(tmp_path / "x.onnx")])
        assert r.exit_code == 2 and match in r.output and r.output.count("\n") == 1, r.output
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(DistillRVCError, match="must name a .onnx file"):
        export_encoder(hubert, tmp_path / "x.pt")


def test_cli_convert_with_the_onnx_encoder(exported, tmp_path):
    _, _, fp32, _ = exported
    src = SPEECH / "f2_0.wav"
    r = CliRunner().invoke(cli, ["convert", "--model", str(TINY_TEACHER), "--encoder", str(fp32), "--f0", "dio",
                                 "--chunk-seconds", "10", "--input", str(src), "--output", str(tmp_path / "out.wav"),
                                 "--quiet"])
    assert r.exit_code == 0, r.output
    out = load_audio(tmp_path / "out.wav", 40000)
    assert len(out) == round(len(load_audio(src, 16000)) * 40000 / 16000) and np.abs(out).max() > 0.01


def test_converted_audio_with_onnx_features_is_torchs(exported):
    """convert's path (`Converter`) with a deterministic teacher (prior noise seed 0, NSF noise
    off): the audio differs only by the features. fp32 graph (features max_rel ~1e-6; audio
    measured 1.1e-6 of its peak): within 1e-4 of the peak. int8: see INT8_MAX_AUDIO_RMS."""
    _, hubert, fp32, int8 = exported
    backend = open_backend(TINY_TEACHER, deterministic=True)
    audio = _speech()[0]
    out = {name: Converter(backend, open_encoder(path), ConvertSettings(f0_method="dio", chunks=CHUNKS))
           .convert_audio(audio) for name, path in (("torch", hubert), ("onnx", fp32), ("int8", int8.out))}
    ref = out["torch"]
    assert out["onnx"].shape == out["int8"].shape == ref.shape
    assert np.abs(out["onnx"] - ref).max() < 1e-4 * np.abs(ref).max()
    rms = lambda x: float(np.sqrt(np.mean(x ** 2)))  # noqa: E731
    assert 0 < rms(out["int8"] - ref) < INT8_MAX_AUDIO_RMS * rms(ref)


def test_prepare_with_the_onnx_encoder(exported, tmp_path):
    _, hubert, fp32, _ = exported
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    (audio_dir / "a.wav").write_bytes((SPEECH / "f2_0.wav").read_bytes())
    feats = {}
    for name, option, encoder in (("torch", "--hubert", hubert), ("onnx", "--encoder", fp32)):
        r = CliRunner().invoke(cli, ["prepare", str(audio_dir), option, str(encoder), "--f0", "dio",
                                     "--out", str(tmp_path / name), "--quiet"])
        assert r.exit_code == 0, r.output
        ds = Dataset(tmp_path / name)
        feats[name] = np.concatenate([ds[i].phone for i in range(len(ds))])
    assert feats["onnx"].shape == feats["torch"].shape
    assert np.abs(feats["onnx"] - feats["torch"]).max() / np.abs(feats["torch"]).max() < 1e-4
