"""The student encoder's training loop: random crops of cached segments, L1 + cosine loss on
the teacher's features, AdamW with warm-up and cosine decay, held-out evaluation,
TensorBoard, atomic checkpoints and resume.

    train_encoder(model, train, held, schedule, work, fingerprint, device, progress) -> TrainOutcome

The batch of step k is drawn from a generator seeded with (seed, k), so a resumed run sees
exactly the batches the uninterrupted run would have. Checkpoints are
WORK/checkpoints/step_NNNNNNNN.pt, written through distill.train_state (atomic, the newest
`keep_checkpoints` kept, refused on resume when the fingerprint differs); SIGINT or SIGTERM
finishes the step, saves and raises train_state.Interrupted.
TensorBoard (WORK/tb): loss/total, loss/l1, loss/cos, train/lr, eval/cosine, eval/l1.
Not for: building the cache (data.py) or the output file (checkpoint.py).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..distill.train_state import Interrupted, StopOnSignal, checkpoints, restore, save_state
from .data import FeatureCache
from .model import FRAME, StudentEncoder
from .recipe import TrainSchedule

EVAL_BATCH = 8
MAX_EVAL_SEGMENTS = 64  # the first ones; enough for a stable mean, cheap enough to run often


@dataclass(frozen=True)
class Fidelity:
    cosine: float  # mean per-frame cosine similarity, student vs teacher, held out
    l1: float  # mean absolute feature difference, held out


@dataclass
class TrainOutcome:
    steps: int
    start: Fidelity  # before any training (step 0)
    end: Fidelity
    baseline: Fidelity  # predicting the training set's mean feature for every frame: what "learned" must beat
    curve: list[dict[str, float]] = field(default_factory=list)  # {step, seconds, cosine, l1}
    seconds: float = 0.0  # training wall time, this call
    resumed_from: int = 0


@torch.no_grad()
def evaluate(model: StudentEncoder, held: FeatureCache, device: torch.device) -> Fidelity:
    """Held-out cosine similarity and L1 over whole segments (the teacher saw them whole too)."""
    was_training = model.training
    model.eval()
    count = min(held.audio.shape[0], MAX_EVAL_SEGMENTS)
    cos_sum, l1_sum, frames = 0.0, 0.0, 0
    for start in range(0, count, EVAL_BATCH):
        audio = torch.from_numpy(np.array(held.audio[start:start + EVAL_BATCH])).to(device)
        target = torch.from_numpy(np.array(held.feats[start:start + EVAL_BATCH])).to(device)
        pred = model(audio)
        cos_sum += F.cosine_similarity(pred, target, dim=-1).sum().item()
        l1_sum += (pred - target).abs().mean(dim=-1).sum().item()
        frames += target.shape[0] * target.shape[1]
    model.train(was_training)
    return Fidelity(cos_sum / frames, l1_sum / frames)


@torch.no_grad()
def mean_feature_baseline(train: FeatureCache, held: FeatureCache) -> Fidelity:
    """Held-out cosine and L1 of a constant prediction, the training set's mean feature."""
    mean = torch.zeros(train.feats.shape[-1], dtype=torch.float64)
    for i in range(train.feats.shape[0]):
        mean += torch.from_numpy(np.array(train.feats[i])).double().sum(0)
    mean = (mean / (train.feats.shape[0] * train.feats.shape[1])).float()
    count = min(held.feats.shape[0], MAX_EVAL_SEGMENTS)
    target = torch.from_numpy(np.array(held.feats[:count])).reshape(-1, mean.shape[0])
    cos = F.cosine_similarity(mean[None], target, dim=-1).mean().item()
    return Fidelity(cos, (target - mean).abs().mean().item())


