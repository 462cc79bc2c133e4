"""The recipe boundary: a TOML file -> a validated `Recipe` (student, optimisation, losses, budget).

A recipe says what student to build, how to train it and how much memory the training may
use. It is parsed once here; an unknown key, a wrong type or an out-of-range value is a
`DistillRVCError` naming the file, the section and the key.

    budget_gb = 4.0              # peak training memory the plan must fit (GPU, or RAM for device = "cpu")
    device = "cuda"              # what the budget is for
    [student]                    # widths: a count (96) or a fraction of the teacher's ("0.5x")
    [train]                      # optimisation: batch, segment, lr, steps, precision, ...
    [loss]                       # the weight of each distillation term

Sample rate, hop and upsampling rates always come from the teacher. `TrainConfig` and
`LossConfig` are also what the trainer takes from Python (e.g. for recovery distillation
after pruning), without any recipe file.

Not here: resolving fractions against a teacher (student.py) and memory planning (planner.py).
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ..errors import DistillRVCError

# The shipped recipes are package data (distill_rvc/recipes/*.toml), so a normal install has them.
RECIPE_DIR: Traversable = files("distill_rvc") / "recipes"
_FRACTION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*x\s*$")
PRECISIONS = ("bf16", "fp16", "fp32")
DEVICES = ("cuda", "cpu")
STUDENT_INITS = ("function", "magnitude")

Width = int | str  # an absolute count, or a fraction of the teacher's like "0.25x"


@dataclass(frozen=True)
class StudentSpec:
    """The student's architecture relative to its teacher (None / "1x" = the teacher's)."""

    hidden_channels: Width = "1x"  # enc_p width; the flow's WN width too
    filter_channels: Width = "1x"  # enc_p FFN width
    inter_channels: Width = "1x"  # latent width; keep it to keep the ONNX `rnd` input [1, 192, T]
    gin_channels: Width = "1x"  # speaker embedding width
    n_heads: Width = "1x"
    n_layers: Width = "1x"  # enc_p transformer blocks
    n_flows: Width = "1x"  # coupling layers (RVC: 4)
    flow_wn_layers: Width = "1x"  # WN layers per coupling (RVC: 3)
    upsample_initial_channel: Width = "1x"  # decoder width (stage i has this / 2^(i+1))
    resblock: str | None = None  # "1" or "2"; None = the teacher's
    resblock_kernel_sizes: tuple[int, ...] | None = None
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] | None = None
    phone_proj_dim: int = 0  # >0: a Linear(phone_dim -> this) ahead of emb_phone
    phone_proj: str = "learned"  # "learned" or "fixed" (initialised from the teacher, then frozen)
    init: str = "function"  # "function": channels chosen and layers refitted on the data; "magnitude": by weights
    init_crops: int = 48  # calibration crops of 64 frames drawn from the dataset for the "function" init
    init_ridge: float = 1e-3  # the decoder refits' ridge strength, relative to their inputs' energy
    init_encoder_ridge: float = 1e-2  # the same for enc_p and the flow


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of one distillation run."""

    steps: int = 2000
    batch_size: int = 8  # effective batch per optimiser step
    accumulation: int = 1  # micro-batches per step (micro-batch = batch_size / accumulation)
    segment_frames: int = 32  # frames per training crop (100 frames/s)
    lr: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.0
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1  # cosine decay to lr * this at the last step
    precision: str = "bf16"  # autocast dtype on CUDA; CPU runs in fp32
    grad_checkpointing: bool = False  # recompute decoder resblocks in backward
    checkpoint_every: int = 500  # steps between checkpoints ...
    checkpoint_seconds: float = 600.0  # ... and at most this long between them (wall clock)
    keep_checkpoints: int = 3
    eval_every: int = 500
    log_every: int = 10
    eval_items: int = 2  # held-out segments logged as audio and compared
    eval_frames: int = 200  # longest held-out input (frames)
    eval_fidelity: bool = True  # MCD, F0 RMSE and V/UV of the held-out items in TensorBoard (WORLD analysis)
    seed: int = 1234
    speaker: int = 0  # speaker id fed to both models
    key: float = 0.0  # semitones added to the data's F0 (move a source into the teacher's range)
    key_jitter: float = 0.0  # plus a uniform random shift in [-key_jitter, key_jitter] per item
    # The teacher's outputs computed once per crop and noise seed (teacher_cache.py): true, false, or
    # "auto" (on when the run's teacher work is over 4x the build's and the disk has room).
    teacher_cache: bool | str = "auto"
    teacher_cache_seeds: int = 2  # noise seeds (and crop offsets) cached per segment


