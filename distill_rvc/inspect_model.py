"""What `distill-rvc inspect` reports about a model file.

    inspect(path, InspectSettings(memory=True)) -> InspectResult   plain data, as --json prints it
    format_inspect(result) -> str                                  the text `inspect` prints

The result holds the format the file was recognised as, where it loads (RVC, Applio, w-okada:
consumers.py), version, rate, f0, speakers, parameters per part as stored, file size, weight
dtype, and the measured inference memory with the longest chunk that fits 2, 4 and 6 GB cards.
Not here: reading the file (checkpoint.py) or measuring memory (memory.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import torch

from .checkpoint import build_model, read_checkpoint
from .consumers import Loads, where_it_loads
from .memory import CUDA_OVERHEAD_BYTES, GB, inference_memory

PARTS = ("enc_p", "flow", "dec", "emb_g", "enc_q")
BUDGETS_GB = (2, 4, 6)


@dataclass(frozen=True)
class InspectSettings:
    """What `inspect` measures beyond what the file says."""

    memory: bool = True  # measure the inference memory (traces the model at five lengths, a few seconds)

    def check(self) -> None:
        """Nothing to refuse: either value of the flag is valid."""


class InspectResult(TypedDict, total=False):
    """`inspect`'s data, in the order --json prints it (inference_memory only when measured)."""

    path: str
    format: str
    loads_in: dict[str, Any]  # consumers.Loads.to_dict()
    version: str
    sample_rate: int
    f0: bool
    speakers: int
    file_bytes: int
    weight_dtype: str
    params: dict[str, int]  # total and per part, as stored
    config: dict[str, Any]
    arch: dict[str, Any] | None  # per-layer widths of a pruned model (models/arch.py), else None
    metadata: dict[str, Any]
    inference_memory: dict[str, Any]


def inspect(path: str | Path, settings: InspectSettings | None = None) -> InspectResult:
    """Describe the model file at `path` (see the module docstring)."""
    settings = settings or InspectSettings()
    settings.check()
    ckpt = read_checkpoint(path)
    cfg = ckpt.config
    counts = {part: 0 for part in PARTS}
    for key, n in ckpt.stored_counts.items():
        counts[key] = n
    info: InspectResult = {
        "path": str(ckpt.path),
        "format": ckpt.format,
        "loads_in": where_it_loads(ckpt.format, cfg, ckpt.arch, applio_guard=ckpt.applio_guard).to_dict(),
        "version": cfg.version,
        "sample_rate": cfg.sr,
        "f0": cfg.f0,
        "speakers": cfg.spk_embed_dim,
        "file_bytes": ckpt.file_bytes,
        "weight_dtype": str(ckpt.stored_dtype).replace("torch.", ""),
        "params": {"total": sum(counts.values()), **counts},
        "config": cfg.to_dict(),
        "arch": ckpt.arch,
        "metadata": ckpt.metadata,
    }
    if settings.memory:
        info["inference_memory"] = _memory_report(ckpt)
    return info


def inspect_model(path: str | Path, memory: bool = True) -> InspectResult:
    """`inspect` with the memory flag as a keyword, for callers that only want the data."""
    return inspect(path, InspectSettings(memory=memory))


def _memory_report(ckpt) -> dict[str, Any]:
    cfg, arch = ckpt.config, ckpt.arch
    report: dict[str, Any] = {
        "what": "synthesizer only (the content encoder and F0 model add their own)",
        "cuda_overhead_bytes": CUDA_OVERHEAD_BYTES,
    }
    for dtype in (torch.float32, torch.float16):
        mem = inference_memory(lambda: build_model(cfg, arch), cfg.phone_dim, cfg.f0, cfg.inter_channels, dtype)
        report[mem.dtype] = {
            "weights_bytes": mem.weights,
            "bytes_per_second": round(mem.per_second),
            "peak_bytes": dict(zip((f"{s:g}s" for s in mem.seconds), mem.peaks)),
            "longest_chunk_s": {f"{gb}GB": _round(mem.longest_chunk(gb * GB)) for gb in BUDGETS_GB},
        }
    return report


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def format_inspect(info: InspectResult) -> str:
    """Human-readable lines for `distill-rvc inspect`."""
    p = info["params"]
    parts = "  ".join(f"{k} {p[k]:,}" for k in PARTS if p[k]) \
        + f"  (total {p['total']:,} as stored: weight norm's g and v both counted, as RVC counts)"
    speakers = info["speakers"]
    lines = [
        f"file       {info['path']} ({_size(info['file_bytes'])})",
        f"format     {info['format']}",
        f"loads in   {_loads_line(info['loads_in'])}",
        f"model      {info['version']}, {info['sample_rate']} Hz, {'f0 (pitch)' if info['f0'] else 'no f0'}, "
        f"{speakers} speaker slot{'s' if speakers != 1 else ''}",
        f"weights    {info['weight_dtype']}",
        f"params     {parts}",
    ]
    if info.get("arch"):
        d, ffn = info["arch"]["dec"], info["arch"]["enc_p"]["ffn"]
        lines.append(f"pruned     dec conv_pre {d['conv_pre']}, stages {'/'.join(map(str, d['ups']))}; "
                     f"enc_p ffn {'/'.join(map(str, ffn))}")
    for key in ("info", "author", "embedder_model", "recipe", "teacher_sha256"):
        if key in info["metadata"]:
            lines.append(f"{key:<10} {info['metadata'][key]}")
    mem = info.get("inference_memory")
    if mem:
        lines.append(f"memory     {mem['what']}; a CUDA context of ~{_size(mem['cuda_overhead_bytes'])} is added")
        for dtype in ("float32", "float16"):
            m = mem[dtype]
            fits = ", ".join(f"{gb}: {_secs(s)}" for gb, s in m["longest_chunk_s"].items())
            lines.append(f"  {dtype:<8} {_size(m['weights_bytes'])} weights + {_size(m['bytes_per_second'])} "
                         f"per second of audio; longest chunk that fits {fits}")
    return "\n".join(lines)


def _loads_line(loads: dict[str, Any]) -> str:
    return Loads(tuple(loads["loads"]), loads["refuses"], loads["wrong"]).line()


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _secs(s: float | None) -> str:
    if s is None:
        return "over 240 s"
    return "nothing" if s <= 0 else f"{s:.0f} s"
