"""`teach-encoder`: a HuBERT (hubert_base.pt) + speech -> encoder.pt, a small student encoder.

    TeachEncoderSettings(...).check()          the options, refused in one line before anything loads
    teach_encoder(hubert, audio, out, settings) -> TeachEncoderResult
    format_teach_encoder(result) -> str        what `distill-rvc teach-encoder` prints

    load the teacher -> cut the speech into segments and cache the teacher's features
    (OUT.work/cache_train, cache_held) -> build the student from the recipe, refused over its
    parameter or FLOP budget -> train (train.py; resumes from OUT.work/checkpoints when run
    again with the same --out) -> write encoder.pt (checkpoint.py)

The held-out files are --held's, or else the last `held_files` files of --audio (sorted).
Not here: the options' parsing (cli.py), the loop (train.py), the file format (checkpoint.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..errors import DistillRVCError
from ..features.content import load_content_encoder
from ..options import check_threads, resolve_device
from ..safe_load import file_sha256
from .checkpoint import save_encoder
from .data import FeatureCache, build_cache, find_audio
from .model import LAYERS, WIDTHS, Cost, StudentEncoder, count_cost
from .recipe import EncoderRecipe, load_encoder_recipe
from .train import TrainOutcome, train_encoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeachEncoderSettings:
    """`teach-encoder`'s options; None keeps the recipe's value."""

    recipe: str | Path | EncoderRecipe = "default"
    version: str = "v2"
    steps: int | None = None
    batch_size: int | None = None
    held: str | Path | None = None  # a folder of held-out speech (else the recipe's held_files)
    device: str | None = "cpu"
    threads: int | None = None
    progress: bool = True
    stop_after: int | None = None  # tests: stop after this step, as a kill after a checkpoint would

    def check(self) -> EncoderRecipe:
        """Checks every option; returns the recipe with --steps / --batch-size applied."""
        if self.version not in WIDTHS:
            raise DistillRVCError(f"--version {self.version!r}: use v1 (256-d features) or v2 (768-d)")
        resolve_device(self.device)
        check_threads(self.threads)
        for name in ("steps", "batch_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise DistillRVCError(f"--{name.replace('_', '-')} {value!r}: give a whole number >= 1")
        recipe = load_encoder_recipe(self.recipe)
        train = recipe.train
        if self.steps is not None:
            train = replace(train, steps=self.steps)
        if self.batch_size is not None:
            train = replace(train, batch_size=self.batch_size)
        recipe = replace(recipe, model=replace(recipe.model, out_dim=WIDTHS[self.version]), train=train)
        recipe.check()
        return recipe


@dataclass
class TeachEncoderResult:
    out: Path  # encoder.pt
    work: Path  # OUT.work: caches, checkpoints, TensorBoard (tb/)
    recipe: str
    version: str
    cost: Cost
    train_data: FeatureCache
    held_data: FeatureCache
    outcome: TrainOutcome
    encoder: StudentEncoder  # the trained model, in eval mode on the CPU (as encoder.pt loads)


def _check_budget(recipe: EncoderRecipe, cost: Cost) -> None:
    if cost.params > recipe.max_params or cost.gflops > recipe.max_gflops:
        raise DistillRVCError(f"recipe {recipe.name}: the student has {cost.params / 1e6:.2f} M params and "
                              f"{cost.gflops:.3f} GFLOP/s, over the recipe's budget of {recipe.max_params / 1e6:.2f} M "
                              f"and {recipe.max_gflops:g} GFLOP/s; make [model] smaller or raise max_params/max_gflops")


def teach_encoder(hubert: str | Path, audio: str | Path, out: str | Path,
                  settings: TeachEncoderSettings | None = None) -> TeachEncoderResult:
    settings = settings or TeachEncoderSettings()
    recipe = settings.check()
    out = Path(out)
    if out.suffix != ".pt" or out.is_dir():
        raise DistillRVCError(f"--out {out}: give a file name ending in .pt (e.g. encoder.pt)")
    work = out.with_name(out.stem + ".work")
    device = resolve_device(settings.device)
    threads = check_threads(settings.threads)
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        student = StudentEncoder(recipe.model, settings.version)  # before loading 100 M of teacher
        cost = count_cost(student)
        _check_budget(recipe, cost)
        audio_root = Path(audio)
        files = find_audio(audio_root)
        if settings.held is not None:
            held_root = Path(settings.held)
            held = find_audio(held_root, "--held")
        else:
            n = recipe.train.held_files
            if n < 1 or len(files) <= n:
                raise DistillRVCError(f"--audio {audio_root}: {len(files)} file(s), too few to hold {n} out for "
                                      "validation; give --held DIR (other speakers' speech) or more files")
            files, held, held_root = files[:-n], files[-n:], audio_root
        teacher = load_content_encoder(hubert, device)
        teacher.dim(settings.version)  # v1 needs final_proj: refused before any extraction
        sha = file_sha256(hubert)
        samples, crop = int(recipe.train.segment_seconds * 16000), int(recipe.train.crop_seconds * 16000)
        train_data = build_cache(files, audio_root, teacher, sha, settings.version, samples, work / "cache_train",
                                 min_samples=crop, progress=settings.progress)
        held_data = build_cache(held, held_root, teacher, sha, settings.version, samples, work / "cache_held",
                                min_samples=crop, option="--held" if settings.held is not None else "--audio",
                                progress=settings.progress)
        # the teacher's width (768 / 256 for RVC's hubert_base.pt; a stand-in may differ)
        recipe = replace(recipe, model=replace(recipe.model, out_dim=teacher.dim(settings.version)))
        del teacher
        torch.manual_seed(recipe.train.seed)
        student = StudentEncoder(recipe.model, settings.version)
        cost = count_cost(student)
        _check_budget(recipe, cost)
        fingerprint = {"recipe": recipe.as_dict(), "version": settings.version, "teacher": sha,
                       "train_segments": int(train_data.audio.shape[0]), "held_segments": int(held_data.audio.shape[0])}
        outcome = train_encoder(student, train_data, held_data, recipe.train, work, fingerprint, device,
                                settings.progress, settings.stop_after)
        student.cpu().eval()
        trained = {"recipe": recipe.as_dict(), "steps": outcome.steps, "train_seconds": train_data.seconds,
                   "held_seconds": held_data.seconds, "held_cosine_start": outcome.start.cosine,
                   "held_cosine": outcome.end.cosine, "held_l1": outcome.end.l1,
                   "held_cosine_mean_feature": outcome.baseline.cosine, "params": cost.params,
                   "flops_per_second": cost.flops_per_second}
        save_encoder(out, student, {"sha256": sha, "layer": LAYERS[settings.version], "file": Path(hubert).name},
                     trained)
    finally:
        torch.set_num_threads(old_threads)
    return TeachEncoderResult(out, work, recipe.name, settings.version, cost, train_data, held_data, outcome, student)


def _skipped(cache: FeatureCache) -> str:
    notes = [f"{cache.padded} shorter than a segment, padded with silence"] if cache.padded else []
    if cache.skipped:
        notes.append(f"skipped: {', '.join(f'{n} {r}' for r, n in cache.skipped.items())}")
    return f" ({'; '.join(notes)})" if notes else ""


def format_teach_encoder(result: TeachEncoderResult) -> str:
    o = result.outcome
    lines = [
        f"student    {result.cost.params / 1e6:.2f} M params, {result.cost.gflops:.3f} GFLOP per s of audio "
        f"(recipe {result.recipe}, {result.version}: {WIDTHS[result.version]}-d)",
        f"data       {result.train_data.audio.shape[0]} segments, {result.train_data.seconds / 60:.1f} min from "
        f"{result.train_data.files} files{_skipped(result.train_data)}",
        f"held out   {result.held_data.audio.shape[0]} segments, {result.held_data.seconds / 60:.1f} min from "
        f"{result.held_data.files} files{_skipped(result.held_data)}",
        f"trained    {o.steps} steps" + (f" (resumed at {o.resumed_from})" if o.resumed_from else "")
        + f", {o.seconds:.0f} s",
        f"held-out   cosine {o.start.cosine:.3f} -> {o.end.cosine:.3f}, L1 {o.start.l1:.3f} -> {o.end.l1:.3f} "
        f"(the training set's mean feature alone: cosine {o.baseline.cosine:.3f}, L1 {o.baseline.l1:.3f})",
        f"encoder    {result.out}",
        f"work       {result.work} (tensorboard --logdir {result.work / 'tb'})",
    ]
    return "\n".join(lines)
