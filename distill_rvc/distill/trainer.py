"""The distillation loop, in plain PyTorch: a run's `train` and the `Session` that takes one step.

    train(student, teacher, dataset, TrainConfig, LossConfig, out_dir) -> TrainResult
    Session(student, teacher, ...).step(batch, step, micro)              one optimiser step, no I/O
    choose_precision(requested, device) -> Precision                     what runs in which dtype where

It takes models, not files, so pruning's recovery distillation calls it as `teach` does.
One optimiser step, top to bottom (`Session.step`):

    for each micro-batch of the step's batch (batches.py: a pure function of seed and step):
        teacher forward, frozen, no grad (fp16 on CUDA), recording its decoder feature maps
            (or its outputs read from the teacher cache, computed once: teacher_cache.py)
        student forward under autocast (bf16, or fp16 with a GradScaler; fp32 on CPU),
            decoder resblocks recomputed in backward if gradient checkpointing is on
        [discriminator loss on the detached student audio -> backward]
            (in the block-wise stage each block on the teacher's input for it: stages.py)
        distillation loss (losses.py) / micro-batches -> backward (gradients accumulate)
    optimiser step(s), scaler update, lr from the step number (warm-up, then cosine)

Around it, `train` checks the whole dataset cache before step 1, handles CUDA out-of-memory
(halve the micro-batch, keep the effective batch, redo the step), and calls, at their
moments, the held-out evaluation (evaluate.py), TensorBoard (tb.py) and the checkpoints
(train_state.py): every `checkpoint_every` steps and at most `checkpoint_seconds` apart, at
the last step, and when SIGINT or SIGTERM arrives (the step in progress finishes, is saved,
then `Interrupted` is raised). `resume=True` continues from the newest checkpoint.
Under torchrun (`group`, distributed.py) each rank takes its shard of every step's batch,
the gradients are summed before the optimiser steps, and rank 0 alone evaluates and writes.
Not here: the teacher and student files (teach.py) or the memory plan (planner.py).
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.checkpoint import checkpoint

from ..errors import DistillRVCError
from ..memory import peak_rss_bytes
from ..models import Synthesizer
from ..options import resolve_device
from .batches import Batch, Batches, eval_items, micro_batches, split_eval
from .distributed import Group, describe_batch, rank_micro, single
from .evaluate import evaluate, fidelity
from .losses import DistillLoss, capture
from .recipes import LossConfig, TrainConfig
from .stages import STAGES, forced_forward, stage_at
from .tb import QuietLogger, RunLogger, set_aside_stale_logs
from .teacher_cache import teacher_batches
from .train_state import Interrupted, StopOnSignal, restore, save_state, state_path

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------- precision
@dataclass(frozen=True)
class Precision:
    amp_dtype: torch.dtype | None  # autocast dtype of the student, None = fp32
    teacher_dtype: torch.dtype
    scaler: bool  # fp16 needs loss scaling; bf16 does not

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]


def choose_precision(requested: str, device: torch.device) -> Precision:
    """What runs where: CPUs train in fp32 (their half-precision convs are slow or missing);
    on CUDA the teacher runs in fp16 and the student under the requested autocast, with bf16
    falling back to fp16 + GradScaler on cards without bf16."""
    if device.type != "cuda":
        if requested != "fp32":
            log.info("training on %s in fp32 (the recipe's %s applies to CUDA)", device.type, requested)
        return Precision(None, torch.float32, False)
    name = torch.cuda.get_device_name(device)
    if half_precision_broken(name):
        log.warning("%s: half precision is unreliable on this card (RVC forces fp32 on it too); training in fp32",
                    name)
        return Precision(None, torch.float32, False)
    if requested == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        log.warning("this GPU has no native bf16: using fp16 with a GradScaler")
        requested = "fp16"
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[requested]
    return Precision(amp, torch.float16, requested == "fp16")


def half_precision_broken(gpu_name: str) -> bool:
    """RVC's rule (rvc-format.md §8): fp32 on GTX 16xx, P40/P10x, 1060/1070/1080. GTX 16xx is
    matched as RVC 2026 does (`16\\d{2}`), so "16GB" in an RTX name does not count."""
    if re.search(r"16\d{2}", gpu_name):
        return True
    return any(tag in gpu_name.upper() for tag in ("P40", "P10", "1060", "1070", "1080"))


def set_checkpointing(student: Synthesizer, on: bool) -> None:
    """Recompute each decoder resblock in backward instead of keeping its activations.

    Per resblock, not per stage: a checkpointed region recomputes its whole inside, so one
    big region would peak as high as no checkpointing at all.
    """
    for block in student.dec.resblocks:
        if on:
            block.forward = functools.partial(checkpoint, type(block).forward.__get__(block), use_reentrant=False)
        else:
            block.__dict__.pop("forward", None)


def _moved(module: torch.nn.Module, device: torch.device, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """`module.to(device, dtype)`, skipped when nothing changes (the planner's fake parameters
    cannot be swapped, and need not be)."""
    if all(p.device.type == device.type and (dtype is None or p.dtype == dtype) for p in module.parameters()):
        return module
    return module.to(device=device, dtype=dtype)


# --------------------------------------------------------------------------- one step
class Session:
    """Models, optimisers and precision of one run; `step` is one optimiser step. No I/O."""

    def __init__(self, student: Synthesizer, teacher: Synthesizer, train_cfg: TrainConfig, loss_cfg: LossConfig,
                 device: torch.device, precision: Precision, loss: DistillLoss | None = None,
                 foreach: bool | None = None, group: Group | None = None):
        self.train_cfg, self.loss_cfg = train_cfg, loss_cfg
        self.group = group or single(device)  # torchrun's ranks (distributed.py), or this process alone
        self.device, self.precision = device, precision
        self.teacher = _moved(teacher, device, precision.teacher_dtype).eval().requires_grad_(False)
        self.student = _moved(student, device).train()
        set_checkpointing(self.student, train_cfg.grad_checkpointing)
        self.loss = _moved(loss or DistillLoss(self.teacher, self.student, loss_cfg), device)
        params = [p for p in self.student.parameters() if p.requires_grad] + self.loss.generator_parameters()
        adam = dict(lr=train_cfg.lr, betas=train_cfg.betas, eps=1e-9, weight_decay=train_cfg.weight_decay,
                    foreach=foreach)
        self.opt = torch.optim.AdamW(params, **adam)
        self.opt_d = torch.optim.AdamW(self.loss.disc.parameters(), **adam) if hasattr(self.loss, "disc") else None
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision.scaler)

    def lr_at(self, step: int) -> float:
        c = self.train_cfg
        if step <= c.warmup_steps:
            return c.lr * step / max(c.warmup_steps, 1)
        progress = min(1.0, (step - c.warmup_steps) / max(c.steps - c.warmup_steps, 1))
        return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    def _autocast(self):
        p = self.precision
        return torch.autocast(self.device.type, dtype=p.amp_dtype or torch.float32, enabled=p.amp_dtype is not None)

    def step(self, batch: Batch, step: int, micro: int,
             after_forward: Callable[[], None] | None = None, total: int | None = None) -> dict[str, torch.Tensor]:
        """One optimiser step over `batch` in micro-batches of `micro` items.

        Returns the detached, unweighted loss terms averaged over the batch ("total" weighted).
        `after_forward` runs once, between the first forward and its backward (memory probes).
        Under torchrun `batch` is this rank's shard of a global batch of `total` items: each
        item weighs 1/total and the ranks' gradients and terms are summed (distributed.py).
        """
        total = total or len(batch)
        for group in self.opt.param_groups + (self.opt_d.param_groups if self.opt_d else []):
            group["lr"] = self.lr_at(step)
        self.opt.zero_grad(set_to_none=True)
        if self.opt_d:
            self.opt_d.zero_grad(set_to_none=True)
        stage = stage_at(self.loss_cfg, step, self.opt_d is not None)
        adversarial = stage == "adversarial"
        parts = micro_batches(batch, micro)
        sums: dict[str, torch.Tensor] = {}
        names = self.loss.feature_names
        for k, part in enumerate(parts):
            weight = len(part) / total
            s_in = part.to(self.device).for_student()  # the teacher's own input stays in `part`
            if part.teacher is not None:  # computed once (teacher_cache.py): the step runs only the student
                t_out, t_feats = part.teacher.outputs(self.device, self.precision.teacher_dtype)
            else:
                t_in = part.to(self.device, self.precision.teacher_dtype)
                with torch.no_grad(), capture(self.teacher, names) as t_feats:
                    t_out = self.teacher(t_in.phone, t_in.lengths, t_in.pitch, t_in.pitchf, t_in.sid,
                                         noise=t_in.noise, source_noise=False)
            noise = s_in.noise[:, :self.student.config.inter_channels]  # a fixed slice where the latent is narrower
            with self._autocast(), capture(self.student, names) as s_feats:
                if stage == "blockwise":  # each block on the teacher's input for it (stages.py)
                    s_out = forced_forward(self.student, s_in, t_out, noise)
                else:
                    s_out = self.student(s_in.phone, s_in.lengths, s_in.pitch, s_in.pitchf, s_in.sid, noise=noise,
                                         source_noise=False)
            if adversarial:
                with self._autocast():
                    d_loss = self.loss.discriminator_loss(s_out.audio, t_out.audio)
                self.scaler.scale(d_loss * weight).backward()
                sums["discriminator"] = sums.get("discriminator", 0) + d_loss.detach() * weight
            disc = getattr(self.loss, "disc", None)
            if disc is not None:
                disc.requires_grad_(False)  # the generator's gradient must not reach D
            try:
                with self._autocast():
                    terms = self.loss(s_out, t_out, dict(s_feats), dict(t_feats), s_in.audio, adversarial=adversarial)
            finally:
                if disc is not None:
                    disc.requires_grad_(True)
            if k == 0 and after_forward is not None:
                after_forward()
            self.scaler.scale(terms["total"] * weight).backward()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0) + value.detach().float() * weight
        sums = self._sync(sums)
        if adversarial:
            self.scaler.step(self.opt_d)
        self.scaler.step(self.opt)
        self.scaler.update()
        return sums

    def _sync(self, sums: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Several ranks: their gradients and loss terms summed, before the optimiser steps."""
        if not self.group.world.distributed:
            return sums
        if self.group.any(False):  # a rank ran out of memory (_step_with_backoff): all back off together
            oom = torch.OutOfMemoryError("out of memory on another rank")
            oom.agreed = True
            raise oom
        params = [p for opt in (self.opt, self.opt_d) if opt for g in opt.param_groups for p in g["params"]]
        self.group.sum_gradients(params)
        return self.group.sum_scalars(sums)

    def state_dict(self) -> dict[str, Any]:
        return {"student": self.student.state_dict(), "loss": self.loss.state_dict(), "opt": self.opt.state_dict(),
                "opt_d": self.opt_d.state_dict() if self.opt_d else None, "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.student.load_state_dict(state["student"])
        self.loss.load_state_dict(state["loss"])
        self.opt.load_state_dict(state["opt"])
        if self.opt_d is not None and state.get("opt_d"):
            self.opt_d.load_state_dict(state["opt_d"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


# ------------------------------------------------------------------------- the loop
@dataclass
class TrainResult:
    steps: int  # the last step done
    history: list[dict[str, float]] = field(default_factory=list)  # losses of the steps this call ran
    fidelity: dict[str, float] = field(default_factory=dict)  # mel_l1 at init and at the end, and their ratio
    micro_batch: int = 0
    peak_memory_bytes: int = 0  # CUDA max_memory_allocated, or the process's peak RSS on CPU
    seconds: float = 0.0
    device: str = ""  # where it trained: "cpu", "cuda", "cuda:1"


def train(student: Synthesizer, teacher: Synthesizer, dataset, train_cfg: TrainConfig, loss_cfg: LossConfig,
          out_dir: str | Path, *, device: str | torch.device | None = None, resume: bool = False,
          progress: bool = True, hparams: dict[str, Any] | None = None,
          callback: Callable[[int, dict[str, float]], None] | None = None,
          fingerprint: dict[str, Any] | None = None, planned_bytes: int | None = None,
          group: Group | None = None) -> TrainResult:
    """Distil `teacher` into `student` (in place) on `dataset`; logs and checkpoints under out_dir.

    `callback(step, losses)` runs after every step. `fingerprint` (plain data, e.g. the recipe)
    is stored in checkpoints and must match on resume (with the student, loss and train configs).
    `hparams` go to TensorBoard's HParams view with the final fidelity; `planned_bytes` (the
    memory plan) is logged beside the measured peak. `group` (distributed.joined) makes this
    process one of torchrun's ranks: its own shard of each step, files from rank 0 alone.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    check = getattr(dataset, "check", None)
    if callable(check):
        check()  # a missing or truncated segment is refused now, not hours in
    # auto, cpu, cuda, cuda:N, and a GPU torch can see; else one line (options.py); a rank's is the group's
    device = group.device if group is not None else resolve_device(device)
    group = group or single(device)
    precision = choose_precision(train_cfg.precision, device)
    cfg = train_cfg
    if not 0 <= cfg.speaker < teacher.config.spk_embed_dim:
        raise DistillRVCError(f"speaker {cfg.speaker} does not exist: the teacher has speakers 0 to "
                              f"{teacher.config.spk_embed_dim - 1}")
    if teacher.config.f0 and not getattr(dataset, "f0", True):
        raise DistillRVCError("the teacher is a pitch (f0) model but the dataset has no F0; prepare it with F0")
    if loss_cfg.blockwise_steps and student.config.inter_channels != teacher.config.inter_channels:
        raise DistillRVCError(f"[loss] blockwise_steps = {loss_cfg.blockwise_steps} feeds the teacher's latent to the "
                              f"student's decoder, but the student's is {student.config.inter_channels} wide, the "
                              f"teacher's {teacher.config.inter_channels}: keep inter_channels = \"1x\" or set "
                              "blockwise_steps = 0")
    train_idx, held = split_eval(dataset, cfg.eval_items, cfg.seed, cfg.segment_frames)
    if not held:
        log.warning("the dataset is too small to hold segments out: fidelity is measured on training segments")
        held = train_idx[:cfg.eval_items]
    batches = Batches(dataset, train_idx, cfg, teacher.config.inter_channels, teacher.config.hop_length,
                      teacher.config.f0, loss_cfg.mean_path_fraction)
    evals = eval_items(dataset, held, cfg.eval_frames, teacher.config.f0)
    session = Session(student, teacher, cfg, loss_cfg, device, precision, group=group)
    group.broadcast_modules(session.student, session.loss)  # every rank starts from rank 0's weights
    micro = rank_micro(cfg.batch_size // cfg.accumulation, cfg.batch_size, group.world)
    run_length = ("steps", "checkpoint_every", "checkpoint_seconds", "keep_checkpoints", "eval_every", "log_every")
    fingerprint = {"student": student.config.to_dict(), "loss": _plain(loss_cfg),
                   "train": {k: v for k, v in _plain(cfg).items() if k not in run_length}, **(fingerprint or {})}

    start, init_mel, last_mel = 0, None, None
    restored = restore(out_dir, session, fingerprint, device, resume)
    if restored is not None:
        start, (init_mel, last_mel) = restored.step, restored.fidelity
        # the micro-batch is what fits one device's memory: kept per process, whatever the world size
        micro = max(1, min(restored.micro_batch, len(group.shard(cfg.batch_size))))
    if group.is_main:
        log.info("%s", describe_batch(cfg.batch_size, micro, group.world))
    with group.main_first():  # under torchrun rank 0 builds the cache once; the others then find it
        cached = teacher_batches(out_dir / "teacher_cache", session, dataset, train_idx, cfg, loss_cfg,
                                 fingerprint.get("teacher_sha256"), progress and group.is_main)
    batches = cached or batches  # with the cache a step runs only the student

    if not start and group.is_main:
        aside = set_aside_stale_logs(out_dir)
        if aside is not None:
            log.info("a previous attempt in %s left TensorBoard logs but no checkpoint: moved them to %s", out_dir,
                     aside)
    logger = group.on_main(lambda: RunLogger(out_dir, purge_step=start + 1 if start else None,
                                             sample_rate=teacher.config.sr)) or QuietLogger()
    bar = tqdm(total=cfg.steps, initial=start, disable=not progress or not group.is_main, desc="teach", unit="step",
               dynamic_ncols=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result = TrainResult(steps=start, micro_batch=micro, device=str(device))
    began = last_save = time.perf_counter()
    stop = StopOnSignal()
    try:
        stop.__enter__()
        if init_mel is None and group.is_main:  # held-out evaluation on rank 0; the others wait for it
            init_mel, items = evaluate(session, evals, cfg.seed)
            logger.eval(0, items, init_mel, fidelity(items, teacher.config.sr) if cfg.eval_fidelity else None)
            last_mel = init_mel
        for step in range(start + 1, cfg.steps + 1):
            t0 = time.perf_counter()
            sums, micro = _step_with_backoff(session, batches.draw(step, group.shard(cfg.batch_size)), step, micro,
                                             cfg.batch_size)
            losses = {k: float(v) for k, v in sums.items()}
            if not math.isfinite(losses["total"]):
                raise DistillRVCError(f"the loss became {losses['total']} at step {step}: lower [train] lr or use "
                                      "bf16/fp32 instead of fp16")
            losses["lr"] = session.lr_at(step)
            losses["step_s"] = time.perf_counter() - t0
            losses["stage"] = float(STAGES.index(stage_at(loss_cfg, step, session.opt_d is not None)))
            result.history.append(losses)
            result.steps, result.micro_batch = step, micro
            bar.update(1)
            bar.set_postfix(loss=f"{losses['total']:.3f}", mel=f"{losses.get('mel', float('nan')):.3f}")
            if step % cfg.log_every == 0 or step == cfg.steps:
                logger.scalars(step, losses, micro, _peak_memory(device), planned_bytes)
            if (step % cfg.eval_every == 0 or step == cfg.steps) and group.is_main:
                last_mel, items = evaluate(session, evals, cfg.seed)
                logger.eval(step, items, last_mel, fidelity(items, teacher.config.sr) if cfg.eval_fidelity else None)
            # agreed by all ranks: one stopping or saving alone would leave the others waiting
            signalled, timed = group.flags(stop.signum is not None,
                                           time.perf_counter() - last_save >= cfg.checkpoint_seconds)
            stopping = signalled and step < cfg.steps
            if step % cfg.checkpoint_every == 0 or step == cfg.steps or stopping or timed:
                saved = group.on_main(lambda: save_state(out_dir, session, step, micro, (init_mel, last_mel),
                                                         fingerprint, device, cfg.keep_checkpoints,
                                                         group.world.size)) or state_path(out_dir, step)
                last_save = time.perf_counter()
            if callback is not None:
                callback(step, losses)
            if stopping:
                log.debug("stopping after step %d (signal %d): saved %s", step, stop.signum, saved)
                raise Interrupted(stop.signum, step, cfg.steps, saved)
        init_mel, last_mel = group.broadcast_floats([init_mel, last_mel])
        result.fidelity = {"mel_l1_init": init_mel, "mel_l1": last_mel,
                           "mel_l1_ratio": last_mel / max(init_mel, 1e-12)}
        result.peak_memory_bytes = _peak_memory(device)
        if hparams is not None:
            logger.hparams(result.steps, hparams, result.fidelity)
    finally:
        stop.__exit__()
        bar.close()
        logger.close()
        set_checkpointing(session.student, False)
    result.seconds = time.perf_counter() - began
    session.student.eval()
    return result


def _step_with_backoff(session: Session, batch: Batch, step: int, micro: int,
                       total: int | None = None) -> tuple[dict[str, torch.Tensor], int]:
    """`session.step`; on CUDA out-of-memory, halve the micro-batch (the batch, hence the
    gradient, stays the same: more micro-batches accumulate) and redo the step. Under torchrun
    a rank that runs out tells the others (waiting in Session._sync), and all halve theirs."""
    while True:
        try:
            return session.step(batch, step, micro, total=total), micro
        except torch.OutOfMemoryError as e:
            if session.group.world.distributed and not getattr(e, "agreed", False):
                session.group.any(True)
            if micro <= 1:
                raise DistillRVCError(
                    "out of GPU memory even at micro-batch 1: lower [train] segment_frames, turn on "
                    "grad_checkpointing, use bf16/fp16, or pick a smaller recipe") from None
            micro = max(1, micro // 2)
            session.opt.zero_grad(set_to_none=True)
            if session.opt_d is not None:
                session.opt_d.zero_grad(set_to_none=True)
            if session.device.type == "cuda":
                torch.cuda.empty_cache()
            log.warning("out of GPU memory at step %d: micro-batch halved to %d, accumulating %d per step", step,
                        micro, math.ceil(len(batch) / micro))


def _plain(x: Any) -> dict[str, Any]:
    d = dataclasses.asdict(x)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return peak_rss_bytes() or 0