def batch(cache: FeatureCache, schedule: TrainSchedule, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Step `step`'s random crops -> (audio [B, N], teacher features [B, T, C])."""
    g = torch.Generator().manual_seed(schedule.seed * 1_000_003 + step)
    seg_frames = cache.feats.shape[1]
    crop_frames = min(seg_frames, (int(schedule.crop_seconds * 16000) - 400) // FRAME + 1)
    length = FRAME * (crop_frames - 1) + 400
    items = torch.randint(cache.audio.shape[0], (schedule.batch_size,), generator=g).tolist()
    offsets = torch.randint(seg_frames - crop_frames + 1, (schedule.batch_size,), generator=g).tolist()
    audio = np.stack([cache.audio[i, FRAME * o:FRAME * o + length] for i, o in zip(items, offsets)])
    feats = np.stack([cache.feats[i, o:o + crop_frames] for i, o in zip(items, offsets)])
    return torch.from_numpy(audio), torch.from_numpy(feats)


def lr_factor(schedule: TrainSchedule, step: int) -> float:
    """Linear warm-up to 1, then cosine decay to min_lr_ratio at the last step."""
    if step < schedule.warmup_steps:
        return (step + 1) / schedule.warmup_steps
    span = max(1, schedule.steps - schedule.warmup_steps)
    progress = min(1.0, (step - schedule.warmup_steps) / span)
    return schedule.min_lr_ratio + (1 - schedule.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class Session:
    """What a checkpoint holds: model, optimiser, scheduler, the curve so far."""

    def __init__(self, model: torch.nn.Module, schedule: Any):  # any schedule with lr, weight_decay, steps, warm-up
        self.model = model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(schedule, s))
        self.curve: list[dict[str, float]] = []

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "curve": list(self.curve)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.curve = list(state["curve"])


def loss_terms(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """[B, T, C] each -> {"l1": mean |pred - target|, "cos": mean (1 - cosine) per frame}"""
    return {"l1": (pred - target).abs().mean(), "cos": 1 - F.cosine_similarity(pred, target, dim=-1).mean()}


def train_encoder(model: StudentEncoder, train: FeatureCache, held: FeatureCache, schedule: TrainSchedule,
                  work: Path, fingerprint: dict[str, Any], device: torch.device, progress: bool = True,
                  stop_after: int | None = None) -> TrainOutcome:
    """Train `model` in place for schedule.steps steps, resuming from WORK/checkpoints if any.
    `stop_after` (tests) stops after that step as a kill would, right after a checkpoint."""
    from torch.utils.tensorboard import SummaryWriter

    model.to(device).train()
    session = Session(model, schedule)
    restored = restore(work, session, fingerprint, device, resume=True)
    step = restored.step if restored else 0
    if restored is None:
        start = evaluate(model, held, device)
        session.curve.append({"step": 0, "seconds": 0.0, "cosine": start.cosine, "l1": start.l1})
    first = session.curve[0]
    writer = SummaryWriter(str(work / "tb"), purge_step=step + 1 if restored else None)
    if restored is None:
        writer.add_scalar("eval/cosine", first["cosine"], 0)
        writer.add_scalar("eval/l1", first["l1"], 0)
    done_seconds = session.curve[-1]["seconds"]
    t0 = time.perf_counter()
    bar = None
    if progress and step < schedule.steps:
        from tqdm import tqdm
        bar = tqdm(total=schedule.steps, initial=step, desc="teach-encoder", unit="step", leave=False)

    def save() -> Path:
        fidelity = (first["cosine"], session.curve[-1]["cosine"])
        return save_state(work, session, step, schedule.batch_size, fidelity, fingerprint, device,
                          schedule.keep_checkpoints)

    try:
        with StopOnSignal() as stop:
            while step < schedule.steps:
                audio, target = batch(train, schedule, step)
                terms = loss_terms(model(audio.to(device)), target.to(device))
                loss = schedule.l1_weight * terms["l1"] + schedule.cos_weight * terms["cos"]
                session.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                session.optimizer.step()
                session.scheduler.step()
                step += 1
                writer.add_scalar("loss/total", loss.item(), step)
                for name, value in terms.items():
                    writer.add_scalar(f"loss/{name}", value.item(), step)
                writer.add_scalar("train/lr", session.optimizer.param_groups[0]["lr"], step)
                if step % schedule.eval_every == 0 or step == schedule.steps:
                    fid = evaluate(model, held, device)
                    session.curve.append({"step": step, "seconds": done_seconds + time.perf_counter() - t0,
                                          "cosine": fid.cosine, "l1": fid.l1})
                    writer.add_scalar("eval/cosine", fid.cosine, step)
                    writer.add_scalar("eval/l1", fid.l1, step)
                if bar is not None:
                    bar.update()
                    bar.set_postfix(loss=f"{loss.item():.3f}", cos=f"{session.curve[-1]['cosine']:.3f}")
                if step % schedule.checkpoint_every == 0 or step == schedule.steps:
                    path = save()
                    if stop_after is not None and step >= stop_after:
                        raise Interrupted(15, step, schedule.steps, path)
                if stop.signum is not None:
                    raise Interrupted(stop.signum, step, schedule.steps, save())
    finally:
        if bar is not None:
            bar.close()
        writer.close()
    if not checkpoints(work):
        save()
    last = session.curve[-1]
    return TrainOutcome(step, Fidelity(first["cosine"], first["l1"]), Fidelity(last["cosine"], last["l1"]),
                        mean_feature_baseline(train, held),
                        list(session.curve), time.perf_counter() - t0, restored.step if restored else 0)
