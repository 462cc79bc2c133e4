"""The whole conversion chain in `compare`: the teacher's (HuBERT + its F0 + teacher) beside the
student's (its own encoder and F0, or the teacher's, + student), timed stage by stage.

    student_inputs(s, hubert)                  the student chain's encoder and (F0 method, model)
    measure_chain(paths, hubert, s, notes)     chain.bench_chain on both chains -> ChainResult | None

The student's synthesizer is distilled to sound like the teacher, but a user runs three models,
so the report times what they run: per stage params, MB on disk, GFLOP per second of audio and
RTF, then totals and ratios (chain.py). The teacher chain runs on torch, as RVC does; the
student's runs on onnxruntime as a real-time client would (torch with --no-ort). The clip timed
is the first compare clip. A chain that cannot be built (say, an F0 model missing) costs only
this table: a note says why.

Not here: the timing itself (chain.py) or the synthesizer-only speeds (speed.py).
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..chain import Chain, ChainResult, ChainSettings, bench_chain
from ..errors import DistillRVCError
from .settings import CompareSettings

log = logging.getLogger(__name__)


def student_inputs(s: CompareSettings, hubert: Path) -> tuple[Path, str, Path | None]:
    """(encoder, F0 method, F0 model) the student converts with: --student-encoder / --student-f0,
    else the teacher's."""
    encoder = Path(s.student_encoder) if s.student_encoder else hubert
    if s.student_f0:
        method, _, model = s.student_f0.partition(":")
        return encoder, method, Path(model) if model else None
    return encoder, s.f0_method, _f0_model(s.f0_method, s)


def _f0_model(method: str, s: CompareSettings) -> Path | None:
    path = s.rmvpe if method == "rmvpe" else s.fcpe if method == "fcpe" else None
    return Path(path) if path else None


def measure_chain(paths: dict[str, Path], hubert: Path, clip: Path, s: CompareSettings,
                  notes: list[str]) -> ChainResult | None:
    """Both chains timed side by side on `clip` at the report's thread count."""
    import os

    encoder, method, model = student_inputs(s, hubert)
    chains = [Chain(model=paths["teacher"], encoder=hubert, f0=s.f0_method, f0_model=_f0_model(s.f0_method, s),
                    name="teacher chain"),
              Chain(model=paths["student"], encoder=encoder, f0=method, f0_model=model,
                    runtime="onnxruntime" if s.ort else "torch", name="student chain")]
    threads = s.threads or os.cpu_count() or 1
    try:
        return bench_chain(chains, ChainSettings(threads=(threads,), runs=s.runs, audio=clip))
    except (DistillRVCError, RuntimeError, ValueError) as e:
        log.debug("the whole-chain bench failed", exc_info=True)
        notes.append(f"whole chain not measured: {str(e)[:200]}")
        return None
