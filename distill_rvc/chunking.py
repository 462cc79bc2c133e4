"""Where `convert` cuts a long input, how long its chunks are, and what each chunk reads.

    ChunkSizes(pad, query, center, max)        RVC's x_pad, x_query, x_center, x_max in seconds
    chunk_sizes(backend, encoder, budget_gb)   the longest chunks whose passes fit a memory budget
    cut_points(audio_16k, sizes, condition)    cuts at the quietest 10 ms near every x_center
    stretch(audio, start, stop, condition)     samples [start, stop) as RVC sees them, reflected beyond the ends
    conditioner(audio_16k)                     RVC's input conditioning, applied a stretch at a time

Chunk sizes come from a memory budget: the synthesizer's and the content encoder's peaks by
input length are measured on fake tensors (`memory.py`, `encoder.memory`) and the longest chunk that fits is
used (ONNX models, which cannot be traced, get RVC's fp32 sizes). Cuts fall on multiples of
320 samples (two content frames), so each chunk's frames line up exactly. Only the 16 kHz
input is held whole; it is never conditioned or padded whole, only the stretches a chunk reads.

Not here: running the chunks and joining their audio (convert.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from .backends import Backend, TorchBackend
from .errors import DistillRVCError
from .features.audio import highpass
from .memory import GB, inference_memory
from .options import check_chunk_seconds

if TYPE_CHECKING:
    from .features.encoders import FeatureEncoder

log = logging.getLogger(__name__)

SR_16K, WINDOW = 16000, 160  # content/F0 rate and the 10 ms frame
CUT_ALIGN = 2 * WINDOW  # cuts on whole pairs of frames: the 50 Hz content frames x 2 line up exactly
CONTEXT = SR_16K // 4  # samples filtered beyond a stretch: the 48 Hz high-pass settles within 0.1 s
MAX_CENTER_S = 60.0  # RVC's largest x_center (fp16, 6 GB); longer chunks only make attention slower
DEFAULT_BUDGET_GB = 4.0


@dataclass(frozen=True)
class ChunkSizes:
    """RVC's x_pad, x_query, x_center, x_max in seconds (rvc-format.md §5.5, §8): chunks of about
    `center` s cut within `query` s of each multiple of it, `pad` s of context each side,
    no cutting below `max` s."""

    pad: float
    query: float
    center: float
    max: float

    @classmethod
    def for_chunk(cls, longest_s: float, pad: float = 1.0) -> "ChunkSizes":
        """Sizes for a pass of at most `longest_s` seconds (the centre plus both pads), in RVC's
        proportions (x_query = x_center / 6, x_max = x_center + x_query / 2)."""
        center = min(longest_s - 2 * pad, MAX_CENTER_S)
        if center < 1.0:
            raise DistillRVCError(f"a chunk of {longest_s:.1f} s leaves less than 1 s between its {pad:g} s "
                                  "context pads; raise --memory-gb or pass --chunk-seconds")
        return cls.with_center(center, pad)

    @classmethod
    def with_center(cls, center: float, pad: float = 1.0) -> "ChunkSizes":
        """Chunks of about `center` s (RVC's x_center) with `pad` s of context on each side."""
        if center <= 0 or pad < 0.1:
            raise DistillRVCError(f"chunks of {center:g} s with {pad:g} s of context: need a positive length "
                                  "and at least 0.1 s of context")
        query = center / 6
        return cls(pad=pad, query=query, center=center, max=center + query / 2)

    @classmethod
    def from_option(cls, seconds: float | None) -> "ChunkSizes | None":
        """convert's --chunk-seconds: None (sized by the memory budget) or chunks of about that
        long, checked by `options.check_chunk_seconds`."""
        seconds = check_chunk_seconds(seconds)
        return None if seconds is None else cls.with_center(seconds)


RVC_FP32 = ChunkSizes(pad=1.0, query=6.0, center=38.0, max=41.0)  # "5G VRAM config"


# ------------------------------------------------------------------------------- chunk sizes
def chunk_sizes(backend: Backend, encoder: "FeatureEncoder", budget_gb: float = DEFAULT_BUDGET_GB,
                pad: float = 1.0) -> ChunkSizes:
    """The longest chunks whose synthesizer and content-encoder passes both fit `budget_gb`
    (each with the other's weights resident). ONNX models get RVC's fp32 sizes; an encoder
    whose memory is unknown (`encoder.memory` None: ONNX) is sized by the synthesizer alone."""
    if not isinstance(backend, TorchBackend):
        return RVC_FP32
    from .checkpoint import build_model

    cfg = backend.model.config
    synth = inference_memory(lambda: build_model(cfg, backend.model.arch), cfg.phone_dim, cfg.f0, cfg.inter_channels)
    content = encoder.memory(backend.info.version)
    budget = budget_gb * GB
    fits = [synth.longest_chunk(budget - (content.weights if content else 0)),
            content.longest_chunk(budget - synth.weights) if content else None]
    longest = min((f for f in fits if f is not None), default=MAX_CENTER_S + 2 * pad)
    log.debug("chunks: synthesizer fits %s s, content encoder %s s in %.1f GB", *fits, budget_gb)
    if longest < 2 * pad + 1.0:
        raise DistillRVCError(f"in {budget_gb:g} GB the model and content encoder fit only {longest:.1f} s of "
                              "audio at a time; raise --memory-gb")
    return ChunkSizes.for_chunk(longest, pad)


# ----------------------------------------------------------------------------- cut points
def cut_points(audio_16k: np.ndarray, sizes: ChunkSizes,
               condition: Callable[[np.ndarray], np.ndarray] | None = None) -> list[int]:
    """Where to cut [N] audio (sample indices, multiples of 320): at the quietest 10 ms within
    x_query of every multiple of x_center, as RVC does; none if the input is short.

    `condition` (RVC's input conditioning) is applied to each searched stretch only (`stretch`),
    so the whole input is never filtered at once.
    """
    n = len(audio_16k)
    t_query, t_center, t_max = (int(round(s * SR_16K)) for s in (sizes.query, sizes.center, sizes.max))
    if n + WINDOW <= t_max:
        return []
    cuts: list[int] = []
    for t in range(t_center, n, t_center):
        lo, hi = max(t - t_query, 0), min(t + t_query, n)
        # RVC: the sum of |x| over the 160 samples centred on each sample (edges reflected)
        x = stretch(audio_16k, lo - WINDOW // 2, hi + WINDOW // 2, condition)
        csum = np.concatenate([[0.0], np.cumsum(np.abs(x), dtype=np.float64)])
        moving = csum[WINDOW:] - csum[:-WINDOW]  # [hi - lo]
        cut = (lo + int(np.argmin(moving))) // CUT_ALIGN * CUT_ALIGN
        if cut > (cuts[-1] if cuts else 0) and cut <= n - 2 * CUT_ALIGN:
            cuts.append(cut)
    return cuts


def stretch(audio: np.ndarray, start: int, stop: int,
            condition: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Samples [start, stop) of the input as RVC sees it, conditioned and then reflect-padded at
    both ends (np.pad's "reflect": the edge sample is not repeated), without conditioning or
    padding the whole input: only the samples needed, and CONTEXT more either side for the
    filter to settle, are conditioned."""
    n = len(audio)
    i = np.arange(start, stop)
    if n > 1 and (start < 0 or stop > n):
        period = 2 * (n - 1)
        i = i % period
        i = np.where(i < n, i, period - i)
    elif n == 1:
        i = np.zeros_like(i)
    lo, hi = max(int(i.min()) - CONTEXT, 0), min(int(i.max()) + 1 + CONTEXT, n)
    x = audio[lo:hi] if condition is None else condition(audio[lo:hi])
    return x[i - lo]


def conditioner(audio_16k: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """RVC's input conditioning (`features.condition_audio`) for stretches of [N]: the level is
    set by the whole input's peak (scaled down to 0.95 when louder), the zero-phase 48 Hz
    high-pass runs on each stretch (rvc-format.md §5.4)."""
    step = SR_16K * 60  # the peak a minute at a time: no copy of the whole input
    peak = max((float(np.abs(audio_16k[i: i + step]).max()) for i in range(0, len(audio_16k), step)), default=0.0)
    level = np.float32(0.95 / peak if peak > 0.95 else 1.0)
    return lambda x: highpass(x * level, SR_16K, zero_phase=True)
