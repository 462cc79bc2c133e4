"""The FCPE student's training loop: random crops of the cached log-mel, BCE on the teacher's
salience, AdamW with warm-up and cosine decay, held-out evaluation, TensorBoard, atomic
checkpoints and resume.

    train_student(model, train, held, schedule, work, fingerprint, device, progress) -> TrainOutcome
    evaluate(model, held, device) -> Fidelity       held-out BCE, F0 error vs the teacher, V/UV agreement
    init_from_prior(model, train)                   the head's bias at the targets' mean salience

The loss is binary cross-entropy of the student's logits against the teacher's salience
(soft targets in (0, 1)), over all 360 bins of every frame: the salience is what FCPE's
decoder reads (peak, +-4 bins around it, the 0.006 voicing threshold), so matching it whole
matches the F0 and the voicing. The batch of step k is drawn from a generator seeded with
(seed, k), so a resumed run sees the batches the uninterrupted run would have; checkpoints
are WORK/checkpoints/step_NNNNNNNN.pt through distill.train_state (atomic, the newest
`keep_checkpoints` kept, refused on resume when the fingerprint differs); SIGINT or SIGTERM
finishes the step, saves and raises train_state.Interrupted.
TensorBoard (WORK/tb): loss/bce, train/lr, eval/bce, eval/cents_median, eval/vuv_agreement.
Not for: the data (data.py) or the output file (checkpoint.py).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..distill.train_state import Interrupted, StopOnSignal, checkpoints, restore, save_state
from ..encoder.train import Session
from ..features.fcpe import FCPE
from .data import Targets


@dataclass(frozen=True)
class Schedule:
    steps: int = 1000
    batch_size: int = 8
    crop_frames: int = 200  # 2 s
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05
    eval_every: int = 100
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    seed: int = 1234

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Fidelity:
    bce: float  # held-out BCE against the teacher's salience, per bin
    cents: float  # median |F0 error| in cents vs the teacher, over the frames both call voiced
    vuv: float  # fraction of frames where the student and the teacher agree on voiced / unvoiced


@dataclass
class TrainOutcome:
    steps: int
    start: Fidelity  # before any training
    end: Fidelity
    curve: list[dict[str, float]] = field(default_factory=list)  # {step, seconds, bce, cents, vuv}
    seconds: float = 0.0  # training wall time, this call
    resumed_from: int = 0


def logits(model: FCPE, mel: torch.Tensor) -> torch.Tensor:
    """log-mel [B, T, 128] -> the salience's logits [B, T, 360] (FCPE.forward is their sigmoid)."""
    x = model.input_stack(mel.transpose(1, 2)).transpose(1, 2)
    return model.output_proj(model.norm(model.net(x)))


@torch.no_grad()
def evaluate(model: FCPE, held: Targets, device: torch.device) -> Fidelity:
    """Each held-out clip whole, as in use: BCE, and the decoded F0 against the teacher's."""
    was_training = model.training
    model.eval()
    bce, bins, errors, agree = 0.0, 0, [], []
    for i in range(held.clips):
        mel, target = (torch.from_numpy(np.array(a, dtype=np.float32)).to(device) for a in held.clip(i))
        out = logits(model, mel[None])[0]
        bce += F.binary_cross_entropy_with_logits(out, target, reduction="sum").item()
        bins += target.numel()
        f0, ref = model.decode(torch.sigmoid(out)), model.decode(target)
        both = (f0 > 0) & (ref > 0)
        errors.append(np.abs(1200.0 * np.log2(f0[both] / ref[both])))
        agree.append((f0 > 0) == (ref > 0))
    model.train(was_training)
    errors = np.concatenate(errors) if errors else np.zeros(0)
    return Fidelity(bce / max(bins, 1), float(np.median(errors)) if errors.size else float("nan"),
                    float(np.concatenate(agree).mean()) if agree else float("nan"))


@torch.no_grad()
def init_from_prior(model: FCPE, train: Targets) -> None:
    """Start the head at the training targets' mean salience per bin (its bias = that prior's
    logit): a random head starts near 0.5 everywhere, and AdamW, moving each weight about
    `lr` a step, takes thousands of steps to reach salience that is ~0 almost everywhere."""
    prior = np.asarray(train.salience).mean(0, dtype=np.float64).clip(1e-4, 1 - 1e-4)
    model.output_proj.bias.copy_(torch.from_numpy(np.log(prior / (1 - prior))).float())


