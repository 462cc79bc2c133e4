"""The width search: how many channels each pruned layer keeps, from a ratio or a budget.

    kept_width(width, ratio, round_to)          one layer's width after removing `ratio` of it
    scaled_widths(widths, ratio, ...)           every layer on its own ("free" widths)
    rvc_conv_pre / rvc_widths(widths, ratio)    one decoder and one FFN width RVC can build ("rvc")
    planned_widths(widths, ratio, ..., mode)    either, by mode
    count_params(model) / params_of(config, arch)   inference parameters, of a model or of widths
    ratio_for_target(config, widths, params=|macs=)  the smallest ratio that meets a budget

Pure arithmetic on the arch spec (models/arch.py: {"dec": {...}, "enc_p": {"ffn": [...]}}):
nothing here touches weights; costs are counted on the meta device or fake tensors. What is
pruned: the decoder (conv_pre/cond width, each stage's width, each ResBlock1 inner width) and
the prior encoder's FFN filter widths; the latent, enc_p's hidden width, conv_post, the NSF
source, the speaker embedding and the flow keep theirs.

Not here: removing the channels (engine.py), the command (run.py).
"""
from __future__ import annotations

import copy
import logging
import math
from typing import Any

import torch
from torch import nn

from ..checkpoint import build_model
from ..errors import DistillRVCError
from ..memory import macs_per_second
from ..models.arch import Arch

log = logging.getLogger(__name__)

PARTS = ("dec", "ffn")
WIDTH_MODES = ("rvc", "free")  # one RVC-buildable width per part, or every layer's own width
MAX_RATIO = 0.95  # the highest ratio a --target-params/--target-macs search may pick


def kept_width(width: int, ratio: float, round_to: int = 1) -> int:
    """Channels kept of `width` when `ratio` of them go: the nearest multiple of `round_to`
    to width * (1 - ratio), never below `round_to`; a width of at most `round_to` stays whole."""
    if ratio <= 0 or width <= round_to:
        return width
    keep = round_to * math.floor(width * (1 - ratio) / round_to + 0.5)
    return min(width, max(round_to, keep))


def scaled_widths(widths: Arch, ratio: float, round_to: int = 1, parts: tuple[str, ...] = PARTS) -> Arch:
    """The widths after removing `ratio` of the channels of every layer in `parts`."""
    def keep(w: int) -> int:
        return kept_width(w, ratio, round_to)

    out = copy.deepcopy(widths)
    if "dec" in parts:
        d = widths["dec"]
        out["dec"] = {"conv_pre": keep(d["conv_pre"]), "ups": [keep(w) for w in d["ups"]],
                      "resblocks": [[keep(w) for w in block] for block in d["resblocks"]]}
    if "ffn" in parts:
        out["enc_p"] = {"ffn": [keep(w) for w in widths["enc_p"]["ffn"]]}
    return out


