"""The whole conversion chain, stage by stage: content encoder + F0 estimator + synthesizer.

A user converts with three models, not one, so a small synthesizer is only as fast as the chain
around it. `bench_chain` times every stage of every chain side by side in one run, at each
thread count, and reports per stage:

    params      weights of the network (0 for pyworld's DSP trackers)
    MB          bytes on disk of what runs (the exported .onnx when the stage runs on onnxruntime)
    GFLOP/s     floating-point operations per second of audio, counted by FlopCounterMode on the
                torch module (None for harvest/dio and for a stage given as an .onnx file)
    RTF         seconds of compute per second of audio, median of `runs` after `warmup`

then the chain's total, and each chain's ratio to the first one (the teacher chain).

    Chain.parse("model=big.pth,encoder=hubert_base.pt,f0=rmvpe:rmvpe.pt")          the teacher's
    Chain.parse("model=tiny.pth,encoder=encoder.pt,f0=fcpe,runtime=onnxruntime")   a student's
    bench_chain([teacher, student], ChainSettings(threads=(1, 2))) -> ChainResult (plain JSON data)
    format_chain(result) -> str

runtime=onnxruntime exports the torch stages (encoder, FCPE, synthesizer) to temporary ONNX
graphs and runs those, as a real-time client would; FLOPs are still counted on the torch
modules. An .onnx file given directly runs on onnxruntime whatever the runtime. The input is
a 16 kHz clip (`audio`, or a synthetic voiced glide with pauses): speed hardly depends on what
is said, but the F0 trackers' does a little, so real speech is the better input.

Not for: one model's latency, batches and streaming (bench.py), or fidelity (compare).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypedDict

import numpy as np
import torch

from .bench import ort_version
from .errors import DistillRVCError
from .options import check_threads
from .timing import cpu_name, side_by_side, timed, torch_threads


RUNTIMES = ("torch", "onnxruntime")
STAGES = ("encoder", "f0", "synthesizer")
NETWORK_F0 = ("rmvpe", "fcpe")  # F0 methods that are networks (the others are pyworld DSP)


@dataclass(frozen=True)
class Chain:
    """What one conversion runs: the synthesizer, the content encoder, the F0 method and its model."""

    model: Path  # the synthesizer: .pth (RVC or distill-rvc) or .onnx
    encoder: Path  # hubert_base.pt, an exported encoder .onnx or a distilled encoder .pt
    f0: str = "rmvpe"  # harvest, dio, rmvpe or fcpe
    f0_model: Path | None = None  # rmvpe.pt or fcpe_c_v001.pt (fcpe: found as `--fcpe` finds it)
    runtime: str = "torch"  # where the torch stages run: torch or onnxruntime
    name: str = ""  # the label in the table (default: the model's file name)

    @classmethod
    def parse(cls, spec: str) -> "Chain":
        """'model=PATH,encoder=PATH,f0=METHOD[:MODEL][,runtime=torch|onnxruntime][,name=LABEL]'."""
        values: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            if not sep or not value:
                raise DistillRVCError(f"chain {spec!r}: {part!r} is not KEY=VALUE "
                                      "(keys: model, encoder, f0, runtime, name)")
            if key not in ("model", "encoder", "f0", "runtime", "name"):
                raise DistillRVCError(f"chain {spec!r}: unknown key {key!r} (keys: model, encoder, f0, runtime, name)")
            values[key] = value
        for key in ("model", "encoder"):
            if key not in values:
                raise DistillRVCError(f"chain {spec!r}: no {key}= (a chain needs model=, encoder= and f0=)")
        method, _, f0_model = values.get("f0", "rmvpe").partition(":")
        chain = cls(model=Path(values["model"]), encoder=Path(values["encoder"]), f0=method,
                    f0_model=Path(f0_model) if f0_model else None, runtime=values.get("runtime", "torch"),
                    name=values.get("name", ""))
        chain.check()
        return chain

    @property
    def label(self) -> str:
        return self.name or self.model.name

    def check(self) -> None:
        from .features.pitch import F0_METHODS

        if self.f0 not in F0_METHODS:
            raise DistillRVCError(f"chain {self.label}: unknown F0 method {self.f0!r}; use one of "
                                  f"{', '.join(F0_METHODS)}")
        if self.runtime not in RUNTIMES:
            raise DistillRVCError(f"chain {self.label}: runtime must be torch or onnxruntime, not {self.runtime!r}")
        if self.f0 == "rmvpe" and self.f0_model is None:
            raise DistillRVCError(f"chain {self.label}: f0=rmvpe needs the model file: f0=rmvpe:path/to/rmvpe.pt")
        for what, path in (("model", self.model), ("encoder", self.encoder), ("F0 model", self.f0_model)):
            if path is not None and not path.is_file():
                raise DistillRVCError(f"chain {self.label}: {what} {path}: no such file")


@dataclass(frozen=True)
class ChainSettings:
    threads: tuple[int, ...] = (1, 2)  # CPU thread counts, each timed side by side
    runs: int = 3  # timed runs per figure (the median is kept)
    warmup: int = 1
    seconds: float = 10.0  # length of the synthetic clip (with `audio`: the file's first `seconds`)
    audio: Path | None = None  # a speech file to time on, any rate (resampled to 16 kHz)

    def check(self) -> None:
        if not self.threads:
            raise DistillRVCError("give at least one thread count")
        for n in self.threads:
            check_threads(n)
            if not n:
                raise DistillRVCError("thread counts must be at least 1")
        if self.runs < 1 or self.warmup < 0 or not 1.0 <= self.seconds <= 600.0:
            raise DistillRVCError("runs must be at least 1, warmup 0 or more, seconds between 1 and 600")


class ChainResult(TypedDict):
    host: dict[str, Any]
    settings: dict[str, Any]
    chains: list[dict[str, Any]]  # label, runtime, stages: [{stage, what, runtime, params, bytes, gflops, rtf}], total
    ratios: list[dict[str, Any]]  # per chain after the first: first chain's total / this chain's


@dataclass
class _Stage:
    """One stage ready to time: `run` does the stage's work on the clip; the figures it reports."""

    stage: str
    what: str
    runtime: str
    params: int
    bytes: int
    flops_per_s: float | None
    runs: dict[int, Callable[[], Any]] = field(default_factory=dict)  # per thread count


