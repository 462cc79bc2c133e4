"""The tiny teacher exported to ONNX once per test process (tracing takes ~12 s per interface).

    from onnx_files import tiny_teacher_onnx
    path = tiny_teacher_onnx("rvc")      # or "wokada"; a shared file: do not modify it
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from conftest import TINY_TEACHER


@functools.lru_cache(maxsize=None)
def _folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="distill-rvc-test-onnx-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@functools.lru_cache(maxsize=None)
def tiny_teacher_onnx(interface: str) -> Path:
    from distill_rvc.onnx.export import ExportSettings, export_onnx

    settings = ExportSettings(interface=interface, lengths_s=(1.0,), threads=1, timing_runs=0)
    return export_onnx(TINY_TEACHER, _folder() / f"tiny_{interface}.onnx", settings).onnx_path
