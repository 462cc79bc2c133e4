"""How close the student's output is to the teacher's, clip by clip and pooled.

    measure_fidelity(outputs, sr, ...)  -> (FIDELITY_KEYS -> value, per-clip rows, ClipComparisons)

Log-mel L1, MCD, F0 RMSE / correlation and V/UV come from metrics.py; SECS (resemblyzer) and
DNSMOS (speechmos) when installed. Every value is None when the outputs cannot be compared
sample by sample (the reason is in `reason`). Not here: the metric definitions (metrics.py)
or the targets they are judged by (targets.py).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import metrics
from .result import FIDELITY_KEYS


def measure_fidelity(outputs: dict[str, list[np.ndarray]], sr: int, reason: str | None, extras: bool,
                     notes: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]], list[metrics.ClipComparison]]:
    """`outputs`: role -> each clip's output [N]; `extras`: SECS and DNSMOS when installed."""
    if reason is not None:
        notes.append(f"fidelity not measured: {reason}")
        return {k: None for k in FIDELITY_KEYS}, [], []
    pairs = list(zip(outputs["teacher"], outputs["student"]))
    comparisons = [metrics.compare_clip(t, s_, sr) for t, s_ in pairs]
    fid: dict[str, Any] = metrics.pooled(comparisons)
    per_clip = [metrics.pooled([c]) for c in comparisons]
    available = metrics.extras_available() if extras else {"secs": False, "dnsmos": False}
    if available["secs"]:
        values = [metrics.secs(t, s_, sr) for t, s_ in pairs]
        fid["secs"] = float(np.mean(values))
        for row, v in zip(per_clip, values):
            row["secs"] = v
    else:
        fid["secs"] = None
        notes.append("SECS not measured: " + ("resemblyzer is not installed (pip install 'distill-rvc[secs]')"
                                              if extras else "optional metrics were turned off"))
    if available["dnsmos"]:
        t_mos = [metrics.dnsmos_ovrl(t, sr) for t, _ in pairs]
        s_mos = [metrics.dnsmos_ovrl(s_, sr) for _, s_ in pairs]
        fid["dnsmos"] = {"teacher": float(np.mean(t_mos)), "student": float(np.mean(s_mos)),
                         "drop": float(np.mean(t_mos) - np.mean(s_mos))}
    else:
        fid["dnsmos"] = None
        notes.append("DNSMOS not measured: " + ("speechmos is not installed (pip install 'distill-rvc[dnsmos]')"
                                                if extras else "optional metrics were turned off"))
    return {k: fid.get(k) for k in FIDELITY_KEYS}, per_clip, comparisons
