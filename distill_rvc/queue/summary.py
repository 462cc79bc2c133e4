"""The table a queue ends with: one row per voice, printed, and kept as OUT/summary.md and summary.json.

    Row                              voice, status, student, steps, fidelity, time, error
    format_teach_many(result)        the text `distill-rvc teach-many` prints
    write_summary(out, rows)         OUT/summary.md (a Markdown table) and OUT/summary.json

Fidelity is teach's: the held-out log-mel L1 of the student against the teacher, at init and
at the end (lower is closer). Time is the wall clock the queue spent on the voice, over all
its attempts and resumes. Not here: the queue's state (state.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import finite, write_json, write_text

if TYPE_CHECKING:
    from .run import TeachManyResult

HEADER = ("voice", "status", "steps", "mel L1 init -> end", "time", "student / error")


@dataclass
class Row:
    voice: str
    status: str  # pending, running, done, failed (state.py)
    student: str | None  # the student file, when done
    steps: int | None  # done: the steps trained; otherwise the newest checkpoint's step (None: none)
    steps_total: int
    mel_l1_init: float | None
    mel_l1: float | None
    seconds: float
    error: str | None  # why it failed
    note: str | None = None  # a running voice: where it stopped

    def cells(self, out: Path | None = None) -> tuple[str, ...]:
        steps = f"{self.steps if self.steps is not None else 0}/{self.steps_total}"
        fid = (f"{self.mel_l1_init:.3f} -> {self.mel_l1:.3f}"
               if self.mel_l1_init is not None and self.mel_l1 is not None else "-")
        last = self.error if self.status == "failed" else _short(self.student, out) if self.student else (
            self.note or "-")
        return self.voice, self.status, steps, fid, _duration(self.seconds), last or "-"


def format_teach_many(result: "TeachManyResult") -> str:
    """The summary table, aligned, then where it is kept and what failed."""
    lines = _aligned([HEADER, *(r.cells(result.out) for r in result.rows)])
    done = sum(r.status == "done" for r in result.rows)
    lines.append("")
    lines.append(f"{done} of {len(result.rows)} voices done, {len(result.failed)} failed; "
                 f"summary in {result.summary or result.out / 'summary.md'}")
    return "\n".join(lines)


def write_summary(out: Path, rows: list[Row]) -> Path:
    """OUT/summary.md and OUT/summary.json, each written atomically; returns summary.md's path."""
    md = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    md += ["| " + " | ".join(c.replace("|", "\\|") for c in r.cells(out)) + " |" for r in rows]
    write_json(out / "summary.json", finite({"voices": [dataclasses.asdict(r) for r in rows]}))
    return write_text(out / "summary.md", "\n".join(md) + "\n")


def _aligned(table: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(row, widths)), row[-1]]).rstrip() for row in table]


def _short(path: str, out: Path | None) -> str:
    if out is not None:
        try:
            return str(Path(path).relative_to(out))
        except ValueError:
            pass
    return path


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"
