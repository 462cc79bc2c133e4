"""`TorchBackend`: a loaded `Synthesizer` run by torch on the CPU or a CUDA device, as a `Backend`.

With `deterministic=True` the NSF source noise is off (`source_noise=False`), so two models fed
the same prior noise can be compared sample by sample.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import trained_encoder
from .base import ModelInfo

log = logging.getLogger(__name__)


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
                              file_bytes=ckpt.file_bytes if ckpt is not None else None,
                              trained_encoder=trained_encoder(model))

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
