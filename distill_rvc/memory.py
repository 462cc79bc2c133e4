"""Peak memory of a model pass: measured on fake tensors (exact bytes, no allocation), or as
the resident set of a real process.

`torch.distributed._tools.mem_tracker.MemTracker` under `FakeTensorMode` follows every
tensor a real pass would allocate (parameters, activations, gradients, optimiser state)
without computing anything, so a 60 s pass of a 27 M model is "run" on a CPU in a second.
`inference_memory` fits the measured peaks to a + b*s + c*s^2 (weights, per-second
activations, attention's quadratic term) and answers "how long a chunk fits N GB";
`fake_step_memory` traces one whole training step (the `plan` command, distill/planner.py).

    peak_rss_bytes()             this process's peak resident set (VmHWM on Linux, else getrusage)
    peak_rss(models, ...)        by how much a fresh process's peak RSS grows per model (compare)
    macs_per_second(config)      multiply-accumulates per second of audio, on fake tensors

What a CUDA device adds on top (its context, cuDNN workspaces, allocator rounding) is not a
tensor, so it is not measured here; `CUDA_OVERHEAD_BYTES` is our stated estimate of it.
Not here: torch's CUDA allocator counters (read where a GPU pass runs, compare/cost.py).
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

GB = 1024**3
# The CUDA context plus cuDNN workspace on a consumer card, which max_memory_allocated does
# not see: 300-500 MB in practice; we budget the upper end.
CUDA_OVERHEAD_BYTES = 500_000_000
ALLOCATOR_SLACK = 1.10  # the caching allocator rounds blocks up and fragments


def fake_peaks(build: Callable[[], torch.nn.Module],
               runs: list[Callable[[torch.nn.Module], None]]) -> list[dict[str, int]]:
    """Build a model on fake tensors once, then run each `run(model)` and return its peak
    bytes by kind: {"param", "buffer", "grad", "act", "temp", "opt", "oth", "total"}."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    results = []
    with FakeTensorMode(allow_non_fake_inputs=True):
        model = build()
        for run in runs:
            tracker = MemTracker()
            tracker.track_external(model)
            with tracker:
                run(model)
            results.append(_by_kind(tracker.get_tracker_snapshot("peak")))
    return results


def _by_kind(snapshot: dict) -> dict[str, int]:
    """MemTracker snapshot {device: {kind: bytes}} -> {"param": ..., "act": ..., "total": ...}."""
    out: dict[str, int] = {}
    for per_device in snapshot.values():
        for kind, nbytes in per_device.items():
            name = "total" if kind == "Total" else kind.name.lower()
            out[name] = out.get(name, 0) + int(nbytes)
    return out


@dataclass
class StepMemory:
    """Bytes by kind ("param", "grad", "act", "opt", "temp", "oth", "total") of one
    traced training step: at its peak, between forward and backward (activations saved for
    backward at their largest), and after the optimiser step (gradients and optimiser state)."""

    peak: dict[str, int]
    after_forward: dict[str, int]
    after_step: dict[str, int]
    flops: int
    tracked: Any = None  # what `setup` built (fake modules), for reading sizes off


def fake_step_memory(setup: Callable[[], tuple[Any, list]],
                     run: Callable[[Any, Callable[[], None]], None]) -> StepMemory:
    """Trace one training step on fake tensors.

    `setup()` builds the modules and optimisers (under FakeTensorMode) and returns
    (context, [modules and optimisers to track]); `run(context, probe)` does one step and
    calls `probe()` between its forward and its backward.
    """
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    with FakeTensorMode(allow_non_fake_inputs=True):
        context, tracked = setup()
        tracker = _global_peak_tracker()
        tracker.track_external(*tracked)
        probes: list[dict[str, int]] = []
        flops = FlopCounterMode(display=False)
        with tracker, flops:
            run(context, lambda: probes.append(_by_kind(tracker.get_tracker_snapshot())))
        after_step = _by_kind(tracker.get_tracker_snapshot())
    return StepMemory(peak=_by_kind(tracker.get_tracker_snapshot("peak")), after_forward=probes[0] if probes else {},
                      after_step=after_step, flops=int(flops.get_total_flops()), tracked=context)


