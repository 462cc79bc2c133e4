"""Real-time factors of both models on the three runtimes: torch CPU, onnxruntime CPU, the GPU.

    measure_speed(models, features, encoder, s, gpu, notes)
        -> rtf[role][runtime] = {"synthesizer": x, "pipeline": y}, None where not measured

Synthesizer: one pass over each chunk's kept frames (the context pads are the pipeline's cost).
Pipeline: plus the clips' content features and F0 as `convert` computes them. onnxruntime runs
each .pth exported to RVC's ONNX interface in a temporary file. The models take turns in every
run and medians are kept (timing.py), so a slow spell of the machine falls on both alike.
Not here: memory (cost.py) or the timing primitives (timing.py).
"""
from __future__ import annotations

import copy
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..backends import Backend, TorchBackend
from ..convert import ChunkInput
from ..onnx.runtime import OrtBackend
from ..errors import DistillRVCError
from ..timing import side_by_side, timed
from .clips import ClipFeatures
from .result import ROLES, RUNTIMES
from .settings import CompareSettings

log = logging.getLogger(__name__)


def measure_speed(models: dict[str, Backend], features: ClipFeatures, encoder, s: CompareSettings,
                  gpu: torch.device | None, notes: list[str]) -> dict[str, Any]:
    """Every runtime that can run here; `gpu`: the CUDA device, None for none."""
    rtf: dict[str, Any] = {r: {runtime: None for runtime in RUNTIMES} for r in ROLES}
    audio_s = features.audio_s
    cpu_features = (features.timings.f0 + features.timings.content) / audio_s

    def rows(runtime: str, backends: dict[str, Backend], features_rtf: float) -> None:
        medians = side_by_side([timed(_synth_all(b, features.chunks, s.sid), b.synchronize)
                                for b in backends.values()], s.runs, warmup=1)
        for r, m in zip(backends, medians):
            rtf[r][runtime] = {"synthesizer": m / audio_s, "pipeline": m / audio_s + features_rtf}

    torch_models = {r: b for r, b in models.items() if isinstance(b, TorchBackend)}
    rows("cpu_torch", torch_models, cpu_features)
    if "student" not in torch_models:
        notes.append("cpu_torch of the student: it is an ONNX file, which torch does not run")

    if s.ort:
        ort_models, reason = _ort_models(models, s.threads)
        if ort_models:
            rows("cpu_ort", ort_models, cpu_features)
        if reason:
            notes.append(f"cpu_ort not measured: {reason}")
    else:
        notes.append("cpu_ort not measured: turned off (--no-ort)")

    if gpu is not None:
        gpu_models, reason = _gpu_models(models, gpu)
        try:
            gpu_features = _gpu_feature_rtf(encoder, features, models["teacher"].info.version, gpu)
        except DistillRVCError as e:  # e.g. an ONNX encoder without onnxruntime-gpu
            gpu_features = cpu_features
            notes.append(f"gpu content features not measured ({e}); the CPU's time is counted instead")
        rows("gpu", gpu_models, gpu_features)
        if reason:
            notes.append(f"gpu of the student not measured: {reason}")
    else:
        notes.append("gpu not measured: torch sees no CUDA GPU on this machine")
    return rtf


def _synth_all(backend: Backend, chunks: list[list[ChunkInput]], sid: int) -> Callable[[], None]:
    """One synthesizer pass per chunk over the frames it keeps (the context pads cut off: they
    are the pipeline's cost, and on short clips they would double the synthesizer's)."""
    hop = backend.info.hop

    def frames(x: np.ndarray | None, first: int, n: int, axis: int) -> np.ndarray | None:
        return None if x is None else np.ascontiguousarray(np.take(x, range(first, first + n), axis=axis))

    passes = []
    for clip in chunks:
        for c in clip:
            first, n = (c.span[0] - c.offset) // hop, -(-(c.span[1] - c.span[0]) // hop)
            passes.append((frames(c.phone, first, n, 1), frames(c.pitch, first, n, 1), frames(c.pitchf, first, n, 1),
                           frames(c.noise, first, n, 2) if backend.accepts_noise else None))

    def run() -> None:
        for phone, pitch, pitchf, noise in passes:
            backend.run(phone, pitch, pitchf, sid, noise)
    return run


def _ort_models(models: dict[str, Backend], threads: int | None) -> tuple[dict[str, Backend], str | None]:
    """onnxruntime CPU backends: each .pth exported (RVC interface) to a temporary file."""
    try:
        from ..onnx.export import ExportSettings, build_graph
    except ImportError as e:
        return {}, f"the ONNX exporter is unavailable ({e})"
    out: dict[str, Backend] = {}
    with tempfile.TemporaryDirectory(prefix="distill-rvc-compare-") as tmp:
        for role, b in models.items():
            if isinstance(b, OrtBackend):
                out[role] = OrtBackend(b.path, "cpu", threads=threads)
                continue
            try:
                model = copy.deepcopy(b.model).cpu().float().remove_weight_norm().eval()
                graph, _ = build_graph(model, ExportSettings(interface="rvc", simplify=False))
                path = Path(tmp) / f"{role}.onnx"
                path.write_bytes(graph.SerializeToString())
                out[role] = OrtBackend(path, "cpu", threads=threads)
            except Exception as e:  # an exporter failure must not cost the rest of the report
                log.debug("ONNX export of the %s failed", role, exc_info=True)
                return out, f"exporting the {role} to ONNX failed ({type(e).__name__}: {str(e)[:120]})"
    return out, None


def _gpu_models(models: dict[str, Backend], gpu: torch.device) -> tuple[dict[str, Backend], str | None]:
    out: dict[str, Backend] = {}
    reason = None
    for role, b in models.items():
        if isinstance(b, TorchBackend):
            out[role] = TorchBackend(copy.deepcopy(b.model), str(gpu), deterministic=True, path=b.info.path)
        else:
            try:
                out[role] = OrtBackend(b.path, str(gpu))
            except DistillRVCError as e:
                reason = str(e)
    return out, reason


def _gpu_feature_rtf(encoder, features: ClipFeatures, version: str, gpu: torch.device) -> float:
    """Content features on the GPU (timed once per clip) plus the CPU-bound F0 time."""
    from ..features.encoders import open_encoder

    gpu_encoder = open_encoder(encoder.path, str(gpu))
    gpu_encoder.extract(features.clips[0][1][:16000], version)  # warm-up
    start = time.perf_counter()
    for _, a in features.clips:
        gpu_encoder.extract(a, version)
    torch.cuda.synchronize(gpu)
    return (time.perf_counter() - start + features.timings.f0) / features.audio_s

