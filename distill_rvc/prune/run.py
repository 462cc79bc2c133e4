"""`prune()`: structured pruning of a teacher or student with Torch-Pruning, then recovery distillation.

    load the model (and its teacher) -> the widths of each step: `ratio * i / steps` of the
    original widths removed (or the ratio that meets a global --target-params / --target-macs
    budget), as RVC-buildable widths ("rvc", the default: see `rvc_widths`) or per layer
    rounded to `round_to` ("free": see `scaled_widths`)
    -> per step: rank channels (magnitude, or Taylor from distillation-loss gradients), remove
       the lowest through torch-pruning's dependency graph, then distil the pruned model
       back toward the teacher for `recover_steps` (the teach trainer, the same losses)
    -> save (the project format with the `arch` widths, or RVC's format when the widths are
       uniform) -> a report: params, MACs/s, file size, CPU latency, fidelity to the teacher

What is pruned: the decoder (conv_pre/cond width, each stage's width, each ResBlock1 inner
width) and the prior encoder's FFN filter widths. What is kept: the latent width (the noise
input and the ONNX interfaces keep their shapes), enc_p's hidden width (its LayerNorm
statistics and the relative-position tables shared by the heads change with it), conv_post,
the NSF source, the speaker embedding, and the flow. The flow is left out: torch-pruning's
graph fails on its gated, split-half WN (IndexError), and it costs about 1 % of the MACs and
of the CPU time (bench/bench_prune.py), so its width is left to distillation (the recipe's
hidden_channels, n_flows, flow_wn_layers), which keeps RVC's layout and numerics.

How torch-pruning is used (compression-notes §4): weight norm (either kind) is folded first
and re-applied after; each unit (the decoder, each FFN) gets its own DependencyGraph, which
keeps enc_p's custom LayerNorm and attention out of the graph; the engine finds every layer
coupled to a channel (ups, noise_convs, resblocks, cond, the next stage), the importance
classes score them, and this module only decides how many channels each group keeps.

Not here: the widths spec and rebuilding pruned models (models/arch.py, checkpoint.py), the
training loop (distill/trainer.py).
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import re
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..atomic import write_json
from ..checkpoint import FORMAT_PROJECT, build_model, load_model, save_model
from ..options import resolve_device
from ..errors import DistillRVCError
from ..models import Synthesizer
from ..models.arch import Arch, normalize, not_rvc_because, widths_of
from ..models.weight_norm import remove_weight_norm

log = logging.getLogger(__name__)

PARTS = ("dec", "ffn")
IMPORTANCES = ("magnitude", "taylor")
WIDTH_MODES = ("rvc", "free")  # one RVC-buildable width per part, or every layer's own width
DEFAULT_RECIPE = "4gb"  # recovery settings for models that were not taught by distill-rvc (teachers)
MAX_RATIO = 0.95  # the highest ratio a --target-params/--target-macs search may pick
FIDELITY = "held-out log-mel L1 vs the teacher (lower is closer)"


# ------------------------------------------------------------------------------ widths
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
    from ..memory import macs_per_second

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


# ------------------------------------------------------------------------------ engine
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


# --------------------------------------------------------------------------- measures
def cpu_latency(models: dict[str, Synthesizer], seconds: float = 2.0, runs: int = 3,
                threads: int | None = None, seed: int = 0) -> dict[str, float]:
    """Median seconds of `infer` per model on the same `seconds` of synthetic input, on the CPU,
    timed interleaved (a busy machine slows every model alike). Models must share the interface."""
    config = next(iter(models.values())).config
    t = max(int(seconds * 100), 8)
    g = torch.Generator().manual_seed(seed)
    phone = torch.randn(1, t, config.phone_dim, generator=g)
    pitch = torch.randint(1, 256, (1, t), generator=g) if config.f0 else None
    pitchf = torch.full((1, t), 180.0) if config.f0 else None
    noise = torch.randn(1, config.inter_channels, t, generator=g)
    args = (phone, torch.tensor([t]), pitch, pitchf, torch.zeros(1, dtype=torch.long))
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        times: dict[str, list[float]] = {name: [] for name in models}
        for model in models.values():
            model.infer(*args, noise=noise[:, :model.config.inter_channels], source_noise=False)  # warm-up
        for _ in range(max(runs, 1)):
            for name, model in models.items():
                start = time.perf_counter()
                model.infer(*args, noise=noise[:, :model.config.inter_channels], source_noise=False)
                times[name].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _describe(model: Synthesizer) -> dict[str, Any]:
    from ..memory import macs_per_second

    return {"params": count_params(model), "macs_per_s": macs_per_second(model.config, arch=widths_of(model))}


# ------------------------------------------------------------------- distillation glue
@dataclass
class _Recovery:
    """What recovery distillation, Taylor gradients and fidelity share: teacher, data, settings."""

    teacher: Synthesizer
    dataset: Any
    recipe: Any  # distill.recipes.Recipe
    device: torch.device

    def session(self, model: Synthesizer, lr: float | None = None):
        from ..distill.trainer import Session, choose_precision

        train = dataclasses.replace(self.recipe.train, grad_checkpointing=False,
                                    **({"lr": lr, "warmup_steps": 0} if lr is not None else {}))
        # An untrained discriminator and fresh feature projections only add noise to a
        # measurement: Taylor scores and fidelity use the output terms.
        loss = dataclasses.replace(self.recipe.loss, adversarial=0.0, features=0.0)
        precision = choose_precision(train.precision if self.device.type == "cuda" else "fp32", self.device)
        return Session(model, self.teacher, train, loss, self.device, precision)

    def fidelity(self, model: Synthesizer) -> float:
        """Held-out log-mel L1 to the teacher, on the segments the trainer holds out."""
        from ..distill.batches import eval_items, split_eval
        from ..distill.evaluate import evaluate

        cfg = self.recipe.train
        train_idx, held = split_eval(self.dataset, cfg.eval_items, cfg.seed, cfg.segment_frames)
        held = held or train_idx[:cfg.eval_items]
        items = eval_items(self.dataset, held, cfg.eval_frames, self.teacher.config.f0)
        value, _ = evaluate(self.session(model), items, cfg.seed)
        model.eval()
        return value

    def gradients(self, step: int) -> Callable[[Synthesizer], None]:
        """Fills `.grad` with the distillation loss gradient over one batch (its micro-batches
        accumulate), without moving any weight: the trainer's own step, at learning rate 0."""
        from ..distill.batches import Batches, split_eval

        def fill(model: Synthesizer) -> None:
            session = self.session(model, lr=0.0)
            cfg = session.train_cfg
            train_idx, _ = split_eval(self.dataset, cfg.eval_items, cfg.seed, cfg.segment_frames)
            t = self.teacher.config
            batches = Batches(self.dataset, train_idx, cfg, t.inter_channels, t.hop_length, t.f0)
            session.step(batches.draw(1_000_000 + step), 1, max(cfg.batch_size // cfg.accumulation, 1))
            model.eval()

        return fill


def recovery_recipe(model: Synthesizer, recipe=None):
    """The recipe whose train and loss settings recovery uses: `recipe` (name, path or Recipe),
    else the one the model was taught with (its metadata), else the shipped default."""
    from ..distill.recipes import Recipe, load_recipe

    if isinstance(recipe, Recipe):
        return recipe
    if recipe:
        return load_recipe(recipe)
    ckpt = model.checkpoint
    spec = ckpt.metadata.get("recipe_spec") if ckpt is not None else None
    if isinstance(spec, dict):
        try:
            return Recipe.from_dict(spec, source=f"{ckpt.path} (its teach recipe)")
        except DistillRVCError as e:
            log.warning("ignoring the model's stored recipe (%s); using %s", e, DEFAULT_RECIPE)
    return load_recipe(DEFAULT_RECIPE)


# ------------------------------------------------------------------------ the command
@dataclass
class PruneReport:
    """Everything `prune` measured; `to_dict()` is what --report writes."""

    model: str
    teacher: str | None
    out: str
    format: str
    ratio: float
    steps: int
    importance: str
    round_to: int
    widths_mode: str
    parts: list[str]
    target: dict[str, float] | None
    recover_steps: int
    recipe: str | None
    before: dict[str, Any]  # params (per part and total), macs_per_s, file_bytes, latency_s
    after: dict[str, Any]
    widths: dict[str, Arch]  # before / after
    fidelity: dict[str, Any]  # metric, unpruned, final (None without data)
    schedule: list[dict[str, Any]] = field(default_factory=list)  # per step: ratio, params, importance, fidelity
    latency: dict[str, Any] = field(default_factory=dict)  # seconds_of_audio, threads, runs
    run_dir: str | None = None
    written: str | None = None  # the file save_model wrote (its suffix may differ from `out`'s)
    not_rvc_because: str | None = None  # why RVC, Applio and w-okada cannot load it (project format)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def prune(model: str | Path, out: str | Path, *, teacher: str | Path | None = None, data: str | Path | None = None,
          ratio: float | None = None, steps: int = 1, importance: str = "magnitude", round_to: int = 8,
          widths_mode: str = "rvc", parts: tuple[str, ...] = PARTS, target_params: int | None = None,
          target_macs: float | None = None, recover_steps: int = 0, recipe=None, batch_size: int | None = None,
          device: str | None = None,
          run_dir: str | Path | None = None, report: str | Path | None = None, latency_seconds: float = 2.0,
          latency_runs: int = 3, threads: int | None = None, half: bool = True, progress: bool = True,
          dataset=None) -> PruneReport:
    """Prune the model file `model` into `out`; see the module docstring for the steps.

    `ratio`: share of channels removed from every pruned layer (default 0.3), reached in
    `steps` equal steps, each followed by `recover_steps` of distillation toward `teacher`
    (default: the unpruned model itself) on the dataset cache `data` (or an in-memory
    `dataset`). `target_params` / `target_macs` (MAC per second of audio) replace `ratio` by
    the smallest ratio that meets them. `widths_mode` "rvc" keeps the widths RVC-buildable
    (`rvc_widths`), "free" rounds every layer on its own (`scaled_widths`). `recipe` (name,
    path or Recipe) sets recovery's training and losses (default: the model's own teach recipe,
    else "4gb"); `batch_size` overrides its batch. `latency_seconds=0` skips the CPU timing.
    Returns the report, also written as JSON to `report` when given.
    """
    from tqdm.auto import tqdm

    from ..safe_load import file_sha256

    model_path, out = Path(model), Path(out)
    _check_options(ratio, steps, importance, round_to, parts, target_params, target_macs, recover_steps,
                   batch_size, out)
    if widths_mode not in WIDTH_MODES:
        raise DistillRVCError(f"--widths must be {' or '.join(WIDTH_MODES)}, not {widths_mode!r}")
    student = load_model(model_path)
    target_model = load_model(teacher) if teacher else None
    if target_model is not None:
        _check_pair(student, target_model)
    needs_data = recover_steps > 0 or importance == "taylor"
    if dataset is None and data is not None:
        from ..data.dataset import Dataset

        dataset = Dataset(data)
    if needs_data and dataset is None:
        raise DistillRVCError("recovery distillation and Taylor importance need data: pass --data (a prepared "
                              "dataset cache)")
    recovery = None
    if dataset is not None:
        dim = getattr(dataset, "feature_dim", student.config.phone_dim)
        if dim != student.config.phone_dim:
            raise DistillRVCError(f"the dataset has {dim}-d content features but the model takes "
                                  f"{student.config.phone_dim}-d: prepare it with the {student.config.version} encoder")
        rec = recovery_recipe(student, recipe)
        n = max(recover_steps, 1)
        train_changes = {"steps": n, "warmup_steps": min(rec.train.warmup_steps, recover_steps // 10),
                         "eval_every": n, "checkpoint_every": n, "keep_checkpoints": 1}
        if batch_size:
            train_changes.update(batch_size=batch_size, accumulation=1)
        rec = rec.replace(train=train_changes)
        dev = resolve_device(device)  # auto, cpu, cuda, cuda:N; anything else is one line (options.py)
        # Without --teacher, the unpruned model is its own target.
        target_model = target_model if target_model is not None else copy.deepcopy(student)
        recovery = _Recovery(target_model, dataset, rec, dev)

    base = widths_of(student)
    target = None
    if target_params is not None or target_macs is not None:
        ratio = ratio_for_target(student.config, base, round_to=round_to, parts=parts, params=target_params,
                                 macs=target_macs, mode=widths_mode)
        target = {"params": target_params} if target_params is not None else {"macs_per_s": target_macs}
        log.info("ratio %.4f meets the target %s", ratio, target)
    ratio = 0.3 if ratio is None else ratio
    original = copy.deepcopy(student)
    before = _describe(student) | {"file_bytes": model_path.stat().st_size}
    unpruned = recovery.fidelity(student) if recovery else None
    if run_dir is None and recover_steps:
        run_dir = Path("runs") / f"prune-{out.stem}-{datetime.now():%Y%m%d-%H%M%S}"

    schedule = []
    with tqdm(total=steps, desc="prune", unit="step", disable=not progress, dynamic_ncols=True) as bar:
        for i in range(1, steps + 1):
            step_ratio = ratio * i / steps
            widths = planned_widths(base, step_ratio, round_to, parts, widths_mode)
            grads = recovery.gradients(i) if (recovery and importance == "taylor") else None
            used = prune_synthesizer(student, widths, importance, grads)
            row: dict[str, Any] = {"step": i, "ratio": round(step_ratio, 6), "params": count_params(student)["total"],
                                   "importance": used, "mel_l1_pruned": None, "mel_l1_recovered": None}
            if recovery:
                row["mel_l1_pruned"] = recovery.fidelity(student)
            if recover_steps:
                from ..distill.trainer import train

                result = train(student, recovery.teacher, recovery.dataset, recovery.recipe.train,
                               recovery.recipe.loss, Path(run_dir) / f"step_{i}", device=recovery.device,
                               progress=progress, fingerprint={"arch": widths_of(student)})
                row["mel_l1_recovered"] = result.fidelity["mel_l1"]
            schedule.append(row)
            bar.update(1)
            bar.set_postfix(params=f"{row['params']:,}")

    student = student.cpu().float().eval()
    carried = {k: v for k, v in (student.checkpoint.metadata if student.checkpoint else {}).items()
               if k not in ("info", "fidelity", "params", "steps", "not_rvc_because", "prune")}
    final = schedule[-1]["mel_l1_recovered"] if recover_steps else schedule[-1]["mel_l1_pruned"]
    fidelity = {"metric": FIDELITY, "unpruned": unpruned, "final": final}
    settings = {"ratio": ratio, "steps": steps, "importance": importance, "round_to": round_to,
                "widths": widths_mode, "parts": list(parts),
                "recover_steps": recover_steps, "target": target,
                "recipe": recovery.recipe.name if recovery else None,
                "model_sha256": file_sha256(model_path), "teacher_sha256": file_sha256(teacher) if teacher else None}
    metadata = {**carried, "info": f"distill-rvc pruned ({ratio:.2f}) from {model_path.name}",
                "prune": settings, "fidelity": fidelity, "params": count_params(student)}
    saved = save_model(student, out, metadata=metadata, half=half)  # project format: .drvc.pt, not .pth
    fmt, written = saved.format, saved.path
    why = (not_rvc_because(student.config, student.arch) or student.config.fits_rvc()[1]
           if fmt == FORMAT_PROJECT else None)
    after = _describe(student) | {"file_bytes": written.stat().st_size}
    latency: dict[str, Any] = {}
    if latency_seconds > 0:
        times = cpu_latency({"before": original, "after": student}, latency_seconds, latency_runs, threads)
        before["latency_s"], after["latency_s"] = times["before"], times["after"]
        latency = {"seconds_of_audio": latency_seconds, "threads": threads or torch.get_num_threads(),
                   "runs": latency_runs}
    result = PruneReport(
        model=str(model_path), teacher=str(teacher) if teacher else None, out=str(out), format=fmt, ratio=ratio,
        steps=steps, importance=importance, round_to=round_to, widths_mode=widths_mode, parts=list(parts),
        target=target,
        recover_steps=recover_steps, recipe=settings["recipe"], before=before, after=after,
        widths={"before": base, "after": widths_of(student)}, fidelity=fidelity, schedule=schedule,
        latency=latency, run_dir=str(run_dir) if run_dir else None, written=str(written), not_rvc_because=why)
    if report is not None:
        write_json(report, result.to_dict())
    return result


def _check_options(ratio, steps, importance, round_to, parts, target_params, target_macs, recover_steps,
                   batch_size, out: Path) -> None:
    if ratio is not None and not 0 <= ratio < 1:
        raise DistillRVCError(f"--ratio must be in [0, 1) (the share of channels removed), not {ratio}")
    if ratio is not None and (target_params is not None or target_macs is not None):
        raise DistillRVCError("give either --ratio or a target (--target-params / --target-macs), not both")
    if target_params is not None and target_macs is not None:
        raise DistillRVCError("give one target: --target-params or --target-macs")
    for name, value in (("--target-params", target_params), ("--target-macs", target_macs)):
        if value is not None and value <= 0:
            raise DistillRVCError(f"{name} must be positive")
    if steps < 1:
        raise DistillRVCError("--steps must be at least 1")
    if recover_steps < 0:
        raise DistillRVCError("--recover-steps must be 0 or more")
    if batch_size is not None and batch_size < 1:
        raise DistillRVCError("--batch-size must be at least 1")
    if importance not in IMPORTANCES:
        raise DistillRVCError(f"unknown importance {importance!r} (expected {' or '.join(IMPORTANCES)})")
    if round_to < 1:
        raise DistillRVCError("--round-to must be at least 1")
    unknown = set(parts) - set(PARTS)
    if not parts or unknown:
        raise DistillRVCError(f"parts to prune must be among {', '.join(PARTS)}")
    if out.suffix.lower() != ".pth":
        raise DistillRVCError(f"--out must name a .pth file, not {out.name!r}")


def _check_pair(model: Synthesizer, teacher: Synthesizer) -> None:
    m, t = model.config, teacher.config
    if (m.sr, m.hop_length, m.f0, m.phone_dim) != (t.sr, t.hop_length, t.f0, t.phone_dim):
        raise DistillRVCError(
            f"the model ({m.version}, {m.sr} Hz, {'f0' if m.f0 else 'no f0'}) and the teacher ({t.version}, {t.sr} Hz, "
            f"{'f0' if t.f0 else 'no f0'}) do not share an interface: pass the teacher the model was taught from")


# ------------------------------------------------------------------------ formatting
def format_report(report: PruneReport) -> str:
    """Human-readable lines for `distill-rvc prune`."""
    b, a = report.before, report.after
    plan = (f"{report.steps} step{'s' if report.steps > 1 else ''} to ratio {report.ratio:.3f}"
            + (f" (for the target {_target(report.target)})" if report.target else "")
            + f", {report.importance} importance, {report.widths_mode} widths, round_to {report.round_to}, "
            f"parts {'+'.join(report.parts)}")
    recovery = (f"{report.recover_steps} recovery steps after each ({report.recipe} recipe), logs in {report.run_dir}"
                if report.recover_steps else "no recovery distillation")
    written = report.written or report.out
    lines = [f"pruned     {written} ({report.format})", f"schedule   {plan}; {recovery}",
             f"{'':<11}{'before':>14} {'after':>14} {'ratio':>7}"]

    def row(name: str, x: float, y: float, fmt) -> str:
        return f"{name:<11}{fmt(x):>14} {fmt(y):>14} {y / x if x else float('nan'):>6.2f}x"

    lines.append(row("params", b["params"]["total"], a["params"]["total"], lambda v: f"{v:,}"))
    for part in ("dec", "enc_p", "flow"):
        if part in b["params"]:
            lines.append(row(f"  {part}", b["params"][part], a["params"][part], lambda v: f"{v:,}"))
    lines.append(row("GMAC/s", b["macs_per_s"] / 1e9, a["macs_per_s"] / 1e9, lambda v: f"{v:.2f}"))
    lines.append(row("file", b["file_bytes"] / 1e6, a["file_bytes"] / 1e6, lambda v: f"{v:.2f} MB"))
    if "latency_s" in b:
        lat = report.latency
        lines.append(row("CPU s", b["latency_s"], a["latency_s"], lambda v: f"{v:.3f}")
                     + f"  (infer on {lat['seconds_of_audio']:g} s of audio, {lat['threads']} threads, median of "
                     f"{lat['runs']}: speed-up {b['latency_s'] / a['latency_s']:.2f}x)")
    f = report.fidelity
    if f["unpruned"] is None:
        lines.append("fidelity   not measured (no --data)")
    else:
        lines.append(f"fidelity   {f['metric']}: unpruned {f['unpruned']:.4f}")
        for s in report.schedule:
            text = f"  step {s['step']} (ratio {s['ratio']:.3f}, {s['params']:,} params, {s['importance']}): " \
                   f"{s['mel_l1_pruned']:.4f} pruned"
            if s["mel_l1_recovered"] is not None:
                text += f" -> {s['mel_l1_recovered']:.4f} after recovery"
            lines.append(text)
    d = report.widths["after"]["dec"]
    lines.append(f"widths     dec conv_pre {d['conv_pre']}, stages {'/'.join(map(str, d['ups']))}; "
                 f"enc_p ffn {'/'.join(map(str, report.widths['after']['enc_p']['ffn']))}")
    if report.format == FORMAT_PROJECT:
        hint = "; --widths rvc (the default) picks widths RVC can build" if report.widths_mode == "free" else ""
        lines.append("format     this model is in distill-rvc's project format: RVC, Applio and w-okada cannot "
                     f"load it ({report.not_rvc_because}); written as {written}{hint}")
    return "\n".join(lines)


def _target(target: dict[str, float]) -> str:
    if "params" in target:
        return f"{target['params']:,.0f} params"
    return f"{target['macs_per_s'] / 1e9:.2f} GMAC/s"
