"""ONNX export of a content encoder (`distill-rvc export-encoder`), fp32 or int8.

    ExportEncoderSettings(version, int8, ...)          what is written and how it is checked
    export_encoder(source, out, settings) -> ExportEncoderResult;  format_export_encoder(result) -> str
    trace_encoder(encoder, version)                    the fp32 graph: audio [1, N] -> features [1, T, C]
    quantize_int8(graph, ops, weights)                 onnxruntime's dynamic quantisation of a graph
    parity_audio(seconds), similarity(out, ref)        the check's inputs and its numbers

Any torch `features.encoders.FeatureEncoder` is exported (HuBERT/ContentVec now, a distilled
student too): the traced module calls its `forward(audio [1, N], version)` (or `forward(audio)`
when it takes no version) with a dynamic N, so the first conv's GroupNorm, which normalises over
the whole input, is computed over the actual N. The graph carries interface.ENCODER_KEYS
metadata; `onnx.runtime.OnnxEncoder` reads it back.

The check before anything is written: the fp32 graph against the torch encoder at two lengths
(max_rel = max |onnx - torch| / max |torch| <= 1e-4, or nothing is written). With int8 the
quantised graph is also run and its features compared with torch's as cosine similarity (mean
over frames) and relative L2 (||onnx - torch|| / ||torch||): measurements, not a pass/fail.
Not for: running encoder graphs (runtime.OnnxEncoder) or synthesizer export (export.py).
"""
from __future__ import annotations

import inspect
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_path
from ..errors import DistillRVCError
from ..features.encoders import FeatureEncoder, open_encoder
from ..options import check_threads
from ..safe_load import file_sha256
from ..timing import torch_threads
from .export import _quiet, strip_records
from .interface import ENCODER_INPUT, ENCODER_KEYS, ENCODER_OUTPUT, ENCODER_SAMPLES_AXIS, write_metadata
from .runtime import CPU, session

if TYPE_CHECKING:
    import onnx

SR_16K = 16000
HOP = 320  # input samples per content frame (HuBERT's conv strides 5 x 2^6); 50 frames/s
INT8_WEIGHTS = ("qint8", "quint8")


@dataclass(frozen=True)
class ExportEncoderSettings:
    """What `export_encoder` writes (`distill-rvc export-encoder`'s options)."""

    version: str = "v2"  # v1: layer 9 + final_proj, 256-d; v2: layer 12, 768-d
    int8: bool = False  # onnxruntime's dynamic quantisation of the weights
    int8_ops: tuple[str, ...] = ("MatMul",)  # op types quantised (bench/bench_encoder_onnx.py measured these)
    int8_weights: str = "qint8"  # "qint8" or "quint8"
    lengths_s: tuple[float, ...] = (1.0, 3.31)  # parity lengths; 3.31 s is not a whole number of frames
    tolerance: float = 1e-4  # fp32 max_rel
    threads: int | None = None  # onnxruntime and torch threads for the check; None: torch's

    @property
    def precision(self) -> str:
        return "int8" if self.int8 else "fp32"

    def check(self) -> "ExportEncoderSettings":
        check_threads(self.threads)
        if self.version not in ("v1", "v2"):
            raise DistillRVCError(f"unknown RVC version {self.version!r}; use v1 (256-d features) or v2 (768-d)")
        if self.int8_weights not in INT8_WEIGHTS:
            raise DistillRVCError(f"int8 weights {self.int8_weights!r}: use one of {', '.join(INT8_WEIGHTS)}")
        if len(self.lengths_s) < 2 or min(self.lengths_s) * SR_16K < 400:
            raise DistillRVCError("the parity check needs at least two lengths of 25 ms or more")
        return self


@dataclass
class ExportEncoderResult:
    """What `export_encoder` wrote and measured."""

    out: Path
    version: str
    dim: int
    precision: str
    source_kind: str
    params: int
    file_bytes: int
    sha256: str  # of the source encoder file
    parity: dict[str, Any] = field(default_factory=dict)  # fp32 per length; int8 similarity when int8


# ------------------------------------------------------------------------------ tracing
class EncoderGraph(nn.Module):
    """The module traced: audio [1, N] -> features [1, T, C] of one version, in float32."""

    def __init__(self, encoder: nn.Module, version: str):
        super().__init__()
        self.encoder, self.version = encoder, version
        self.takes_version = "version" in inspect.signature(encoder.forward).parameters

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        out = self.encoder(audio, self.version) if self.takes_version else self.encoder(audio)
        return out.to(torch.float32)


def trace_encoder(encoder: FeatureEncoder, version: str) -> "onnx.ModelProto":
    """The fp32 graph of a torch encoder on the CPU, N dynamic from `encoder.min_samples` up."""
    if not isinstance(encoder, nn.Module):
        raise DistillRVCError(f"{encoder.path}: a {encoder.kind} encoder is already a graph; export the torch "
                              "encoder it came from")
    samples = torch.export.Dim(ENCODER_SAMPLES_AXIS, min=int(encoder.min_samples))
    graph = EncoderGraph(encoder, version).eval()
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(graph, (torch.zeros(1, SR_16K),), dynamo=True, opset_version=18, optimize=True,
                                    verbose=False, input_names=[ENCODER_INPUT], output_names=[ENCODER_OUTPUT],
                                    dynamic_shapes=({1: samples},))
    model = program.model_proto
    strip_records(model)
    return model


