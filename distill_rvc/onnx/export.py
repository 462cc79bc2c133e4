"""ONNX export for the real-time clients: two interfaces, fp16, client metadata, a model card.

The synthesizer (enc_p -> flow -> dec, weight norm folded) is written in the two ONNX
signatures that runners accept (deploy-targets.md §1):

- `wokada` (w-okada VC Client and its forks): feats [1, T, C] float32 (float16 with fp16),
  p_len [1], pitch [1, T] int64, pitchf [1, T] float32, sid [1] int64 -> audio [N], clipped to
  [-1, 1], float32 even in fp16 files (the client converts it to int16 in the output's dtype,
  where float16 wraps +1.0 to -32768). The prior noise (x 0.66666) and the NSF noise are drawn
  inside the graph. A `metadata` JSON entry carries what the client reads (metadata version 2.1).
- `rvc` (RVC's exporter, MoeSS, ailia): phone [1, T, C], phone_lengths [1], pitch, pitchf,
  ds [1], rnd [1, inter, T] (the already-scaled prior noise) -> audio [1, 1, N], not clipped;
  float32 only, like the runners that use it. No `metadata` entry: the w-okada client takes
  any file that has one as a slot and then fails at its first inference.

Both carry our own entry (`distill_rvc`: interface, precision, rate, hop, ...), which
`backends.OrtBackend` reads. No-f0 models have no pitch/pitchf inputs; RVC's `OnnxRVC` feeds
six inputs by position, so `export_onnx` refuses no-f0 models for the rvc interface. A
student's feature projection stays inside the graph, so clients feed the full 256/768-d
features. T (frames, 100 per second) is dynamic.

The graph comes from torch's dynamo exporter at opset 18; opset 17 is a checked rewrite of
the only ops whose signature changed between the two (`Split`, `Pad`). Nothing is written
unless the parity check (`onnx_parity`) passes; then the .onnx and its card (NAME.json:
parity, latency, params, size, opset, interface) are written atomically.

Not for: running ONNX models (the clients do), exporting the content encoder or F0 model,
or int8 quantisation (slower than fp32 for this family, deploy-targets.md §4).
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import torch
from torch import nn

from ..atomic import atomic_path, write_json
from ..checkpoint import load_model
from ..config import SynthConfig
from ..errors import DistillRVCError
from ..models import Synthesizer
from ..safe_load import file_sha256

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

INTERFACES = ("wokada", "rvc")
OPSETS = (17, 18)
DEFAULT_TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}
METADATA_VERSION = "2.1"
# IR 8 is what onnx writes for opsets 17 and 18. torch stamps IR 10 because it adds per-node
# metadata (stack traces holding local paths), which we drop; older onnxruntime refuses IR 10.
IR_VERSION = 8
TIME_AXIS = "T"
_TRACE_FRAMES = 64
# The metadata_props keys, here only (backends.py reads them back):
WOKADA_METADATA_KEY = "metadata"  # w-okada's JSON (`_setInfoByONNX`); wokada files only
OUR_METADATA_KEY = "distill_rvc"  # ours: interface, precision, sample rate, hop, ...; every file
# Content-encoder names as the model file stores them (Applio's `embedder_model`, or already
# w-okada's) -> as the w-okada client names them. w-okada's hubert_base is RVC's hubert_base.pt,
# the ContentVec network Applio calls contentvec. Anything else (Applio's spin, spin-v2,
# chinese-/korean-hubert-base, custom) has no w-okada equivalent.
_WOKADA_EMBEDDERS = {"contentvec": "hubert_base", "hubert_base": "hubert_base",
                     "japanese-hubert-base": "hubert-base-japanese", "hubert-base-japanese": "hubert-base-japanese",
                     "whisper": "whisper"}
DEFAULT_EMBEDDER = "hubert_base"


def input_names(interface: str, f0: bool) -> list[str]:
    """The graph's input names, in order, for an interface and a pitch/no-pitch model."""
    names = {"wokada": ["feats", "p_len", "pitch", "pitchf", "sid"],
             "rvc": ["phone", "phone_lengths", "pitch", "pitchf", "ds", "rnd"]}[interface]
    return names if f0 else [n for n in names if n not in ("pitch", "pitchf")]


