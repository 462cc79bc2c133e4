"""The student encoder's file, encoder.pt: writing it and loading it back, checked.

    save_encoder(path, model, teacher=..., trained=...)   atomic; a plain dict of tensors and numbers
    load_encoder(path, device="cpu") -> StudentEncoder     in eval mode, with .path and .file_bytes

The file loads with `torch.load(weights_only=True)`:

    {"format": "distill-rvc-encoder", "format_version": 1, "version": "v2" | "v1", "dim": C,
     "arch": {n_mels, dim, blocks, kernel, expansion, out_dim}, "weights": state_dict,
     "teacher": {"sha256", "layer"}, "trained": {steps, recipe, held-out cosine, ...}}

Foreign, truncated or newer files are refused with one line. Not for: training
checkpoints (train.py keeps those under the work folder, through distill.train_state).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..errors import DistillRVCError
from ..safe_load import safe_torch_load
from .model import WIDTHS, EncoderArch, StudentEncoder

FORMAT = "distill-rvc-encoder"
FORMAT_VERSION = 1
KEYS = ("format", "format_version", "version", "dim", "arch", "weights", "teacher", "trained")


def encoder_dict(model: StudentEncoder, teacher: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "version": model.version, "dim": model.arch.out_dim,
        "arch": model.arch.as_dict(),
        "weights": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "teacher": dict(teacher), "trained": dict(trained),
    }


def save_encoder(path: str | Path, model: StudentEncoder, teacher: dict[str, Any], trained: dict[str, Any]) -> Path:
    """Write encoder.pt atomically (a temporary file, then os.replace)."""
    data = encoder_dict(model, teacher, trained)
    return atomic_write(path, lambda tmp: torch.save(data, tmp))


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> StudentEncoder:
    """encoder.pt -> StudentEncoder in eval mode on `device`; DistillRVCError for anything else."""
    path = Path(path)
    data = safe_torch_load(path, what="distill-rvc student encoder")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DistillRVCError(f"{path}: not a distill-rvc student encoder (no format {FORMAT!r})")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise DistillRVCError(f"{path}: student encoder format version {version!r} is newer than this "
                              f"distill-rvc reads ({FORMAT_VERSION}); upgrade distill-rvc")
    missing = [k for k in KEYS if k not in data]
    if missing:
        raise DistillRVCError(f"{path}: student encoder file without {', '.join(missing)} (damaged?)")
    if data["version"] not in WIDTHS or not isinstance(data["arch"], dict) or not isinstance(data["weights"], dict):
        raise DistillRVCError(f"{path}: student encoder file with a bad version, arch or weights entry (damaged?)")
    try:
        arch = EncoderArch.from_dict(data["arch"])
    except (DistillRVCError, TypeError) as e:
        raise DistillRVCError(f"{path}: {e}") from None
    if arch.out_dim != data["dim"]:
        raise DistillRVCError(f"{path}: dim {data['dim']} disagrees with arch.out_dim {arch.out_dim} (damaged?)")
    model = StudentEncoder(arch, data["version"])
    expected = model.state_dict()
    weights = data["weights"]
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        names = missing or extra
        raise DistillRVCError(f"{path}: student encoder weights {'missing' if missing else 'unexpected'}: "
                              f"{', '.join(names[:3])}{' and more' if len(names) > 3 else ''} (damaged?)")
    for key, value in weights.items():
        if not isinstance(value, torch.Tensor) or value.shape != expected[key].shape:
            shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise DistillRVCError(f"{path}: weight {key} is {shape}, expected {list(expected[key].shape)} (damaged?)")
    model.load_state_dict(weights)
    model.path = path
    model.file_bytes = path.stat().st_size
    model.teacher = dict(data["teacher"])
    model.trained = dict(data["trained"])
    return model.to(device).eval()