def bench_chain(chains: list[Chain], settings: ChainSettings | None = None) -> ChainResult:
    """Time every stage of every chain side by side, at each thread count (module docstring)."""
    if not chains:
        raise DistillRVCError("give at least one chain")
    s = settings or ChainSettings()
    s.check()
    for c in chains:
        c.check()
    audio = _clip(s)
    seconds = len(audio) / 16000
    with tempfile.TemporaryDirectory(prefix="distill-rvc-chain-") as tmp:
        built = [_build(c, audio, s.threads, Path(tmp) / f"chain{i}") for i, c in enumerate(chains)]
        rtf: dict[tuple[int, int], float] = {}
        for n in s.threads:
            jobs = [(ci, si, stage.runs[n]) for ci, stages in enumerate(built) for si, stage in enumerate(stages)]
            with torch_threads(n):
                medians = side_by_side([timed(run) for _, _, run in jobs], s.runs, s.warmup)
            for (ci, si, _), m in zip(jobs, medians):
                rtf[ci, si, n] = m / seconds
    out = []
    for ci, (c, stages) in enumerate(zip(chains, built)):
        rows = [{"stage": st.stage, "what": st.what, "runtime": st.runtime, "params": st.params, "bytes": st.bytes,
                 "gflop_per_s": None if st.flops_per_s is None else st.flops_per_s / 1e9,
                 "rtf": {str(n): rtf[ci, si, n] for n in s.threads}} for si, st in enumerate(stages)]
        flops = [r["gflop_per_s"] for r in rows]
        total = {"params": sum(r["params"] for r in rows), "bytes": sum(r["bytes"] for r in rows),
                 "gflop_per_s": None if None in flops else sum(flops),
                 "gflop_per_s_counted": sum(f for f in flops if f is not None),
                 "rtf": {str(n): sum(r["rtf"][str(n)] for r in rows) for n in s.threads}}
        out.append({"label": c.label, "runtime": c.runtime, "stages": rows, "total": total})
    base = out[0]["total"]
    ratios = [{"label": c["label"], "params": base["params"] / max(c["total"]["params"], 1),
               "bytes": base["bytes"] / max(c["total"]["bytes"], 1),
               "gflop_per_s": base["gflop_per_s_counted"] / c["total"]["gflop_per_s_counted"]
               if c["total"]["gflop_per_s_counted"] else None,
               "rtf": {n: base["rtf"][n] / c["total"]["rtf"][n] for n in c["total"]["rtf"]}} for c in out[1:]]
    return {"host": {"cpu": cpu_name(), "torch": torch.__version__, "onnxruntime": ort_version()},
            "settings": {"threads": list(s.threads), "runs": s.runs, "warmup": s.warmup, "audio_s": seconds,
                         "audio": str(s.audio) if s.audio else "synthetic voiced glide with pauses"},
            "chains": out, "ratios": ratios}


