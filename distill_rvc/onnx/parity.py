"""Parity of an exported graph with torch, and its onnxruntime vs torch CPU latency.

An exported graph draws noise (the wokada prior noise, the NSF source noise), so it cannot be
compared sample by sample as it is. `deterministic_variant` rewrites a copy of the very same
graph: the prior's random node becomes the input `rnd` and the NSF noise becomes zeros. Its
output is compared with torch `infer(..., noise, source_noise=False)` on reproducible
synthetic inputs (`parity_inputs`) of each length. max_rel = max |onnx - torch| / max |torch|.

Parity runs on onnxruntime's CPU provider, and also on its CUDA provider when that is present
(onnxruntime-gpu on a GPU machine); otherwise the report says why it was skipped.

Not for: judging audio quality (teacher vs student is `compare`'s job) or exporting.
"""
from __future__ import annotations

import logging
import statistics
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..atomic import finite
from ..config import SynthConfig
from ..features.pitch import coarse_pitch
from ..models import NOISE_SCALE, Synthesizer
from ..timing import torch_threads

if TYPE_CHECKING:
    import onnx
    import onnxruntime

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
_NO_CUDA = "onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu on a GPU machine, see export/README.md)"


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
            if any(i.name == "rnd" for i in m.graph.input):
                raise RuntimeError("the graph draws the prior noise twice")
            time_axis = dims[2] if isinstance(dims[2], str) and dims[2] else None
            rnd = helper.make_tensor_value_info("rnd", dtype, [1, inter_channels, time_axis])
            m.graph.input.append(rnd)
            nodes.append(helper.make_node("Identity", ["rnd"], list(node.output)))
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


