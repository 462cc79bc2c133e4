"""`distill-rvc bench`: how fast a model converts, in numbers that compare across models and machines.

For each model (.pth on torch, .onnx on onnxruntime), side by side in one run:

    latency_s / rtf     one synthesizer pass on 1 s and 10 s of input (RTF = seconds of compute
                        per second of audio; below 1 is faster than real time)
    batch               throughput of a batch of 1 s items, in seconds of audio per second
                        (ONNX graphs have batch 1: their items run one after another)
    stream              a real-time client's view of 0.5 s chunks: time to the first audio
                        (the first chunk, no context), and per chunk once `context_s` of past
                        audio rides along; `keeps_up` when a chunk takes less than its length

Every figure is the median of `runs` timed runs after `warmup` untimed ones, and the models
take turns within each run, so a load that changes during the benchmark weighs on all alike.
Inputs are synthetic (random content features, a gliding F0 with unvoiced gaps): speed does
not depend on what is said. With a content encoder (`hubert`) the stream figures include
content features and F0 of each chunk, as a real-time client computes them.

    bench(models, BenchSettings(...)) -> BenchResult (plain JSON data);  format_bench(result) -> str

Not for: fidelity (`compare`) or memory (`inspect`, `compare`).
"""
from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypedDict

import numpy as np
import torch

from .backends import Backend, open_backend
from .errors import DistillRVCError
from .features.pitch import coarse_pitch
from .options import check_threads, resolve_device
from .timing import cpu_name, side_by_side, synthetic_inputs, timed, torch_threads

LENGTHS_S = (1.0, 10.0)


@dataclass(frozen=True)
class BenchSettings:
    """What to time and how often (see the module docstring)."""

    device: str = "cpu"  # cpu, cuda, cuda:N or auto
    threads: int | None = 2  # CPU threads for torch and onnxruntime; 0 or None: all
    runs: int = 5  # timed runs per figure (the median is kept)
    warmup: int = 1  # untimed runs before them
    lengths_s: tuple[float, ...] = LENGTHS_S  # input lengths of the latency figures
    batch: int = 8  # items of 1 s in the throughput batch
    chunk_s: float = 0.5  # streaming chunk length
    context_s: float = 1.0  # past audio sent along with each streaming chunk after the first
    hubert: str | Path | None = None  # with a content encoder, the stream figures include features and F0
    f0_method: str = "dio"  # F0 extractor of the stream figures (with `hubert`)
    fcpe: str | Path | None = None  # fcpe_c_v001.pt for f0_method "fcpe" (None: the default lookup)

    def check(self) -> None:
        """Refuse threads, a device or counts that cannot be timed, naming the option."""
        check_threads(self.threads)
        resolve_device(self.device)
        if self.runs < 1 or self.warmup < 0 or self.batch < 1 or self.chunk_s <= 0 or self.context_s < 0:
            raise DistillRVCError("runs and batch must be at least 1, warmup 0 or more, chunk_s positive, "
                                  "context_s 0 or more")


class BenchResult(TypedDict):
    """`bench`'s JSON: the machine, the settings, and one row of the same keys per model."""

    host: dict[str, Any]  # cpu, system, threads, device, torch, onnxruntime, gpu
    settings: dict[str, Any]
    models: list[dict[str, Any]]  # model, backend, ..., latency_s, rtf, batch, stream, speedup_vs_first


def bench(models: list[str | Path], settings: BenchSettings | None = None) -> BenchResult:
    """Benchmark model files side by side; returns plain JSON-able data (see the module docstring)."""
    if not models:
        raise DistillRVCError("bench needs at least one --model (or a --chain)")
    s = settings or BenchSettings()
    s.check()
    threads, device = check_threads(s.threads), str(resolve_device(s.device))
    runs, warmup, batch = s.runs, s.warmup, s.batch
    with torch_threads(threads):
        backends = [open_backend(m, device, threads=threads) for m in models]
        encoder = None
        if s.hubert is not None:
            from .features.encoders import open_encoder

            encoder = open_encoder(s.hubert, device, threads=threads)  # where the models run
        results: list[dict[str, Any]] = [_describe(b) for b in backends]

        for seconds in s.lengths_s:
            inputs = [synthetic_inputs(*b.info.widths, seconds) for b in backends]
            medians = side_by_side([timed(_call(b, x), b.synchronize) for b, x in zip(backends, inputs)],
                                    runs, warmup)
            for res, m in zip(results, medians):
                res["latency_s"][f"{seconds:g}s"] = m
                res["rtf"][f"{seconds:g}s"] = m / seconds

        inputs = [synthetic_inputs(*b.info.widths, 1.0, batch) for b in backends]
        medians = side_by_side([timed(_call(b, x), b.synchronize) for b, x in zip(backends, inputs)],
                                runs, warmup)
        for res, b, m in zip(results, backends, medians):
            res["batch"] = {"items": batch, "item_s": 1.0, "wall_s": m, "x_realtime": batch / m,
                            "batched": b.info.format == "torch"}

        streams = _stream(backends, encoder, (s.f0_method, s.fcpe), s.chunk_s, s.context_s, runs, warmup)
        for res, stream in zip(results, streams):
            res["stream"] = stream

    base = results[0]
    for res in results:
        res["speedup_vs_first"] = {k: base["latency_s"][k] / v for k, v in res["latency_s"].items()}
    return {
        "host": {"cpu": cpu_name(), "system": platform.system(),
                 "threads": threads or torch.get_num_threads(), "device": device, "torch": torch.__version__,
                 "onnxruntime": ort_version(),
                 "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "settings": {"runs": runs, "warmup": warmup, "lengths_s": list(s.lengths_s), "batch": batch,
                     "chunk_s": s.chunk_s, "context_s": s.context_s,
                     "stream_pipeline": f"content features + {s.f0_method} F0 + synthesizer" if encoder is not None
                     else "synthesizer only (pass --hubert to include content features and F0)"},
        "models": results,
    }


