"""The one place distill-rvc calls `torch.load`: strangers' files never run code.

Voice models are shared by strangers, and a pickle can run any code when it is loaded.
Every file is read with `weights_only=True`, which only rebuilds tensors and plain
containers. A file that needs another class is refused, unless the caller lists an inert
stand-in for that exact global name (see `features/content.py` for fairseq's Dictionary).
"""
from __future__ import annotations

import hashlib

import pickle
import re
from pathlib import Path
from typing import Any, Iterable

import torch

from .errors import DistillRVCError


def stand_in(qualified_name: str) -> type:
    """An inert class registered under `qualified_name` (e.g. 'argparse.Namespace').

    The unpickler rebuilds such objects by storing their state in `__dict__`; no method of
    the original class is ever looked up or run.
    """
    module, _, name = qualified_name.rpartition(".")

    def __setstate__(self, state):  # BUILD with a dict (or a (dict, slots) pair)
        if isinstance(state, tuple) and len(state) == 2:
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["state"] = state

    cls = type(name, (), {"__setstate__": __setstate__, "__module__": module,
                          "__doc__": f"Inert stand-in for {qualified_name} (never the real class)."})
    cls.__qualname__ = name
    return cls


# ONNX ModelProto fields that follow ir_version (field 1): producer_name, producer_version, domain,
# model_version, doc_string, graph, opset_import (protobuf tags 0x12 .. 0x42)
_ONNX_SECOND_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42}


def is_onnx(path: str | Path) -> bool:
    """An ONNX file, by content (a ModelProto begins with a small ir_version, field 1), or by
    its .onnx suffix when the content says nothing else.

    PyTorch files begin with "PK" (zip) or 0x80 (a pickle), so the two never collide, and a
    PyTorch file misnamed .onnx is still read as what it is.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(3)
    except OSError:
        return path.suffix.lower() == ".onnx"
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return False
    if path.suffix.lower() == ".onnx":
        return True
    return len(head) == 3 and head[0] == 0x08 and head[1] < 0x80 and head[2] in _ONNX_SECOND_TAGS


def safe_torch_load(path: str | Path, what: str = "checkpoint", stand_ins: Iterable[type] = ()) -> Any:
    """`torch.load(path, weights_only=True)` on CPU, with one-line errors for bad files.

    `what` names the expected kind of file in messages; `stand_ins` are classes made by
    `stand_in()` that the file may reference.
    """
    path = Path(path)
    if not path.exists():
        raise DistillRVCError(f"{path}: no such file")
    if path.is_dir():
        raise DistillRVCError(f"{path}: is a folder, expected a {what} file")
    if path.stat().st_size == 0:
        raise DistillRVCError(f"{path}: the file is empty (an interrupted download or copy?)")
    if is_onnx(path):
        raise DistillRVCError(
            f"{path}: this is already an ONNX file, not a PyTorch {what} (.pth); give the .pth it was exported "
            "from (an ONNX file runs as it is in onnxruntime or the w-okada client; `bench` and `compare` read it)")
    try:
        with torch.serialization.safe_globals(list(stand_ins)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if not found:
            raise DistillRVCError(f"{path}: not a readable PyTorch file: truncated, corrupted or of another "
                                  f"kind ({str(e).splitlines()[0][:120]})") from None
        name = found.group(1)
        if name.startswith("fairseq."):
            raise DistillRVCError(
                f"{path}: this is a fairseq checkpoint (it needs {name}), not a {what}") from None
        raise DistillRVCError(
            f"{path}: refused: the file contains pickled code or objects ({name}) that could run "
            f"on your machine; a safe {what} holds only tensors. Nothing in it was run.") from None
    except MemoryError:
        raise DistillRVCError(f"{path}: not enough memory to read this file") from None
    except Exception as e:  # noqa: BLE001 - any parse failure of a foreign file is a bad file
        detail = str(e).split(".")[0].strip() or type(e).__name__
        raise DistillRVCError(
            f"{path}: not a readable PyTorch file: truncated, corrupted or of another kind ({detail})") from None


def file_sha256(path: str | Path, length: int | None = None) -> str:
    """The sha256 of a file (hex; its first `length` digits when given): records which teacher,
    encoder or F0 model made a student, a cache or an export."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:length]
