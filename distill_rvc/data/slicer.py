"""Cut a recording at its silences, with the parameters of RVC's training preprocess (Slicer2).

RVC slices every training file where the level stays below -42 dB for at least 400 ms,
keeps at most 500 ms of silence on each side of a cut, and never makes a clip shorter
than 1.5 s by cutting (rvc-format.md §7). This is our own, simpler version of that slicer:
frame RMS on a 15 ms hop, silent runs found directly, cuts placed at fixed distances from
the voice (Slicer2 searches for the quietest frame), leading and trailing silence trimmed.

Not for: the inference-time chunking of `convert` (cuts at the quietest point near fixed
intervals, rvc-format.md §5.5) or the 3.7 s training windows (`prepare.py`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SlicerSettings:
    threshold_db: float = -42.0  # frames quieter than this (RMS, dBFS) are silence
    min_length_ms: int = 1500  # a cut never leaves a clip shorter than this (silence included)
    min_interval_ms: int = 400  # shorter pauses are not cut
    hop_ms: int = 15
    max_sil_kept_ms: int = 500  # silence kept next to the voice at a cut


def frame_rms(audio: np.ndarray, win: int, hop: int) -> np.ndarray:
    """RMS of centred, zero-padded frames: [N] -> [N // hop + 1]."""
    padded = np.pad(np.asarray(audio, dtype=np.float64), (win // 2, win // 2))
    csum = np.concatenate([[0.0], np.cumsum(padded ** 2)])  # running sums keep long files cheap
    starts = np.arange(0, len(padded) - win + 1, hop)
    return np.sqrt(np.maximum(csum[starts + win] - csum[starts], 0.0) / win)


def silent_runs(quiet: np.ndarray) -> list[tuple[int, int]]:
    """[(start, end)) of each run of True frames."""
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    return list(zip(np.nonzero(edges == 1)[0].tolist(), np.nonzero(edges == -1)[0].tolist()))


def slice_at_silences(audio: np.ndarray, sr: int, settings: SlicerSettings = SlicerSettings()) -> list[np.ndarray]:
    """Mono [N] -> clips [N_i] (views of `audio`), in order. Audio that is silent throughout
    gives no clip; audio shorter than `min_length_ms` is returned whole."""
    hop = round(sr * settings.hop_ms / 1000)
    min_length = round(settings.min_length_ms / settings.hop_ms)
    min_interval = round(settings.min_interval_ms / settings.hop_ms)
    keep = round(settings.max_sil_kept_ms / settings.hop_ms)
    win = min(round(sr * settings.min_interval_ms / 1000), 4 * hop)
    rms = frame_rms(audio, win, hop)
    n = len(rms)
    quiet = rms < 10.0 ** (settings.threshold_db / 20.0)
    if quiet.all():
        return []
    if (len(audio) + hop - 1) // hop <= min_length:
        return [audio]

    cuts = []  # (end of the clip before, start of the clip after), in frames
    clip_start = 0
    for s, e in silent_runs(quiet):
        if s == 0:  # leading silence
            if e > keep:
                cuts.append((0, e - keep))
                clip_start = e - keep
        elif e == n:  # trailing silence
            if e - s >= min_interval:
                cuts.append((min(s + keep, n), n))
        elif e - s >= min_interval and e - clip_start >= min_length:
            if e - s <= 2 * keep:  # short pause: one cut at its quietest frame
                pos = s + int(np.argmin(rms[s:e]))
                cuts.append((pos, pos))
                clip_start = pos
            else:
                cuts.append((s + keep, e - keep))
                clip_start = e - keep

    clips, start = [], 0
    for end, after in cuts:
        if end > start:
            clips.append((start, end))
        start = after
    if start < n:
        clips.append((start, n))
    return [audio[a * hop: min(len(audio), b * hop)] for a, b in clips if a * hop < len(audio)]