@dataclass(frozen=True)
class LossConfig:
    """Weights of the distillation terms (0 turns a term off) and their settings."""

    mel: float = 45.0  # log-mel L1 (RVC's mel) against the teacher's waveform
    stft: float = 2.0  # multi-resolution STFT (spectral convergence + log magnitude)
    prior: float = 1.0  # (m_p, logs_p) against the teacher's
    latent: float = 1.0  # z after the flow (the decoder input)
    features: float = 1.0  # decoder feature maps, projected to the teacher's widths
    feature_maps: tuple[str, ...] = ("dec.ups.*",)  # module names (glob) present in both models
    adversarial: float = 0.0  # LSGAN + feature matching with a small multi-period discriminator
    adversarial_start: int = 0  # step at which the adversarial term starts
    # Steps 1..N train each block on the teacher's input for it (stages.py), then end to end.
    blockwise_steps: int = 0
    disc_periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    disc_channels: int = 16  # first width of the discriminator (RVC's is 32)
    ground_truth: float = 0.0  # log-mel L1 against the dataset's real audio, when it has audio
    # Share of steps with noise-free priors (z_p = m_p) instead of the shared noise; 0 measured
    # best (bench/bench_prior_noise.py), with the latent kept or narrowed.
    mean_path_fraction: float = 0.0


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    budget_gb: float
    device: str
    student: StudentSpec = field(default_factory=StudentSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (for metadata, checkpoints and TensorBoard)."""
        d = dataclasses.asdict(self)
        d.pop("path")
        return _plain(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "recipe") -> "Recipe":
        d = dict(d)
        name = d.pop("name", "custom")
        return _build(d, name, source)

    def replace(self, **sections: Any) -> "Recipe":
        """A copy with fields of a section changed: `replace(train={"steps": 20})`."""
        changes: dict[str, Any] = {}
        for section, values in sections.items():
            if section in ("student", "train", "loss"):
                changes[section] = _section(type(getattr(self, section)), {**dataclasses.asdict(getattr(
                    self, section)), **values}, f"recipe {self.name}", section)
            else:
                changes[section] = values
        return dataclasses.replace(self, **changes)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


# ------------------------------------------------------------------------------ loading
def shipped_recipes() -> dict[str, Traversable]:
    """Name -> file of each shipped recipe (distill_rvc/recipes/*.toml), by name."""
    if not RECIPE_DIR.is_dir():
        return {}
    found = {p.name[:-len(".toml")]: p for p in RECIPE_DIR.iterdir() if p.name.endswith(".toml") and p.is_file()}
    return dict(sorted(found.items()))


def list_recipes() -> list[Recipe]:
    """The shipped recipes, smallest budget first."""
    shipped = shipped_recipes()
    if not shipped:
        raise DistillRVCError(f"no shipped recipes in {RECIPE_DIR} (a broken install?); "
                              "pass --recipe path/to/recipe.toml")
    recipes = [load_recipe(p) for p in shipped.values()]
    return sorted(recipes, key=lambda r: (r.device != "cpu", r.budget_gb, r.name))


def load_recipe(name_or_path: str | Path | Traversable) -> Recipe:
    """A shipped recipe by name ("4gb") or any recipe file by path."""
    if isinstance(name_or_path, (str, Path)):
        text = str(name_or_path)
        path: Path | Traversable = Path(text)
        if not (text.endswith(".toml") or path.is_file()):
            shipped = shipped_recipes()
            if text not in shipped:
                known = ", ".join(shipped) or "none found"
                raise DistillRVCError(f"no recipe named {text!r} (shipped: {known}); or pass a path to a .toml file")
            path = shipped[text]
    else:  # a shipped file as importlib.resources hands it out
        path = name_or_path
    data = read_toml(path)
    recipe = _build(data, Path(path.name).stem, str(path))
    return dataclasses.replace(recipe, path=str(path))


def _build(data: dict[str, Any], name: str, source: str) -> Recipe:
    where = f"recipe {source}"
    known = {"description", "budget_gb", "device", "student", "train", "loss"}
    _no_unknown(data, known, where, "top level")
    for key in ("budget_gb", "device"):
        if key not in data:
            raise DistillRVCError(f"{where}: missing `{key}` at the top level")
    budget = _number(data["budget_gb"], where, "budget_gb", float)
    if budget <= 0:
        raise DistillRVCError(f"{where}: budget_gb must be positive, got {budget}")
    device = data["device"]
    if device not in DEVICES:
        raise DistillRVCError(f"{where}: device must be one of {', '.join(DEVICES)}, got {device!r}")
    sections = {}
    for section, cls in (("student", StudentSpec), ("train", TrainConfig), ("loss", LossConfig)):
        values = data.get(section, {})
        if not isinstance(values, dict):
            raise DistillRVCError(f"{where}: `{section}` must be a [{section}] table")
        sections[section] = _section(cls, values, where, section)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise DistillRVCError(f"{where}: description must be a string")
    return Recipe(name=name, description=description, budget_gb=budget, device=device, **sections)


def _no_unknown(values: dict, known: set[str], where: str, section: str) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise DistillRVCError(f"{where}: unknown key {unknown[0]!r} in [{section}] "
                              f"(known: {', '.join(sorted(known))})")


_WIDTHS = {"hidden_channels", "filter_channels", "inter_channels", "gin_channels", "n_heads", "n_layers", "n_flows",
           "flow_wn_layers", "upsample_initial_channel"}


def _section(cls: type, values: dict[str, Any], where: str, section: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _no_unknown(values, set(fields), where, section)
    out = {}
    for key, value in values.items():
        label = f"[{section}] {key}"
        default = fields[key].default
        if key in _WIDTHS:
            out[key] = parse_width(value, where, label)
        elif key in ("resblock_kernel_sizes", "disc_periods"):
            out[key] = _int_list(value, where, label) if value is not None else None
        elif key == "resblock_dilation_sizes":
            if value is not None:
                if not isinstance(value, (list, tuple)) or not value:
                    raise DistillRVCError(f"{where}: {label} must be a list of lists of ints")
                value = tuple(_int_list(v, where, label) for v in value)
            out[key] = value
        elif key == "feature_maps":
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise DistillRVCError(f"{where}: {label} must be a list of module names, e.g. [\"dec.ups.*\"]")
            out[key] = tuple(value)
        elif key == "betas":
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise DistillRVCError(f"{where}: {label} must be two numbers, e.g. [0.8, 0.99]")
            out[key] = tuple(_number(v, where, label, float) for v in value)
        elif key == "teacher_cache":
            if value not in (True, False, "auto") or isinstance(value, (int, float)) and not isinstance(value, bool):
                raise DistillRVCError(f"{where}: {label} must be true, false or \"auto\", got {value!r}")
            out[key] = value
        elif key == "resblock":
            if value is not None and str(value) not in ("1", "2"):
                raise DistillRVCError(f"{where}: {label} must be \"1\" or \"2\", got {value!r}")
            out[key] = None if value is None else str(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise DistillRVCError(f"{where}: {label} must be true or false, got {value!r}")
            out[key] = value
        elif isinstance(default, int):
            out[key] = _number(value, where, label, int)
        elif isinstance(default, float):
            out[key] = _number(value, where, label, float)
        elif isinstance(default, str):
            if not isinstance(value, str):
                raise DistillRVCError(f"{where}: {label} must be a string, got {value!r}")
            out[key] = value
        else:  # pragma: no cover - a field added without a parser
            raise AssertionError(key)
    obj = cls(**out)
    _check_ranges(obj, where, section)
    return obj


def _number(value: Any, where: str, label: str, kind: type):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and isinstance(value, float)):
        raise DistillRVCError(f"{where}: {label} must be {'an integer' if kind is int else 'a number'}, "
                              f"got {value!r}")
    return kind(value)


def _int_list(value: Any, where: str, label: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise DistillRVCError(f"{where}: {label} must be a non-empty list of positive integers, got {value!r}")
    return tuple(value)


def parse_width(value: Any, where: str = "recipe", label: str = "width") -> Width:
    """A channel count (int >= 1) or a fraction of the teacher's ("0.25x", 0 < f <= 4)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise DistillRVCError(f"{where}: {label} must be at least 1, got {value}")
        return value
    if isinstance(value, str):
        m = _FRACTION.match(value)
        if m and 0 < float(m.group(1)) <= 4:
            return f"{float(m.group(1)):g}x"
    raise DistillRVCError(f"{where}: {label} must be a count (e.g. 96) or a fraction of the teacher's "
                          f"(e.g. \"0.25x\"), got {value!r}")


def _check_ranges(obj: Any, where: str, section: str) -> None:
    def bad(key: str, why: str) -> None:
        raise DistillRVCError(f"{where}: [{section}] {key} {why}, got {getattr(obj, key)!r}")

    if isinstance(obj, StudentSpec):
        if obj.phone_proj_dim < 0:
            bad("phone_proj_dim", "must be 0 (off) or a width")
        if obj.phone_proj not in ("learned", "fixed"):
            bad("phone_proj", "must be \"learned\" or \"fixed\"")
        if obj.init not in STUDENT_INITS:
            bad("init", "must be \"function\" or \"magnitude\"")
        if obj.init_crops < 1:
            bad("init_crops", "must be at least 1")
        if obj.init_ridge < 0 or obj.init_encoder_ridge < 0:
            bad("init_ridge" if obj.init_ridge < 0 else "init_encoder_ridge", "must not be negative")
        if (obj.resblock_kernel_sizes and obj.resblock_dilation_sizes
                and len(obj.resblock_kernel_sizes) != len(obj.resblock_dilation_sizes)):
            bad("resblock_dilation_sizes", "needs one list per kernel size")
    elif isinstance(obj, TrainConfig):
        for key in ("steps", "batch_size", "accumulation", "segment_frames", "checkpoint_every",
                    "keep_checkpoints", "eval_every", "log_every", "eval_items", "eval_frames"):
            if getattr(obj, key) < 1:
                bad(key, "must be at least 1")
        if obj.segment_frames < 4:
            bad("segment_frames", "must be at least 4")
        if obj.batch_size % obj.accumulation:
            bad("batch_size", f"must be a multiple of accumulation ({obj.accumulation})")
        if obj.lr <= 0:
            bad("lr", "must be positive")
        if not all(0 <= b < 1 for b in obj.betas):
            bad("betas", "must lie in [0, 1)")
        if obj.precision not in PRECISIONS:
            bad("precision", f"must be one of {', '.join(PRECISIONS)}")
        if not 0 <= obj.min_lr_ratio <= 1:
            bad("min_lr_ratio", "must lie in [0, 1]")
        if not 1 <= obj.teacher_cache_seeds <= 64:
            bad("teacher_cache_seeds", "must lie in 1..64")
        for key in ("warmup_steps", "speaker", "weight_decay", "key_jitter"):
            if getattr(obj, key) < 0:
                bad(key, "must not be negative")
    elif isinstance(obj, LossConfig):
        for key in ("mel", "stft", "prior", "latent", "features", "adversarial", "ground_truth"):
            if getattr(obj, key) < 0:
                bad(key, "must not be negative (0 turns the term off)")
        if not 0 <= obj.mean_path_fraction <= 1:
            bad("mean_path_fraction", "must lie in [0, 1]")
        if obj.blockwise_steps < 0:
            bad("blockwise_steps", "must not be negative (0: no block-wise stage)")
        if obj.disc_channels < 1 or obj.adversarial_start < 0:
            bad("disc_channels" if obj.disc_channels < 1 else "adversarial_start", "is out of range")


def read_toml(path: Path) -> dict[str, Any]:
    """A recipe file's tables; a missing file or bad TOML is a one-line DistillRVCError."""
    if not path.is_file():
        raise DistillRVCError(f"{path}: no such recipe file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DistillRVCError(f"{path}: not valid TOML ({e})") from None
