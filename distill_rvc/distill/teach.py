"""`teach`: a teacher file + a recipe + a dataset cache -> OUT/<teacher>_<recipe>.pth, and its report.

    TeachSettings(recipe, steps, ...).check()       the options, refused in one line before anything loads
    teach(teacher, data, out, settings) -> TeachResult
    format_teach(result) -> str                     what `distill-rvc teach` prints

    load the teacher -> [--encoder: the student's own content features, student_features.py]
    -> build the student from the recipe, initialised from the teacher
    -> plan the training memory; refuse if it exceeds the recipe's budget
    -> train (trainer.py) -> save the student (RVC's format when RVC can build it) with the
       recipe and provenance (teacher sha256, steps, fidelity) under its metadata, and the
       teacher's content encoder, vocoder and speaker names (checkpoint.TRAVEL_KEYS)

The file is named `<teacher stem>_<recipe name>.pth` because RVC pairs a model with its
index by the file name's prefix: `myvoice_4gb.pth` still finds `added_*_myvoice_v2.index`.
A student RVC cannot build is written as `<...>.drvc.pt` (checkpoint.save_model).
Not here: the options' parsing (cli.py) or the training itself (trainer.py).
"""
from __future__ import annotations

import logging
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import STUDENT_ENCODER_KEY, TRAVEL_KEYS, load_model, save_model
from ..consumers import Loads, where_it_loads
from ..data.dataset import Dataset
from ..errors import DistillRVCError
from ..memory import GB
from ..safe_load import file_sha256
from ..options import check_threads
from .planner import MemoryPlan, plan_training
from .recipes import Recipe, load_recipe
from .student import build_student
from .batches import split_eval
from .distributed import joined, rank_device, shard, world_from_env
from .function_init import init_on_data
from .student_features import student_features
from .train_state import checkpoint_interval, checkpoints
from .trainer import TrainResult, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeachSettings:
    """`teach`'s options; None keeps the recipe's value."""

    recipe: str | Path | Recipe = "4gb"  # a shipped recipe's name, a recipe .toml, or a Recipe
    steps: int | None = None
    batch_size: int | None = None  # the effective batch, with no accumulation
    key: float | None = None  # F0 shift in semitones
    resume: bool = False  # continue the run in `out` from its newest checkpoint
    device: str | None = None  # auto (None), cpu, cuda, cuda:N
    check_budget: bool = True  # refuse a memory plan above the recipe's budget
    progress: bool = True  # a progress bar
    checkpoint_every: str | None = None  # "500" (steps) or "10m" (train_state.checkpoint_interval)
    teacher_cache: bool | None = None  # the teacher's outputs computed once (teacher_cache.py); None: the recipe's
    threads: int | None = None  # CPU threads [default: torch's; under torchrun, the cores / local processes]
    encoder: str | Path | None = None  # the student hears this content encoder's features (student_features.py)

    def check(self) -> None:
        rank_device(world_from_env(), self.device)  # a mistyped --device is refused before anything is loaded
        check_threads(self.threads)
        if self.checkpoint_every is not None:
            checkpoint_interval(self.checkpoint_every)


@dataclass
class TeachResult:
    student_path: Path  # the file written: OUT/<teacher stem>_<recipe>.pth (.drvc.pt: project format)
    format: str  # RVC's inference format or the project format (checkpoint.FORMAT_*)
    loads: Loads | None  # where the student loads (RVC, Applio, w-okada); None on ranks other than 0
    params: dict[str, int]  # teacher and student parameter counts
    plan: MemoryPlan | None
    train: TrainResult
    out: Path  # the run folder: checkpoints, TensorBoard logs and the student
    init: str = ""  # how the student was initialised (the `init` line of format_teach)
    main: bool = True  # False on torchrun's ranks other than 0: they wrote nothing and print nothing
    encoder: str = ""  # with --encoder: what the student hears (the `encoder` line of format_teach)


