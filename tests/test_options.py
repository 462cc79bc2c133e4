"""Bad input at the boundary (issues 16.1, 16.4, 16.7, 11.8): one line, exit 2, nothing overwritten.

Most checks run before any model is loaded, so these tests need no model files."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from distill_rvc import DistillRVCError
from distill_rvc.cli import cli
from distill_rvc.options import (check_chunk_seconds, check_threads, check_tolerance, refuse_output_inside,
                                 refuse_overwrite, resolve_device)


def _one_line_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0], lines[0]


@pytest.fixture
def take(tmp_path):
    path = tmp_path / "take.wav"
    sf.write(path, np.sin(np.arange(16000) / 10).astype(np.float32) * 0.3, 16000)
    return path


def _convert(*args):
    return CliRunner().invoke(cli, ["convert", "--model", "no-model.pth", "--hubert", "no-hubert.pt", *args])


# ---- 16.1: an output that would replace an input
def test_convert_refuses_to_overwrite_the_input(take, tmp_path):
    before = take.read_bytes()
    (tmp_path / "link.wav").symlink_to(take)
    os.link(take, tmp_path / "hard.wav")
    (tmp_path / "sub").mkdir()
    for output in (take, tmp_path / "link.wav", tmp_path / "hard.wav", tmp_path / "sub" / ".." / "take.wav",
                   tmp_path):  # a folder: the output would be take.wav in it
        result = _convert("--input", str(take), "--output", str(output))
        _one_line_error(result, "is the input file")
        assert take.read_bytes() == before


def test_convert_refuses_an_output_folder_inside_the_input_folder(take, tmp_path):
    before = take.read_bytes()
    for output in (tmp_path, tmp_path / "converted"):
        _one_line_error(_convert("--input", str(tmp_path), "--output", str(output)), "is inside the input folder")
    assert take.read_bytes() == before and not (tmp_path / "converted").exists()


def test_convert_refuses_to_overwrite_the_model(take, tmp_path):
    model = tmp_path / "voice.wav"
    model.write_bytes(b"x")
    result = CliRunner().invoke(cli, ["convert", "--model", str(model), "--hubert", "h.pt", "--input", str(take),
                                      "--output", str(model)])
    _one_line_error(result, "is the input file")
    assert model.read_bytes() == b"x"


def test_refusals_from_python():
    with pytest.raises(DistillRVCError, match="is the input file"):
        refuse_overwrite("a/../b.wav", ["b.wav"])
    with pytest.raises(DistillRVCError, match="inside the input folder"):
        refuse_output_inside("in/out", "in")
    refuse_output_inside("out", "in")
    refuse_overwrite("out.wav", ["in.wav", None])


# ---- 16.4: options that crashed
@pytest.mark.parametrize("command", [
    ["convert", "--model", "m.pth", "--hubert", "h.pt", "--input", "{take}", "--output", "{out}"],
    ["compare", "--teacher", "t.pth", "--student", "s.pth", "--audio", "{take}", "--hubert", "h.pt", "--out", "{out}"],
    ["bench", "--model", "m.pth"],
    ["export", "m.pth", "-o", "{out}.onnx"],
])
def test_negative_threads_are_one_line(command, take, tmp_path):
    argv = [a.format(take=take, out=tmp_path / "out") for a in command] + ["--threads", "-1"]
    _one_line_error(CliRunner().invoke(cli, argv), "--threads -1: expected a positive number of threads")


def test_device_is_checked_in_one_place(take, tmp_path):
    import torch

    for bad in ("cdua", "gpu", "cuda:x", ""):
        with pytest.raises(DistillRVCError, match=r"--device '.*': expected auto, cpu, cuda or cuda:N"):
            resolve_device(bad)
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto")
    assert resolve_device("CPU") == torch.device("cpu") == resolve_device(torch.device("cpu"))
    result = CliRunner().invoke(cli, ["prepare", str(tmp_path), "--hubert", "h.pt", "--out", str(tmp_path / "c"),
                                      "--device", "cdua"])
    _one_line_error(result, "--device 'cdua': expected auto, cpu, cuda or cuda:N")
    _one_line_error(CliRunner().invoke(cli, ["bench", "--model", "m.pth", "--device", "cdua"]), "expected auto, cpu")
    # teach checks it before loading the teacher or the data (neither exists here)
    teach = ["teach", "--teacher", str(tmp_path / "none.pth"), "--data", str(tmp_path), "--out", str(tmp_path / "r")]
    _one_line_error(CliRunner().invoke(cli, teach + ["--device", "cdua"]), "--device 'cdua': expected auto, cpu")
    result = CliRunner().invoke(cli, teach + ["--device", "auto"])  # valid: gets as far as the missing teacher
    assert result.exit_code == 2 and "expected auto" not in result.output and "none.pth" in result.output


def test_trainer_and_prune_use_the_shared_device_check():
    from distill_rvc.distill.trainer import train

    with pytest.raises(DistillRVCError, match="--device 'cdua': expected auto, cpu, cuda or cuda:N"):
        train(None, None, None, None, None, "unused", device="cdua")
    from distill_rvc.prune import recovery as prune_recovery

    assert prune_recovery.resolve_device is resolve_device


def test_threads_from_python():
    assert check_threads(None) is None and check_threads(0) is None and check_threads(3) == 3
    with pytest.raises(DistillRVCError, match="--threads -2"):
        check_threads(-2)


# ---- 16.7: refused up front instead of crashing or running slowly
def test_chunk_seconds_zero_and_tiny_are_refused(take, tmp_path):
    for value, message in (("0", "--chunk-seconds 0: must be positive"), ("-1", "must be positive"),
                           ("0.01", "--chunk-seconds 0.01: at least 1 s")):
        _one_line_error(_convert("--input", str(take), "--output", str(tmp_path / "o.wav"), "--chunk-seconds", value),
                        message)
    assert check_chunk_seconds(None) is None and check_chunk_seconds(2) == 2.0


def test_export_tolerance_is_checked_before_the_export(tmp_path):
    result = CliRunner().invoke(cli, ["export", "m.pth", "-o", str(tmp_path / "m.onnx"), "--tolerance", "-1"])
    _one_line_error(result, "--tolerance -1: must be a positive number")
    assert check_tolerance(None) is None and check_tolerance(1e-3) == 1e-3


def test_an_onnx_file_is_named_as_such(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "voice.onnx"
    onnx.save(helper.make_model(graph), path)
    renamed = tmp_path / "voice.pth"  # by content, too
    renamed.write_bytes(path.read_bytes())
    for model in (path, renamed):
        _one_line_error(CliRunner().invoke(cli, ["inspect", str(model), "--no-memory"]), "this is already an ONNX file")
        _one_line_error(CliRunner().invoke(cli, ["export", str(model), "-o", str(tmp_path / "x.onnx")]),
                        "this is already an ONNX file")
    from distill_rvc.safe_load import safe_torch_load
    from tests.fixtures import TINY_TEACHER

    misnamed = tmp_path / "teacher.onnx"  # a PyTorch zip named .onnx is read as what it is
    misnamed.write_bytes(TINY_TEACHER.read_bytes())
    assert set(safe_torch_load(misnamed)) == set(safe_torch_load(TINY_TEACHER))


# ---- 11.8: write failures in prepare's cache and convert's WAV
def test_prepare_read_only_cache_folder_is_one_line(tmp_path, monkeypatch):
    from pathlib import Path

    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "a.wav", np.zeros(16000, np.float32), 16000)
    real_mkdir = Path.mkdir

    def read_only(self, *a, **k):
        if "cache" in str(self):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", read_only)
    result = CliRunner().invoke(cli, ["prepare", str(tmp_path / "audio"), "--hubert", "h.pt", "--out",
                                      str(tmp_path / "cache"), "--device", "cpu"])
    _one_line_error(result, "cannot create folder")
    assert "Permission denied" in result.output


def test_python_api_checks_threads_too(tmp_path):
    from distill_rvc.convert import convert
    from distill_rvc.compare import CompareSettings, compare

    with pytest.raises(DistillRVCError, match="--threads -1"):
        compare("t.pth", "s.pth", tmp_path, "h.pt", tmp_path / "r", CompareSettings(threads=-1))
    sf.write(tmp_path / "in.wav", np.zeros(1600, np.float32), 16000)
    with pytest.raises(DistillRVCError, match="--threads -1"):
        convert("m.pth", "h.pt", tmp_path / "in.wav", tmp_path / "out.wav", threads=-1)


def test_faiss_loader_noise_is_silenced(caplog):
    import subprocess
    import sys

    code = ("import logging; logging.basicConfig(level=logging.INFO)\n"
            "from distill_rvc.features.retrieval import import_faiss; import_faiss()")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "faiss.loader" not in run.stderr and "ModuleNotFoundError" not in run.stderr
