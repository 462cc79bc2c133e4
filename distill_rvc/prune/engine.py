"""The pruning engine: remove a Synthesizer's least important channels down to given widths.

    prune_synthesizer(model, target, importance, gradients)   in place, to the widths `target`
    IMPORTANCES                                               "magnitude" or "taylor"

Torch-Pruning does the work (compression-notes §4): weight norm (either kind) is folded first
and re-applied after; each unit (the decoder, each of enc_p's FFNs) gets its own
DependencyGraph, which keeps enc_p's custom LayerNorm and attention out of the graph; the
graph finds every layer coupled to a channel (ups, noise_convs, resblocks, cond, the next
stage), the importance classes score them, and this module only maps each group to the width
of the arch spec it is (`_WIDTH_KEYS`) and keeps that many channels. The flow is not a unit:
the graph fails on its gated, split-half WN (IndexError).

Not here: which widths to prune to (widths.py), the command (run.py), the widths spec and
rebuilding pruned models (models/arch.py, checkpoint.py).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import DistillRVCError
from ..models import Synthesizer
from ..models.arch import Arch, normalize, widths_of
from ..models.weight_norm import remove_weight_norm

log = logging.getLogger(__name__)

IMPORTANCES = ("magnitude", "taylor")


def prune_synthesizer(model: Synthesizer, target: Arch, importance: str = "magnitude",
                      gradients: Callable[[Synthesizer], None] | None = None) -> str:
    """Remove the least important channels of `model`, in place, until its widths are `target`
    (`model.config` and `model.arch` then describe the pruned model: `save_model` can write it).

    importance "magnitude": L2 norm of each channel's weights over every coupled layer
    (torch-pruning's GroupMagnitudeImportance). "taylor": |w * dL/dw| summed the same way
    (GroupTaylorImportance); `gradients(model)` must leave the loss gradients in `.grad`.
    When those gradients are all zero (a model identical to its teacher sits at the loss
    minimum) it falls back to magnitude. Returns the importance used.
    Weight norm (parametrized or legacy hooks) is folded first and re-applied after.
    """
    import torch_pruning as tp

    if importance not in IMPORTANCES:
        raise DistillRVCError(f"unknown importance {importance!r} (expected {' or '.join(IMPORTANCES)})")
    normed = _fold_weight_norm(model)
    used = importance
    if importance == "taylor":
        if gradients is None:
            raise DistillRVCError("Taylor importance needs distillation-loss gradients: give data and a teacher")
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            gradients(model)
        if not any(p.grad is not None and bool(p.grad.any()) for p in _pruned_parameters(model)):
            log.warning("Taylor importance: the loss gradient is zero (the model equals its teacher), so this step "
                        "ranks channels by magnitude")
            used = "magnitude"
        else:
            for p in _pruned_parameters(model):
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
    scorer = tp.importance.GroupTaylorImportance() if used == "taylor" else tp.importance.GroupMagnitudeImportance(p=2)
    for unit in _units(model):
        _prune_unit(unit, target, scorer)
    model.zero_grad(set_to_none=True)
    _reapply_weight_norm(model, normed)
    got = widths_of(model)
    if got != target:
        raise RuntimeError(f"pruning left widths {got}, not the planned {target}")
    model.config, model.arch = normalize(model.config, got)  # what save_model, export and compare read
    return used


@dataclass
class _Unit:
    """One traced piece: its module, example inputs and the layers whose output width is fixed."""

    prefix: str
    module: nn.Module
    inputs: tuple
    forward: Callable
    ignored: list[nn.Module]


def _units(model: Synthesizer) -> Iterator[_Unit]:
    cfg = model.config
    p = next(model.parameters())
    t = 4  # frames: the graph only needs shapes
    zeros = dict(device=p.device, dtype=p.dtype)
    dec = model.dec
    z, g = torch.zeros(1, cfg.inter_channels, t, **zeros), torch.zeros(1, cfg.gin_channels, 1, **zeros)
    f0 = torch.full((1, t), 100.0, device=p.device) if dec.nsf else None
    # conv_post's single output and the NSF source are fixed; conv_pre's input is the latent.
    yield _Unit("dec", dec, (z, f0, g), lambda m, x: m(x[0], x[1], g=x[2], source_noise=False),
                [dec.conv_post] + ([dec.m_source] if dec.nsf else []))
    h, mask = torch.zeros(1, cfg.hidden_channels, t, **zeros), torch.ones(1, 1, t, **zeros)
    for i, ffn in enumerate(model.enc_p.encoder.ffn_layers):
        # conv_2's output is enc_p's hidden width, which stays.
        yield _Unit(f"enc_p.encoder.ffn_layers.{i}", ffn, (h, mask), lambda m, x: m(*x), [ffn.conv_2])


def _pruned_parameters(model: Synthesizer) -> list[nn.Parameter]:
    return [p for unit in _units(model) for p in unit.module.parameters()]


# Output-pruned layer name -> the arch entry its group's width is.
_WIDTH_KEYS = (
    (re.compile(r"^dec\.conv_pre$"), lambda m: ("dec", "conv_pre")),
    (re.compile(r"^dec\.ups\.(\d+)$"), lambda m: ("dec", "ups", int(m[1]))),
    (re.compile(r"^dec\.resblocks\.(\d+)\.convs1\.(\d+)$"), lambda m: ("dec", "resblocks", int(m[1]), int(m[2]))),
    (re.compile(r"^enc_p\.encoder\.ffn_layers\.(\d+)\.conv_1$"), lambda m: ("enc_p", "ffn", int(m[1]))),
)


def _width_key(names: list[str]) -> tuple | None:
    for name in names:
        for pattern, key in _WIDTH_KEYS:
            m = pattern.match(name)
            if m:
                return key(m)
    return None


def _lookup(arch: Arch, key: tuple) -> int:
    value: Any = arch
    for k in key:
        value = value[k]
    return value


def _prune_unit(unit: _Unit, target: Arch, scorer) -> None:
    import torch_pruning as tp

    with torch.enable_grad():  # the graph is traced through autograd
        dg = tp.DependencyGraph().build_dependency(unit.module, example_inputs=unit.inputs, forward_fn=unit.forward)
    names = {m: f"{unit.prefix}.{n}" if n else unit.prefix for n, m in unit.module.named_modules()}
    plans = []
    for group in dg.get_all_groups(ignored_layers=unit.ignored, root_module_types=[nn.Conv1d, nn.ConvTranspose1d]):
        out_pruned = [names[dep.target.module] for dep, _ in group
                      if dg.is_out_channel_pruning_fn(dep.handler) and dep.target.module in names]
        key = _width_key(out_pruned)
        if key is None:
            log.debug("not pruning the group of %s (no width of the arch spec)", out_pruned)
            continue
        plans.append((key, group[0].dep.target.module, group[0].dep.handler))
    with torch.no_grad():
        for key, root, handler in plans:
            _prune_group(dg, root, handler, _lookup(target, key), scorer)


def _prune_group(dg, root: nn.Module, handler, want: int, scorer) -> None:
    """Remove the `have - want` lowest-scored channels of the group rooted at `root`."""
    have = dg.get_out_channels(root)
    if want >= have:
        return
    scores = scorer(dg.get_pruning_group(root, handler, list(range(have))))
    # A stable sort makes ties (e.g. channels that are all zero) drop deterministically.
    drop = torch.argsort(scores.float().cpu(), stable=True)[:have - want]
    dg.get_pruning_group(root, handler, sorted(drop.tolist())).prune()


def _fold_weight_norm(model: nn.Module) -> dict[str, tuple[str, int]]:
    """Fold every weight norm into a plain weight; returns {module name: (kind, dim)} to restore."""
    from torch.nn.utils.weight_norm import WeightNorm

    normed: dict[str, tuple[str, int]] = {}
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            param = module.parametrizations.weight[0]
            if not hasattr(param, "dim") or type(param).__name__ != "_WeightNorm":
                raise DistillRVCError(f"{name}: its weight has a parametrization other than weight norm; "
                                      "remove it before pruning")
            normed[name] = ("parametrization", param.dim)
        for hook_id, hook in list(module._forward_pre_hooks.items()):
            if isinstance(hook, WeightNorm) and hook.name == "weight":
                normed[name] = ("legacy", hook.dim)
                torch.nn.utils.remove_weight_norm(module)
    remove_weight_norm(model)
    return normed


def _reapply_weight_norm(model: nn.Module, normed: dict[str, tuple[str, int]]) -> None:
    modules = dict(model.named_modules())
    for name, (kind, dim) in normed.items():
        if kind == "legacy":
            torch.nn.utils.weight_norm(modules[name], dim=dim)
        else:
            nn.utils.parametrizations.weight_norm(modules[name], dim=dim)
