"""Running our ONNX graphs on onnxruntime: sessions, feeding by role, noise made explicit, OrtBackend.

    session(model_bytes, provider, threads)    an onnxruntime session on the CPU or CUDA provider
    feed(session, interface, values)           role -> array (interface.py's roles) as the session's inputs
    deterministic_variant(model, inter)        a copy of a graph whose random nodes are an input or zeros
    OrtBackend(path, device)                   an .onnx file as a `backends.Backend`
    OnnxEncoder(path, device)                  an exported content encoder as a `features.encoders.FeatureEncoder`

The parity check (parity.py) and every consumer of .onnx files (`convert`, `compare`, `bench`,
through `backends.open_backend`) run graphs through these, so they feed them alike.
Not here: the format itself (interface.py), exporting (export.py) or judging parity (parity.py).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..backends.base import ModelInfo
from ..checkpoint import STUDENT_ENCODER_KEY
from ..errors import DistillRVCError
from ..models import NOISE_SCALE
from .interface import (ENCODER_INPUT, ENCODER_KEYS, INPUTS, NUMPY, OUR_METADATA_KEY, ROLES, input_names,
                        interface_of, rate_from_metadata, read_metadata)

if TYPE_CHECKING:
    import onnx
    import onnxruntime

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def session(model_bytes: bytes, provider: str = CPU, threads: int | None = None) -> "onnxruntime.InferenceSession":
    """An onnxruntime session on `provider` (CUDA: TF32 off, so fp32 parity means fp32)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # fp16 graphs on CPU log a warning per inserted cast
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    providers = [(CUDA, {"use_tf32": 0}), CPU] if provider == CUDA else [CPU]
    return ort.InferenceSession(model_bytes, opts, providers=providers)


