"""A training run's checkpoints: when to write them, writing, finding, resuming, stopping on a signal.

    checkpoint_interval("500" | "10m")   `--checkpoint-every` -> the TrainConfig field it sets
    checkpoints(out_dir)                 OUT/checkpoints/step_NNNNNNNN.pt, oldest first
    save_state(...) / restore(...)       one atomic checkpoint, keeping the last k / the newest one back
    StopOnSignal, Interrupted            SIGINT or SIGTERM: finish the step, save, then raise Interrupted

A checkpoint holds the session's weights, optimiser and scaler state, the RNG, the micro-batch
size, the fidelity so far and a fingerprint of the run (student, loss and train configs and
what the caller adds), which must match to resume; the data position is the step number
itself (batches.py). Not here: the loop that decides to save (trainer.py) or the student file
a run ends with (checkpoint.save_model).
"""
from __future__ import annotations

import logging
import re
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from ..atomic import atomic_write
from ..errors import DistillRVCError
from ..safe_load import safe_torch_load

log = logging.getLogger(__name__)

STATE_FORMAT = "distill-rvc-train-state"
_CKPT = re.compile(r"^step_(\d{8})\.pt$")
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(s|m|h)?\s*$")


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM after saving a checkpoint at `step`."""

    def __init__(self, signum: int, step: int, steps: int, path: Path):
        self.signum, self.step, self.steps, self.path = signum, step, steps, Path(path)
        super().__init__(f"stopped by {signal.Signals(signum).name} after step {step} of {steps}: saved {path}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


def checkpoint_interval(spec: str) -> dict[str, float | int]:
    """`--checkpoint-every`: "500" (steps) -> {"checkpoint_every": 500}; "90s", "10m", "1h"
    (wall clock) -> {"checkpoint_seconds": ...}. The other interval keeps its value."""
    m = _INTERVAL.match(str(spec))
    if m and m.group(2):
        return {"checkpoint_seconds": float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]}
    if m and m.group(1).isdigit() and int(m.group(1)) >= 1:
        return {"checkpoint_every": int(m.group(1))}
    raise DistillRVCError(f"--checkpoint-every {spec!r}: give a number of steps (e.g. 500) or a time with its unit "
                          "(e.g. 90s, 10m, 1h)")


class StopOnSignal:
    """While active, SIGINT and SIGTERM only set `signum` (the loop saves and stops at the end
    of the step); a second signal stops at once. The previous handlers come back on exit.
    Outside the main thread (where handlers cannot be set) it does nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # asked twice: do not wait for the step
        self.signum = signum

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._old.clear()


class Stateful(Protocol):
    """What is saved of a run: a trainer.Session."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Restored:
    """Where a resumed run picks up."""

    step: int  # the last step done
    micro_batch: int
    fidelity: tuple[float, float]  # held-out mel L1 at init and at the last evaluation
    world_size: int = 1  # processes of the run that saved it (its micro_batch is per process)


def checkpoints(out_dir: Path) -> list[Path]:
    """This run's training checkpoints, oldest first."""
    folder = Path(out_dir) / "checkpoints"
    return sorted(p for p in folder.glob("step_*.pt") if _CKPT.match(p.name)) if folder.is_dir() else []


def state_path(out_dir: Path, step: int) -> Path:
    """OUT/checkpoints/step_<step>.pt"""
    return Path(out_dir) / "checkpoints" / f"step_{step:08d}.pt"


def save_state(out_dir: Path, session: Stateful, step: int, micro: int, fidelity: tuple[float, float],
               fingerprint: dict[str, Any], device: torch.device, keep: int, world_size: int = 1) -> Path:
    """OUT/checkpoints/step_<step>.pt, written atomically; then only the newest `keep` stay.

    Under torchrun rank 0 alone calls it. The world size is recorded, not fingerprinted: the
    data of a step is the global batch whatever the world size, so any world size resumes."""
    state = {
        "format": STATE_FORMAT, "step": step, "micro_batch": micro, "world_size": world_size,
        "fidelity_init": fidelity[0],
        "fidelity_last": fidelity[1], "fingerprint": fingerprint, "state": session.state_dict(),
        "rng": {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else []},
    }
    path = state_path(out_dir, step)
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    for old in checkpoints(out_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def restore(out_dir: Path, session: Stateful, fingerprint: dict[str, Any], device: torch.device,
            resume: bool) -> Restored | None:
    """With `resume`, load the newest checkpoint into `session` and the RNG (None: nothing to
    resume). Without it, an existing checkpoint is refused rather than overwritten."""
    found = checkpoints(out_dir)
    if found and not resume:
        step = int(_CKPT.match(found[-1].name).group(1))
        raise DistillRVCError(f"a checkpoint at step {step} exists in {out_dir}: add --resume to continue, or choose "
                              "another --out")
    if not found:
        if resume:
            log.info("nothing to resume in %s: starting a new run", out_dir)
        return None
    state = safe_torch_load(found[-1], what="distill-rvc training checkpoint")
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise DistillRVCError(f"{found[-1]}: not a distill-rvc training checkpoint")
    if state["fingerprint"] != fingerprint:
        changed = sorted(k for k in set(state["fingerprint"]) | set(fingerprint)
                         if state["fingerprint"].get(k) != fingerprint.get(k))
        raise DistillRVCError(f"cannot resume {out_dir}: the run was started with another {', '.join(changed)}; "
                              "use the same teacher, recipe and options, or a new --out")
    session.load_state_dict(state["state"])
    torch.set_rng_state(state["rng"]["torch"])
    if device.type == "cuda" and state["rng"]["cuda"]:
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    log.info("resuming %s at step %d (saved by %d process(es))", out_dir, int(state["step"]),
             int(state.get("world_size", 1)))
    return Restored(int(state["step"]), int(state["micro_batch"]), (state["fidelity_init"], state["fidelity_last"]),
                    int(state.get("world_size", 1)))
