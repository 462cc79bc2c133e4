"""One way to run any of our synthesizers: torch on CPU/CUDA, onnxruntime on CPU/CUDA.

    backend = open_backend("student.onnx", device="cpu", threads=2)
    audio = backend.run(phone, pitch, pitchf, sid=0, noise=noise)   # [B, T * hop] float32

`run` takes what RVC's synthesizer takes, as numpy arrays: phone [B, T, C] float32 (content
features at 100 frames/s), pitch [B, T] int64 coarse bins and pitchf [B, T] float32 Hz (None
for no-f0 models), a speaker id, and noise [B, inter, T], the standard-normal prior noise
(drawn when None). `convert`, `compare` and `bench` all go through it, so a .pth and an .onnx
model are converted, timed and compared the same way.

ONNX files come in two interfaces (deploy-targets.md §1): the w-okada one draws its prior
noise inside the graph (`accepts_noise` is False: a given `noise` is ignored), the RVC one
takes it as `rnd`. Files without our metadata (RVC's own exporter) are read off their input
shapes and one probe run. With `deterministic=True` the NSF source noise is off (torch's
`source_noise=False`, or the RVC graph with its random nodes made zeros), so two models fed
the same `noise` can be compared sample by sample. The files:

    base.py            the `Backend` protocol and `ModelInfo`
    torch_backend.py   `TorchBackend`
    (onnx/runtime.py)  `OrtBackend`, with the ONNX format it reads

and here `open_backend`, which picks one by the file's suffix.

Not for: feature extraction (`features`), chunking (`convert`) or exporting (`onnx/export.py`).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import DistillRVCError
from .base import Backend, ModelInfo
from .torch_backend import TorchBackend

MODEL_SUFFIXES = (".pth", ".pt", ".onnx")
__all__ = ["Backend", "ModelInfo", "TorchBackend", "open_backend", "resolve_device", "MODEL_SUFFIXES"]


# ------------------------------------------------------------------------------- opening
def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; the one check of options.py, as text."""
    from ..options import resolve_device as check_device

    return str(check_device(device))


def open_backend(path: str | Path, device: str = "cpu", *, threads: int | None = None,
                 deterministic: bool = False) -> Backend:
    """A .pth (any format `load_model` reads) or .onnx model file, ready to `run` on `device`."""
    path = Path(path)
    if not path.is_file():
        raise DistillRVCError(f"{path}: no such model file")
    device = resolve_device(device)
    if path.suffix.lower() == ".onnx":
        from ..onnx.runtime import OrtBackend  # onnxruntime is imported only for .onnx files

        return OrtBackend(path, device, threads=threads, deterministic=deterministic)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise DistillRVCError(f"{path}: expected a .pth or .onnx voice model")
    from ..checkpoint import load_model

    return TorchBackend(load_model(path), device, deterministic=deterministic, path=path)