def rvc_conv_pre(dec: dict[str, Any], ratio: float, round_to: int = 1) -> int | None:
    """The decoder width (conv_pre, RVC's upsample_initial_channel C) for `ratio` when every
    stage must be C // 2^(i+1) and every ResBlock1 inner width its stage's, as RVC builds it.

    The ideal is C0 * (1 - ratio). Of the widths at most `round_to` channels from it, the one on
    the coarsest grid is taken: multiples of round_to * 2^n (n stages: every stage a multiple of
    round_to), then round_to * 2^(n-1), ..., each also a multiple of 2^n (exact halvings), then
    any multiple of round_to, then any width (RVC floors the halvings). With round_to 8 and RVC's
    4 stages: a 224-wide decoder at 0.5 -> 112 (56/28/14/7), at 0.3 -> 160 (80/40/20/10); a
    512-wide one at 0.3 -> 352 (176/88/44/22). Never wider than what `dec` has (each stage and
    inner width must only lose channels: the ideal is capped there first); None when not even
    2^n (one channel per stage) fits.
    """
    pre, ups, blocks = dec["conv_pre"], dec["ups"], dec["resblocks"]
    n = len(ups)
    per_stage = len(blocks) // n
    widest = pre  # the widest C whose floored halvings fit inside every current width
    for i, width in enumerate(ups):
        narrowest = min([width] + [w for block in blocks[i * per_stage:(i + 1) * per_stage] for w in block])
        widest = min(widest, (narrowest + 1) * 2 ** (i + 1) - 1)
    if widest < 2 ** n:
        return None
    if ratio <= 0 and widest == pre:
        return pre
    ideal = min(pre * (1 - ratio), widest)
    grids = list(dict.fromkeys([math.lcm(round_to * 2 ** k, 2 ** n) for k in range(n, -1, -1)] + [round_to, 1]))
    for q in grids:
        c = min(max(q * math.floor(ideal / q + 0.5), q), q * (widest // q))
        if c >= 2 ** n and abs(c - ideal) <= round_to:
            return c
    return min(max(math.floor(ideal + 0.5), 2 ** n), widest)


def rvc_widths(widths: Arch, ratio: float, round_to: int = 1, parts: tuple[str, ...] = PARTS) -> Arch:
    """The widths after removing about `ratio` of the channels, kept RVC-buildable: one decoder
    width (`rvc_conv_pre`; stages halving, inner widths equal to their stage) and one FFN width
    (the narrowest layer's `kept_width`). A decoder where no such width fits keeps per-layer
    widths (`scaled_widths`), and the model is then written in the project format."""
    out = copy.deepcopy(widths)
    if ratio <= 0:
        return out
    if "dec" in parts:
        d = widths["dec"]
        pre = rvc_conv_pre(d, ratio, round_to)
        if pre is None:
            log.warning("no RVC-buildable decoder width fits in conv_pre %d, stages %s: pruning per layer",
                        d["conv_pre"], d["ups"])
            out["dec"] = scaled_widths(widths, ratio, round_to, ("dec",))["dec"]
        else:
            stages = [pre // 2 ** (i + 1) for i in range(len(d["ups"]))]
            per_stage = len(d["resblocks"]) // len(stages)
            inner = [[stages[k // per_stage]] * len(block) for k, block in enumerate(d["resblocks"])]
            out["dec"] = {"conv_pre": pre, "ups": stages, "resblocks": inner}
    if "ffn" in parts:
        ffn = widths["enc_p"]["ffn"]
        out["enc_p"] = {"ffn": [min(kept_width(w, ratio, round_to) for w in ffn)] * len(ffn)}
    return out


def planned_widths(widths: Arch, ratio: float, round_to: int = 1, parts: tuple[str, ...] = PARTS,
                   mode: str = "rvc") -> Arch:
    """`rvc_widths` (mode "rvc") or `scaled_widths` (mode "free")."""
    if mode not in WIDTH_MODES:
        raise DistillRVCError(f"unknown widths mode {mode!r} (expected {' or '.join(WIDTH_MODES)})")
    return (rvc_widths if mode == "rvc" else scaled_widths)(widths, ratio, round_to, parts)


def count_params(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level part as used for inference (no enc_q), plus "total"."""
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()
              if name != "enc_q"}
    return {**counts, "total": sum(counts.values())}


def params_of(config, arch: Arch) -> int:
    """Inference parameters of the model with these widths (built on the meta device)."""
    with torch.device("meta"):
        return count_params(build_model(config, arch))["total"]


def ratio_for_target(config, widths: Arch, *, round_to: int = 1, parts: tuple[str, ...] = PARTS,
                     params: int | None = None, macs: float | None = None, max_ratio: float = MAX_RATIO,
                     mode: str = "rvc") -> float:
    """The smallest ratio whose widths bring the model to at most `params` parameters or
    `macs` multiply-accumulates per second of audio (bisection; widths only, no weights)."""
    if (params is None) == (macs is None):
        raise DistillRVCError("give exactly one target: parameters or MACs per second")
    target, unit = (params, "parameters") if params is not None else (macs, "MAC per second of audio")

    def cost(ratio: float) -> float:
        arch = planned_widths(widths, ratio, round_to, parts, mode)
        return params_of(config, arch) if params is not None else macs_per_second(config, arch=arch)

    if cost(0.0) <= target:
        log.info("the model already has at most %s %s: nothing to prune", f"{target:,.0f}", unit)
        return 0.0
    floor = cost(max_ratio)
    if floor > target:
        raise DistillRVCError(
            f"pruning cannot reach {target:,.0f} {unit}: at ratio {max_ratio} the model still has {floor:,.0f} "
            f"(the flow, the latent and enc_p's hidden width are not pruned); raise the target, or `teach` a "
            "smaller student first")
    lo, hi = 0.0, max_ratio
    while hi - lo > 1e-4:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if cost(mid) <= target else (mid, hi)
    return hi