def feed(sess: "onnxruntime.InferenceSession", interface: str, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The session's inputs from `values` (role -> array), each cast to the graph's dtype.

    `values["noise"]` is standard normal. An rvc graph's `rnd` gets it already scaled (x 0.66666),
    as its runners pass it; the `rnd` of a wokada graph's `deterministic_variant` gets it as it
    is (that graph still scales it).
    """
    out = {}
    for inp in sess.get_inputs():
        role = ROLES[inp.name]
        value = values[role]
        if role == "noise" and interface == "rvc":
            value = value * np.float32(NOISE_SCALE)
        out[inp.name] = np.ascontiguousarray(value).astype(NUMPY[inp.type], copy=False)
    return out


# ------------------------------------------------------------------ deterministic variant
def deterministic_variant(model: "onnx.ModelProto", inter_channels: int,
                          nsf_noise_input: bool = False) -> "onnx.ModelProto":
    """A copy of `model` with noise made explicit: prior noise drawn in the graph becomes the
    input `rnd` [1, inter, T] (standard normal: the graph still scales it), NSF noise becomes 0
    (or, with `nsf_noise_input`, the standard-normal input `nsf_noise` [1, N, 1]).

    Random nodes are told apart by the tensor they imitate: the prior's is [1, inter, T],
    the sine source's is [1, N, 1]. Any other random node is a bug, and raises.
    """
    import onnx
    from onnx import helper

    rnd_name = INPUTS["rvc"]["noise"]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    values = _value_types(m)
    nodes = []
    for node in m.graph.node:
        if node.op_type not in ("RandomNormalLike", "RandomUniformLike"):
            nodes.append(node)
            continue
        dims, elem = values[node.input[0]]
        dtype = next((a.i for a in node.attribute if a.name == "dtype"), elem)
        if node.op_type == "RandomNormalLike" and len(dims) == 3 and dims[1] == inter_channels and dims[2] != 1:
            if any(i.name == rnd_name for i in m.graph.input):
                raise RuntimeError("the graph draws the prior noise twice")
            time_axis = dims[2] if isinstance(dims[2], str) and dims[2] else None
            rnd = helper.make_tensor_value_info(rnd_name, dtype, [1, inter_channels, time_axis])
            m.graph.input.append(rnd)
            nodes.append(helper.make_node("Identity", [rnd_name], list(node.output)))
        elif len(dims) == 3 and dims[2] == 1 and nsf_noise_input:
            m.graph.input.append(helper.make_tensor_value_info("nsf_noise", dtype, [1, dims[1] or None, 1]))
            nodes.append(helper.make_node("Identity", ["nsf_noise"], list(node.output)))
        elif len(dims) == 3 and dims[2] == 1:
            shape = node.output[0] + "__shape"
            nodes.append(helper.make_node("Shape", [node.input[0]], [shape]))
            nodes.append(helper.make_node("ConstantOfShape", [shape], list(node.output),
                                          value=helper.make_tensor("zero", dtype, [1], [0])))
        else:
            raise RuntimeError(f"unexpected random node {node.name} imitating a tensor of shape {dims}")
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    return m


def _value_types(model: "onnx.ModelProto") -> dict[str, tuple[list, int]]:
    """name -> (dims as ints or symbols, element type) for every typed value in the graph."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    out = {}
    for value in [*g.input, *g.output, *g.value_info]:
        t = value.type.tensor_type
        out[value.name] = ([d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim], t.elem_type)
    return out


# ------------------------------------------------------------------------------ backend
class OrtBackend:
    """An ONNX synthesizer (w-okada or RVC interface) on onnxruntime's CPU or CUDA provider.

    `run` takes what `backends.Backend.run` takes. A w-okada graph draws its prior noise inside
    (`accepts_noise` False); with `deterministic` an RVC graph's NSF noise is zeros
    (`deterministic_variant`), so two models fed the same noise compare sample by sample.
    """

    def __init__(self, path: str | Path, device: str = "cpu", *, threads: int | None = None,
                 deterministic: bool = False):
        import onnx

        self.path = Path(path)
        try:
            graph = onnx.load(str(self.path))
        except Exception as e:  # protobuf's DecodeError and friends: not an ONNX file
            raise DistillRVCError(f"{path}: not a readable ONNX model ({type(e).__name__})") from None
        names = [i.name for i in graph.graph.input]
        interface = interface_of(names)
        if interface is None:
            raise DistillRVCError(f"{path}: inputs {names} are neither the w-okada "
                                  f"({', '.join(input_names('wokada', True))}) nor the RVC "
                                  f"({', '.join(input_names('rvc', True))}) interface")
        self.interface = interface
        meta = read_metadata(graph)
        dims = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim] for i in graph.graph.input}
        roles = INPUTS[interface]
        phone_dim = int(dims[roles["phone"]][2])
        f0 = roles["pitchf"] in names
        inter = int(dims[roles["noise"]][1]) if "noise" in roles else None
        params = sum(int(np.prod(t.dims)) for t in graph.graph.initializer)
        if deterministic:
            if interface == "wokada":
                raise DistillRVCError(f"{path}: a w-okada-interface graph draws its noise inside, so its output "
                                      "cannot be made repeatable; export with --interface rvc to compare fidelity")
            graph = deterministic_variant(graph, inter)
        self.deterministic = deterministic
        self.accepts_noise = interface == "rvc"

        provider = CUDA if torch.device(device).type == "cuda" else CPU
        if provider == CUDA:
            import onnxruntime as ort

            if CUDA not in ort.get_available_providers():
                raise DistillRVCError("onnxruntime has no CUDA provider here: install onnxruntime-gpu "
                                      "(pip install 'distill-rvc[gpu]') or use --device cpu")
        self.session = session(graph.SerializeToString(), provider, threads)
        del graph
        self.name = f"ort-{'cuda' if provider == CUDA else 'cpu'}"

        sr, hop = rate_from_metadata(meta)
        info = ModelInfo(path=self.path, format=f"onnx-{interface}", sr=sr or 0, hop=hop or 0, f0=f0,
                         phone_dim=phone_dim, inter_channels=inter, params=params,
                         file_bytes=self.path.stat().st_size,
                         trained_encoder=meta.get(OUR_METADATA_KEY, {}).get(STUDENT_ENCODER_KEY))
        self.info = info
        if not hop:  # RVC's exporter writes no metadata: every RVC hop is 10 ms, so one run tells the rate
            t = 8
            out = self._run_one(np.zeros((1, t, phone_dim), np.float32), np.ones((1, t), np.int64),
                                np.full((1, t), 200.0, np.float32), 0,
                                np.zeros((1, inter or 1, t), np.float32))
            info.hop = out.shape[-1] // t
            info.sr = info.hop * 100
            log.info("%s has no metadata: %d Hz read off its output length", path, info.sr)

    def run(self, phone: np.ndarray, pitch: np.ndarray | None, pitchf: np.ndarray | None, sid: int = 0,
            noise: np.ndarray | None = None) -> np.ndarray:
        outs = []
        for i in range(phone.shape[0]):  # the exported graphs have batch 1
            n = None
            if self.accepts_noise:
                n = noise[i: i + 1] if noise is not None else \
                    np.random.default_rng().standard_normal((1, self.info.inter_channels, phone.shape[1]))
            outs.append(self._run_one(phone[i: i + 1], None if pitch is None else pitch[i: i + 1],
                                      None if pitchf is None else pitchf[i: i + 1], sid, n))
        return np.concatenate(outs, axis=0)

    def _run_one(self, phone, pitch, pitchf, sid, noise) -> np.ndarray:
        t = phone.shape[1]
        values = {"phone": phone, "lengths": np.array([t]), "pitch": pitch, "pitchf": pitchf,
                  "sid": np.array([sid]), "noise": noise}
        audio = self.session.run(None, feed(self.session, self.interface, values))[0]
        return audio.reshape(1, -1).astype(np.float32, copy=False)

    def synchronize(self) -> None:
        pass


