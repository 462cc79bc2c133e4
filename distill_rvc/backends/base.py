"""What every backend offers: the `Backend` protocol and the `ModelInfo` a caller feeds by.

Both the torch backend (torch_backend.py) and the onnxruntime one (`onnx/runtime.py`) build a
`ModelInfo`; neither imports the other. Not here: opening a file (`backends.open_backend`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


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
    # the distilled content encoder the model was trained on (`teach --encoder`: file, sha256, ...);
    # None for a model of HuBERT's features
    trained_encoder: dict | None = None

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
