"""issue 11.8: export's .onnx that cannot be written (full disk, read-only folder) is one line; the
previous file stays."""
from __future__ import annotations

import errno
import os

import onnx
import pytest
from click.testing import CliRunner

from tests.fixtures import TINY_TEACHER
from tests.fixtures.onnx_files import tiny_teacher_onnx


@pytest.mark.parametrize("error, message", [
    (OSError(errno.ENOSPC, "No space left on device"), "disk full while writing {out}; the previous file"),
    (PermissionError(errno.EACCES, "Permission denied"), "cannot write {out}: Permission denied"),
])
def test_export_write_failure_keeps_the_previous_file(tmp_path, monkeypatch, error, message):
    import distill_rvc.onnx.export as ox
    from distill_rvc.cli import cli

    shipped = tiny_teacher_onnx("rvc")
    monkeypatch.setattr(ox, "trace", lambda *a, **k: onnx.load(str(shipped)))  # skip the slow trace
    out = tmp_path / "voice.onnx"
    out.write_bytes(b"previous export")
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst) == str(out):
            raise error
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    result = CliRunner().invoke(cli, ["export", str(TINY_TEACHER), "-o", str(out), "--interface", "rvc",
                                      "--timing-runs", "0", "--no-simplify", "--threads", "1"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert message.format(out=out) in result.output.strip().splitlines()[-1]
    assert out.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voice.onnx"]