class ClientGraph(nn.Module):
    """The synthesizer as a client calls it: the module that is traced.

    wokada: feats [1, T, C], p_len [1], pitch [1, T], pitchf [1, T], sid [1] -> audio [N] in [-1, 1]
    rvc:    phone, phone_lengths, pitch, pitchf, ds, rnd [1, inter, T] -> audio [1, 1, N]
    pitch and pitchf are None for no-f0 models. It runs `Synthesizer.forward` unchanged: wokada
    lets it draw the prior noise, rvc hands it `rnd` with scale 1 (the caller already scaled it).
    The audio is float32 whatever the model's dtype (a no-op for fp32 models).
    """

    def __init__(self, model: Synthesizer, interface: str):
        super().__init__()
        self.model = model
        self.interface = interface

    def forward(self, phone: torch.Tensor, lengths: torch.Tensor, pitch: torch.Tensor | None,
                pitchf: torch.Tensor | None, sid: torch.Tensor, rnd: torch.Tensor | None = None) -> torch.Tensor:
        if self.interface == "wokada":
            audio = self.model(phone, lengths, pitch, pitchf, sid).audio
            return audio[0, 0].clamp(-1.0, 1.0).to(torch.float32)
        return self.model(phone, lengths, pitch, pitchf, sid, noise=rnd, noise_scale=1.0).audio.to(torch.float32)


# ----------------------------------------------------------------------------- metadata
def wokada_metadata(config: SynthConfig, embedder: str | None = None) -> dict[str, Any]:
    """The `metadata` JSON the w-okada client reads (`_setInfoByONNX`, deploy-targets.md §1.1).

    Without it the client silently treats the file as v1 48 kHz with 256-d features.
    """
    v2 = config.phone_dim == 768
    return {
        "application": "VC_CLIENT",
        "version": METADATA_VERSION,
        "modelType": "pyTorchRVC" + ("v2" if v2 else "") + ("" if config.f0 else "Nono"),
        "samplingRate": config.sr,
        "f0": bool(config.f0),
        "embChannels": config.phone_dim,
        "embedder": embedder or DEFAULT_EMBEDDER,
        "embOutputLayer": 12 if v2 else 9,
        "useFinalProj": not v2,
    }


def stored_embedder(model: Synthesizer) -> str | None:
    """The content encoder the model file names (`embedder_model`, as Applio writes it), or None."""
    ckpt = model.checkpoint  # load_model's parsed file: Applio's keys are in its metadata
    stored = (getattr(ckpt, "metadata", None) or {}).get("embedder_model")
    return str(stored).strip() if stored else None


def _embedder(model: Synthesizer, requested: str | None) -> str:
    """The `embedder` for w-okada's metadata: `requested` (--embedder) as given, else the
    model's own `embedder_model` in w-okada's naming, else hubert_base. A model trained on
    features w-okada has no encoder for is refused: the client would convert with wrong ones."""
    if requested:
        return requested
    stored = stored_embedder(model)
    if stored is None:
        return DEFAULT_EMBEDDER
    if stored.lower() not in _WOKADA_EMBEDDERS:
        raise DistillRVCError(f"the model was trained on {stored!r} content features, which the w-okada client "
                              "has no embedder for (it knows hubert_base, contentvec, hubert-base-japanese, "
                              "whisper); pass --embedder NAME if your client has a matching one")
    return _WOKADA_EMBEDDERS[stored.lower()]


