"""`bench`: one JSON layout for every model, sane figures, side by side, and the CLI table."""
from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from distill_rvc import DistillRVCError
from distill_rvc.backends import ModelInfo
from distill_rvc.bench import BenchSettings, bench
from distill_rvc.timing import synthetic_inputs
from distill_rvc.cli import cli
from tests.fixtures import TINY_TEACHER
from examples.make_stand_in_hubert import write_hubert
from tests.fixtures.onnx_files import tiny_teacher_onnx


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_synthetic_inputs():
    info = ModelInfo(path=None, format="torch", sr=40000, hop=400, f0=True, phone_dim=768, inter_channels=192,
                     params=0, file_bytes=None)
    x = synthetic_inputs(*info.widths, 1.0, batch=3)
    assert x["phone"].shape == (3, 100, 768) and x["noise"].shape == (3, 192, 100)
    assert x["pitch"].shape == x["pitchf"].shape == (3, 100)
    assert (x["pitchf"][:, 80:] == 0).all() and (x["pitch"][:, 80:] == 1).all()  # last 0.2 s unvoiced
    assert 110 <= x["pitchf"][0, :80].min() and x["pitchf"][0, :80].max() <= 440


def test_bench_torch_and_onnx_side_by_side(tmp_path):
    hubert = write_hubert(tmp_path / "hubert_base.pt", embed_dim=768, layers=2)
    result = bench([TINY_TEACHER, tiny_teacher_onnx("wokada")],
                   BenchSettings(threads=1, runs=1, warmup=1, lengths_s=(0.5, 1.0), batch=2, context_s=0.5,
                                 hubert=hubert))
    json.dumps(result, allow_nan=False)  # plain JSON, no NaN
    torch_row, ort_row = result["models"]
    assert (torch_row["backend"], ort_row["backend"]) == ("torch-cpu", "ort-cpu")
    for row in result["models"]:
        assert set(row) == set(torch_row)  # the same keys for every model: comparable
        assert set(row["latency_s"]) == set(row["rtf"]) == {"0.5s", "1s"}
        for key, latency in row["latency_s"].items():
            assert latency > 0 and row["rtf"][key] == pytest.approx(latency / float(key[:-1]))
        assert row["batch"]["x_realtime"] == pytest.approx(2 / row["batch"]["wall_s"])
        s = row["stream"]
        assert s["first_audio_s"] > 0 and s["chunk_compute_s"] > 0 and s["keeps_up"] == (s["chunk_compute_s"] < 0.5)
        assert row["sample_rate"] == 40000 and row["params"] > 0
    assert torch_row["batch"]["batched"] and not ort_row["batch"]["batched"]
    assert torch_row["speedup_vs_first"] == {"0.5s": 1.0, "1s": 1.0}
    assert math.isclose(ort_row["speedup_vs_first"]["1s"], torch_row["latency_s"]["1s"] / ort_row["latency_s"]["1s"])
    assert "content features + dio F0" in result["settings"]["stream_pipeline"]


def test_cli_bench(tmp_path):
    r = CliRunner().invoke(cli, ["bench", "--model", str(TINY_TEACHER), "--threads", "1", "--runs", "1",
                                 "--warmup", "0", "--batch", "1", "--out", str(tmp_path / "b.json")])
    assert r.exit_code == 0, r.output
    assert "RTF 10s" in r.output and "tiny_teacher.pth" in r.output
    assert json.loads((tmp_path / "b.json").read_text())["models"][0]["backend"] == "torch-cpu"
    with pytest.raises(DistillRVCError, match="at least one --model"):
        bench([])
    r = CliRunner().invoke(cli, ["bench", "--model", str(tmp_path / "none.pth")])
    assert r.exit_code == 2 and "no such model file" in r.output