# ------------------------------------------------------------------------------ inputs
def parity_inputs(config: SynthConfig, seconds: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Reproducible inputs for `seconds` of audio (T = seconds x 100 frames).

    phone [1, T, C] ~ N(0, 1); pitchf [1, T]: f0 gliding between 110 and 440 Hz, with the last
    0.2 s of every second unvoiced (0); pitch = its coarse bins; sid [1] = 0; lengths [1] = T;
    noise [1, inter, T] ~ N(0, 1) (the prior noise before the 0.66666 scale).
    """
    t = max(3, round(seconds * config.sr / config.hop_length))
    rng = np.random.default_rng(seed)
    frames = np.arange(t)
    f0 = 220.0 * 2.0 ** np.sin(2 * np.pi * frames / 150)
    f0[frames % 100 >= 80] = 0.0
    return {
        "phone": rng.standard_normal((1, t, config.phone_dim), dtype=np.float32),
        "lengths": np.array([t], dtype=np.int64),
        "pitch": coarse_pitch(f0)[None],
        "pitchf": f0.astype(np.float32)[None],
        "sid": np.zeros(1, dtype=np.int64),
        "noise": rng.standard_normal((1, config.inter_channels, t), dtype=np.float32),
    }


_ROLES = {"feats": "phone", "phone": "phone", "p_len": "lengths", "phone_lengths": "lengths", "pitch": "pitch",
          "pitchf": "pitchf", "sid": "sid", "ds": "sid", "rnd": "rnd"}
_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}


def feed(session: "onnxruntime.InferenceSession", interface: str, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The session's inputs from `parity_inputs`, each cast to the graph's dtype.

    `rnd` is the standard-normal noise for wokada (the graph scales it by 0.66666) and the
    already-scaled noise for rvc, as its runners pass it.
    """
    out = {}
    for inp in session.get_inputs():
        role = _ROLES[inp.name]
        if role == "rnd":
            value = x["noise"] if interface == "wokada" else x["noise"] * np.float32(NOISE_SCALE)
        else:
            value = x[role]
        out[inp.name] = value.astype(_NP[inp.type])
    return out


def torch_reference(model: Synthesizer, interface: str, x: dict[str, np.ndarray], fed: dict[str, np.ndarray],
                    deterministic: bool = True) -> np.ndarray:
    """What torch computes for the same inputs: `infer(..., noise, source_noise=False)`.

    The features and noise are taken as the graph received them (fp16-rounded in fp16 files),
    so the comparison measures the graph, not the rounding of its inputs.
    """
    phone = fed.get("feats", fed.get("phone")).astype(np.float32)
    if "rnd" in fed and interface == "wokada":
        noise = fed["rnd"].astype(np.float32)
    else:
        noise = x["noise"]
    f0 = model.config.f0
    audio = model.infer(torch.from_numpy(phone), torch.from_numpy(x["lengths"]),
                        torch.from_numpy(x["pitch"]) if f0 else None, torch.from_numpy(x["pitchf"]) if f0 else None,
                        torch.from_numpy(x["sid"]), noise=torch.from_numpy(noise) if deterministic else None,
                        source_noise=not deterministic)
    if interface == "wokada":
        audio = audio[0, 0].clamp(-1.0, 1.0)
    return audio.numpy()


def errors(out: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(max_abs, max_rel): max |out - ref| and that over max |ref|."""
    max_abs = float(np.abs(out.astype(np.float64) - ref.astype(np.float64)).max())
    peak = float(np.abs(ref).max())
    return max_abs, (max_abs / peak if peak > 0 else (0.0 if max_abs == 0 else float("inf")))


# ------------------------------------------------------------------------------ sessions
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


# -------------------------------------------------------------------------------- check
def check_parity(graph: "onnx.ModelProto", model: Synthesizer, interface: str, *, tolerance: float,
                 lengths_s: tuple[float, ...] = (1.0, 10.0), threads: int | None = None,
                 timing_runs: int = 3) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Compare the exported `graph` with the fp32 torch `model`; returns (parity, latency).

    parity: max_abs, max_rel (over all lengths), lengths_s, tolerance, passed, provider,
    per_length, cuda (its own numbers, or why it was skipped), failure (when not passed).
    latency (None if timing_runs is 0): medians over `timing_runs` runs of the longest input
    through the shipped graph and torch `infer`, both noisy as in use, with `threads` threads.
    """
    import onnxruntime as ort

    threads = threads or torch.get_num_threads()
    det_bytes = deterministic_variant(graph, model.config.inter_channels).SerializeToString()
    shipped_bytes = graph.SerializeToString()
    inputs = {s: parity_inputs(model.config, s) for s in lengths_s}
    failures: list[str] = []

    with torch_threads(threads):
        refs, per_length = {}, []
        det = session(det_bytes, CPU, threads)
        for s, x in inputs.items():
            fed = feed(det, interface, x)
            refs[s] = torch_reference(model, interface, x, fed)
            out = det.run(None, fed)[0]
            if out.shape != refs[s].shape:
                failures.append(f"output shape {list(out.shape)} at {s:g} s, torch gives {list(refs[s].shape)}")
                continue
            max_abs, max_rel = errors(out, refs[s])
            per_length.append({"seconds": s, "frames": int(x["lengths"][0]), "max_abs": max_abs, "max_rel": max_rel})
        del det

        shipped = session(shipped_bytes, CPU, threads)
        failures += _check_shipped(shipped, interface, inputs[min(lengths_s)], model.config.hop_length)

        latency = None
        if timing_runs > 0:
            latency = _latency(shipped, model, interface, inputs[max(lengths_s)], timing_runs, threads)
        del shipped

    max_abs = max((p["max_abs"] for p in per_length), default=float("nan"))
    max_rel = max((p["max_rel"] for p in per_length), default=float("nan"))
    if per_length and max_rel > tolerance:
        failures.append(f"max_rel {max_rel:.2e} exceeds the tolerance {tolerance:.0e}")

    cuda = _cuda_parity(det_bytes, interface, inputs, refs, tolerance, threads) \
        if CUDA in ort.get_available_providers() else {"skipped": _NO_CUDA}
    if cuda.get("passed") is False:
        failures.append(f"on CUDA, max_rel {cuda['max_rel']:.2e} exceeds the tolerance {tolerance:.0e}")

    parity = {"max_abs": finite(max_abs), "max_rel": finite(max_rel), "lengths_s": list(lengths_s),
              "tolerance": tolerance, "passed": not failures, "provider": CPU, "per_length": per_length,
              "cuda": cuda}
    if failures:
        parity["failure"] = "; ".join(failures)
    return parity, latency


def _check_shipped(sess, interface: str, x: dict[str, np.ndarray], hop: int) -> list[str]:
    """The shipped (noisy) graph runs, gives finite audio of T x hop samples, in [-1, 1] for wokada."""
    out = sess.run(None, feed(sess, interface, x))[0]
    n = int(x["lengths"][0]) * hop
    want = [n] if interface == "wokada" else [1, 1, n]
    problems = []
    if list(out.shape) != want:
        problems.append(f"the shipped graph gives shape {list(out.shape)}, expected {want}")
    if not np.isfinite(out).all():
        problems.append("the shipped graph gives non-finite samples")
    elif interface == "wokada" and np.abs(out).max() > 1.0:
        problems.append("the shipped graph's audio is not clipped to [-1, 1]")
    return problems


def _latency(sess, model: Synthesizer, interface: str, x: dict[str, np.ndarray], runs: int,
             threads: int) -> dict[str, Any]:
    """Median wall times of onnxruntime and torch, run alternately so that a load that
    changes during the measurement weighs on both alike."""
    fed = feed(sess, interface, x)
    engines = {"onnxruntime_s": lambda: sess.run(None, fed),
               "torch_s": lambda: torch_reference(model, interface, x, fed, deterministic=False)}
    times: dict[str, list[float]] = {name: [] for name in engines}
    for run in range(runs + 1):  # the first round warms up
        for name, fn in engines.items():
            start = time.perf_counter()
            fn()
            if run:
                times[name].append(time.perf_counter() - start)
    ort_s, torch_s = (statistics.median(times[name]) for name in engines)
    seconds = int(x["lengths"][0]) * model.config.hop_length / model.config.sr
    return {"seconds_of_audio": seconds, "threads": threads, "runs": runs, "onnxruntime_s": ort_s,
            "torch_s": torch_s, "ratio": ort_s / torch_s,
            "what": "median wall times, the two run alternately; ratio = onnxruntime / torch"}


def _cuda_parity(det_bytes: bytes, interface: str, inputs: dict, refs: dict, tolerance: float,
                 threads: int) -> dict[str, Any]:
    """The deterministic graph on onnxruntime's CUDA provider vs the same torch references."""
    try:
        sess = session(det_bytes, CUDA, threads)
    except Exception as e:  # a broken CUDA/cuDNN install must not hide the CPU result
        return {"skipped": f"the CUDA provider failed to start: {str(e).splitlines()[0]}"}
    if sess.get_providers()[0] != CUDA:
        return {"skipped": "the CUDA provider fell back to CPU (CUDA or cuDNN libraries missing?)"}
    worst_abs = worst_rel = 0.0
    for s, x in inputs.items():
        out = sess.run(None, feed(sess, interface, x))[0]
        max_abs, max_rel = errors(out, refs[s])
        worst_abs, worst_rel = max(worst_abs, max_abs), max(worst_rel, max_rel)
    return {"provider": CUDA, "max_abs": worst_abs, "max_rel": finite(worst_rel),
            "passed": worst_rel <= tolerance}
