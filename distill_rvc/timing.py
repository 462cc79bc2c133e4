"""Timing, the one way: threads pinned, jobs interleaved, medians, on the same synthetic input.

    torch_threads(n)                   torch's CPU threads set for a block, restored after
    synthetic_inputs(phone_dim, ...)   reproducible model inputs for `seconds` of audio, from plain widths
    timed(fn, sync) / side_by_side     one timed call; jobs that take turns in every run, medians back
    cpu_name()                         the CPU's model name, for reports

bench, compare, prune and the ONNX parity check time with these, so that a ratio printed by one
means what it means in the others. Not here: memory (memory.py) or what is timed (the commands).
"""
from __future__ import annotations

import contextlib
import platform
import statistics
import time
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .features.pitch import coarse_pitch


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to `n` inside the block (None: left as they are)."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def synthetic_inputs(phone_dim: int, f0: bool, inter_channels: int | None, seconds: float, batch: int = 1,
                     seed: int = 0) -> dict[str, Any]:
    """Reproducible inputs for `seconds` of audio: phone [B, T, C] ~ N(0, 1), pitchf [B, T] gliding
    110-440 Hz with the last 0.2 s of every second unvoiced, its coarse pitch, noise [B, inter, T]
    (None where the model takes no noise, or no F0)."""
    t = max(3, round(seconds * 100))
    rng = np.random.default_rng(seed)
    frames = np.arange(t)
    pitchf = 220.0 * 2.0 ** np.sin(2 * np.pi * frames / 150)
    pitchf[frames % 100 >= 80] = 0.0
    return {
        "phone": rng.standard_normal((batch, t, phone_dim), dtype=np.float32),
        "pitch": np.repeat(coarse_pitch(pitchf)[None], batch, 0) if f0 else None,
        "pitchf": np.repeat(pitchf.astype(np.float32)[None], batch, 0) if f0 else None,
        "noise": rng.standard_normal((batch, inter_channels, t), dtype=np.float32) if inter_channels else None,
    }


def timed(fn: Callable[[], Any], sync: Callable[[], None] = lambda: None) -> Callable[[], float]:
    """A job for `side_by_side`: one call of `fn`, `sync`ed (CUDA), in seconds."""
    def once() -> float:
        start = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - start
    return once


def side_by_side(jobs: list[Callable[[], float]], runs: int, warmup: int) -> list[float]:
    """Median of each job's timings; the jobs take turns in every run, so a slow spell of the
    machine falls on all of them alike."""
    times: list[list[float]] = [[] for _ in jobs]
    for r in range(warmup + runs):
        for i, job in enumerate(jobs):
            t = job()
            if r >= warmup:
                times[i].append(t)
    return [statistics.median(t) for t in times]


def cpu_name() -> str:
    """The CPU's model name where the OS tells it (Linux), else the architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
