"""Weight norm, where RVC uses it, and its conversion at the file boundary.

RVC files store weight-normed convs as `X.weight_g` / `X.weight_v` (legacy hook names);
newer torch writes `X.parametrizations.weight.original0/1`. weight = g * v / ||v|| with the
norm over every dim but 0 (for ConvTranspose1d dim 0 is the *input* channels).

Models in memory hold plain `X.weight` (folded) unless `apply_weight_norm` adds torch's
parametrization for training; `remove_weight_norm` folds it back. Pruning and ONNX export
need the folded form.
"""
from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn.utils import parametrize

# Module names RVC weight-norms (rvc-format.md §3a); ResBlock2 has `convs.j`.
WEIGHT_NORMED = re.compile(
    r"^(dec\.ups\.\d+"
    r"|dec\.resblocks\.\d+\.convs[12]?\.\d+"
    r"|(flow\.flows\.\d+|enc_q)\.enc\.(in_layers\.\d+|res_skip_layers\.\d+|cond_layer))$"
)
_G_SUFFIXES = (".weight_g", ".parametrizations.weight.original0")
_V_SUFFIXES = (".weight_v", ".parametrizations.weight.original1")


def fold(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """g [C0, 1, ...], v [C0, ...] -> weight = g * v / ||v|| (norm over all dims but 0)."""
    return torch._weight_norm(v, g, 0)


def magnitude(weight: torch.Tensor) -> torch.Tensor:
    """The g that reproduces `weight` with v = weight: ||weight|| over all dims but 0."""
    return torch.norm_except_dim(weight, 2, 0)


def fold_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace every (g, v) pair, under either naming, by the folded `weight`, in float32
    (float64 stays float64).

    RVC folds in fp32: its model is fp32, load_state_dict copies the fp16 g and v into fp32
    parameters and the weight-norm hook computes g * v / ||v|| in fp32. Rounding the folded
    weight back to the file's fp16 moves the audio by ~4e-4; in fp32 it matches RVC to ~1e-6.
    Tensors that are not weight-normed keep their stored dtype.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        g_suffix = next((s for s in _G_SUFFIXES if key.endswith(s)), None)
        v_suffix = next((s for s in _V_SUFFIXES if key.endswith(s)), None)
        if v_suffix:
            continue  # handled with its g
        if g_suffix:
            prefix = key[: -len(g_suffix)]
            v = sd.get(prefix + _V_SUFFIXES[_G_SUFFIXES.index(g_suffix)])
            if v is None:
                raise KeyError(f"{key} has no matching weight_v")
            dtype = torch.promote_types(torch.promote_types(value.dtype, v.dtype), torch.float32)
            out[prefix + ".weight"] = fold(value.to(dtype), v.to(dtype))
        else:
            out[key] = value
    orphans = [k for k in sd if k.endswith(_V_SUFFIXES) and
               k[: -len(next(s for s in _V_SUFFIXES if k.endswith(s)))] + ".weight" not in out]
    if orphans:
        raise KeyError(f"{orphans[0]} has no matching weight_g")
    return out


def to_rvc_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """State dict -> RVC's naming: parametrized pairs renamed, folded weights of the
    weight-normed modules split into (g = ||w||, v = w), which RVC folds back to w."""
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith(".parametrizations.weight.original0"):
            out[key.replace(".parametrizations.weight.original0", ".weight_g")] = value
        elif key.endswith(".parametrizations.weight.original1"):
            out[key.replace(".parametrizations.weight.original1", ".weight_v")] = value
        elif key.endswith(".weight") and WEIGHT_NORMED.match(key[: -len(".weight")]):
            prefix = key[: -len(".weight")]
            out[prefix + ".weight_g"] = magnitude(value.float()).to(value.dtype)
            out[prefix + ".weight_v"] = value
        else:
            out[key] = value
    return out


def weight_normed_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if WEIGHT_NORMED.match(name)]


def apply_weight_norm(model: nn.Module) -> nn.Module:
    """Add torch's weight-norm parametrization where RVC has weight norm (for training)."""
    for _, module in weight_normed_modules(model):
        if not parametrize.is_parametrized(module, "weight"):
            nn.utils.parametrizations.weight_norm(module)
    return model


def remove_weight_norm(model: nn.Module) -> nn.Module:
    """Fold every weight-norm parametrization into a plain `weight` (inference, pruning, export)."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model