LADDER_S = (10, 30, 60, 120, 240)


@dataclass
class InferenceMemory:
    """Measured peak bytes of one synthesizer pass at the input lengths `seconds`.

    Peaks are not one formula: the decoder's activations grow linearly with the input,
    attention's score matrices quadratically, and whichever is larger sets the peak. So we
    keep the measured ladder and interpolate between its points.
    """

    seconds: tuple[float, ...]
    peaks: tuple[int, ...]  # total bytes (weights included) at each length
    weights: int
    dtype: str

    @property
    def per_second(self) -> float:
        """Bytes per second of audio over the ladder's first step (the short-chunk slope)."""
        return (self.peaks[1] - self.peaks[0]) / (self.seconds[1] - self.seconds[0])

    def longest_chunk(self, budget_bytes: float) -> float | None:
        """Longest input (s) whose pass fits `budget_bytes` of a CUDA card, its context and
        allocator slack included; 0.0 if nothing fits, None if even the longest rung fits."""
        usable = budget_bytes / ALLOCATOR_SLACK - CUDA_OVERHEAD_BYTES
        if usable < self.peaks[0]:
            return 0.0 if usable < self.weights else self.seconds[0] * (usable - self.weights) / (
                self.peaks[0] - self.weights)
        for (s0, p0), (s1, p1) in zip(zip(self.seconds, self.peaks), zip(self.seconds[1:], self.peaks[1:])):
            if p1 > usable:
                return s0 + (s1 - s0) * (usable - p0) / (p1 - p0)
        return None


def inference_memory(model_factory: Callable[[], torch.nn.Module], phone_dim: int, f0: bool, inter: int,
                     dtype: torch.dtype = torch.float32, ladder_s: tuple[float, ...] = LADDER_S) -> InferenceMemory:
    """Measure a synthesizer's inference peak on a ladder of input lengths (fake tensors)."""
    def pass_of(seconds: float) -> Callable[[torch.nn.Module], None]:
        t = int(seconds * 100)

        def run(model: torch.nn.Module) -> None:
            phone = torch.zeros(1, t, phone_dim, dtype=dtype)
            pitch = torch.ones(1, t, dtype=torch.long) if f0 else None
            pitchf = torch.full((1, t), 200.0) if f0 else None
            with torch.no_grad():
                model.infer(phone, torch.tensor([t]), pitch, pitchf, torch.tensor([0]),
                            noise=torch.zeros(1, inter, t, dtype=dtype), source_noise=False)
        return run

    peaks = fake_peaks(lambda: _build_in(dtype, model_factory), [pass_of(s) for s in ladder_s])
    weights = peaks[0].get("param", 0) + peaks[0].get("buffer", 0)
    return InferenceMemory(seconds=tuple(ladder_s), peaks=tuple(p["total"] for p in peaks), weights=weights,
                           dtype=str(dtype).replace("torch.", ""))


