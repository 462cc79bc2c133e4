"""The verdict policy: a student against the project's targets, and the recipe to try next.

    TARGETS                 the targets for a student of RVC's v2 40k teacher (size and speed as ratios)
    verdict(report, ...)    one line: PASS, FAIL, NOT LEAN ENOUGH, UNDECIDED or SIZE/SPEED ONLY
    recipe_ladder()         teach's shipped recipes, smallest student first, with their sizes
    targets_markdown()      the targets as report.md states them

The ladder is read off the shipped recipes (distill/recipes.py): each one's student is built
from its widths for a v2 40k teacher (on the meta device: nothing is allocated) and its size is
the teacher's parameters over the student's. A quality miss points one rung up (a wider
student), a speed or size miss one rung down. Not here: measuring (speed.py, cost.py,
fidelity.py) or the recipes themselves (distill_rvc/recipes/*.toml).
"""
from __future__ import annotations

import functools
import math
from typing import Any, Mapping

# The project's targets for a student of RVC's v2 40k teacher (stated in full in every report.md, see
# `targets_markdown`); size and speed as ratios so they apply to any teacher
TARGETS = {"size_ratio": 4.0, "speed_ratio": 3.0, "f0_rmse_cents": 20.0, "vuv_error": 0.03, "f0_corr": 0.98,
           "mcd_db": 3.0, "secs": 0.90, "dnsmos_drop": 0.1, "file_mb_fp16": 15.0, "file_mb_fp32": 30.0}
UNKNOWN_SIZE_RECIPE = "4gb"  # teach's default --recipe, for a student whose size is unknown


def verdict(report: Mapping[str, Any], recipe: str | None = None, fidelity_reason: str | None = None) -> str:
    """One line: the student against TARGETS and the recipe to try next. `report`: report.json's
    data (params, file_bytes, rtf, fidelity); `recipe`: the student's, when its file names one."""
    p = report["params"]
    size = p["teacher"] / p["student"] if p["student"] else None
    speed, runtime = None, None
    t, st = _best_rtf(report["rtf"]["teacher"]), _best_rtf(report["rtf"]["student"])
    if t and st and t[0] == st[0]:
        runtime, speed = t[0], t[1] / st[1]
    elif report["rtf"]["teacher"].get("cpu_torch") and report["rtf"]["student"].get("cpu_ort"):
        runtime, speed = "mixed", report["rtf"]["teacher"]["cpu_torch"]["synthesizer"] / \
            report["rtf"]["student"]["cpu_ort"]["synthesizer"]

    quality_misses, quality_known = _quality_misses(report["fidelity"])
    lean_misses = []
    if size is not None and size < TARGETS["size_ratio"]:
        lean_misses.append(f"{size:.1f}x smaller < {TARGETS['size_ratio']:g}x")
    if speed is not None and speed < TARGETS["speed_ratio"]:
        lean_misses.append(f"{speed:.1f}x faster < {TARGETS['speed_ratio']:g}x")
    mb = (report["file_bytes"]["student"] or 0) / 1e6
    if mb > TARGETS["file_mb_fp32"]:
        lean_misses.append(f"file {mb:.1f} MB > {TARGETS['file_mb_fp32']:g} MB")

    where = {"cpu_ort": "onnxruntime CPU", "cpu_torch": "torch CPU", "mixed": "student ONNX vs teacher torch"}
    lean = (f"{size:.1f}x smaller" if size else "size unknown") + (
        f", {speed:.1f}x faster ({where[runtime]})" if speed else ", speed not measured")
    current = recipe or _recipe_by_size(size)
    if fidelity_reason is not None:
        return (f"SIZE/SPEED ONLY: {lean}; fidelity not measured ({fidelity_reason.split(':')[0]}), so compare the "
                ".pth student (or an --interface rvc export) before trusting it.")
    if not quality_known:
        return f"UNDECIDED: {lean}; no fidelity metric could be computed (no voiced frames in the clips?)."
    if quality_misses:
        bigger = _neighbour(current, +1)
        advice = (f"next: the {bigger} recipe (a wider student), or more steps of {current}" if bigger
                  else f"next: more steps of {current}, or prune the teacher instead of distilling")
        return f"FAIL: {'; '.join(quality_misses)} ({lean}); {advice}."
    if lean_misses:
        smaller = _neighbour(current, -1)
        advice = (f"next: the {smaller} recipe (a smaller student)" if smaller
                  else "next: prune it (distill-rvc prune) or export it to ONNX")
        return f"NOT LEAN ENOUGH: within every quality target, but {'; '.join(lean_misses)}; {advice}."
    smaller = _neighbour(current, -1)
    return (f"PASS: {lean} and within every measured quality target; "
            + (f"for more speed try the {smaller} recipe." if smaller else "export it with distill-rvc export."))


