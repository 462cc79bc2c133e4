"""What each model costs to run: MACs per second of audio and peak memory of a pass.

    macs(models, notes)                        role -> multiply-accumulates per second (torch models)
    peak_memory(paths, models, s, gpu, notes)  role -> {"cpu_rss": bytes, "gpu": bytes}

CPU: by how much a fresh process's peak RSS grows when it loads the model and converts
`mem_seconds` of synthetic input (memory.peak_rss). GPU: torch's max_memory_allocated over the
same pass. Parameters and file bytes come with the backends (backends.ModelInfo). Not here:
how memory is measured (memory.py) or speed (speed.py).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from ..backends import Backend, TorchBackend
from ..memory import macs_per_second, peak_rss
from ..timing import synthetic_inputs
from .result import ROLES
from .settings import CompareSettings


def macs(models: dict[str, Backend], notes: list[str]) -> dict[str, int | None]:
    """MACs per second of audio of each torch model (FlopCounterMode on fake tensors, its own
    per-layer widths for a pruned model); None for an ONNX file."""
    out = {r: int(macs_per_second(b.model.config, arch=b.model.arch)) if isinstance(b, TorchBackend) else None
           for r, b in models.items()}
    if out["student"] is None:
        notes.append("MACs per second are counted on torch models; the student is an ONNX file")
    return out


def peak_memory(paths: dict[str, Path], models: dict[str, Backend], s: CompareSettings, gpu: torch.device | None,
                notes: list[str]) -> dict[str, Any]:
    """`paths`: role -> model file (each loaded again in its own process); `gpu`: None for none."""
    peak: dict[str, Any] = {r: {"cpu_rss": None, "gpu": None} for r in ROLES}
    if s.peak_rss:
        for role, (rss, reason) in zip(ROLES, peak_rss([paths[r] for r in ROLES], s.threads, s.mem_seconds)):
            peak[role]["cpu_rss"] = rss
            if reason:
                notes.append(f"peak RSS of the {role} not measured: {reason}")
    else:
        notes.append("peak RSS not measured: turned off")
    if gpu is None:
        return peak
    for role, b in models.items():
        if isinstance(b, TorchBackend):
            peak[role]["gpu"] = _cuda_peak(b, s.mem_seconds, gpu)
        else:
            notes.append(f"GPU memory of the {role} not measured: onnxruntime's allocator is not visible to torch")
    return peak


def _cuda_peak(b: TorchBackend, seconds: float, gpu: torch.device) -> int:
    """max_memory_allocated of one pass over `seconds` of synthetic input on `gpu`."""
    backend = TorchBackend(copy.deepcopy(b.model), str(gpu), deterministic=True)
    x = synthetic_inputs(*backend.info.widths, seconds)
    torch.cuda.synchronize(gpu)
    torch.cuda.reset_peak_memory_stats(gpu)
    backend.run(x["phone"], x["pitch"], x["pitchf"], 0, x["noise"])
    peak = int(torch.cuda.max_memory_allocated(gpu))
    del backend
    torch.cuda.empty_cache()
    return peak