def _build_in(dtype: torch.dtype, factory: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Build with `dtype` as the default (`.to(dtype)` cannot swap fake parameters)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return factory().eval()
    finally:
        torch.set_default_dtype(previous)


def _global_peak_tracker():
    """A MemTracker that keeps only the global peak.

    MemTracker also updates a peak per module after every op, looping over every module it
    has seen: with a few hundred modules that is most of a training step's trace time, and
    `fake_step_memory` reads only the global snapshots. The override relies on MemTracker's
    private fields; if they change, the stock (slower, identical) tracker is used.
    """
    from torch.distributed._tools import mem_tracker
    from torch.distributed._tools.mem_tracker import MemTracker

    total = getattr(mem_tracker, "_TOTAL_KEY", "Total")

    class GlobalPeakTracker(MemTracker):
        def _update_peak_stats(self, peak_state) -> None:
            for dev, snap in self._curr_mem_snap.items():
                if self._peak_mem.get(dev, 0) < snap[total]:
                    self._peak_mem[dev] = snap[total]
                    self._peak_mem_snap[dev] = dict(snap)

    tracker = GlobalPeakTracker()
    if not all(hasattr(tracker, name) for name in ("_curr_mem_snap", "_peak_mem", "_peak_mem_snap")):
        return MemTracker()
    return tracker


def peak_rss_bytes() -> int | None:
    """This process's peak resident memory so far, or since the last `_reset_peak_rss` on Linux
    (None on Windows, which has neither /proc nor getrusage)."""
    peak = _proc_status("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss) if sys.platform == "darwin" else int(rss) * 1024  # macOS: bytes, Linux: KiB


def peak_rss(models: list[str | Path], threads: int | None = 2, seconds: float = 10.0
             ) -> list[tuple[int | None, str | None]]:
    """For each model: (bytes, None) by which the peak RSS of a fresh process grows when it loads
    the model and converts `seconds` of synthetic input (torch and onnxruntime already imported:
    their own footprint is left out), or (None, why not). One process per model, side by side."""
    import multiprocessing as mp

    if peak_rss_bytes() is None:
        return [(None, "this OS does not report a process's peak memory (no getrusage)")] * len(models)
    ctx = mp.get_context("spawn")
    jobs = []
    for model in models:
        queue = ctx.Queue()
        proc = ctx.Process(target=_rss_child, args=(str(model), threads, seconds, queue))
        proc.start()
        jobs.append((proc, queue))
    results = []
    for proc, queue in jobs:
        try:
            results.append(queue.get(timeout=600))
        except Exception:
            results.append((None, "the measuring process did not answer"))
        proc.join(timeout=30)
    return results


def _rss_child(model: str, threads: int | None, seconds: float, queue) -> None:
    try:
        try:  # imported first: the runtimes are the baseline, not the model
            importlib.import_module("onnxruntime")
        except ImportError:
            pass
        from .backends import open_backend
        from .timing import synthetic_inputs

        if threads:
            torch.set_num_threads(threads)
        base = _reset_peak_rss()
        backend = open_backend(model, "cpu", threads=threads)
        x = synthetic_inputs(*backend.info.widths, seconds)
        backend.run(x["phone"], x["pitch"], x["pitchf"], 0, x["noise"])
        queue.put((peak_rss_bytes() - base, None))
    except Exception as e:  # reported, not raised: the parent goes on without this number
        queue.put((None, f"{type(e).__name__}: {str(e)[:120]}"))


def _proc_status(field: str) -> int | None:
    """A memory line of /proc/self/status in bytes (None where there is no /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return None


def rss_bytes() -> int | None:
    """This process's resident set now (VmRSS; None where there is no /proc)."""
    return _proc_status("VmRSS")


def _reset_peak_rss() -> int:
    """The resident set now; on Linux the peak is also reset here (clear_refs 5), so that the
    imports' own peak does not hide a smaller model's."""
    now = rss_bytes()
    if now is not None:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")
            return now
        except OSError:
            pass
    return peak_rss_bytes()  # no reset possible: growth of the lifetime peak (0 if the imports peaked higher)


def macs_per_second(config, seconds: float = 1.0, arch: dict[str, Any] | None = None) -> int:
    """Multiply-accumulates of one inference pass of the synthesizer `config` describes, per
    second of audio (FlopCounterMode / 2, on fake tensors: nothing is allocated); `arch`: the
    per-layer widths of a pruned model (models/arch.py)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    from .checkpoint import build_model
    from .timing import synthetic_inputs

    x = {k: None if v is None else torch.from_numpy(v)
         for k, v in synthetic_inputs(config.phone_dim, config.f0, config.inter_channels, seconds).items()}
    t = x["phone"].shape[1]
    with FakeTensorMode(allow_non_fake_inputs=True):
        model = build_model(config, arch).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.infer(x["phone"], torch.tensor([t]), x["pitch"], x["pitchf"], torch.zeros(1, dtype=torch.long),
                        noise=x["noise"], source_noise=False)
    return int(counter.get_total_flops() / 2 / seconds)