# ------------------------------------------------------------------------------ tracing
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's chatter (skipped torchvision ops, deprecations) is not the user's concern."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir", "onnxslim")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def trace(model: Synthesizer, interface: str, fp16: bool = False) -> "onnx.ModelProto":
    """Export `model` (eval, weight norm folded) to an opset-18 graph with a dynamic time axis."""
    cfg = model.config
    dtype = torch.float16 if fp16 else torch.float32
    graph = ClientGraph(model, interface).eval()
    t = _TRACE_FRAMES
    f0, rvc = cfg.f0, interface == "rvc"
    args = (torch.zeros(1, t, cfg.phone_dim, dtype=dtype), torch.tensor([t]),
            torch.ones(1, t, dtype=torch.long) if f0 else None,
            torch.full((1, t), 200.0) if f0 else None,  # float32 even in fp16: the sine phase needs it
            torch.zeros(1, dtype=torch.long),
            torch.zeros(1, cfg.inter_channels, t, dtype=dtype) if rvc else None)
    # min 3: tracing the sine source's `rad[:, :-1]` adds the guard T - 1 >= 2. The graph
    # itself has no such limit (it runs from T = 1).
    frames = torch.export.Dim(TIME_AXIS, min=3)
    dynamic = ({1: frames}, None, {1: frames} if f0 else None, {1: frames} if f0 else None, None,
               {2: frames} if rvc else None)
    with _quiet():
        program = torch.onnx.export(graph, args, dynamo=True, opset_version=18, optimize=True, verbose=False,
                                    input_names=input_names(interface, f0), output_names=["audio"],
                                    dynamic_shapes=dynamic)
    return program.model_proto


def tidy(model: "onnx.ModelProto") -> None:
    """Drop the tracer's per-node records (stack traces with local paths), name the time axis
    T (N = hop * T for the output) and pin the IR version older runtimes read. In place."""
    from .. import __version__

    graph = model.graph
    time_sym = graph.input[0].type.tensor_type.shape.dim[1].dim_param
    rename = re.compile(rf"\b{re.escape(time_sym)}\b") if time_sym else None
    for node in graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for value in [*graph.input, *graph.output, *graph.value_info]:
        del value.metadata_props[:]
        for dim in value.type.tensor_type.shape.dim:
            if rename and dim.dim_param:
                dim.dim_param = rename.sub(TIME_AXIS, dim.dim_param)
    for tensor in graph.initializer:
        del tensor.metadata_props[:]
    del graph.metadata_props[:]
    del model.metadata_props[:]
    graph.doc_string = model.doc_string = ""
    model.ir_version = IR_VERSION
    model.producer_name, model.producer_version = "distill-rvc", __version__


def to_opset_17(model: "onnx.ModelProto") -> None:
    """Rewrite an opset-18 graph as opset 17, in place.

    Among the ops opset 18 changed, the exporter emits only `Split` with its new
    `num_outputs` attribute (opset 13's Split without sizes cuts equal parts, one per output)
    and `Pad` without its new `axes` input; both mean the same at 17. Anything else that
    changed in 18 is refused rather than guessed. onnx's own converter has no Pad adapter.
    """
    import onnx.defs

    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        if onnx.defs.get_schema(node.op_type, 18, "").since_version < 18:
            continue
        if node.op_type == "Split":
            kept = [a for a in node.attribute if a.name != "num_outputs"]
            del node.attribute[:]
            node.attribute.extend(kept)
        elif node.op_type == "Pad" and len([i for i in node.input if i]) <= 3:
            pass
        else:
            raise DistillRVCError(f"cannot write opset 17: the graph uses {node.op_type} as changed in "
                                  "opset 18; export with --opset 18")
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = 17


def simplify(model: "onnx.ModelProto") -> tuple["onnx.ModelProto", str | None]:
    """onnxslim's graph simplification when it is installed; returns (model, tool or None)."""
    try:
        import onnxslim
    except ImportError:
        log.info("onnxslim is not installed; the graph is written unsimplified")
        return model, None
    with _quiet():
        slimmed = onnxslim.slim(model)
    return slimmed, f"onnxslim {onnxslim.__version__}"


def _set_metadata(model: "onnx.ModelProto", entries: dict[str, Any]) -> None:
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, json.dumps(value)


def read_metadata(model: "onnx.ModelProto") -> dict[str, Any]:
    """The file's metadata_props, each JSON value parsed (a value that is not JSON kept as text)."""
    out: dict[str, Any] = {}
    for prop in model.metadata_props:
        try:
            out[prop.key] = json.loads(prop.value)
        except ValueError:
            out[prop.key] = prop.value
    return out


