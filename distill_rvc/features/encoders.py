"""Any content encoder behind one interface, and `open_encoder`, which tells them apart by content.

    FeatureEncoder                 the protocol `convert`, `compare`, `bench`, `prepare` and chunking use
    open_encoder(path, device)     hubert_base.pt (fairseq) | an exported encoder .onnx | a distilled encoder .pt

The kinds:

    "hubert"   features.content.ContentEncoder: fairseq HuBERT/ContentVec rebuilt in torch
    "onnx"     onnx.runtime.OnnxEncoder: a graph written by `distill-rvc export-encoder`
    "student"  encoder.checkpoint.load_encoder: a distilled encoder (format "distill-rvc-encoder")

Each gives RVC's content features at 50 frames/s, T = floor((N - 400) / 320) + 1 for HuBERT's
conv stack. The file's first bytes decide, not its name: a PyTorch file (zip or pickle) is a
distilled encoder when its top-level dict says so and otherwise must be a fairseq checkpoint;
a protobuf that starts like an ONNX ModelProto is an ONNX encoder. Anything else is refused in
one line that says what the file looks like.

Not for: building or exporting encoders (content.py, onnx/encoder.py, encoder/).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ..errors import DistillRVCError
from ..safe_load import _ONNX_SECOND_TAGS

if TYPE_CHECKING:
    from ..memory import InferenceMemory

STUDENT_FORMAT = "distill-rvc-encoder"  # the top-level "format" of a distilled encoder file
EXPECTED = ("expected RVC's hubert_base.pt (fairseq), an encoder .onnx from `distill-rvc export-encoder` "
            "or a distilled encoder .pt")


@runtime_checkable
class FeatureEncoder(Protocol):
    """A content encoder: mono 16 kHz audio [N] -> float32 features [T, C] at 50 Hz."""

    kind: str  # "hubert", "onnx" or "student"
    path: Path | None  # the file it was read from
    device: str  # where it runs: "cpu", "cuda:0"
    min_samples: int  # the shortest input giving one frame (400 for HuBERT)
    params: int  # parameter count (weights stored in the file, int8 ones included)
    file_bytes: int  # size of `path` on disk

    def frames(self, samples: int) -> int:
        """Output frames for `samples` input samples (0 below `min_samples`)."""
        ...

    def dim(self, version: str) -> int:
        """Feature width for "v1"/"v2"; DistillRVCError for a version it cannot give."""
        ...

    def extract(self, audio_16k: np.ndarray, version: str) -> np.ndarray:
        """[N] float audio at 16 kHz -> float32 [T, C], the whole array as one input."""
        ...

    def memory(self, version: str) -> "InferenceMemory | None":
        """Peak bytes of one pass by input length (chunking's budget), None when unknown (ONNX)."""
        ...


def open_encoder(path: str | Path, device: str = "cpu", *, threads: int | None = None) -> FeatureEncoder:
    """The content encoder in `path`, on `device`, whatever its kind (see the module docstring).

    `threads` sets onnxruntime's intra-op threads for an ONNX encoder (torch ones follow
    torch's own setting). Foreign, truncated or empty files raise a one-line DistillRVCError.
    """
    path = Path(path)
    if not path.exists():
        raise DistillRVCError(f"{path}: no such file")
    if path.is_dir():
        raise DistillRVCError(f"{path}: is a folder; {EXPECTED}")
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        raise DistillRVCError(f"{path}: the file is empty (an interrupted download or copy?)")
    if head.startswith(b"PK") or head[0] == 0x80:  # a PyTorch zip or legacy pickle
        return _open_torch(path, device)
    if _looks_onnx(head):
        from ..onnx.runtime import OnnxEncoder

        return OnnxEncoder(path, device, threads=threads)
    raise DistillRVCError(f"{path}: {_describe(head)}, not a content encoder; {EXPECTED}")


def _open_torch(path: Path, device: str) -> FeatureEncoder:
    from .content import content_encoder_from, load_encoder_file

    loaded = load_encoder_file(path)
    if isinstance(loaded, dict) and loaded.get("format") == STUDENT_FORMAT:
        try:
            from ..encoder.checkpoint import load_encoder
        except ImportError:
            raise DistillRVCError(f"{path}: a distilled content encoder, but this build cannot read distilled "
                                  "encoders (distill_rvc.encoder is missing); use hubert_base.pt or an encoder "
                                  ".onnx") from None
        del loaded
        return load_encoder(path, device)
    known = ("model", "weight", "format")  # fairseq; an RVC voice model and others content.py names
    if isinstance(loaded, dict) and not any(k in loaded for k in known) \
            and not any(str(k).startswith("feature_extractor.") for k in loaded):
        keys = ", ".join(map(str, list(loaded)[:4])) or "an empty dict"
        raise DistillRVCError(f"{path}: a PyTorch file holding {keys}, not a content encoder; {EXPECTED}")
    if not isinstance(loaded, dict):
        raise DistillRVCError(f"{path}: a PyTorch file holding a {type(loaded).__name__}, not a content encoder; "
                              f"{EXPECTED}")
    return content_encoder_from(loaded, path, device)


def _looks_onnx(head: bytes) -> bool:
    """A ModelProto starts with a small ir_version varint and then one of its other fields."""
    return len(head) >= 3 and head[0] == 0x08 and head[1] < 0x80 and head[2] in _ONNX_SECOND_TAGS


def _describe(head: bytes) -> str:
    """What a file that is neither PyTorch nor ONNX looks like, from its first bytes."""
    if head.startswith(b"RIFF"):
        return "a WAV file"
    if head.startswith((b"\x89HDF", b"\x93NUMPY")):
        return "an HDF5 or NumPy file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"an unknown binary file (starts with {head[:4].hex()})"
    return f"a text file (starts with {text[:8]!r})"
