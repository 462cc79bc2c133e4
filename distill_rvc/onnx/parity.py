"""Parity of an exported graph with torch, and its onnxruntime vs torch CPU latency.

    check_parity(graph, model, interface, ...)  (parity, latency) for the model card; nothing is written
    parity_inputs(config, seconds)              reproducible inputs by role (timing.synthetic_inputs + lengths, sid)
    torch_reference(model, interface, x, fed)   torch `infer` on what the graph was fed
    errors(out, ref)                            (max_abs, max_rel)

An exported graph draws noise (the wokada prior noise, the NSF source noise), so it cannot be
compared sample by sample as it is. `runtime.deterministic_variant` rewrites a copy of the very
same graph: the prior's random node becomes the input `rnd` and the NSF noise becomes zeros. Its
output is compared with torch `infer(..., noise, source_noise=False)` at each length.
max_rel = max |onnx - torch| / max |torch|. Parity runs on onnxruntime's CPU provider, and also on
its CUDA provider when that is present (onnxruntime-gpu on a GPU machine); otherwise the report
says why it was skipped.
Not for: judging audio quality (teacher vs student is `compare`'s job) or exporting (export.py).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..atomic import finite
from ..config import SynthConfig
from ..models import Synthesizer
from ..timing import side_by_side, synthetic_inputs, timed, torch_threads
from .interface import INPUTS
from .runtime import CPU, CUDA, deterministic_variant, feed, session

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

_NO_CUDA = "onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu on a GPU machine, see export/README.md)"


# ------------------------------------------------------------------------------ inputs
def parity_inputs(config: SynthConfig, seconds: float, seed: int = 0) -> dict[str, np.ndarray | None]:
    """Reproducible inputs by role for `seconds` of audio (T = seconds x 100 frames):
    `timing.synthetic_inputs` (phone [1, T, C] ~ N(0, 1); pitchf [1, T] gliding between 110 and
    440 Hz with the last 0.2 s of every second unvoiced; pitch its coarse bins, both None for
    no-f0 models; noise [1, inter, T] ~ N(0, 1), the prior noise before the 0.66666 scale), with
    lengths [1] = T and sid [1] = 0.
    """
    x = synthetic_inputs(config.phone_dim, config.f0, config.inter_channels, seconds, seed=seed)
    t = x["phone"].shape[1]
    return {**x, "lengths": np.array([t], dtype=np.int64), "sid": np.zeros(1, dtype=np.int64)}


def torch_reference(model: Synthesizer, interface: str, x: dict[str, np.ndarray], fed: dict[str, np.ndarray],
                    deterministic: bool = True) -> np.ndarray:
    """What torch computes for the same inputs: `infer(..., noise, source_noise=False)`.

    The features and noise are taken as the graph received them (fp16-rounded in fp16 files),
    so the comparison measures the graph, not the rounding of its inputs.
    """
    names = INPUTS[interface]
    phone = fed[names["phone"]].astype(np.float32)
    rnd = INPUTS["rvc"]["noise"]  # a wokada graph's deterministic variant takes the noise as `rnd` too
    noise = fed[rnd].astype(np.float32) if rnd in fed and interface == "wokada" else x["noise"]
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
    """Median wall times of onnxruntime and torch, run alternately (`timing.side_by_side`) so
    that a load that changes during the measurement weighs on both alike."""
    fed = feed(sess, interface, x)
    ort_s, torch_s = side_by_side([timed(lambda: sess.run(None, fed)),
                                   timed(lambda: torch_reference(model, interface, x, fed, deterministic=False))],
                                  runs=runs, warmup=1)
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