def teach(teacher_path: str | Path, data: str | Path, out: str | Path | None = None,
          settings: TeachSettings | None = None, *, dataset=None) -> TeachResult:
    """Distil the teacher at `teacher_path` with `settings.recipe` on the cache at `data`, into
    `out` (None: runs/<teacher stem>-<recipe>, `default_out`).

    `steps`, `batch_size`, `key` and `checkpoint_every` override the recipe's. With
    `check_budget`, a plan above the recipe's budget raises DistillRVCError saying what to
    change. `dataset` replaces the cache at `data` with any in-memory dataset (tests, other callers).
    Under torchrun every rank calls it: each checks everything before the process group starts,
    trains its shard, and rank 0 alone writes (distributed.py).
    """
    s = settings or TeachSettings()
    s.check()
    out = Path(out) if out is not None else default_out(teacher_path, s.recipe)
    recipe = s.recipe if isinstance(s.recipe, Recipe) else load_recipe(s.recipe)
    overrides: dict[str, Any] = {}
    if s.steps is not None:
        overrides["steps"] = s.steps
    if s.batch_size is not None:
        overrides["batch_size"] = s.batch_size
        overrides["accumulation"] = 1
    if s.key is not None:
        overrides["key"] = s.key
    if s.teacher_cache is not None:
        overrides["teacher_cache"] = s.teacher_cache
    if s.checkpoint_every is not None:
        overrides.update(checkpoint_interval(s.checkpoint_every))
    if overrides:
        recipe = recipe.replace(train=overrides)
    teacher = load_model(teacher_path)
    dataset = dataset if dataset is not None else Dataset(data)
    _check_dataset(dataset, teacher, recipe)
    if callable(getattr(dataset, "check", None)):
        dataset.check()  # a damaged cache is refused before the init reads it
    world = world_from_env()
    device = rank_device(world, s.device)
    shard(recipe.train.batch_size, world)  # a batch smaller than the world is refused now, on every rank
    encoder = None
    if s.encoder is not None:  # the student pipeline: the student hears the small encoder, the teacher HuBERT
        dataset = student_features(s.encoder, dataset, out / "student_features", teacher, device, main=world.is_main,
                                   resume_check=s.resume and bool(checkpoints(out)), progress=s.progress and world.is_main)
        encoder = dataset.encoder
    if s.resume and checkpoints(out):  # a resumed run loads its student from the checkpoint
        student, init_line = build_student(teacher, recipe.student, init=False), "init       from the checkpoint (resumed)"
    else:
        student, init_line = new_student(teacher, dataset, recipe)

    plan = None
    if s.check_budget:
        plan = plan_training(teacher.config, recipe, student.config)
        if not plan.fits:
            raise DistillRVCError(
                f"recipe {recipe.name} needs about {plan.total / GB:.2f} GB ({plan.device}) but its budget is "
                f"{recipe.budget_gb:g} GB: {plan.advice()}")

    sha = file_sha256(teacher_path)
    fingerprint = {"teacher_sha256": sha, **({"student_encoder_sha256": encoder["sha256"]} if encoder else {})}
    counts = {"teacher": sum(p.numel() for p in teacher.parameters()),
              "student": sum(p.numel() for p in student.parameters())}
    hparams = {"recipe": recipe.name, "budget_gb": recipe.budget_gb, "student_params": counts["student"],
               "param_ratio": counts["teacher"] / counts["student"], "batch_size": recipe.train.batch_size,
               "segment_frames": recipe.train.segment_frames, "lr": recipe.train.lr,
               "precision": recipe.train.precision, "steps": recipe.train.steps,
               "hidden_channels": student.config.hidden_channels,
               "upsample_initial_channel": student.config.upsample_initial_channel,
               "resblock": student.config.resblock}
    with joined(world, device, s.threads) as group:
        result = train(student, teacher, dataset, recipe.train, recipe.loss, out, resume=s.resume,
                       progress=s.progress, hparams=hparams, fingerprint=fingerprint,
                       planned_bytes=plan.total if plan else None, group=group)
        saved = group.on_main(lambda: _save_student(student, teacher, teacher_path, out, recipe, sha, result,
                                                    counts, encoder))
    path = saved.path if saved is not None else student_file(out, teacher_path, recipe.name)
    fmt = saved.format if saved is not None else ""
    loads = where_it_loads(fmt, student.config, student.arch) if saved is not None else None
    return TeachResult(student_path=path, format=fmt, loads=loads, params=counts, plan=plan, train=result, out=out,
                       init=init_line, main=world.is_main, encoder=dataset.line() if encoder else "")


