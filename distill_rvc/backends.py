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
the same `noise` can be compared sample by sample. The onnxruntime backend, `OrtBackend`, lives
with the ONNX format in `onnx/runtime.py`; this module has the protocol and the torch one.

Not for: feature extraction (`features`), chunking (`convert`) or exporting (`onnx/export.py`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .errors import DistillRVCError

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".pth", ".pt", ".onnx")


@dataclass
class ModelInfo:
    """What a caller must know to feed a model and read its output."""

    path: Path | None
    format: str  # "torch", "onnx-wokada" or "onnx-rvc"
    sr: int
    hop: int  # output samples per frame
    f0: bool
    phone_dim: int  # 256 (v1) or 768 (v2)
    inter_channels: int | None  # width of the prior noise; None when the graph draws it itself
    params: int  # torch: parameters, weight norm folded; ONNX: values in the graph's initializers
    file_bytes: int | None

    @property
    def version(self) -> str:
        return "v1" if self.phone_dim == 256 else "v2"

    @property
    def widths(self) -> tuple[int, bool, int | None]:
        """phone_dim, f0, inter_channels: what `timing.synthetic_inputs` needs to feed this model."""
        return self.phone_dim, self.f0, self.inter_channels


class Backend(Protocol):
    info: ModelInfo
    name: str  # e.g. "torch-cpu", "ort-cuda"
    accepts_noise: bool
    deterministic: bool

    def run(self, phone: np.ndarray, pitch: np.ndarray | None, pitchf: np.ndarray | None, sid: int = 0,
            noise: np.ndarray | None = None) -> np.ndarray:
        """phone [B, T, C], pitch/pitchf [B, T] or None, noise [B, inter, T] or None -> audio [B, T * hop]."""
        ...


# --------------------------------------------------------------------------------- torch
class TorchBackend:
    """A `Synthesizer` on a torch device (fp32)."""

    accepts_noise = True

    def __init__(self, model, device: str = "cpu", *, deterministic: bool = False, path: Path | None = None):
        self.device = torch.device(device)
        self.model = model.to(self.device).float().eval()
        self.deterministic = deterministic
        self.name = f"torch-{self.device.type}"
        cfg = model.config
        ckpt = model.checkpoint
        self.info = ModelInfo(path=path, format="torch", sr=cfg.sr, hop=cfg.hop_length, f0=cfg.f0,
                              phone_dim=cfg.phone_dim, inter_channels=cfg.inter_channels,
                              params=sum(p.numel() for p in model.parameters()),
                              file_bytes=ckpt.file_bytes if ckpt is not None else None)

    def run(self, phone: np.ndarray, pitch: np.ndarray | None, pitchf: np.ndarray | None, sid: int = 0,
            noise: np.ndarray | None = None) -> np.ndarray:
        b, t = phone.shape[:2]
        dev = self.device

        def tensor(x: np.ndarray | None) -> torch.Tensor | None:
            return None if x is None else torch.from_numpy(np.ascontiguousarray(x)).to(dev)

        with torch.no_grad():
            audio = self.model.infer(tensor(phone.astype(np.float32, copy=False)),
                                     torch.full((b,), t, dtype=torch.long, device=dev),
                                     tensor(pitch) if self.info.f0 else None,
                                     tensor(pitchf.astype(np.float32, copy=False)) if self.info.f0 else None,
                                     torch.full((b,), int(sid), dtype=torch.long, device=dev),
                                     noise=tensor(None if noise is None else noise.astype(np.float32, copy=False)),
                                     source_noise=not self.deterministic)
        return audio[:, 0].float().cpu().numpy()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


# ------------------------------------------------------------------------------- opening
def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; the one check of options.py, as text."""
    from .options import resolve_device as check_device

    return str(check_device(device))


def open_backend(path: str | Path, device: str = "cpu", *, threads: int | None = None,
                 deterministic: bool = False) -> Backend:
    """A .pth (any format `load_model` reads) or .onnx model file, ready to `run` on `device`."""
    path = Path(path)
    if not path.is_file():
        raise DistillRVCError(f"{path}: no such model file")
    device = resolve_device(device)
    if path.suffix.lower() == ".onnx":
        from .onnx.runtime import OrtBackend  # it builds a ModelInfo: imported here, not above

        return OrtBackend(path, device, threads=threads, deterministic=deterministic)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise DistillRVCError(f"{path}: expected a .pth or .onnx voice model")
    from .checkpoint import load_model

    return TorchBackend(load_model(path), device, deterministic=deterministic, path=path)
