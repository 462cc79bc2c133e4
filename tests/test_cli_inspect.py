from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
from click.testing import CliRunner

from distill_rvc.cli import cli
from tests.fixtures import ROOT, TINY_TEACHER
from tests.fixtures.planted import Planted
from tests.fixtures.rvc_files import write_training


def test_inspect_tiny_teacher():
    result = CliRunner().invoke(cli, ["inspect", str(TINY_TEACHER)])
    assert result.exit_code == 0, result.output
    assert "RVC inference model" in result.output
    assert "v2, 40000 Hz, f0 (pitch)" in result.output
    assert "float16" in result.output and "longest chunk that fits 2GB" in result.output


def test_inspect_json_is_complete():
    result = CliRunner().invoke(cli, ["inspect", "--json", str(TINY_TEACHER)])
    info = json.loads(result.output)
    assert info["params"]["total"] == sum(info["params"][k] for k in ("enc_p", "flow", "dec", "emb_g", "enc_q"))
    assert info["file_bytes"] == TINY_TEACHER.stat().st_size and info["speakers"] == 109
    mem = info["inference_memory"]
    for dtype in ("float32", "float16"):
        chunks = mem[dtype]["longest_chunk_s"]
        assert 0 < chunks["2GB"] < chunks["4GB"] < chunks["6GB"]
        peaks = list(mem[dtype]["peak_bytes"].values())
        assert peaks == sorted(peaks)
    # fp16 halves the weights
    assert abs(mem["float16"]["weights_bytes"] * 2 - mem["float32"]["weights_bytes"]) < 1000


def test_inspect_training_checkpoint(tmp_path):
    from examples.make_tiny_teacher import TINY_CONFIG
    cfg = TINY_CONFIG.replace(spec_channels=1025)
    path = tmp_path / "G_10.pth"
    # the tiny geometry is RVC's 40k decoder with narrow channels, so the rate is read off the shapes
    write_training(path, cfg)
    info = json.loads(CliRunner().invoke(cli, ["inspect", "--json", "--no-memory", str(path)]).output)
    assert info["format"].startswith("RVC training checkpoint") and info["params"]["enc_q"] > 0


def _run(*args):
    """The real console entry point, as a user runs it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "distill_rvc", *args], capture_output=True, text=True, env=env)


def test_bad_files_give_one_line_and_exit_2(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"\x00\x01 not a model")
    marker = tmp_path / "PWNED"
    torch.save({"weight": {}, "config": Planted(marker)}, tmp_path / "evil.pth")
    for name, expect in (("junk.pth", "not a readable PyTorch file"), ("evil.pth", "pickled code")):
        proc = _run("inspect", str(tmp_path / name))
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr
    assert not marker.exists()