def _save_student(student, teacher, teacher_path, out, recipe: Recipe, sha: str, result: TrainResult,
                  counts: dict[str, int], encoder: dict[str, Any] | None = None):
    """OUT/<teacher>_<recipe>.pth with its metadata (checkpoint.save_model); rank 0 alone.

    Trained on a small encoder's features (`encoder`: file, sha256, kind, version, dim), it
    says so in `info` (which RVC's UI and `inspect` show) and under `student_encoder`; the
    top-level `embedder_model` stays the teacher's, as RVC, Applio and w-okada read it."""
    expects = f", for the content encoder {encoder['file']} (sha256 {encoder['sha256'][:12]})" if encoder else ""
    metadata = {
        "info": f"distill-rvc student ({recipe.name}) of {Path(teacher_path).name}{expects}",
        **({STUDENT_ENCODER_KEY: encoder} if encoder else {}),
        "recipe": recipe.name,
        "recipe_spec": recipe.to_dict(),
        "teacher_sha256": sha,
        "teacher_file": Path(teacher_path).name,
        "steps": result.steps,
        "fidelity": result.fidelity,
        "params": counts,
        **{k: teacher.checkpoint.metadata[k] for k in TRAVEL_KEYS if k in teacher.checkpoint.metadata},
    }
    saved = save_model(student.cpu().float(), student_file(out, teacher_path, recipe.name), metadata=metadata)
    log.info("wrote %s (%s)", saved.path, saved.format)
    return saved


def format_teach(result: TeachResult) -> str:
    """The report `distill-rvc teach` prints: the file, where it loads, sizes, fidelity, memory, logs."""
    t, f, p = result.train, result.train.fidelity, result.params
    lines = [
        f"student    {result.student_path} ({result.format})",
        f"loads in   {result.loads.line()}",
        f"params     teacher {p['teacher']:,} -> student {p['student']:,} ({p['teacher'] / p['student']:.1f}x "
        "smaller; as they run, weight norm folded: `inspect` counts a file's stored g and v)",
        *([result.init] if result.init else []),
        *([result.encoder] if result.encoder else []),
        f"trained    {t.steps} steps in {t.seconds:.0f} s, micro-batch {t.micro_batch}",
        f"fidelity   held-out log-mel L1 vs teacher: {f['mel_l1_init']:.3f} at init -> {f['mel_l1']:.3f} "
        f"({f['mel_l1_ratio']:.2f}x)",
    ]
    if result.plan is not None:
        measured = "CUDA max_memory_allocated" if t.device.startswith("cuda") else "process RSS"
        lines.append(f"memory     planned peak {result.plan.total / GB:.2f} GB ({result.plan.device}), "
                     f"budget {result.plan.budget_bytes / GB:g} GB; measured peak {t.peak_memory_bytes / GB:.2f} GB "
                     f"({measured})")
    lines.append(f"logs       tensorboard --logdir {shlex.quote(str(result.out.parent))}")
    return "\n".join(lines)


def new_student(teacher, dataset, recipe: Recipe):
    """(the recipe's student for `teacher`, the init line): built, then initialised as the
    recipe's `init` says on the segments of `dataset` that training uses (never the held-out ones)."""
    student = build_student(teacher, recipe.student)
    train_idx, _ = split_eval(dataset, recipe.train.eval_items, recipe.train.seed, recipe.train.segment_frames)
    return student, init_on_data(student, teacher, dataset, recipe.student, train_idx)


def default_out(teacher_path: str | Path, recipe: str | Path | Recipe) -> Path:
    """runs/<teacher stem>-<recipe>: the run folder when none is given."""
    name = recipe.name if isinstance(recipe, Recipe) else Path(recipe).stem
    return Path("runs") / f"{Path(teacher_path).stem}-{name}"


def student_file(out: str | Path, teacher_path: str | Path, recipe_name: str) -> Path:
    """OUT/<teacher stem>_<recipe>.pth: the teacher's name first, so RVC still finds its index."""
    name = re.sub(r"[^\w.-]+", "-", recipe_name).strip("-.") or "student"
    return Path(out) / f"{Path(teacher_path).stem}_{name}.pth"


def _check_dataset(dataset, teacher: torch.nn.Module, recipe: Recipe) -> None:
    cfg = teacher.config
    dim = getattr(dataset, "feature_dim", cfg.phone_dim)
    if dim != cfg.phone_dim:
        raise DistillRVCError(f"the dataset has {dim}-d content features but the teacher ({cfg.version}) takes "
                              f"{cfg.phone_dim}-d: prepare the data with the {cfg.version} content encoder")
    if recipe.loss.ground_truth:
        if not getattr(dataset, "has_audio", False):
            log.warning("the dataset has no audio: the ground-truth term is off")
        elif getattr(dataset, "sample_rate", cfg.sr) != cfg.sr:
            raise DistillRVCError(f"the dataset's audio is at {dataset.sample_rate} Hz but the teacher makes "
                                  f"{cfg.sr} Hz: prepare the data at {cfg.sr} Hz or set [loss] ground_truth = 0")