def _call(backend: Backend, x: dict[str, Any]) -> Callable[[], Any]:
    return lambda: backend.run(x["phone"], x["pitch"], x["pitchf"], 0, x["noise"])


def _describe(b: Backend) -> dict[str, Any]:
    i = b.info
    return {"model": str(i.path), "backend": b.name, "format": i.format, "sample_rate": i.sr, "params": i.params,
            "file_bytes": i.file_bytes, "latency_s": {}, "rtf": {}}


def _stream(backends: list[Backend], encoder, f0: tuple[str, Any], chunk_s: float, context_s: float, runs: int,
            warmup: int) -> list[dict[str, Any]]:
    """Time to first audio (a chunk without context) and per steady chunk (with `context_s` before it)."""
    rng = np.random.default_rng(1)
    out = []
    first_jobs, steady_jobs = [], []
    for b in backends:
        for seconds, jobs in ((chunk_s, first_jobs), (chunk_s + context_s, steady_jobs)):
            if encoder is None:
                x = synthetic_inputs(*b.info.widths, seconds)
                jobs.append(timed(_call(b, x), b.synchronize))
            else:
                audio = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
                jobs.append(timed(_pipeline(b, encoder, audio, f0), b.synchronize))
    firsts = side_by_side(first_jobs, runs, warmup)
    steadies = side_by_side(steady_jobs, runs, warmup)
    for first, steady in zip(firsts, steadies):
        out.append({"chunk_s": chunk_s, "context_s": context_s, "first_audio_s": first, "chunk_compute_s": steady,
                    "keeps_up": steady < chunk_s})
    return out


def _pipeline(b: Backend, encoder, audio: np.ndarray, f0_choice: tuple[str, Any]) -> Callable[[], Any]:
    from .features.pitch import extract_f0

    def run() -> None:
        feats = np.repeat(encoder.extract(audio, b.info.version), 2, axis=0)[None]
        t = feats.shape[1]
        pitch = pitchf = None
        if b.info.f0:
            f0 = extract_f0(audio, f0_choice[0], fcpe_path=f0_choice[1])[:t].astype(np.float32)
            pitchf = f0[None]
            pitch = coarse_pitch(f0)[None]
            feats = feats[:, : len(f0)]
        noise = np.random.default_rng(0).standard_normal((1, b.info.inter_channels, feats.shape[1]),
                                                         dtype=np.float32) if b.info.inter_channels else None
        b.run(feats, pitch, pitchf, 0, noise)
    return run


def ort_version() -> str | None:
    try:
        import onnxruntime

        return onnxruntime.__version__
    except ImportError:
        return None


def format_bench(result: BenchResult) -> str:
    """A plain-text table of `bench`'s result."""
    h = result["host"]
    lines = [f"{h['cpu']} ({h['system']}), {h['threads']} threads, device {h['device']}"
             + (f", {h['gpu']}" if h["gpu"] else "") + f"; torch {h['torch']}, onnxruntime {h['onnxruntime']}",
             f"median of {result['settings']['runs']} runs after {result['settings']['warmup']} warm-up; "
             f"stream: {result['settings']['stream_pipeline']}", ""]
    keys = list(result["models"][0]["rtf"])
    head = f"{'model':<28} {'backend':<10} {'params':>10} " + " ".join(f"{'RTF ' + k:>9}" for k in keys) \
        + f" {'batch xRT':>10} {'first audio':>12} {'per chunk':>10} {'speedup':>8}"
    lines += [head, "-" * len(head)]
    for m in result["models"]:
        s = m["stream"]
        speed = m["speedup_vs_first"][keys[-1]]
        lines.append(f"{Path(m['model']).name[:28]:<28} {m['backend']:<10} {m['params']:>10,} "
                     + " ".join(f"{m['rtf'][k]:>9.3f}" for k in keys)
                     + f" {m['batch']['x_realtime']:>10.1f} {s['first_audio_s'] * 1000:>9.0f} ms"
                     + f" {s['chunk_compute_s'] * 1000:>7.0f} ms {speed:>7.2f}x"
                     + ("" if s["keeps_up"] else "  (too slow for real time)"))
    lines.append(f"per chunk = {result['settings']['chunk_s']:g} s chunk + {result['settings']['context_s']:g} s "
                 f"of context; speedup = the first model's {keys[-1]} latency / this model's")
    return "\n".join(lines)

