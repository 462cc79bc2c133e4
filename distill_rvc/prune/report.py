"""The report of `prune`: what it measured, and the lines `distill-rvc prune` prints.

    PruneReport            params, MACs/s, file size, CPU latency and fidelity, before and after,
                           the schedule and the widths; `to_dict()` is what --report writes
    format_prune(report)   the human-readable report

The numbers come from run.py (`prune`); this module only holds and words them.
Not here: measuring (run.py), the file's format (checkpoint.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..checkpoint import FORMAT_PROJECT
from ..models.arch import Arch


@dataclass
class PruneReport:
    """Everything `prune` measured; `to_dict()` is what --report writes."""

    model: str
    teacher: str | None
    out: str
    format: str
    ratio: float
    steps: int
    importance: str
    round_to: int
    widths_mode: str
    parts: list[str]
    target: dict[str, float] | None
    recover_steps: int
    recipe: str | None
    before: dict[str, Any]  # params (per part and total), macs_per_s, file_bytes, latency_s
    after: dict[str, Any]
    widths: dict[str, Arch]  # before / after
    fidelity: dict[str, Any]  # metric, unpruned, final (None without data)
    schedule: list[dict[str, Any]] = field(default_factory=list)  # per step: ratio, params, importance, fidelity
    latency: dict[str, Any] = field(default_factory=dict)  # seconds_of_audio, threads, runs
    run_dir: str | None = None
    written: str | None = None  # the file save_model wrote (its suffix may differ from `out`'s)
    not_rvc_because: str | None = None  # why RVC, Applio and w-okada cannot load it (project format)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def format_prune(report: PruneReport) -> str:
    """Human-readable lines for `distill-rvc prune`."""
    b, a = report.before, report.after
    plan = (f"{report.steps} step{'s' if report.steps > 1 else ''} to ratio {report.ratio:.3f}"
            + (f" (for the target {_target(report.target)})" if report.target else "")
            + f", {report.importance} importance, {report.widths_mode} widths, round_to {report.round_to}, "
            f"parts {'+'.join(report.parts)}")
    recovery = (f"{report.recover_steps} recovery steps after each ({report.recipe} recipe), logs in {report.run_dir}"
                if report.recover_steps else "no recovery distillation")
    written = report.written or report.out
    lines = [f"pruned     {written} ({report.format})", f"schedule   {plan}; {recovery}",
             f"{'':<11}{'before':>14} {'after':>14} {'ratio':>7}"]

    def row(name: str, x: float, y: float, fmt) -> str:
        return f"{name:<11}{fmt(x):>14} {fmt(y):>14} {y / x if x else float('nan'):>6.2f}x"

    lines.append(row("params", b["params"]["total"], a["params"]["total"], lambda v: f"{v:,}"))
    for part in ("dec", "enc_p", "flow"):
        if part in b["params"]:
            lines.append(row(f"  {part}", b["params"][part], a["params"][part], lambda v: f"{v:,}"))
    lines.append(row("GMAC/s", b["macs_per_s"] / 1e9, a["macs_per_s"] / 1e9, lambda v: f"{v:.2f}"))
    lines.append(row("file", b["file_bytes"] / 1e6, a["file_bytes"] / 1e6, lambda v: f"{v:.2f} MB"))
    if "latency_s" in b:
        lat = report.latency
        lines.append(row("CPU s", b["latency_s"], a["latency_s"], lambda v: f"{v:.3f}")
                     + f"  (infer on {lat['seconds_of_audio']:g} s of audio, {lat['threads']} threads, median of "
                     f"{lat['runs']}: speed-up {b['latency_s'] / a['latency_s']:.2f}x)")
    f = report.fidelity
    if f["unpruned"] is None:
        lines.append("fidelity   not measured (no --data)")
    else:
        lines.append(f"fidelity   {f['metric']}: unpruned {f['unpruned']:.4f}")
        for s in report.schedule:
            text = f"  step {s['step']} (ratio {s['ratio']:.3f}, {s['params']:,} params, {s['importance']}): " \
                   f"{s['mel_l1_pruned']:.4f} pruned"
            if s["mel_l1_recovered"] is not None:
                text += f" -> {s['mel_l1_recovered']:.4f} after recovery"
            lines.append(text)
    d = report.widths["after"]["dec"]
    lines.append(f"widths     dec conv_pre {d['conv_pre']}, stages {'/'.join(map(str, d['ups']))}; "
                 f"enc_p ffn {'/'.join(map(str, report.widths['after']['enc_p']['ffn']))}")
    if report.format == FORMAT_PROJECT:
        hint = "; --widths rvc (the default) picks widths RVC can build" if report.widths_mode == "free" else ""
        lines.append("format     this model is in distill-rvc's project format: RVC, Applio and w-okada cannot "
                     f"load it ({report.not_rvc_because}); written as {written}{hint}")
    return "\n".join(lines)


def _target(target: dict[str, float]) -> str:
    if "params" in target:
        return f"{target['params']:,.0f} params"
    return f"{target['macs_per_s'] / 1e9:.2f} GMAC/s"