def quantize_int8(graph: "onnx.ModelProto", ops: tuple[str, ...] = ("MatMul",),
                  weights: str = "qint8") -> "onnx.ModelProto":
    """onnxruntime.quantization.quantize_dynamic of `graph`: int8 weights for `ops`, activations
    quantised at run time. Runs in a temporary folder (it reads and writes files)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight_type = QuantType.QInt8 if weights == "qint8" else QuantType.QUInt8
    with tempfile.TemporaryDirectory(prefix="distill-rvc-int8-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(graph.SerializeToString())
        logging.disable(logging.WARNING)  # its advice to pre-process goes to the root logger
        try:
            with _quiet():
                quantize_dynamic(src, dst, weight_type=weight_type, op_types_to_quantize=list(ops))
        finally:
            logging.disable(logging.NOTSET)
        return onnx.load(str(dst))


# ------------------------------------------------------------------------------ parity
def parity_audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Reproducible speech-like audio [N] at 16 kHz: a harmonic voice gliding 110-220 Hz, in
    bursts, over low noise (features of pure noise would not test what speech exercises)."""
    n = int(round(seconds * SR_16K))
    t = np.arange(n) / SR_16K
    f0 = 110.0 * 2 ** (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR_16K
    voice = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    noise = np.random.default_rng(seed).standard_normal(n) * 0.01
    return (0.2 * voice + noise).astype(np.float32)


def similarity(out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """max_rel, cosine (mean over frames of the per-frame cosine) and rel_l2 of out vs ref [T, C]."""
    a, b = out.astype(np.float64), ref.astype(np.float64)
    peak = float(np.abs(b).max())
    cos = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    return {"max_rel": float(np.abs(a - b).max()) / peak if peak > 0 else float(np.abs(a).max()),
            "cosine": float(cos.mean()), "cosine_min": float(cos.min()),
            "rel_l2": float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))}


def _run(graph_bytes: bytes, audios: dict[float, np.ndarray], threads: int | None) -> dict[float, np.ndarray]:
    sess = session(graph_bytes, CPU, threads)
    return {s: sess.run(None, {ENCODER_INPUT: a[None]})[0][0] for s, a in audios.items()}


# ------------------------------------------------------------------------------- export
def export_encoder(source: str | Path, out: str | Path, settings: ExportEncoderSettings | None = None
                   ) -> ExportEncoderResult:
    """Export the content encoder in `source` (hubert_base.pt or a distilled encoder .pt) to
    `out` (.onnx), checked against torch first (module docstring); written atomically."""
    s = (settings or ExportEncoderSettings()).check()
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise DistillRVCError(f"--out must name a .onnx file, not {out.name!r}")
    encoder = open_encoder(source, "cpu")
    dim = encoder.dim(s.version)  # v1 needs final_proj: refused before the slow trace
    audios = {sec: parity_audio(sec) for sec in s.lengths_s}
    with torch_threads(s.threads or torch.get_num_threads()):
        graph = trace_encoder(encoder, s.version)
        refs = {sec: encoder.extract(a, s.version) for sec, a in audios.items()}
        fp32 = _run(graph.SerializeToString(), audios, s.threads)
        per_length = []
        for sec in s.lengths_s:
            if fp32[sec].shape != refs[sec].shape:
                raise DistillRVCError(f"parity check failed: features of shape {list(fp32[sec].shape)} at {sec:g} s, "
                                      f"torch gives {list(refs[sec].shape)}; nothing was written")
            per_length.append({"seconds": sec, "frames": len(refs[sec]), **similarity(fp32[sec], refs[sec])})
        worst = max(p["max_rel"] for p in per_length)
        if not worst <= s.tolerance:
            raise DistillRVCError(f"parity check failed: fp32 max_rel {worst:.2e} exceeds {s.tolerance:.0e}; "
                                  "nothing was written. Please report this with the encoder file's size and kind")
        parity: dict[str, Any] = {"fp32": per_length, "tolerance": s.tolerance, "provider": CPU}
        if s.int8:
            graph = quantize_int8(graph, s.int8_ops, s.int8_weights)
            int8 = _run(graph.SerializeToString(), audios, s.threads)
            parity["int8"] = [{"seconds": sec, **similarity(int8[sec], refs[sec])} for sec in s.lengths_s]
            parity["int8_ops"], parity["int8_weights"] = list(s.int8_ops), s.int8_weights
    sha = file_sha256(source)
    write_metadata(graph, {ENCODER_KEYS["version"]: s.version, ENCODER_KEYS["dim"]: dim,
                           ENCODER_KEYS["min_samples"]: int(encoder.min_samples), ENCODER_KEYS["hop"]: HOP,
                           ENCODER_KEYS["kind"]: encoder.kind, ENCODER_KEYS["sha256"]: sha,
                           ENCODER_KEYS["precision"]: s.precision})
    data = graph.SerializeToString()
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    params = sum(int(np.prod(t.dims)) for t in graph.graph.initializer)
    return ExportEncoderResult(out=out, version=s.version, dim=dim, precision=s.precision, source_kind=encoder.kind,
                               params=params, file_bytes=len(data), sha256=sha, parity=parity)


def format_export_encoder(result: ExportEncoderResult) -> str:
    """What `distill-rvc export-encoder` prints: the file, and how close it is to torch."""
    r = result
    lines = [f"wrote {r.out}: {r.precision} content encoder ({r.source_kind}, {r.version}, {r.dim}-d features), "
             f"{r.params / 1e6:.1f} M weights, {r.file_bytes / 1e6:.1f} MB"]
    for p in r.parity.get("fp32", []):
        lines.append(f"  fp32 vs torch at {p['seconds']:g} s ({p['frames']} frames): max_rel {p['max_rel']:.1e}")
    for p in r.parity.get("int8", []):
        lines.append(f"  int8 vs torch at {p['seconds']:g} s: cosine {p['cosine']:.4f} (min {p['cosine_min']:.4f}), "
                     f"relative L2 {p['rel_l2']:.3f}")
    return "\n".join(lines)
