"""`teach-many`: distil the voices of a VOICES.toml (or a folder) one after another, unattended.

    TeachManySettings(retry_failed, progress, ...).check()
    teach_many(source, out, settings) -> TeachManyResult
    QueueStopped                         SIGINT or SIGTERM stopped the queue (after teach saved)

Each voice is a `teach` run in OUT/<name>/, always with resume: rerunning the same command
skips the done voices (their student file still there; a missing one is written again from
the run's last checkpoint), continues a voice that was running from its newest checkpoint,
and leaves failed voices failed unless `retry_failed`. A voice that raises (a broken teacher
or dataset, a NaN loss, any DistillRVCError or other Exception) is recorded with its one-line
reason, a traceback for anything but a DistillRVCError goes to OUT/<name>/error.txt, and the
queue goes on. The progress is OUT/queue.json (state.py), the table OUT/summary.md and
summary.json (summary.py).

One voice at a time: voices in parallel (one process per voice, the parent alone writing
queue.json, each child pinned to its own device within the memory plan) is not built yet.
Not here: parsing the voice list (voices.py) or training (distill/teach.py).
"""
from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..atomic import make_folder, write_text
from ..distill.teach import TeachResult, teach
from ..distill.train_state import checkpoints
from ..errors import DistillRVCError
from .state import QueueLock, QueueState
from .summary import Row, write_summary
from .voices import Voice, read_voices

log = logging.getLogger(__name__)


class QueueStopped(KeyboardInterrupt):
    """The queue stopped on SIGINT or SIGTERM; the voice it was on resumes on a rerun."""

    def __init__(self, signum: int, detail: str):
        self.signum = signum
        super().__init__(detail)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # 130 for SIGINT, 143 for SIGTERM


@dataclass(frozen=True)
class TeachManySettings:
    """`teach-many`'s options. `recipe`, `steps`, `batch_size` and `device` (None: unset)
    replace every voice's [defaults]; a voice's own keys still win."""

    retry_failed: bool = False  # run failed voices again (else they stay failed and are skipped)
    progress: bool = True  # teach's progress bar, per voice
    recipe: str | None = None
    steps: int | None = None
    batch_size: int | None = None
    device: str | None = None

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in (("recipe", self.recipe), ("steps", self.steps), ("batch_size", self.batch_size),
                                  ("device", self.device)) if v is not None}

    def check(self) -> None:
        for key, value in (("steps", self.steps), ("batch_size", self.batch_size)):
            if value is not None and value < 1:
                raise DistillRVCError(f"--{key.replace('_', '-')} must be at least 1, got {value}")


@dataclass
class TeachManyResult:
    out: Path
    rows: list[Row] = field(default_factory=list)  # one per voice, in the queue's order
    summary: Path | None = None  # OUT/summary.md

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status == "failed"]


def teach_many(source: str | Path, out: str | Path, settings: TeachManySettings | None = None) -> TeachManyResult:
    """Distil every voice of `source` (a VOICES.toml or a folder, voices.py) into `out`/<name>/.

    Raises DistillRVCError for a bad voice list or queue state (before anything runs), and
    QueueStopped on SIGINT/SIGTERM after saving the state and the summary. Failed voices are
    in the result's rows, not raised.
    """
    s = settings or TeachManySettings()
    s.check()
    voices = read_voices(source, s.overrides())
    out = make_folder(out)
    with QueueLock(out):
        state = QueueState.load(out)
        for v in voices:
            state.record(v.name)
        state.save()
        try:
            with _sigterm_stops():
                for i, voice in enumerate(voices, 1):
                    _turn(voice, f"voice {voice.name} ({i}/{len(voices)})", state, out, s)
        except KeyboardInterrupt as e:
            stopped = e if isinstance(e, QueueStopped) else QueueStopped(signal.SIGINT, str(e) or "stopped by SIGINT")
            write_summary(out, [_row(v, state.record(v.name), out) for v in voices])
            raise stopped from None
    rows = [_row(v, state.record(v.name), out) for v in voices]
    return TeachManyResult(out=out, rows=rows, summary=write_summary(out, rows))


