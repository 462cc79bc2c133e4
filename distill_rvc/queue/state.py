"""A queue's progress on disk: OUT/queue.json, one record per voice, and the lock on OUT.

    QueueState.load(out) / .save()      read (or start) and atomically rewrite OUT/queue.json
    QueueState.record(name)             a voice's record: status, error, attempts, seconds, result
    QueueLock(out)                      one queue at a time per OUT (OUT/queue.lock holds its pid)

A record's status is pending (not started), running (started, not finished: a killed queue
leaves it so, and its run folder's checkpoints say where it was), done (its student written)
or failed (`error` says why, in one line). queue.json is rewritten whole with atomic.write_json
after every change, so a kill at any moment leaves the previous or the next state, never half.
Not here: what a status means for a rerun (run.py).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import _alive, finite, make_folder, write_json
from ..errors import DistillRVCError

FORMAT = "distill-rvc-queue"
STATUSES = ("pending", "running", "done", "failed")


@dataclass
class QueueState:
    path: Path  # OUT/queue.json
    voices: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> record, in first-seen order

    @classmethod
    def load(cls, out: str | Path) -> "QueueState":
        """OUT/queue.json as it was left, or an empty state when there is none yet."""
        path = Path(out) / "queue.json"
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DistillRVCError(f"{path}: not a readable queue state ({e}); move it aside to start the queue "
                                  "afresh (finished run folders are kept)") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("voices"), dict):
            raise DistillRVCError(f"{path}: not a distill-rvc queue state; choose another --out")
        return cls(path, {str(k): v for k, v in data["voices"].items() if isinstance(v, dict)})

    def record(self, name: str) -> dict[str, Any]:
        """The record of voice `name`, a new pending one if the queue has not seen it."""
        rec = self.voices.setdefault(name, {})
        rec.setdefault("status", "pending")
        if rec["status"] not in STATUSES:
            rec["status"] = "pending"
        rec.setdefault("attempts", 0)
        rec.setdefault("seconds", 0.0)
        return rec

    def save(self) -> None:
        write_json(self.path, finite({"format": FORMAT, "version": 1, "voices": self.voices}))


class QueueLock:
    """OUT/queue.lock for as long as a queue runs in OUT: a second queue on the same OUT is
    refused (two writers would undo each other's queue.json). A lock whose process is gone
    (a killed queue) is taken over."""

    def __init__(self, out: str | Path):
        self.path = make_folder(out) / "queue.lock"

    def __enter__(self) -> "QueueLock":
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid = self._holder()
                if pid is not None and pid != os.getpid() and _alive(pid):
                    raise DistillRVCError(f"another teach-many (pid {pid}) is running in {self.path.parent}; wait "
                                          "for it or choose another --out") from None
                self.path.unlink(missing_ok=True)  # its queue was killed: take over
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            return self
        raise DistillRVCError(f"cannot take the lock {self.path}; remove it if no teach-many runs there")

    def _holder(self) -> int | None:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def __exit__(self, *exc) -> None:
        if self._holder() == os.getpid():
            self.path.unlink(missing_ok=True)
