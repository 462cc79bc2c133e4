"""Recipes for `teach-encoder`: the student encoder's sizes and its training schedule.

    RECIPES["default" | "test"]      the shipped recipes (a table here, see below)
    load_encoder_recipe(name | path.toml | EncoderRecipe) -> EncoderRecipe (checked)

A recipe file is TOML with an optional `base = "default"` and [model] / [train] tables
whose keys override the base's:

    base = "default"
    [model]
    dim = 160
    [train]
    steps = 4000

The shipped recipes live in this table, not in distill_rvc/recipes/*.toml, because those
are synthesizer recipes that `distill-rvc recipes` lists and `teach` reads; an encoder
recipe there would be offered for the wrong command. Not for: the model itself (model.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..distill.recipes import read_toml
from ..errors import DistillRVCError
from .model import EncoderArch


@dataclass(frozen=True)
class TrainSchedule:
    steps: int = 2000
    batch_size: int = 16
    crop_seconds: float = 2.0  # a random crop of a segment, per batch item
    segment_seconds: float = 4.0  # the audio is cut into segments this long; the teacher sees each whole
    lr: float = 2e-3
    min_lr_ratio: float = 0.05  # cosine decay to lr * this
    warmup_steps: int = 100
    weight_decay: float = 0.01
    l1_weight: float = 1.0  # mean |student - teacher|
    cos_weight: float = 1.0  # mean (1 - cosine similarity) per frame
    eval_every: int = 200
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    held_files: int = 1  # files held out for validation when no --held folder is given
    seed: int = 0

    def check(self) -> None:
        ints = ("steps", "batch_size", "eval_every", "checkpoint_every", "keep_checkpoints")
        for name in ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DistillRVCError(f"encoder recipe: train.{name} = {value!r}; give a whole number >= 1")
        for name in ("warmup_steps", "held_files", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise DistillRVCError(f"encoder recipe: train.{name} = {value!r}; give a whole number >= 0")
        for name in ("lr", "crop_seconds", "segment_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise DistillRVCError(f"encoder recipe: train.{name} = {value!r}; give a number > 0")
        for name in ("min_lr_ratio", "weight_decay", "l1_weight", "cos_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise DistillRVCError(f"encoder recipe: train.{name} = {value!r}; give a number >= 0")
        if self.crop_seconds > self.segment_seconds:
            raise DistillRVCError(f"encoder recipe: train.crop_seconds ({self.crop_seconds}) is longer than "
                                  f"train.segment_seconds ({self.segment_seconds})")
        if self.crop_seconds < 0.025:
            raise DistillRVCError("encoder recipe: train.crop_seconds must be at least 0.025 (one frame)")
        if self.l1_weight == 0 and self.cos_weight == 0:
            raise DistillRVCError("encoder recipe: train.l1_weight and train.cos_weight are both 0: nothing to learn")


@dataclass(frozen=True)
class EncoderRecipe:
    name: str
    model: EncoderArch = field(default_factory=EncoderArch)  # out_dim is set from --version
    train: TrainSchedule = field(default_factory=TrainSchedule)
    max_params: int = 4_000_000  # refused above these (the chain's budget, issue 14)
    max_gflops: float = 0.5  # per second of audio

    def check(self) -> None:
        self.model.check()
        self.train.check()

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model.as_dict(), "train": asdict(self.train),
                "max_params": self.max_params, "max_gflops": self.max_gflops}


RECIPES: dict[str, EncoderRecipe] = {
    # ~2.0 M params, ~0.23 GFLOP/s: half the 0.5 GFLOP/s budget, for the chain's RTF goal.
    "default": EncoderRecipe("default"),
    # seconds on a CPU: for tests.
    "test": EncoderRecipe("test", EncoderArch(n_mels=40, dim=48, blocks=2, kernel=5, expansion=2),
                          TrainSchedule(steps=60, batch_size=8, crop_seconds=1.0, segment_seconds=2.0, lr=3e-3,
                                        warmup_steps=5, eval_every=20, checkpoint_every=20, held_files=1)),
}


def _override(base: Any, table: Any, section: str) -> Any:
    if not isinstance(table, dict):
        raise DistillRVCError(f"encoder recipe: [{section}] must be a table")
    names = {f.name for f in fields(base)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise DistillRVCError(f"encoder recipe: unknown key(s) in [{section}]: {', '.join(unknown)}; "
                              f"expected some of {', '.join(sorted(names))}")
    return replace(base, **table)


def load_encoder_recipe(recipe: str | Path | EncoderRecipe) -> EncoderRecipe:
    """A shipped recipe's name, a recipe .toml, or an EncoderRecipe -> a checked EncoderRecipe."""
    if isinstance(recipe, EncoderRecipe):
        recipe.check()
        return recipe
    text = str(recipe)
    if text in RECIPES:
        return RECIPES[text]
    path = Path(text)
    if path.suffix != ".toml":
        raise DistillRVCError(f"unknown encoder recipe {text!r}; use {' or '.join(RECIPES)}, or a recipe .toml file")
    data = read_toml(path)
    unknown = sorted(set(data) - {"base", "model", "train", "max_params", "max_gflops"})
    if unknown:
        raise DistillRVCError(f"{path}: unknown key(s) {', '.join(unknown)}; expected base, [model], [train]")
    base = data.get("base", "default")
    if base not in RECIPES:
        raise DistillRVCError(f"{path}: base = {base!r}; use {' or '.join(RECIPES)}")
    out = RECIPES[base]
    out = replace(out, name=path.stem, model=_override(out.model, data.get("model", {}), "model"),
                  train=_override(out.train, data.get("train", {}), "train"),
                  max_params=data.get("max_params", out.max_params), max_gflops=data.get("max_gflops", out.max_gflops))
    try:
        out.check()
    except DistillRVCError as e:
        raise DistillRVCError(f"{path}: {e}") from None
    return out