def describe_io(model: "onnx.ModelProto") -> dict[str, list[dict[str, Any]]]:
    """Names, dtypes and shapes of the graph's inputs and outputs, as read off the file."""
    import onnx

    def one(value) -> dict[str, Any]:
        t = value.type.tensor_type
        return {"name": value.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
                "shape": [d.dim_param or d.dim_value for d in t.shape.dim]}

    return {"inputs": [one(v) for v in model.graph.input], "outputs": [one(v) for v in model.graph.output]}


# ------------------------------------------------------------------------------- export
@dataclass
class ExportResult:
    onnx_path: Path
    card_path: Path
    card: dict[str, Any]


def export_onnx(model: str | Path | Synthesizer, out: str | Path, *, interface: str = "wokada", fp16: bool = False,
                opset: int = 17, simplify_graph: bool = True, embedder: str | None = None,
                tolerance: float | None = None, lengths_s: tuple[float, ...] = (1.0, 10.0),
                threads: int | None = None, timing_runs: int = 3, progress: bool = False,
                allow_no_f0_rvc: bool = False) -> ExportResult:
    """Export a model file (or a Synthesizer) to `out` (.onnx) with its card `out` .json.

    The exported graph is checked against torch (`onnx_parity.check_parity`) at each of
    `lengths_s`; if max_rel exceeds `tolerance` (default 1e-4 fp32, 1e-2 fp16) a
    DistillRVCError is raised and nothing is written. `timing_runs` timed runs of the longest
    input give the onnxruntime vs torch latency (0 skips them).

    A no-f0 model is refused for the rvc interface (RVC's `OnnxRVC` feeds six inputs by
    position and fails on the four of such a file) unless `allow_no_f0_rvc`, an internal
    switch for files that only distill-rvc itself runs (timing, fidelity); the CLI never sets it.
    """
    from tqdm import tqdm

    from .parity import check_parity

    from ..options import check_threads, check_tolerance

    out = Path(out)
    tolerance, threads = check_tolerance(tolerance), check_threads(threads)
    if interface not in INTERFACES:
        raise DistillRVCError(f"unknown interface {interface!r} (expected one of {', '.join(INTERFACES)})")
    if int(opset) not in OPSETS:
        raise DistillRVCError(f"opset {opset} is not supported (use 17 or 18)")
    if fp16 and interface != "wokada":
        raise DistillRVCError("the rvc interface is float32 only (its runners feed float32); "
                              "use --interface wokada for an fp16 file")
    if out.suffix.lower() != ".onnx":
        raise DistillRVCError(f"--out must name a .onnx file, not {out.name!r}")
    if not lengths_s or min(lengths_s) <= 0:
        raise DistillRVCError("parity lengths must be positive numbers of seconds")
    precision = "fp16" if fp16 else "fp32"
    tolerance = DEFAULT_TOLERANCE[precision] if tolerance is None else float(tolerance)

    source = model
    if isinstance(model, Synthesizer):
        model = copy.deepcopy(model).cpu().float().remove_weight_norm().eval()
    else:
        model = load_model(model)
    if interface == "rvc" and not model.config.f0 and not allow_no_f0_rvc:
        raise DistillRVCError("a no-f0 model cannot be exported to the rvc interface: RVC's OnnxRVC runner feeds "
                              "six inputs by position (phone, phone_lengths, pitch, pitchf, ds, rnd) and fails on a "
                              "file without pitch/pitchf (only ailia's no-f0 runner reads one); use --interface wokada")
    if interface == "wokada":
        _embedder(model, embedder)  # refuse an encoder w-okada lacks before the slow trace
    with tqdm(total=3, desc="export", unit="step", disable=not progress, leave=False) as steps:
        steps.set_description("export: trace")
        graph, simplified = build_graph(model, interface, fp16=fp16, opset=int(opset), simplify_graph=simplify_graph,
                                        embedder=embedder)
        steps.update()
        steps.set_description("export: parity")
        parity, latency = check_parity(graph, model, interface, tolerance=tolerance, lengths_s=tuple(lengths_s),
                                       threads=threads, timing_runs=timing_runs)
        steps.update()
        if not parity["passed"]:
            raise DistillRVCError(f"parity check failed: {parity['failure']}; nothing was written. "
                                  "Please report this with the model's `distill-rvc inspect` output")
        steps.set_description("export: write")
        data = graph.SerializeToString()
        with atomic_path(out) as tmp:
            tmp.write_bytes(data)
        card = model_card(model, source, graph, data, out.name, interface=interface, precision=precision,
                          opset=int(opset), parity=parity, latency=latency, simplified=simplified)
        card_path = write_json(out.with_suffix(".json"), card)
        steps.update()
    return ExportResult(out, card_path, card)


