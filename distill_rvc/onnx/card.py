"""The model card: NAME.json beside every exported NAME.onnx.

    model_card(model, source, graph, data, file_name, ...)  what the file is, where it came from, its parity
    describe_io(graph)                                      input/output names, dtypes and shapes, off the file

The card holds what a user or a client integration needs without opening the graph: size and
sha256, interface, precision, opset, the parity and latency (parity.py), parameter counts, the
model's rate and widths, the metadata entries as written (interface.py), the source file and
the exporter's versions, and notes on what the file is not for.
Not here: writing it (export.py writes it atomically after the .onnx) or formatting it for the CLI.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import torch

from ..models import Synthesizer
from ..safe_load import file_sha256
from .interface import read_metadata

if TYPE_CHECKING:
    import onnx


def model_card(model: Synthesizer, source: Any, graph: "onnx.ModelProto", data: bytes, file_name: str, *,
               interface: str, precision: str, opset: int, parity: dict, latency: dict | None,
               simplified: str | None) -> dict[str, Any]:
    """NAME.json: what the file is, where it came from and how closely it follows torch."""
    cfg = model.config
    counts = {part: n for part, n in model.param_counts().items() if part != "enc_q"}  # not in the graph
    notes = []
    if interface == "rvc" and cfg.inter_channels != 192:
        notes.append(f"rnd is [1, {cfg.inter_channels}, T]; RVC's runners draw [1, 192, T]")
    if interface == "rvc":
        notes.append("no w-okada `metadata` entry: for RVC/MoeSS/ailia runners, not the w-okada client")
        if not cfg.f0:
            notes.append("no pitch/pitchf inputs: RVC's OnnxRVC cannot run this file (internal use only)")
    if precision == "fp16":
        notes.append("audio float32 (float16 weights and feats): the client's int16 conversion cannot wrap")
    return {
        "file": file_name,
        "file_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "interface": interface,
        "precision": precision,
        "opset": opset,
        "ir_version": graph.ir_version,
        "parity": parity,
        "latency": latency,
        "params": {"total": sum(counts.values()), **counts},
        "model": {"version": cfg.version, "sample_rate": cfg.sr, "f0": cfg.f0, "hop_length": cfg.hop_length,
                  "content_dim": cfg.phone_dim, "inter_channels": cfg.inter_channels,
                  "speakers": cfg.spk_embed_dim},
        **describe_io(graph),
        "metadata_props": read_metadata(graph),
        "simplified_by": simplified,
        "source": _source(source, model),
        "exporter": _versions(),
        "notes": notes,
    }


def describe_io(model: "onnx.ModelProto") -> dict[str, list[dict[str, Any]]]:
    """Names, dtypes and shapes of the graph's inputs and outputs, as read off the file."""
    import onnx

    def one(value) -> dict[str, Any]:
        t = value.type.tensor_type
        return {"name": value.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
                "shape": [d.dim_param or d.dim_value for d in t.shape.dim]}

    return {"inputs": [one(v) for v in model.graph.input], "outputs": [one(v) for v in model.graph.output]}


def _source(source: Any, model: Synthesizer) -> dict[str, Any]:
    ckpt = model.checkpoint
    if isinstance(source, Synthesizer) or ckpt is None:
        return {"path": None, "format": "in-memory Synthesizer"}
    return {"path": str(ckpt.path), "format": ckpt.format, "sha256": file_sha256(ckpt.path)}


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    from .. import __version__

    return {"distill_rvc": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}
