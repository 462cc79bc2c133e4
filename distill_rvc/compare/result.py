"""What `compare` returns: `CompareResult`, the report's numbers and how they were measured.

    result.to_dict()      report.json: params, file_bytes, macs_per_s, peak_mem_bytes, rtf,
                          fidelity, verdict, chain (null where not measured)
    format_compare(r)     the lines the CLI prints: the verdict, the files, the notes

Each measure is keyed by role ("teacher", "student") as report.json has it. The values are
ready for strict JSON (NaN and infinities already None). Not here: measuring (speed.py,
cost.py, fidelity.py), judging (targets.py) or writing the files (write.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .settings import CompareSettings

ROLES = ("teacher", "student")
RUNTIMES = ("cpu_torch", "cpu_ort", "gpu")
FIDELITY_KEYS = ("log_mel_l1", "mcd_db", "f0_rmse_cents", "f0_corr", "vuv_error", "secs", "dnsmos")
REPORT_KEYS = ("params", "file_bytes", "macs_per_s", "peak_mem_bytes", "rtf", "fidelity", "verdict", "chain")

Rtf = dict[str, float]  # {"synthesizer": s, "pipeline": s}, seconds of compute per second of audio


@dataclass
class CompareResult:
    teacher: Path
    student: Path
    out: Path
    settings: CompareSettings
    # report.json; role -> value, None where not measured
    params: dict[str, int]
    file_bytes: dict[str, int | None]
    macs_per_s: dict[str, int | None]
    peak_mem_bytes: dict[str, dict[str, int | None]]  # role -> {"cpu_rss": bytes, "gpu": bytes}
    rtf: dict[str, dict[str, Rtf | None]]  # role -> runtime (RUNTIMES) -> Rtf
    fidelity: dict[str, Any]  # FIDELITY_KEYS -> value; "dnsmos": {"teacher", "student", "drop"}
    verdict: str
    # what report.md says besides
    sr: int  # of both models' output
    clips: list[str]  # names, relative to the audio folder
    audio_s: float  # of all clips together
    per_clip: list[dict[str, Any]] = field(default_factory=list)  # metrics.pooled of each clip
    fidelity_reason: str | None = None  # why fidelity was not measured
    notes: list[str] = field(default_factory=list)  # what was not measured, and why
    files: list[Path] = field(default_factory=list)  # written into `out`
    chain: dict[str, Any] | None = None  # chain.ChainResult of the teacher's and the student's whole chain

    def to_dict(self) -> dict[str, Any]:
        """report.json's data."""
        return {key: getattr(self, key) for key in REPORT_KEYS}


def format_compare(result: CompareResult) -> str:
    """What `distill-rvc compare` prints: the verdict, what was written, the notes."""
    plots = sum(p.suffix == ".png" for p in result.files)
    lines = [result.verdict,
             f"wrote {result.out / 'report.md'}, report.json, {plots} plot(s) and tensorboard/ in {result.out}"]
    if result.chain:
        (t, s), ratio = result.chain["chains"], result.chain["ratios"][0]
        n = str(result.chain["settings"]["threads"][0])
        lines.insert(1, f"whole chain on {n} thread(s): teacher {t['total']['params'] / 1e6:.1f} M params, "
                        f"{t['total']['bytes'] / 1e6:.0f} MB, RTF {t['total']['rtf'][n]:.3f}; student "
                        f"{s['total']['params'] / 1e6:.1f} M, {s['total']['bytes'] / 1e6:.0f} MB, RTF "
                        f"{s['total']['rtf'][n]:.3f} ({ratio['rtf'][n]:.1f}x faster)")
    return "\n".join(lines + [f"  note: {note}" for note in result.notes])
