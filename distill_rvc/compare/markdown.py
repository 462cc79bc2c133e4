"""report.md: the verdict, then size and cost, real-time factors, fidelity, notes, plots, targets.

    format_markdown(result, images)   the whole text; `images`: the PNG names to embed

Every number comes from the `CompareResult`; "not measured" stands where it is None, and the
notes say why. Not here: the verdict's wording or targets (targets.py), the files (write.py).
"""
from __future__ import annotations

from typing import Any

import torch

from ..timing import cpu_name
from .result import RUNTIMES, CompareResult
from .targets import TARGETS, targets_markdown


def _fmt(v: Any, spec: str = ".3g", unit: str = "") -> str:
    return "not measured" if v is None else f"{v:{spec}}{unit}"


def _ratio(t: Any, s: Any) -> str:
    return f"{t / s:.2f}x" if t and s else "-"


def format_markdown(result: CompareResult, images: list[str]) -> str:
    r, s = result, result.settings
    lines = [f"# {r.student.name} vs {r.teacher.name}", "",
             f"**Verdict:** {r.verdict}", "",
             f"{len(r.clips)} clip(s), {r.audio_s:.1f} s of audio; {s.f0_method} F0; {r.sr} Hz; "
             f"{s.threads or 'all'} CPU thread(s) on {cpu_name()}; torch {torch.__version__}. Speeds are medians "
             f"of {s.runs} runs, the models taking turns.", ""]
    lines += _size_lines(r) + _rtf_lines(r) + _chain_lines(r) + _fidelity_lines(r)
    if r.notes:
        lines += ["", "## Not measured, and why", ""] + [f"- {n}" for n in r.notes]
    lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in images]
    lines += targets_markdown()
    lines += ["", "TensorBoard: `tensorboard --logdir tensorboard` in this folder.", ""]
    return "\n".join(lines)


def _size_lines(r: CompareResult) -> list[str]:
    lines = ["## Size and cost", "", "| | teacher | student | teacher / student |", "|---|---|---|---|"]
    for values, label, scale, unit in ((r.params, "parameters", 1e6, " M"), (r.file_bytes, "file", 1e6, " MB"),
                                       (r.macs_per_s, "MACs per second of audio", 1e9, " G")):
        t, st = values["teacher"], values["student"]
        lines.append(f"| {label} | {_fmt(t and t / scale, '.3f', unit)} | {_fmt(st and st / scale, '.3f', unit)} | "
                     f"{_ratio(t, st)} |")
    seconds = r.settings.mem_seconds
    for kind, label in (("cpu_rss", f"peak RSS growth, {seconds:g} s pass (CPU)"),
                        ("gpu", f"max_memory_allocated, {seconds:g} s pass (GPU)")):
        t, st = r.peak_mem_bytes["teacher"][kind], r.peak_mem_bytes["student"][kind]
        lines.append(f"| {label} | {_fmt(t and t / 1e6, '.1f', ' MB')} | {_fmt(st and st / 1e6, '.1f', ' MB')} | "
                     f"{_ratio(t, st)} |")
    return lines


def _rtf_lines(r: CompareResult) -> list[str]:
    lines = ["", "## Real-time factor (seconds of compute per second of audio; lower is faster)", "",
             "Synthesizer: one pass over each clip's frames. Pipeline: plus the content features and F0 of the "
             "clips as `convert` computes them (with RVC's context pads).", "",
             "| runtime | teacher synth | student synth | speed-up | teacher pipeline | student pipeline |",
             "|---|---|---|---|---|---|"]
    for runtime in RUNTIMES:
        t, st = r.rtf["teacher"][runtime], r.rtf["student"][runtime]
        lines.append(f"| {runtime} | {_fmt(t and t['synthesizer'], '.3f')} | {_fmt(st and st['synthesizer'], '.3f')}"
                     f" | {_ratio(t and t['synthesizer'], st and st['synthesizer'])} | "
                     f"{_fmt(t and t['pipeline'], '.3f')} | {_fmt(st and st['pipeline'], '.3f')} |")
    return lines


def _chain_lines(r: CompareResult) -> list[str]:
    if r.chain is None:
        return []
    from ..chain import format_chain

    return ["", "## Whole chain (content encoder + F0 + synthesizer, each stage timed side by side)", "",
            "```", format_chain(r.chain), "```"]


def _fidelity_lines(r: CompareResult) -> list[str]:
    f = r.fidelity
    dns = f["dnsmos"]
    own = r.settings.student_encoder or r.settings.student_f0
    lines = ["", "## Fidelity of the student chain to the teacher chain (same audio, its own encoder and F0, same noise)"
             if own else "## Fidelity of the student to the teacher (same inputs, same noise)", ""]
    if r.fidelity_reason:
        lines += [f"Not measured: {r.fidelity_reason}.", ""]
    lines += ["| metric | value | target |", "|---|---|---|",
              f"| log-mel L1 (ln) | {_fmt(f['log_mel_l1'], '.3f')} | - |",
              f"| MCD (dB, c1-c24, teacher-voiced frames) | {_fmt(f['mcd_db'], '.2f')} | <= {TARGETS['mcd_db']:g} |",
              f"| F0 RMSE (cents, frames voiced in both) | {_fmt(f['f0_rmse_cents'], '.1f')} | "
              f"<= {TARGETS['f0_rmse_cents']:g} |",
              f"| F0 correlation | {_fmt(f['f0_corr'], '.3f')} | >= {TARGETS['f0_corr']:g} |",
              f"| V/UV disagreement | {_fmt(f['vuv_error'] and 100 * f['vuv_error'], '.1f', ' %')} | "
              f"<= {100 * TARGETS['vuv_error']:g} % |",
              f"| SECS (resemblyzer cosine) | {_fmt(f['secs'], '.3f')} | >= {TARGETS['secs']:g} |",
              "| DNSMOS OVRL teacher / student | " + (f"{dns['teacher']:.2f} / {dns['student']:.2f} (drop "
                                                     f"{dns['drop']:.2f})" if dns else "not measured")
              + f" | drop <= {TARGETS['dnsmos_drop']:g} |"]
    if r.per_clip:
        lines += ["", "| clip | log-mel L1 | MCD dB | F0 RMSE cents | V/UV % |", "|---|---|---|---|---|"]
        for name, row in zip(r.clips, r.per_clip):
            lines.append(f"| {name} | {_fmt(row['log_mel_l1'], '.3f')} | {_fmt(row['mcd_db'], '.2f')} | "
                         f"{_fmt(row['f0_rmse_cents'], '.1f')} | "
                         f"{_fmt(row['vuv_error'] and 100 * row['vuv_error'], '.1f')} |")
    return lines
