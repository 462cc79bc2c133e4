"""The clips `compare` converts: loaded once, their features computed once, rendered by each model.

    load_clips(audio, ...)          (name, 16 kHz audio [N]) of each usable clip, cut to a length
    clip_features(clips, ...)       the teacher's chunking of every clip (features, F0, prior noise)
    render(features, backend, sid)  one model's output [N'] of every clip, from those same chunks

Both models get identical inputs and noise, and the NSF noise is off (pair.py opens them
deterministic), so their outputs differ by the models alone. Not here: the metrics on the
outputs (fidelity.py) or timing the passes (speed.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import convert
from ..backends import Backend
from ..convert import ChunkInput, Converter, ConvertSettings, Timings
from ..errors import DistillRVCError
from ..features.audio import AUDIO_SUFFIXES, load_audio
from .settings import CompareSettings

Clip = tuple[str, np.ndarray]  # name (relative to the audio folder), 16 kHz audio [N]


@dataclass
class ClipFeatures:
    clips: list[Clip]
    chunks: list[list[ChunkInput]]  # per clip, the synthesizer passes the teacher's chunking makes
    timings: Timings  # CPU seconds of their F0 and content features

    @property
    def audio_s(self) -> float:
        return sum(len(a) for _, a in self.clips) / 16000


def load_clips(audio: Path, max_clips: int, max_s: float, notes: list[str]) -> list[Clip]:
    if audio.is_dir():
        files = sorted(p for p in audio.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    elif audio.is_file():
        files = [audio]
    else:
        raise DistillRVCError(f"{audio}: no such file or folder")
    if not files:
        raise DistillRVCError(f"{audio}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
    clips = []
    for f in files:
        if len(clips) == max_clips:
            notes.append(f"{len(files) - max_clips} more clip(s) in {audio} were left out (--max-clips {max_clips})")
            break
        try:
            x = load_audio(f, 16000)
        except DistillRVCError as e:
            notes.append(f"skipped {f.name}: {str(e).replace(f'{f}: ', '')}")
            continue
        if len(x) > max_s * 16000:
            notes.append(f"{f.name}: only its first {max_s:g} s were used")
            x = x[: int(max_s * 16000)]
        clips.append((f.relative_to(audio).as_posix() if audio.is_dir() else f.name, x))
    if not clips:
        raise DistillRVCError(f"{audio}: none of the audio files could be used ({notes[0]})")
    return clips


def clip_features(clips: list[Clip], teacher: Backend, encoder, s: CompareSettings) -> ClipFeatures:
    """Features and F0 of each clip as `convert` computes them for the teacher (seed 0 noise)."""
    timings = Timings()
    conv = Converter(teacher, encoder, ConvertSettings(
        f0_method=s.f0_method, rmvpe=s.rmvpe, fcpe=s.fcpe, transpose=s.transpose, sid=s.sid, chunks=s.chunks,
        memory_gb=s.memory_gb, seed=0))
    return ClipFeatures(clips, [list(conv.chunks(a, timings)) for _, a in clips], timings)


def render(features: ClipFeatures, backend: Backend, sid: int) -> list[np.ndarray]:
    """`backend`'s output of each clip, seams cross-faded over 20 ms as `convert` does."""
    fade = int(round(0.02 * backend.info.sr)) // 2 * 2
    return [np.concatenate(list(convert.render(c, backend, sid, fade))) for c in features.chunks]
