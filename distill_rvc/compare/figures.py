"""The report's plots: matplotlib figures, drawn and returned (write.py saves and closes them).

    mel_figure(plt, name, teacher, student, sr)   a clip's log-mel of both outputs, one colour scale
    f0_figure(plt, name, comparison, f0_method)   the F0 contours of both outputs
    speed_size_figure(plt, result)                bars: parameters, file, MACs, RTF per runtime

`plt` is pyplot with a non-interactive backend, chosen by the caller. Not here: the numbers
(the measuring modules) or the files (write.py).
"""
from __future__ import annotations

import numpy as np
import torch

from .. import metrics
from .result import ROLES, RUNTIMES, CompareResult


def mel_figure(plt, name: str, teacher: np.ndarray, student: np.ndarray, sr: int):
    mel = metrics._mel(sr)
    with torch.no_grad():
        m = mel(torch.from_numpy(np.stack([teacher, student]).astype(np.float32))).numpy()
    fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    lo, hi = float(m.min()), float(m.max())
    for ax, spec, who in zip(axes, m, ("teacher", "student")):
        im = ax.imshow(spec, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma",
                       extent=(0, spec.shape[1] / 100, 0, spec.shape[0]))
        ax.set_ylabel(f"{who}\nmel bin")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes, label="ln mel")
    fig.suptitle(f"{name}: log-mel, teacher vs student")
    return fig


def f0_figure(plt, name: str, c: metrics.ClipComparison, f0_method: str = "harvest"):
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for f0, who, style in ((c.teacher_f0, "teacher", "-"), (c.student_f0, "student", "--")):
        y = np.where(f0 > 0, f0, np.nan)  # gaps where unvoiced (a plot, not a number)
        ax.plot(np.arange(len(f0)) / 100, y, style, label=who, linewidth=1.2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("F0 of the output (Hz)")
    ax.legend()
    # the outputs' F0 is always measured with harvest (metrics.py); --f0 chose the inputs' F0
    ax.set_title(f"{name}: F0 of the two outputs (converted with --f0 {f0_method}; measured with harvest)")
    fig.tight_layout()
    return fig


def speed_size_figure(plt, result: CompareResult):
    r = result
    panels = [("parameters (M)", [(r.params[role] or 0) / 1e6 for role in ROLES]),
              ("file (MB)", [(r.file_bytes[role] or 0) / 1e6 for role in ROLES]),
              ("GMAC per s of audio", [(r.macs_per_s[role] or 0) / 1e9 for role in ROLES])]
    for runtime in RUNTIMES:
        vals = [r.rtf[role].get(runtime) for role in ROLES]
        if any(vals):
            panels.append((f"RTF {runtime} (synth)", [v["synthesizer"] if v else 0 for v in vals]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.5))
    for ax, (title, vals) in zip(np.atleast_1d(axes), panels):
        ax.bar(list(ROLES), vals, color=["#888888", "#2a7ab0"])
        ax.set_title(title, fontsize=10)
        for x, v in enumerate(vals):
            ax.annotate(f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=8)
    fig.suptitle("teacher vs student: size and speed (lower is better)")
    fig.tight_layout()
    return fig
