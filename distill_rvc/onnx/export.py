"""ONNX export for the real-time clients: trace, tidy, opset 17 or 18, check, write with a card.

    export_onnx(model, out, ExportSettings(...))  the .onnx and its card NAME.json, once parity passes
    ExportSettings / ExportResult / format_export  the command's options; what it wrote; the CLI's summary
    build_graph(model, settings)                   the graph as shipped (traced, simplified, tidied, metadata)
    trace, tidy, to_opset_17, simplify             the steps of build_graph

The synthesizer (enc_p -> flow -> dec, weight norm folded) is written in either signature of
interface.py (`wokada` or `rvc`, with their metadata). RVC's `OnnxRVC` feeds six inputs by
position, so `export_onnx` refuses no-f0 models for the rvc interface. A student's feature
projection stays inside the graph, so clients feed the full 256/768-d features. The graph comes
from torch's dynamo exporter at opset 18; opset 17 is a checked rewrite of the only ops whose
signature changed between the two (`Split`, `Pad`). Nothing is written unless the parity check
(parity.py) passes; then the .onnx and its card (card.py) are written atomically.
Not for: running ONNX models (runtime.py; the clients), exporting the content encoder or F0
model, or int8 quantisation (slower than fp32 for this family, deploy-targets.md §4).
"""
from __future__ import annotations

import contextlib
import copy
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
from ..checkpoint import STUDENT_ENCODER_KEY, load_model, trained_encoder
from ..errors import DistillRVCError
from ..models import Synthesizer
from ..options import check_threads, check_tolerance
from .card import model_card
from .interface import (INTERFACES, OUR_METADATA_KEY, OUTPUT_NAME, TIME_AXIS, WOKADA_METADATA_KEY, input_names,
                        our_metadata, wokada_embedder, wokada_metadata, write_metadata)
from .parity import check_parity

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

OPSETS = (17, 18)
DEFAULT_TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}
# IR 8 is what onnx writes for opsets 17 and 18. torch stamps IR 10 because it adds per-node
# metadata (stack traces holding local paths), which we drop; older onnxruntime refuses IR 10.
IR_VERSION = 8
_TRACE_FRAMES = 64


@dataclass(frozen=True)
class ExportSettings:
    """What `export_onnx` writes and how it checks it (`distill-rvc export`'s options)."""

    interface: str = "wokada"  # "wokada" or "rvc" (interface.py)
    fp16: bool = False  # float16 weights and feats; wokada only
    opset: int = 17  # 17 (w-okada's, older onnxruntime) or 18 (RVC's newest exporter)
    simplify: bool = True  # onnxslim, when installed
    embedder: str | None = None  # w-okada's `embedder`; None: the model file's, else hubert_base
    tolerance: float | None = None  # parity max_rel; None: 1e-4 fp32, 1e-2 fp16
    lengths_s: tuple[float, ...] = (1.0, 10.0)  # parity input lengths
    threads: int | None = None  # parity and latency; None or 0: torch's
    timing_runs: int = 3  # timed runs of the longest input (0 skips the latency)
    # An internal switch for rvc files of no-f0 models that only distill-rvc itself runs (compare's
    # timing, fidelity): RVC's `OnnxRVC` fails on them. The CLI never sets it.
    allow_no_f0_rvc: bool = False

    @property
    def precision(self) -> str:
        return "fp16" if self.fp16 else "fp32"

    @property
    def parity_tolerance(self) -> float:
        return DEFAULT_TOLERANCE[self.precision] if self.tolerance is None else float(self.tolerance)

    def check(self) -> None:
        """Refuse settings no export can follow (a DistillRVCError that says what to pass instead)."""
        check_tolerance(self.tolerance)
        check_threads(self.threads)
        if self.interface not in INTERFACES:
            raise DistillRVCError(f"unknown interface {self.interface!r} (expected one of {', '.join(INTERFACES)})")
        if int(self.opset) not in OPSETS:
            raise DistillRVCError(f"opset {self.opset} is not supported (use 17 or 18)")
        if self.fp16 and self.interface != "wokada":
            raise DistillRVCError("the rvc interface is float32 only (its runners feed float32); "
                                  "use --interface wokada for an fp16 file")
        if not self.lengths_s or min(self.lengths_s) <= 0:
            raise DistillRVCError("parity lengths must be positive numbers of seconds")


@dataclass
class ExportResult:
    onnx_path: Path
    card_path: Path
    card: dict[str, Any]


# ------------------------------------------------------------------------------ tracing
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
                                    input_names=input_names(interface, f0), output_names=[OUTPUT_NAME],
                                    dynamic_shapes=dynamic)
    return program.model_proto