def _clip(s: ChainSettings) -> np.ndarray:
    """16 kHz mono float32: the file's first `seconds`, or a voiced glide (80-300 Hz, harmonics) with pauses."""
    if s.audio is not None:
        from .features.audio import check_audio, load_audio

        audio = load_audio(s.audio, 16000)[: int(s.seconds * 16000)]
        check_audio(audio, 16000, s.audio)
        return audio
    t = np.arange(int(s.seconds * 16000)) / 16000
    f0 = 80.0 * (300.0 / 80.0) ** (0.5 - 0.5 * np.cos(2 * np.pi * t / s.seconds))
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voiced = (np.sin(2 * np.pi * 0.7 * t) > -0.6).astype(np.float64)
    wave = sum(np.sin(k * phase) / k for k in range(1, 12)) * voiced
    wave += 0.003 * np.random.default_rng(0).standard_normal(len(t))
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


def _build(c: Chain, audio: np.ndarray, threads: tuple[int, ...], tmp: Path) -> list[_Stage]:
    """The chain's three stages, each with a runner per thread count; inputs computed once."""
    from .backends import open_backend
    from .features.encoders import open_encoder

    tmp.mkdir(parents=True)
    backend = open_backend(c.model, "cpu")
    version = backend.info.version
    encoder = open_encoder(c.encoder, "cpu")
    feats = encoder.extract(audio, version)
    enc = _encoder_stage(c, encoder, version, audio, threads, tmp)
    f0_stage, f0 = _f0_stage(c, audio, threads, tmp)
    synth = _synth_stage(c, backend, feats, f0, threads, tmp)
    return [enc, f0_stage, synth]


def _count_flops(fn: Callable[[], Any], seconds: float) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops() / seconds


def _encoder_stage(c: Chain, encoder, version: str, audio: np.ndarray, threads, tmp: Path) -> _Stage:
    from .onnx.runtime import OnnxEncoder

    flops = _count_flops(lambda: encoder.extract(audio[:16000], version), 1.0) \
        if isinstance(encoder, torch.nn.Module) else None
    stage = _Stage("encoder", f"{c.encoder.name} ({encoder.kind})", "torch", encoder.params, encoder.file_bytes,
                   flops)
    if encoder.kind == "onnx" or c.runtime == "onnxruntime":
        path = c.encoder
        if encoder.kind != "onnx":
            from .onnx.encoder import ExportEncoderSettings, export_encoder

            path = tmp / "encoder.onnx"
            export_encoder(c.encoder, path, ExportEncoderSettings(version=version))  # with its metadata and parity check
        stage.runtime, stage.bytes = "onnxruntime", path.stat().st_size
        for n in threads:
            ort = OnnxEncoder(path, "cpu", threads=n)
            stage.runs[n] = lambda e=ort: e.extract(audio, version)
    else:
        for n in threads:
            stage.runs[n] = lambda: encoder.extract(audio, version)
    return stage


def _f0_stage(c: Chain, audio: np.ndarray, threads, tmp: Path) -> tuple[_Stage, np.ndarray]:
    from .features.pitch import extract_f0

    if c.f0 not in NETWORK_F0:
        stage = _Stage("f0", c.f0, "pyworld", 0, 0, None)
        for n in threads:
            stage.runs[n] = lambda: extract_f0(audio, c.f0)
        return stage, extract_f0(audio, c.f0)
    if c.f0 == "rmvpe":
        from .features.rmvpe import load_rmvpe

        model, path = load_rmvpe(c.f0_model, "cpu"), c.f0_model
    else:
        from .features.fcpe import find_fcpe, load_fcpe

        path = find_fcpe(c.f0_model)
        model = load_fcpe(path, "cpu")
    params = sum(p.numel() for p in model.parameters())
    flops = _count_flops(lambda: model.infer(audio[:16000]), 1.0)
    stage = _Stage("f0", f"{c.f0} ({path.name})", "torch", params, path.stat().st_size, flops)
    f0 = model.infer(audio)
    stage.runs = {n: (lambda: model.infer(audio)) for n in threads}
    if c.f0 == "fcpe" and c.runtime == "onnxruntime":  # the whole network, log-mel included, in onnxruntime
        from .onnx.fcpe import OnnxFCPE, trace_fcpe

        graph = trace_fcpe(model)
        (tmp / "fcpe.onnx").write_bytes(graph.SerializeToString())
        stage.runtime, stage.bytes = "onnxruntime", (tmp / "fcpe.onnx").stat().st_size
        stage.runs = {n: (lambda r=OnnxFCPE(graph, model, n): r.infer(audio)) for n in threads}
    return stage, f0


