"""The FCPE student's file, in torchfcpe's own checkpoint format, so that `load_fcpe(path)`,
`--fcpe f0.pt`, `--f0 fcpe:f0.pt` and torchfcpe itself load it unchanged.

    save_fcpe(path, model, teacher_checkpoint, steps)   atomic
    fcpe_checkpoint(model, teacher_checkpoint, steps) -> {"model", "config_dict", "global_step"}

torchfcpe's layout (as fcpe.py's `_fcpe_weights` reads it): the state dict under its own key
names, with `output_proj` as torch's old weight_norm pair (weight_v = the weight, weight_g =
the norm of each output row, [360, 1]) and the scalar `gaussian_blurred_cent_mask` (a
training constant, copied from the teacher's file); `config_dict` is the teacher's with
model.hidden_dims and model.n_layers set to the student's. Not for: reading it back (fcpe.py).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..features.fcpe import FCPE


def fcpe_checkpoint(model: FCPE, teacher_checkpoint: dict[str, Any], steps: int) -> dict[str, Any]:
    """The student as torchfcpe writes a CFNaiveMelPE: {"model", "config_dict", "global_step"}."""
    state = {k: v.detach().cpu().float().clone() for k, v in model.state_dict().items()}
    weight = state.pop("output_proj.weight")  # [360, H]
    state["output_proj.weight_g"] = weight.norm(dim=1, keepdim=True)  # [360, 1]
    state["output_proj.weight_v"] = weight
    mask = teacher_checkpoint["model"].get("gaussian_blurred_cent_mask")
    if mask is not None:
        state["gaussian_blurred_cent_mask"] = mask.detach().cpu().clone()
    config = copy.deepcopy(teacher_checkpoint["config_dict"])
    config["model"]["hidden_dims"] = model.config.hidden
    config["model"]["n_layers"] = model.config.layers
    return {"global_step": int(steps), "model": state, "config_dict": config}


def save_fcpe(path: str | Path, model: FCPE, teacher_checkpoint: dict[str, Any], steps: int) -> Path:
    """Write the student to `path` atomically (a temporary file, then os.replace)."""
    data = fcpe_checkpoint(model, teacher_checkpoint, steps)
    return atomic_write(path, lambda tmp: torch.save(data, tmp))