def tidy(model: "onnx.ModelProto") -> None:
    """Drop the tracer's per-node records (stack traces with local paths), name the time axis
    T (N = hop * T for the output) and pin the IR version older runtimes read. In place."""
    from .. import __version__

    graph = model.graph
    time_sym = graph.input[0].type.tensor_type.shape.dim[1].dim_param
    rename = re.compile(rf"\b{re.escape(time_sym)}\b") if time_sym else None
    strip_records(model)
    for value in [*graph.input, *graph.output, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if rename and dim.dim_param:
                dim.dim_param = rename.sub(TIME_AXIS, dim.dim_param)
    model.producer_name, model.producer_version = "distill-rvc", __version__


def strip_records(model: "onnx.ModelProto") -> None:
    """Drop what the dynamo exporter records per node, value and tensor (stack traces naming local
    paths) and pin the IR version older runtimes read. In place."""
    graph = model.graph
    for node in graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for value in [*graph.input, *graph.output, *graph.value_info]:
        del value.metadata_props[:]
    for tensor in graph.initializer:
        del tensor.metadata_props[:]
    del graph.metadata_props[:]
    del model.metadata_props[:]
    graph.doc_string = model.doc_string = ""
    model.ir_version = IR_VERSION


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


# ------------------------------------------------------------------------------ embedder
def stored_embedder(model: Synthesizer) -> str | None:
    """The content encoder the model file names (`embedder_model`, as Applio writes it), or None."""
    ckpt = model.checkpoint  # load_model's parsed file: Applio's keys are in its metadata
    stored = (getattr(ckpt, "metadata", None) or {}).get("embedder_model")
    return str(stored).strip() if stored else None


def _embedder(model: Synthesizer, requested: str | None) -> str:
    """w-okada's `embedder` for this model (`interface.wokada_embedder`): refuses an encoder the
    client has none for, a distilled one included."""
    own = trained_encoder(model)
    if own:
        raise DistillRVCError(f"the model was trained on the distilled content encoder {own.get('file')}, which the "
                              "w-okada client does not have (it would feed HuBERT's features and sound wrong); use "
                              "--interface rvc and `distill-rvc convert --hubert` with that encoder")
    return wokada_embedder(stored_embedder(model), requested)


# ------------------------------------------------------------------------------- export
def export_onnx(model: str | Path | Synthesizer, out: str | Path, settings: ExportSettings | None = None, *,
                progress: bool = False) -> ExportResult:
    """Export a model file (or a Synthesizer) to `out` (.onnx) with its card `out` .json.

    The exported graph is checked against torch (`parity.check_parity`) at each of
    `settings.lengths_s`; if max_rel exceeds the tolerance (default 1e-4 fp32, 1e-2 fp16) a
    DistillRVCError is raised and nothing is written. `settings.timing_runs` timed runs of the
    longest input give the onnxruntime vs torch latency (0 skips them). A no-f0 model is refused
    for the rvc interface (RVC's `OnnxRVC` feeds six inputs by position and fails on the four of
    such a file) unless `settings.allow_no_f0_rvc`.
    """
    from tqdm import tqdm

    s = settings or ExportSettings()
    s.check()
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise DistillRVCError(f"--out must name a .onnx file, not {out.name!r}")

    source = model
    if isinstance(model, Synthesizer):
        model = copy.deepcopy(model).cpu().float().remove_weight_norm().eval()
    else:
        model = load_model(model)
    if s.interface == "rvc" and not model.config.f0 and not s.allow_no_f0_rvc:
        raise DistillRVCError("a no-f0 model cannot be exported to the rvc interface: RVC's OnnxRVC runner feeds "
                              "six inputs by position (phone, phone_lengths, pitch, pitchf, ds, rnd) and fails on a "
                              "file without pitch/pitchf (only ailia's no-f0 runner reads one); use --interface wokada")
    if s.interface == "wokada":
        _embedder(model, s.embedder)  # refuse an encoder w-okada lacks before the slow trace
    with tqdm(total=3, desc="export", unit="step", disable=not progress, leave=False) as steps:
        steps.set_description("export: trace")
        graph, simplified = build_graph(model, s)
        steps.update()
        steps.set_description("export: parity")
        parity, latency = check_parity(graph, model, s.interface, tolerance=s.parity_tolerance,
                                       lengths_s=tuple(s.lengths_s), threads=s.threads, timing_runs=s.timing_runs)
        steps.update()
        if not parity["passed"]:
            raise DistillRVCError(f"parity check failed: {parity['failure']}; nothing was written. "
                                  "Please report this with the model's `distill-rvc inspect` output")
        steps.set_description("export: write")
        data = graph.SerializeToString()
        with atomic_path(out) as tmp:
            tmp.write_bytes(data)
        card = model_card(model, source, graph, data, out.name, interface=s.interface, precision=s.precision,
                          opset=int(s.opset), parity=parity, latency=latency, simplified=simplified)
        card_path = write_json(out.with_suffix(".json"), card)
        steps.update()
    return ExportResult(out, card_path, card)


def build_graph(model: Synthesizer, settings: ExportSettings) -> tuple["onnx.ModelProto", str | None]:
    """The graph as it will be shipped: traced, simplified, tidied, at `settings.opset`, with
    metadata (w-okada's `metadata` entry in wokada files only; ours in both). Returns (graph, the
    simplifier used or None). No checks of the settings or the model (`export_onnx` makes them):
    compare's timing exports no-f0 models to the rvc interface through this."""
    import onnx

    cfg, interface = model.config, settings.interface
    graph = trace(copy.deepcopy(model).half() if settings.fp16 else model, interface, settings.fp16)
    simplified = None
    if settings.simplify:
        graph, simplified = simplify(graph)
    tidy(graph)
    if int(settings.opset) == 17:
        to_opset_17(graph)
    entries: dict[str, Any] = {}
    if interface == "wokada":
        entries[WOKADA_METADATA_KEY] = wokada_metadata(cfg, _embedder(model, settings.embedder))
    entries[OUR_METADATA_KEY] = our_metadata(cfg, interface, settings.precision, stored_embedder(model))
    own = trained_encoder(model)
    if own:  # so that convert refuses any other encoder (ModelInfo.trained_encoder)
        entries[OUR_METADATA_KEY][STUDENT_ENCODER_KEY] = own
    write_metadata(graph, entries)
    onnx.checker.check_model(graph)
    return graph, simplified


def format_export(result: ExportResult) -> str:
    """Human-readable lines for `distill-rvc export`."""
    card, onnx_path, card_path = result.card, result.onnx_path, result.card_path
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