def _turn(voice: Voice, label: str, state: QueueState, out: Path, s: TeachManySettings) -> None:
    """Run `voice` unless it is done (and its student is there) or failed (without retry_failed)."""
    rec = state.record(voice.name)
    if rec["status"] == "done":
        student = Path(rec.get("result", {}).get("student", ""))
        if student.is_file():
            if rec.get("spec") not in (None, voice.spec()):
                log.warning("%s: its entry changed since it was done; delete %s to distil it again", label,
                            out / voice.name)
            log.info("%s: skipped, done: %s", label, student)
            return
        log.info("%s: its student %s is missing: writing it again", label, student)
    if rec["status"] == "failed" and not s.retry_failed:
        log.info("%s: skipped, failed before: %s (--retry-failed runs it again)", label, rec.get("error"))
        return
    log.info("%s: %s", label, "starting" if rec["status"] in ("pending", "failed") else "resuming")
    rec.update(status="running", error=None, spec=voice.spec(), attempts=rec["attempts"] + 1)
    state.save()
    began = time.perf_counter()
    try:
        run = out / voice.name  # resume where it has checkpoints (the same as resume=True, minus a log line)
        result = teach(voice.teacher, voice.data, run,
                       replace(voice.settings, resume=bool(checkpoints(run)), progress=s.progress))
    except KeyboardInterrupt as e:  # a signal: teach saved a checkpoint if it was training
        rec["seconds"] += time.perf_counter() - began
        rec["note"] = str(e) or "stopped by SIGINT"
        state.save()
        raise QueueStopped(getattr(e, "signum", signal.SIGINT), f"{label}: {rec['note']}") from None
    except Exception as e:  # the queue goes on; the reason stays with the voice
        rec.update(status="failed", error=_reason(e, out / voice.name))
        log.warning("%s: failed: %s", label, rec["error"])
    else:
        rec.update(status="done", result=_summary(result), note=None)
        log.info("%s: done in %.0f s: %s", label, time.perf_counter() - began, result.student_path)
    rec["seconds"] += time.perf_counter() - began
    state.save()


def _reason(e: Exception, run: Path) -> str:
    """One line: a DistillRVCError's message; anything else with its type, and the traceback
    written to run/error.txt."""
    if isinstance(e, DistillRVCError):
        return " ".join(str(e).split())  # one line in the table, whatever the message
    first = (str(e).strip().splitlines() or [""])[0][:200]
    line = f"{type(e).__name__}: {first}" if first else type(e).__name__
    try:
        path = write_text(run / "error.txt", "".join(traceback.format_exception(e)))
        return f"{line} (traceback in {path})"
    except DistillRVCError:
        return line


def _summary(result: TeachResult) -> dict[str, Any]:
    t = result.train
    return {"student": str(result.student_path), "format": result.format, "loads": result.loads.line(),
            "steps": t.steps, "fidelity": dict(t.fidelity), "train_seconds": t.seconds, "device": t.device,
            "params": dict(result.params)}


def _row(voice: Voice, rec: dict[str, Any], out: Path) -> Row:
    res = rec.get("result") or {}
    steps = res.get("steps") if rec["status"] == "done" else _checkpoint_step(out / voice.name)
    fid = res.get("fidelity") or {}
    return Row(voice=voice.name, status=rec["status"], student=res.get("student") if rec["status"] == "done" else None,
               steps=steps, steps_total=voice.steps, mel_l1_init=fid.get("mel_l1_init"), mel_l1=fid.get("mel_l1"),
               seconds=rec.get("seconds", 0.0), error=rec.get("error") if rec["status"] == "failed" else None,
               note=rec.get("note") if rec["status"] == "running" else None)


def _checkpoint_step(run: Path) -> int | None:
    found = checkpoints(run)
    return int(found[-1].stem.split("_")[1]) if found else None


class _sigterm_stops:
    """SIGTERM raises QueueStopped wherever the queue is (loading a teacher, between voices);
    inside training, teach's own handler takes over, saves a checkpoint and raises Interrupted.
    Outside the main thread it does nothing."""

    def __enter__(self) -> None:
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGTERM, self._stop)

    @staticmethod
    def _stop(signum, frame) -> None:
        raise QueueStopped(signum, "stopped by SIGTERM")

    def __exit__(self, *exc) -> None:
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