def _best_rtf(rtf_role: Mapping[str, Any]) -> tuple[str, float] | None:
    for runtime in ("cpu_ort", "cpu_torch"):
        row = rtf_role.get(runtime)
        if row:
            return runtime, row["synthesizer"]
    return None


def _quality_misses(f: Mapping[str, Any]) -> tuple[list[str], bool]:
    checks = [("mcd_db", "MCD {:.2f} dB > {:g}", lambda v, lim: v > lim),
              ("f0_rmse_cents", "F0 RMSE {:.1f} cents > {:g}", lambda v, lim: v > lim),
              ("vuv_error", "V/UV error {:.1%} > {:.0%}", lambda v, lim: v > lim),
              ("f0_corr", "F0 correlation {:.3f} < {:g}", lambda v, lim: v < lim),
              ("secs", "SECS {:.3f} < {:g}", lambda v, lim: v < lim)]
    misses, known = [], False
    for key, text, bad in checks:
        v = f.get(key)
        if v is None:
            continue
        known = True
        if bad(v, TARGETS[key]):
            misses.append(text.format(v, TARGETS[key]))
    dns = f.get("dnsmos")
    if dns and dns.get("drop") is not None and dns["drop"] > TARGETS["dnsmos_drop"]:
        misses.append(f"DNSMOS drop {dns['drop']:.2f} > {TARGETS['dnsmos_drop']:g}")
    return misses, known


# ------------------------------------------------------------------------------ the recipe ladder
@functools.cache
def _recipe_sizes() -> dict[str, tuple[str, float]]:
    """Each shipped recipe -> (its device, how many times fewer parameters its student has than
    RVC's v2 40k teacher)."""
    import torch

    from ..config import rvc_config
    from ..distill.recipes import list_recipes
    from ..distill.student import student_config
    from ..models import Synthesizer

    def params(config) -> int:
        with torch.device("meta"):
            return sum(p.numel() for p in Synthesizer(config).parameters())

    teacher = rvc_config("v2", 40000)
    n = params(teacher)
    return {r.name: (r.device, n / params(student_config(teacher, r.student))) for r in list_recipes()}


def recipe_ladder() -> tuple[tuple[str, float], ...]:
    """(name, size) of teach's shipped GPU recipes from the smallest student to the largest; size:
    1/x of a v2 40k teacher. A CPU recipe trains one of these students (`_rung`)."""
    rungs = [(name, size) for name, (device, size) in _recipe_sizes().items() if device == "cuda"]
    return tuple(sorted(rungs, key=lambda r: -r[1]))


def _recipe_by_size(size: float | None) -> str:
    if not size:
        return UNKNOWN_SIZE_RECIPE
    return min(recipe_ladder(), key=lambda r: abs(math.log(r[1] / size)))[0]


def _rung(recipe: str) -> str | None:
    """The ladder's recipe for `recipe`: itself, or for a shipped recipe off the ladder (cpu) the
    one whose student is the same size; None for a recipe that was not shipped."""
    if recipe not in _recipe_sizes():
        return None
    device, size = _recipe_sizes()[recipe]
    return recipe if device == "cuda" else _recipe_by_size(size)


def _neighbour(recipe: str, step: int) -> str | None:
    """The next recipe up (+1, a larger student) or down (-1)."""
    names = [r for r, _ in recipe_ladder()]
    name = _rung(recipe)
    if name is None:
        return None
    i = names.index(name) + step
    return names[i] if 0 <= i < len(names) else None


def targets_markdown() -> list[str]:
    """The verdict's targets, stated in the report itself (with where they come from)."""
    t = TARGETS
    return ["", "## Targets", "",
            "distill-rvc's targets for a student of RVC's v2 40k teacher (the verdict checks these; they are "
            "defined in distill-rvc, `distill_rvc/compare/targets.py`, TARGETS):", "",
            f"- size: at least {t['size_ratio']:g}x fewer parameters than the teacher, and a file of at most "
            f"{t['file_mb_fp32']:g} MB in fp32 ({t['file_mb_fp16']:g} MB in fp16)",
            f"- speed: the synthesizer at least {t['speed_ratio']:g}x faster than the teacher's",
            f"- MCD at most {t['mcd_db']:g} dB; F0 RMSE at most {t['f0_rmse_cents']:g} cents; F0 correlation at "
            f"least {t['f0_corr']:g}; V/UV error at most {100 * t['vuv_error']:g} %",
            f"- SECS (speaker similarity) at least {t['secs']:g}; DNSMOS at most {t['dnsmos_drop']:g} below the "
            "teacher's"]