def build_graph(model: Synthesizer, interface: str, *, fp16: bool = False, opset: int = 17,
                simplify_graph: bool = True, embedder: str | None = None) -> tuple["onnx.ModelProto", str | None]:
    """The graph as it will be shipped: traced, simplified, tidied, at `opset`, with metadata
    (w-okada's `metadata` entry in wokada files only; ours in both). Returns (graph, the
    simplifier used or None). No consumer checks (`export_onnx` makes them): compare's timing
    exports no-f0 models to the rvc interface through this."""
    import onnx

    cfg = model.config
    graph = trace(copy.deepcopy(model).half() if fp16 else model, interface, fp16)
    simplified = None
    if simplify_graph:
        graph, simplified = simplify(graph)
    tidy(graph)
    if opset == 17:
        to_opset_17(graph)
    entries: dict[str, Any] = {}
    if interface == "wokada":
        entries[WOKADA_METADATA_KEY] = wokada_metadata(cfg, _embedder(model, embedder))
    entries[OUR_METADATA_KEY] = {
        "interface": interface, "precision": "fp16" if fp16 else "fp32", "sample_rate": cfg.sr,
        "hop_length": cfg.hop_length, "f0": bool(cfg.f0), "content_dim": cfg.phone_dim,
        "inter_channels": cfg.inter_channels, "embedder_model": stored_embedder(model), "audio": "float32",
        "prior_noise": "drawn in the graph, x 0.66666" if interface == "wokada" else "rnd = 0.66666 * N(0, 1)"}
    _set_metadata(graph, entries)
    onnx.checker.check_model(graph)
    return graph, simplified


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


def format_summary(card: dict[str, Any], onnx_path: str | Path, card_path: str | Path) -> str:
    """Human-readable lines for `distill-rvc export`."""
    p, lat = card["parity"], card["latency"]

    def shape(dims: list) -> str:
        return "[" + ", ".join(str(d) for d in dims) + "]"

    lengths = " and ".join(f"{s:g} s" for s in p["lengths_s"])
    lines = [
        f"wrote    {onnx_path} ({card['file_bytes'] / 1e6:.1f} MB, {card['interface']} interface, "
        f"{card['precision']}, opset {card['opset']})",
        f"card     {card_path}",
        "inputs   " + ", ".join(f"{i['name']} {i['dtype']} {shape(i['shape'])}" for i in card["inputs"]),
        "outputs  " + ", ".join(f"{o['name']} {o['dtype']} {shape(o['shape'])}" for o in card["outputs"]),
        f"parity   max_abs {p['max_abs']:.2e}  max_rel {p['max_rel']:.2e} at {lengths} "
        f"(tolerance {p['tolerance']:.0e}, {p['provider']})",
    ]
    cuda = p.get("cuda", {})
    lines.append("cuda     " + (f"max_abs {cuda['max_abs']:.2e}  max_rel {cuda['max_rel']:.2e}" if "max_rel" in cuda
                                else f"skipped: {cuda.get('skipped', 'not run')}"))
    if lat:
        lines.append(f"latency  {lat['seconds_of_audio']:g} s of audio, {lat['threads']} threads: onnxruntime "
                     f"{lat['onnxruntime_s']:.3f} s, torch {lat['torch_s']:.3f} s (ratio {lat['ratio']:.2f})")
    wokada = card["metadata_props"].get(WOKADA_METADATA_KEY)
    lines.append(f"metadata {json.dumps(wokada)}" if wokada is not None else
                 f"metadata only `{OUR_METADATA_KEY}` (no w-okada entry: the rvc interface is not for that client)")
    lines += [f"note     {n}" for n in card["notes"]]
    return "\n".join(lines)