def batch(data: Targets, schedule: Schedule, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Step `step`'s random crops -> (log-mel [B, T, 128], teacher salience [B, T, 360]).
    A clip is drawn in proportion to its length, then a crop inside it."""
    g = torch.Generator().manual_seed(schedule.seed * 1_000_003 + step)
    lengths = torch.from_numpy(np.diff(np.asarray(data.offsets))).double()
    room = (lengths - schedule.crop_frames + 1).clamp(min=0)
    items = torch.multinomial(room, schedule.batch_size, replacement=True, generator=g).tolist()
    starts = [int(data.offsets[i]) + int(torch.randint(int(room[i]), (1,), generator=g)) for i in items]
    n = schedule.crop_frames
    mel = np.stack([data.mel[s:s + n] for s in starts]).astype(np.float32)
    sal = np.stack([data.salience[s:s + n] for s in starts]).astype(np.float32)
    return torch.from_numpy(mel), torch.from_numpy(sal)


def _point(step: int, seconds: float, fid: Fidelity) -> dict[str, float]:
    return {"step": step, "seconds": seconds, "bce": fid.bce, "cents": fid.cents, "vuv": fid.vuv}


def _fidelity(point: dict[str, float]) -> Fidelity:
    return Fidelity(point["bce"], point["cents"], point["vuv"])


def train_student(model: FCPE, train: Targets, held: Targets, schedule: Schedule, work: Path,
                  fingerprint: dict[str, Any], device: torch.device, progress: bool = True,
                  stop_after: int | None = None) -> TrainOutcome:
    """Train `model` in place for schedule.steps steps, resuming from WORK/checkpoints if any.
    `stop_after` (tests) stops after that step as a kill would, right after a checkpoint."""
    from torch.utils.tensorboard import SummaryWriter

    model.to(device).train()
    session = Session(model, schedule)
    restored = restore(work, session, fingerprint, device, resume=True)
    step = restored.step if restored else 0
    writer = SummaryWriter(str(work / "tb"), purge_step=step + 1 if restored else None)

    def log_eval(point: dict[str, float]) -> None:
        for name, key in (("bce", "bce"), ("cents_median", "cents"), ("vuv_agreement", "vuv")):
            writer.add_scalar(f"eval/{name}", point[key], int(point["step"]))

    if restored is None:
        session.curve.append(_point(0, 0.0, evaluate(model, held, device)))
        log_eval(session.curve[0])
    done_seconds = session.curve[-1]["seconds"]
    t0 = time.perf_counter()
    bar = None
    if progress and step < schedule.steps:
        from tqdm import tqdm
        bar = tqdm(total=schedule.steps, initial=step, desc="teach-f0", unit="step", leave=False)

    def save() -> Path:
        fidelity = (session.curve[0]["bce"], session.curve[-1]["bce"])
        return save_state(work, session, step, schedule.batch_size, fidelity, fingerprint, device,
                          schedule.keep_checkpoints)

    try:
        with StopOnSignal() as stop:
            while step < schedule.steps:
                mel, target = batch(train, schedule, step)
                loss = F.binary_cross_entropy_with_logits(logits(model, mel.to(device)), target.to(device))
                session.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                session.optimizer.step()
                session.scheduler.step()
                step += 1
                writer.add_scalar("loss/bce", loss.item(), step)
                writer.add_scalar("train/lr", session.optimizer.param_groups[0]["lr"], step)
                if step % schedule.eval_every == 0 or step == schedule.steps:
                    point = _point(step, done_seconds + time.perf_counter() - t0, evaluate(model, held, device))
                    session.curve.append(point)
                    log_eval(point)
                if bar is not None:
                    bar.update()
                    last = session.curve[-1]
                    bar.set_postfix(loss=f"{loss.item():.4f}", cents=f"{last['cents']:.1f}",
                                    vuv=f"{last['vuv']:.3f}")
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
    return TrainOutcome(step, _fidelity(session.curve[0]), _fidelity(session.curve[-1]), list(session.curve),
                        time.perf_counter() - t0, restored.step if restored else 0)
