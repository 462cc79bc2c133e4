"""Peak training memory of a recipe, predicted on a CPU without running the step.

`plan_training` builds the teacher, the student, the loss helpers and the optimisers on fake
tensors and traces *the trainer's own* `Session.step` once (memory.fake_step_memory:
MemTracker under FakeTensorMode, FlopCounterMode for the FLOPs). It costs a few seconds and
allocates nothing. What it adds on top of the traced tensors is stated, not hidden:

    CUDA   + a CUDA context with cuDNN workspaces (memory.CUDA_OVERHEAD_BYTES, 500 MB)
           and x1.10 for the caching allocator's rounding and fragmentation
    CPU    + the Python process itself (torch, numpy, librosa loaded: about 300 MiB measured)

A recipe for CUDA is traced in its precision (the teacher in fp16, the student under bf16 or
fp16 autocast); gradients and optimiser state stay fp32 either way. One micro-batch is traced:
accumulation adds no activations, since each micro-batch's backward frees its own.

`measure_step_memory` runs the same step for real (CPU, fp32) and counts what the plan
predicts: parameters, gradients, optimiser state, and the activations saved for backward
(with `torch.autograd.graph.saved_tensors_hooks`), to check the plan (tests, bench/).

`plan(teacher, recipes) -> PlanResult` with `format_plans`, and `recipe_table(teacher)` with
`format_recipes`, are `distill-rvc plan` and `distill-rvc recipes` from Python.
"""
from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..config import SynthConfig
from ..memory import ALLOCATOR_SLACK, CUDA_OVERHEAD_BYTES, GB, fake_step_memory, macs_per_second
from ..models import Synthesizer
from .batches import Batch
from .recipes import Recipe, TrainConfig, list_recipes, load_recipe
from .student import student_config
from .trainer import Precision, Session

CPU_PROCESS_BYTES = 400 * 1024**2  # measured 305 MiB RSS with torch, numpy, scipy, librosa, tensorboard loaded