def _synth_stage(c: Chain, backend, feats: np.ndarray, f0: np.ndarray, threads, tmp: Path) -> _Stage:
    from .backends import TorchBackend
    from .features.pitch import coarse_pitch
    from .memory import macs_per_second
    from .onnx.runtime import OrtBackend

    info = backend.info
    phone = np.repeat(feats, 2, axis=0)[None]
    t = min(phone.shape[1], len(f0))
    phone = phone[:, :t]
    pitchf = f0[None, :t].astype(np.float32) if info.f0 else None
    pitch = coarse_pitch(f0[:t])[None] if info.f0 else None
    noise = np.random.default_rng(0).standard_normal((1, info.inter_channels, t), dtype=np.float32) \
        if info.inter_channels else None
    torch_model = isinstance(backend, TorchBackend)
    flops = 2.0 * macs_per_second(backend.model.config, arch=backend.model.arch) if torch_model else None
    stage = _Stage("synthesizer", f"{c.model.name}", backend.name, info.params, info.file_bytes, flops)
    backends = {n: backend for n in threads}
    if torch_model and c.runtime == "onnxruntime":
        import copy

        from .onnx.export import ExportSettings, build_graph

        model = copy.deepcopy(backend.model).cpu().float().remove_weight_norm().eval()
        graph, _ = build_graph(model, ExportSettings(interface="rvc", simplify=False))
        path = tmp / "synthesizer.onnx"
        path.write_bytes(graph.SerializeToString())
        backends = {n: OrtBackend(path, "cpu", threads=n) for n in threads}
        stage.runtime, stage.bytes = "onnxruntime", path.stat().st_size
    elif not torch_model:
        backends = {n: OrtBackend(c.model, "cpu", threads=n) for n in threads}
    stage.runs = {n: (lambda b=backends[n]: b.run(phone, pitch, pitchf, 0, noise)) for n in threads}
    return stage



def _si(n: float) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.0f} k" if n else "0"


def format_chain(result: ChainResult) -> str:
    """The per-stage table of each chain, its total, and the ratios to the first chain."""
    h, st = result["host"], result["settings"]
    threads = [str(n) for n in st["threads"]]
    lines = [f"whole chain on {h['cpu']}: torch {h['torch']}, onnxruntime {h['onnxruntime']}; "
             f"{st['audio_s']:.1f} s of {st['audio']}, median of {st['runs']} runs after {st['warmup']} warm-up, "
             "every stage of every chain timed side by side", ""]
    head = f"{'stage':<12} {'what':<34} {'runtime':<11} {'params':>9} {'MB':>7} {'GFLOP/s':>8} " \
        + " ".join(f"{'RTF ' + n + ' thr':>10}" for n in threads)
    for c in result["chains"]:
        lines += [f"{c['label']} (runtime {c['runtime']})", head, "-" * len(head)]
        for r in c["stages"] + [{"stage": "total", "what": "", "runtime": "", **c["total"]}]:
            g = r["gflop_per_s"]
            lines.append(f"{r['stage']:<12} {r['what'][:34]:<34} {r['runtime']:<11} {_si(r['params']):>9} "
                         f"{r['bytes'] / 1e6:>7.1f} {'-' if g is None else f'{g:.2f}':>8} "
                         + " ".join(f"{r['rtf'][n]:>10.3f}" for n in threads))
        lines.append("")
    for r in result["ratios"]:
        g = r["gflop_per_s"]
        lines.append(f"{result['chains'][0]['label']} / {r['label']}: {r['params']:.1f}x params, "
                     f"{r['bytes']:.1f}x MB, " + (f"{g:.1f}x GFLOP/s (counted stages), " if g else "")
                     + ", ".join(f"{r['rtf'][n]:.1f}x faster on {n} thread(s)" for n in threads))
    return "\n".join(lines).rstrip()