# ------------------------------------------------------------------------ content encoder
class OnnxEncoder:
    """A content encoder exported by `distill-rvc export-encoder`, as a `features.encoders.FeatureEncoder`.

    The graph takes audio [1, N] float32 at 16 kHz and gives features [1, T, C] for the one RVC
    version in its metadata (interface.ENCODER_KEYS); a file without that metadata (a
    synthesizer, someone else's HuBERT export) is refused. fp32 and int8 graphs read alike.
    """

    kind = "onnx"

    def __init__(self, path: str | Path, device: str = "cpu", *, threads: int | None = None):
        import onnx

        self.path = Path(path)
        try:
            graph = onnx.load(str(self.path))
        except Exception as e:  # protobuf's DecodeError and friends: truncated or not ONNX
            raise DistillRVCError(f"{path}: not a readable ONNX model ({type(e).__name__}: truncated or "
                                  "of another kind)") from None
        meta = read_metadata(graph)
        missing = [k for k in ENCODER_KEYS.values() if k not in meta]
        names = [i.name for i in graph.graph.input]
        if missing:
            what = "a synthesizer" if interface_of(names) else f"a graph with inputs {names}"
            raise DistillRVCError(f"{path}: {what}, not a content encoder (no {missing[0]} metadata); "
                                  "give an encoder written by `distill-rvc export-encoder`")
        if names != [ENCODER_INPUT]:
            raise DistillRVCError(f"{path}: an encoder graph must take one input {ENCODER_INPUT!r}, not {names}")
        try:
            self.version = str(meta[ENCODER_KEYS["version"]])
            self._dim, self.hop = int(meta[ENCODER_KEYS["dim"]]), int(meta[ENCODER_KEYS["hop"]])
            self.min_samples = int(meta[ENCODER_KEYS["min_samples"]])
        except (TypeError, ValueError):
            raise DistillRVCError(f"{path}: the encoder metadata is damaged ({meta})") from None
        self.source_kind, self.precision = meta[ENCODER_KEYS["kind"]], meta[ENCODER_KEYS["precision"]]
        self.source_sha256 = meta[ENCODER_KEYS["sha256"]]
        self.params = sum(int(np.prod(t.dims)) for t in graph.graph.initializer)
        self.file_bytes = self.path.stat().st_size
        provider = CUDA if torch.device(device).type == "cuda" else CPU
        if provider == CUDA:
            import onnxruntime as ort

            if CUDA not in ort.get_available_providers():
                raise DistillRVCError("onnxruntime has no CUDA provider here: install onnxruntime-gpu "
                                      "(pip install 'distill-rvc[gpu]') or use --device cpu")
        self.device = str(torch.device(device)) if provider == CUDA else "cpu"
        self.session = session(graph.SerializeToString(), provider, threads)

    def frames(self, samples: int) -> int:
        return 0 if samples < self.min_samples else (samples - self.min_samples) // self.hop + 1

    def dim(self, version: str) -> int:
        if version not in ("v1", "v2"):
            raise DistillRVCError(f"unknown RVC version {version!r}; use v1 (256-d features) or v2 (768-d)")
        if version != self.version:
            raise DistillRVCError(f"{self.path} was exported for {self.version} ({self._dim}-d) features, the model "
                                  f"needs {version}: export one with `distill-rvc export-encoder --version {version}`")
        return self._dim

    def memory(self, version: str) -> None:
        return None  # a graph cannot be traced on fake tensors; chunking sizes by the synthesizer alone

    def extract(self, audio_16k: np.ndarray, version: str) -> np.ndarray:
        """Mono 16 kHz float audio [N] -> float32 features [T, C] (the whole array as one input)."""
        self.dim(version)
        audio = np.asarray(audio_16k)
        if audio.ndim != 1:
            raise DistillRVCError(f"expected mono audio [N], got an array of shape {list(audio.shape)}")
        if not np.isfinite(audio).all():
            raise DistillRVCError("the audio contains NaN or infinite samples")
        if len(audio) < self.min_samples:
            raise DistillRVCError(f"audio of {len(audio)} samples is shorter than one content frame "
                                  f"({self.min_samples} samples = {self.min_samples / 16:g} ms at 16 kHz)")
        x = np.ascontiguousarray(audio, dtype=np.float32)[None]
        return self.session.run(None, {ENCODER_INPUT: x})[0][0]