@dataclass
class MemoryPlan:
    """Predicted peak training memory of one recipe, by part (bytes)."""

    recipe: str
    device: str  # what the budget is for: "cuda" or "cpu"
    precision: str
    budget_bytes: int
    batch_size: int
    micro_batch: int
    segment_frames: int
    grad_checkpointing: bool
    params: dict[str, int]  # parameter counts: student, teacher, helpers (projections, discriminator)
    parts: dict[str, int]  # bytes: weights, gradients, optimizer state, activations, ...
    tracked_peak: int  # the traced step's peak over every tensor
    overheads: dict[str, int]  # stated additions on top of the traced tensors
    total: int  # the planned peak: tracked_peak and overheads
    flops_per_step: int  # one micro-batch, forward and backward, teacher included
    student_config: dict[str, Any] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return self.total <= self.budget_bytes

    @property
    def activation_bytes_per_item(self) -> float:
        return self.parts["activations"] / self.micro_batch

    def largest_micro_batch(self) -> int:
        """The micro-batch that would fit the budget, from activations growing linearly with it."""
        usable = (self.budget_bytes - sum(v for k, v in self.overheads.items() if k != "allocator_slack"))
        usable = usable / (ALLOCATOR_SLACK if self.device == "cuda" else 1.0)
        fixed = self.tracked_peak - self.parts["activations"] - self.parts["peak_temporaries"]
        per_item = (self.parts["activations"] + self.parts["peak_temporaries"]) / self.micro_batch
        return max(0, int((usable - fixed) // max(per_item, 1)))

    def advice(self) -> str:
        """What to change in the recipe to fit the budget (one line)."""
        fit = self.largest_micro_batch()
        hints = []
        if fit >= 1:
            acc = -(-self.batch_size // fit)
            hints.append(f"set [train] accumulation = {acc} (micro-batch {self.batch_size // acc}) or batch_size = {fit}")
        else:
            hints.append(f"lower [train] segment_frames (now {self.segment_frames})")
        if not self.grad_checkpointing:
            hints.append("set [train] grad_checkpointing = true")
        if self.device == "cuda" and self.precision == "fp32":
            hints.append("set [train] precision = \"bf16\"")
        hints.append("or pick a smaller recipe")
        return "; ".join(hints)


def _precision_for(recipe: Recipe) -> Precision:
    if recipe.device == "cpu":
        return Precision(None, torch.float32, False)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[recipe.train.precision]
    return Precision(amp, torch.float16, False)  # the scaler's few bytes are not worth tracing


def synthetic_batch(config: SynthConfig, batch: int, frames: int, with_audio: bool = False) -> Batch:
    """A batch of the right shapes and dtypes (content does not matter for memory)."""
    return Batch(phone=torch.randn(batch, frames, config.phone_dim), lengths=torch.full((batch,), frames),
                 pitch=torch.randint(1, 256, (batch, frames)) if config.f0 else None,
                 pitchf=torch.full((batch, frames), 150.0) if config.f0 else None,
                 sid=torch.zeros(batch, dtype=torch.long), noise=torch.randn(batch, config.inter_channels, frames),
                 audio=torch.zeros(batch, 1, frames * config.hop_length) if with_audio else None)


def _micro_config(train: TrainConfig) -> tuple[TrainConfig, int]:
    import dataclasses
    micro = train.batch_size // train.accumulation
    return dataclasses.replace(train, batch_size=micro, accumulation=1), micro


def _trace_step(step_index: int):
    """The trace's step number: late enough for the adversarial term (when configured) to be on."""
    return max(1, step_index)


def plan_training(teacher_config: SynthConfig, recipe: Recipe, student: SynthConfig | None = None) -> MemoryPlan:
    """The recipe's predicted peak training memory with this teacher (see the module docstring)."""
    s_cfg = student or student_config(teacher_config, recipe.student)
    precision = _precision_for(recipe)
    train_cfg, micro = _micro_config(recipe.train)
    loss_cfg = recipe.loss
    with_audio = loss_cfg.ground_truth > 0

    def setup():
        previous = torch.get_default_dtype()
        torch.set_default_dtype(precision.teacher_dtype)  # fake parameters cannot change dtype later
        try:
            teacher = Synthesizer(teacher_config)
        finally:
            torch.set_default_dtype(previous)
        # foreach=True on CUDA recipes: what AdamW does on a GPU (its temporaries count) and
        # a few dozen traced ops instead of a dozen per parameter.
        session = Session(Synthesizer(s_cfg), teacher, train_cfg, loss_cfg, torch.device("cpu"), precision,
                          foreach=recipe.device == "cuda")
        # MemTracker hooks every parameter of a module it sees run, which torch refuses for frozen
        # ones. The teacher runs under no_grad, so unfreezing it changes nothing in the trace.
        session.teacher.requires_grad_(True)
        tracked = [session.teacher, session.student, session.loss, session.opt] + ([session.opt_d] if session.opt_d
                                                                                     else [])
        return session, tracked

    def run(session: Session, probe) -> None:
        batch = synthetic_batch(teacher_config, micro, train_cfg.segment_frames, with_audio)
        session.step(batch, _trace_step(loss_cfg.adversarial_start if loss_cfg.adversarial else 1), micro,
                     after_forward=probe)

    mem = fake_step_memory(setup, run)
    session: Session = mem.tracked

    def size(module: torch.nn.Module) -> tuple[int, int]:
        params = list(module.parameters())
        return sum(p.numel() for p in params), sum(p.numel() * p.element_size() for p in params)

    (n_student, b_student), (n_teacher, b_teacher), (n_aux, b_aux) = (size(session.student), size(session.teacher),
                                                                     size(session.loss))
    act = mem.after_forward.get("act", 0)
    parts = {
        "student_weights": b_student,
        "teacher_weights": b_teacher,
        "helper_weights": b_aux,  # feature projections and the discriminator
        "gradients": mem.after_step.get("grad", 0),
        "optimizer_state": mem.after_step.get("opt", 0),
        "activations": act,  # held for backward (and the teacher's targets), between forward and backward
        "peak_temporaries": max(0, mem.peak.get("total", 0) - b_student - b_teacher - b_aux - act
                                - mem.peak.get("grad", 0) - mem.peak.get("opt", 0)),
    }
    tracked = mem.peak.get("total", 0)
    if recipe.device == "cuda":
        overheads = {"cuda_context_cudnn": CUDA_OVERHEAD_BYTES,
                     "allocator_slack": int(tracked * (ALLOCATOR_SLACK - 1))}
    else:
        overheads = {"python_process": CPU_PROCESS_BYTES}
    return MemoryPlan(
        recipe=recipe.name, device=recipe.device, precision=precision.name, budget_bytes=int(recipe.budget_gb * GB),
        batch_size=recipe.train.batch_size, micro_batch=micro, segment_frames=train_cfg.segment_frames,
        grad_checkpointing=train_cfg.grad_checkpointing,
        params={"student": n_student, "teacher": n_teacher, "helpers": n_aux}, parts=parts, tracked_peak=tracked,
        overheads=overheads, total=tracked + sum(overheads.values()), flops_per_step=mem.flops,
        student_config=s_cfg.to_dict())


def measure_step_memory(teacher: Synthesizer, student: Synthesizer, recipe: Recipe, seed: int = 0) -> dict[str, int]:
    """One real training step on the CPU in fp32, measured as the plan predicts it (bytes):
    weights, gradients, optimiser state, and activations saved for backward in the first
    micro-batch's forward (unique storages, parameters excluded)."""
    train_cfg, micro = _micro_config(recipe.train)
    session = Session(student, teacher, train_cfg, recipe.loss, torch.device("cpu"),
                      Precision(None, torch.float32, False))
    param_storages = {p.untyped_storage().data_ptr() for m in (session.student, session.teacher, session.loss)
                      for p in m.parameters()}
    saved: dict[int, tuple[int, weakref.ref]] = {}
    alive_at_backward: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if not alive_at_backward and storage.data_ptr() not in param_storages:
            saved[storage.data_ptr()] = (storage.nbytes(), weakref.ref(t))
        return t

    def stop() -> None:
        # Only what is still held when the first backward starts: the discriminator's own
        # backward (run before the generator's forward ends) has already freed its part.
        if not alive_at_backward:
            alive_at_backward.append(sum(n for n, ref in saved.values() if ref() is not None))

    torch.manual_seed(seed)
    batch = synthetic_batch(teacher.config, micro, train_cfg.segment_frames, recipe.loss.ground_truth > 0)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        session.step(batch, _trace_step(recipe.loss.adversarial_start if recipe.loss.adversarial else 1), micro,
                     after_forward=stop)

    def nbytes(tensors) -> int:
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)

    modules = (session.student, session.teacher, session.loss)
    opts = [session.opt] + ([session.opt_d] if session.opt_d else [])
    state = [v for opt in opts for s in opt.state.values() for v in s.values()
             if isinstance(v, torch.Tensor) and v.dim() > 0]
    return {
        "weights": nbytes(p for m in modules for p in m.parameters()),
        "gradients": nbytes(p.grad for m in modules for p in m.parameters()),
        "optimizer_state": nbytes(state),
        "activations": alive_at_backward[0],
    }


# ------------------------------------------------------------------------------ reports
@dataclass
class PlanResult:
    """`distill-rvc plan`: one memory plan per recipe, for one teacher."""

    plans: list[MemoryPlan]

    def to_json(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(p) | {"fits": p.fits} for p in self.plans]


def teacher_config(teacher: str | Path | None = None) -> SynthConfig:
    """The teacher file's architecture, or RVC's v2 40k f0 config when no file is given."""
    from ..checkpoint import read_checkpoint
    from ..config import rvc_config

    return read_checkpoint(teacher).config if teacher else rvc_config("v2", 40000, True)


def plan(teacher: str | Path | None = None, recipes: Sequence[str | Path | Recipe] = ()) -> PlanResult:
    """Plan each recipe (names, .toml paths or Recipes; none: every shipped one) for the teacher
    file (None: RVC's v2 40k architecture)."""
    cfg = teacher_config(teacher)
    chosen = [r if isinstance(r, Recipe) else load_recipe(r) for r in recipes] if recipes else list_recipes()
    return PlanResult([plan_training(cfg, r) for r in chosen])


def format_plans(result: PlanResult) -> str:
    """What `distill-rvc plan` prints: each plan's breakdown, a blank line between."""
    return "\n\n".join(format_plan(p) for p in result.plans)


def recipe_table(teacher: str | Path | None = None) -> list[dict[str, Any]]:
    """`distill-rvc recipes`: `recipe_summaries` of every shipped recipe for the teacher file
    (None: RVC's v2 40k architecture)."""
    return recipe_summaries(teacher_config(teacher), list_recipes())


def format_recipes(rows: list[dict[str, Any]]) -> str:
    """The table `distill-rvc recipes` prints: the teacher's size, then one line per recipe."""
    t = rows[0]
    lines = [f"teacher: {t['teacher_params']:,} params, {t['teacher_macs_per_s'] / 1e9:.2f} GMAC per second of audio",
             f"{'recipe':<7} {'budget':>7} {'params':>11} {'smaller':>8} {'GMAC/s':>7} {'cheaper':>8} "
             f"{'batch x frames':>15} {'precision':>9}  file"]
    for r in rows:
        budget = f"{r['budget_gb']:g} GB" + ("*" if r["device"] == "cpu" else "")
        lines.append(f"{r['recipe']:<7} {budget:>7} {r['student_params']:>11,} {r['param_ratio']:>7.1f}x "
                     f"{r['student_macs_per_s'] / 1e9:>7.2f} {r['teacher_macs_per_s'] / r['student_macs_per_s']:>7.1f}x "
                     f"{str(r['batch_size']) + ' x ' + str(r['segment_frames']):>15} {r['precision']:>9}  "
                     f"{r['file_format']}")
    lines.append("* budget in RAM (trains on the CPU)")
    return "\n".join(lines)


def recipe_summaries(teacher_config: SynthConfig, recipes: list[Recipe]) -> list[dict[str, Any]]:
    """Size and cost of each recipe's student for this teacher (for `distill-rvc recipes`)."""
    def params(cfg: SynthConfig) -> int:
        with torch.device("meta"):
            return sum(p.numel() for p in Synthesizer(cfg).parameters())

    n_t, macs_t = params(teacher_config), macs_per_second(teacher_config)
    rows = []
    for recipe in recipes:
        s_cfg = student_config(teacher_config, recipe.student)
        n_s = params(s_cfg)
        fits, why = s_cfg.fits_rvc()
        rows.append({
            "recipe": recipe.name, "description": recipe.description, "budget_gb": recipe.budget_gb,
            "device": recipe.device, "student_params": n_s, "teacher_params": n_t, "param_ratio": n_t / n_s,
            "student_macs_per_s": macs_per_second(s_cfg), "teacher_macs_per_s": macs_t,
            "file_format": "RVC" if fits else f"project ({why})", "batch_size": recipe.train.batch_size,
            "segment_frames": recipe.train.segment_frames, "precision": recipe.train.precision,
            "steps": recipe.train.steps, "student_config": s_cfg.to_dict()})
    return rows


def format_plan(plan: MemoryPlan) -> str:
    """The per-part breakdown, one line each, for `distill-rvc plan`."""
    mb = 1024**2
    head = (f"recipe {plan.recipe}: {plan.device}, {plan.precision}, micro-batch {plan.micro_batch} of "
            f"{plan.batch_size} x {plan.segment_frames} frames, checkpointing {'on' if plan.grad_checkpointing else 'off'}")
    p = plan.params
    lines = [head, f"  params: student {p['student']:,}, teacher {p['teacher']:,}, helpers {p['helpers']:,}"]
    labels = {"student_weights": "student weights", "teacher_weights": "teacher weights (frozen)",
              "helper_weights": "projections + discriminator", "gradients": "gradients",
              "optimizer_state": "optimizer state (AdamW)", "activations": "activations (held for backward)",
              "peak_temporaries": "temporaries at the peak"}
    for key, label in labels.items():
        lines.append(f"  {label:<34} {plan.parts[key] / mb:9.1f} MiB")
    lines.append(f"  {'= traced peak':<34} {plan.tracked_peak / mb:9.1f} MiB")
    extra = {"cuda_context_cudnn": "+ CUDA context + cuDNN (estimate)", "allocator_slack": "+ allocator slack (10 %)",
             "python_process": "+ Python process (measured)"}
    for key, value in plan.overheads.items():
        lines.append(f"  {extra[key]:<34} {value / mb:9.1f} MiB")
    verdict = "fits" if plan.fits else "DOES NOT FIT"
    lines.append(f"  {'= planned peak':<34} {plan.total / mb:9.1f} MiB   budget {plan.budget_bytes / mb:.0f} MiB: "
                 f"{verdict}")
    lines.append(f"  compute: {plan.flops_per_step / 1e9:.1f} GFLOP per micro-batch step (forward + backward, teacher "
                 "included)")
    if not plan.fits:
        lines.append(f"  to fit: {plan.advice()}")
    return "\n".join(lines)
