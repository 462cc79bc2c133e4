"""`distill-rvc compare`: the teacher and a student side by side on size, speed, memory and fidelity.

    features and F0 of each clip, once (the teacher's chunking; harvest by default)
    -> both models synthesise the same chunks with the same prior noise, NSF noise off
    -> fidelity: log-mel L1, MCD, F0 RMSE / correlation, V/UV (metrics.py), SECS and DNSMOS
       when their extras are installed
    -> speed: synthesizer and pipeline RTF on torch CPU, onnxruntime CPU (each .pth exported
       to the RVC interface in a temporary file), GPU when there is one; medians, models in turns
    -> size: params, file bytes, MACs per second of audio; peak memory: RSS of a fresh process
       per model on CPU (a 10 s pass), max_memory_allocated on a GPU
    -> report.json (keys: params, file_bytes, macs_per_s, peak_mem_bytes, rtf, fidelity,
       verdict; null where not measured), report.md (with the reasons), PNG plots, TensorBoard

The verdict is one line: the student against the project's targets (listed in report.md) and the recipe
to try next. A w-okada-interface ONNX student draws its noise inside the graph, so its output
cannot be compared sample by sample: it gets size and speed only, and the report says so.

Not for: the metric definitions (`metrics.py`), conversion of files (`convert.py`), training.
"""
from __future__ import annotations

import copy
import logging
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import metrics
from ..atomic import _umask, atomic_write, finite, make_folder, write_json, write_text
from ..backends import Backend, TorchBackend, open_backend
from ..timing import cpu_name, side_by_side, timed
from ..convert import ChunkInput, ChunkSizes, Converter, ConvertSettings, Timings, render
from ..errors import DistillRVCError
from ..features.audio import AUDIO_SUFFIXES, load_audio
from ..memory import peak_rss_bytes
from ..onnx.runtime import OrtBackend
from ..timing import torch_threads
from ..options import check_threads

log = logging.getLogger(__name__)

ROLES = ("teacher", "student")
# The project's targets for a student of RVC's v2 40k teacher (stated in full in every report.md, see
# `targets_markdown`); size and speed as ratios so they apply to any teacher
TARGETS = {"size_ratio": 4.0, "speed_ratio": 3.0, "f0_rmse_cents": 20.0, "vuv_error": 0.03, "f0_corr": 0.98,
           "mcd_db": 3.0, "secs": 0.90, "dnsmos_drop": 0.1, "file_mb_fp16": 15.0, "file_mb_fp32": 30.0}
# teach's shipped recipes from the smallest student to the largest, with each one's size (1/x of the teacher)
RECIPES = (("tiny", 25.0), ("2gb", 12.0), ("4gb", 6.0), ("6gb", 3.0))
MEM_SECONDS = 10.0


@dataclass
class CompareSettings:
    f0_method: str = "harvest"
    rmvpe: str | Path | None = None
    transpose: float = 0.0
    sid: int = 0
    max_clips: int = 8
    max_clip_s: float = 20.0  # longer clips are cut (harvest and the teacher are slow)
    plot_clips: int = 3
    threads: int | None = 2
    runs: int = 3
    memory_gb: float = 4.0
    chunks: ChunkSizes | None = None
    ort: bool = True  # time onnxruntime too (exports each .pth to a temporary ONNX file)
    peak_rss: bool = True  # measure peak RSS in a fresh process per model
    mem_seconds: float = MEM_SECONDS  # input length of the memory passes
    extras: bool = True  # SECS and DNSMOS when installed


@dataclass
class CompareResult:
    report: dict[str, Any]
    out: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------ compare
def compare(teacher: str | Path, student: str | Path, audio: str | Path, hubert: str | Path, out: str | Path,
            settings: CompareSettings | None = None, *, progress: bool = False) -> CompareResult:
    """Compare `student` (.pth or .onnx) with `teacher` (.pth) on the clips in `audio`; write the
    report into `out`. Returns the report's data and the files written."""
    from tqdm import tqdm

    from ..checkpoint import load_model
    from ..features.content import load_content_encoder

    s = settings or CompareSettings()
    s.threads = check_threads(s.threads)
    out = Path(out)
    notes: list[str] = []
    teacher, student = Path(teacher), Path(student)
    if teacher.suffix.lower() == ".onnx":
        raise DistillRVCError(f"{teacher}: the teacher must be a .pth (its torch model is the reference)")
    for path, what in ((teacher, "teacher"), (student, "student"), (Path(hubert), "content encoder")):
        if not path.is_file():
            raise DistillRVCError(f"{path}: no such file (the {what})")
    if not Path(audio).exists():
        raise DistillRVCError(f"{audio}: no such file or folder (the clips to compare on)")
    steps = tqdm(total=6, desc="compare", unit="step", disable=not progress, leave=False)

    started = time.perf_counter()

    def step(name: str) -> None:  # noqa: F811 (the progress bar's label, and a debug log of the stage times)
        log.debug("compare: %s at %.1f s", name, time.perf_counter() - started)
        steps.set_description(f"compare: {name}")

    step("load")
    t_model = load_model(teacher)
    models = {"teacher": TorchBackend(copy.deepcopy(t_model), "cpu", deterministic=True, path=teacher)}
    models["student"], fidelity_reason = _open_student(student, s.threads)
    info = {r: b.info for r, b in models.items()}
    _check_pair(info["teacher"], info["student"])
    if fidelity_reason is None and info["student"].inter_channels != info["teacher"].inter_channels:
        fidelity_reason = (f"the student's prior has {info['student'].inter_channels} channels, the teacher's "
                           f"{info['teacher'].inter_channels}: the same noise cannot be fed to both")
    encoder = load_content_encoder(hubert, "cpu")
    clips = _load_clips(Path(audio), s.max_clips, s.max_clip_s, notes)
    audio_s = sum(len(a) for _, a in clips) / 16000
    steps.update()

    with torch_threads(s.threads):
        step("features")
        feature_time = Timings()
        conv = Converter(models["teacher"], encoder, ConvertSettings(
            f0_method=s.f0_method, rmvpe=s.rmvpe, transpose=s.transpose, sid=s.sid, chunks=s.chunks,
            memory_gb=s.memory_gb, seed=0))
        fade = int(round(0.02 * info["teacher"].sr)) // 2 * 2
        chunks = [list(conv.chunks(a, feature_time)) for _, a in clips]
        steps.update()

        step("fidelity")
        outputs = {r: [_render(c, models[r], s.sid, fade) for c in chunks] for r in ROLES}
        fidelity, per_clip, comparisons = _fidelity(outputs, info["teacher"].sr, fidelity_reason, s.extras, notes)
        steps.update()

        step("speed")
        rtf = _speed(models, chunks, feature_time, encoder, clips, audio_s, s, notes)
        steps.update()

    step("size and memory")
    macs = {"teacher": _macs(t_model), "student": _macs(getattr(models["student"], "model", None))}
    if macs["student"] is None:
        notes.append("MACs per second are counted on torch models; the student is an ONNX file")
    peak = _peak_memory(teacher, student, models, s, notes)
    steps.update()

    report = {
        "params": {r: info[r].params for r in ROLES},
        "file_bytes": {r: info[r].file_bytes for r in ROLES},
        "macs_per_s": macs,
        "peak_mem_bytes": peak,
        "rtf": rtf,
        "fidelity": fidelity,
        "verdict": "",
    }
    recipe = _student_recipe(models["student"])
    report["verdict"] = verdict(report, recipe, fidelity_reason)
    report = finite(report)

    step("write")
    files = _write(out, report, outputs, comparisons, per_clip, clips, info, teacher, student, notes,
                   fidelity_reason, s, audio_s)
    steps.update()
    steps.close()
    return CompareResult(report=report, out=out, files=files, notes=notes)


def _open_student(path: Path, threads: int | None) -> tuple[Backend, str | None]:
    """The student's backend, deterministic when its output can be made repeatable, and the reason
    when it cannot."""
    if path.suffix.lower() == ".onnx":
        probe = OrtBackend(path, "cpu", threads=threads)
        if probe.interface == "wokada":
            return probe, ("the student is a w-okada-interface ONNX file, which draws its prior noise inside the "
                           "graph: its output differs from the teacher's by the noise alone. Compare the .pth it "
                           "was exported from, or an --interface rvc export, for fidelity")
        return OrtBackend(path, "cpu", threads=threads, deterministic=True), None
    return open_backend(path, "cpu", deterministic=True), None


def _check_pair(t, s) -> None:
    if (t.sr, t.phone_dim, t.f0) != (s.sr, s.phone_dim, s.f0):
        raise DistillRVCError(
            f"the student ({s.sr} Hz, {s.phone_dim}-d features, {'f0' if s.f0 else 'no f0'}) does not take the "
            f"teacher's inputs or make its output ({t.sr} Hz, {t.phone_dim}-d, {'f0' if t.f0 else 'no f0'}); "
            "compare a student distilled from this teacher")


def _load_clips(audio: Path, max_clips: int, max_s: float, notes: list[str]) -> list[tuple[str, np.ndarray]]:
    if audio.is_dir():
        files = sorted(p for p in audio.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    elif audio.is_file():
        files = [audio]
    else:
        raise DistillRVCError(f"{audio}: no such file or folder")
    if not files:
        raise DistillRVCError(f"{audio}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
    clips = []
    for f in files:
        if len(clips) == max_clips:
            notes.append(f"{len(files) - max_clips} more clip(s) in {audio} were left out (--max-clips {max_clips})")
            break
        try:
            x = load_audio(f, 16000)
        except DistillRVCError as e:
            notes.append(f"skipped {f.name}: {str(e).replace(f'{f}: ', '')}")
            continue
        if len(x) > max_s * 16000:
            notes.append(f"{f.name}: only its first {max_s:g} s were used")
            x = x[: int(max_s * 16000)]
        clips.append((f.relative_to(audio).as_posix() if audio.is_dir() else f.name, x))
    if not clips:
        raise DistillRVCError(f"{audio}: none of the audio files could be used ({notes[0]})")
    return clips


def _render(chunks: list[ChunkInput], backend: Backend, sid: int, fade: int) -> np.ndarray:
    return np.concatenate(list(render(chunks, backend, sid, fade)))


# ----------------------------------------------------------------------------------- fidelity
def _fidelity(outputs: dict[str, list[np.ndarray]], sr: int, reason: str | None, extras: bool,
              notes: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]], list[metrics.ClipComparison]]:
    keys = ("log_mel_l1", "mcd_db", "f0_rmse_cents", "f0_corr", "vuv_error", "secs", "dnsmos")
    if reason is not None:
        notes.append(f"fidelity not measured: {reason}")
        return {k: None for k in keys}, [], []
    pairs = list(zip(outputs["teacher"], outputs["student"]))
    comparisons = [metrics.compare_clip(t, s_, sr) for t, s_ in pairs]
    fid: dict[str, Any] = metrics.pooled(comparisons)
    per_clip = [metrics.pooled([c]) for c in comparisons]
    available = metrics.extras_available() if extras else {"secs": False, "dnsmos": False}
    if available["secs"]:
        values = [metrics.secs(t, s_, sr) for t, s_ in pairs]
        fid["secs"] = float(np.mean(values))
        for row, v in zip(per_clip, values):
            row["secs"] = v
    else:
        fid["secs"] = None
        notes.append("SECS not measured: " + ("resemblyzer is not installed (pip install 'distill-rvc[secs]')"
                                              if extras else "optional metrics were turned off"))
    if available["dnsmos"]:
        t_mos = [metrics.dnsmos_ovrl(t, sr) for t, _ in pairs]
        s_mos = [metrics.dnsmos_ovrl(s_, sr) for _, s_ in pairs]
        fid["dnsmos"] = {"teacher": float(np.mean(t_mos)), "student": float(np.mean(s_mos)),
                         "drop": float(np.mean(t_mos) - np.mean(s_mos))}
    else:
        fid["dnsmos"] = None
        notes.append("DNSMOS not measured: " + ("speechmos is not installed (pip install 'distill-rvc[dnsmos]')"
                                                if extras else "optional metrics were turned off"))
    return {k: fid.get(k) for k in keys}, per_clip, comparisons


# -------------------------------------------------------------------------------------- speed
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


def _speed(models: dict[str, Backend], chunks, feature_time: Timings, encoder, clips, audio_s: float,
           s: CompareSettings, notes: list[str]) -> dict[str, Any]:
    """rtf[role][runtime] = {"synthesizer": x, "pipeline": y} (None where not measured)."""
    rtf: dict[str, Any] = {r: {"cpu_torch": None, "cpu_ort": None, "gpu": None} for r in ROLES}
    cpu_features = (feature_time.f0 + feature_time.content) / audio_s

    def rows(runtime: str, backends: dict[str, Backend], features_rtf: float) -> None:
        medians = side_by_side([timed(_synth_all(b, chunks, s.sid), b.synchronize) for b in backends.values()],
                               s.runs, warmup=1)
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

    if torch.cuda.is_available():
        gpu, reason = _gpu_models(models)
        features = _gpu_feature_rtf(encoder, clips, feature_time, audio_s, models["teacher"].info.version)
        rows("gpu", gpu, features)
        if reason:
            notes.append(f"gpu of the student not measured: {reason}")
    else:
        notes.append("gpu not measured: torch sees no CUDA GPU on this machine")
    return rtf


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


def _gpu_models(models: dict[str, Backend]) -> tuple[dict[str, Backend], str | None]:
    out: dict[str, Backend] = {}
    reason = None
    for role, b in models.items():
        if isinstance(b, TorchBackend):
            out[role] = TorchBackend(copy.deepcopy(b.model), "cuda", deterministic=True, path=b.info.path)
        else:
            try:
                out[role] = OrtBackend(b.path, "cuda")
            except DistillRVCError as e:
                reason = str(e)
    return out, reason


def _gpu_feature_rtf(encoder, clips, feature_time: Timings, audio_s: float, version: str) -> float:
    """Content features on the GPU (timed once per clip) plus the CPU-bound F0 time."""
    gpu_encoder = copy.deepcopy(encoder).to("cuda")
    gpu_encoder.extract(clips[0][1][:16000], version)  # warm-up
    start = time.perf_counter()
    for _, a in clips:
        gpu_encoder.extract(a, version)
    torch.cuda.synchronize()
    return (time.perf_counter() - start + feature_time.f0) / audio_s


# --------------------------------------------------------------------------- size and memory
def _macs(model) -> int | None:
    """Multiply-accumulates per second of audio (teach's FlopCounterMode count on fake tensors)."""
    if model is None:
        return None
    from ..memory import macs_per_second

    return int(macs_per_second(model.config, arch=model.arch))


def _peak_memory(teacher: Path, student: Path, models: dict[str, Backend], s: CompareSettings,
                 notes: list[str]) -> dict[str, Any]:
    peak: dict[str, Any] = {r: {"cpu_rss": None, "gpu": None} for r in ROLES}
    if s.peak_rss:
        for role, (rss, reason) in zip(ROLES, peak_rss([teacher, student], s.threads, s.mem_seconds)):
            peak[role]["cpu_rss"] = rss
            if reason:
                notes.append(f"peak RSS of the {role} not measured: {reason}")
    else:
        notes.append("peak RSS not measured: turned off")
    if torch.cuda.is_available():
        for role, b in models.items():
            if isinstance(b, TorchBackend):
                gpu = TorchBackend(copy.deepcopy(b.model), "cuda", deterministic=True)
                from ..timing import synthetic_inputs

                x = synthetic_inputs(*gpu.info.widths, s.mem_seconds)
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                gpu.run(x["phone"], x["pitch"], x["pitchf"], 0, x["noise"])
                peak[role]["gpu"] = int(torch.cuda.max_memory_allocated())
                del gpu
                torch.cuda.empty_cache()
            else:
                notes.append(f"GPU memory of the {role} not measured: onnxruntime's allocator is not visible to torch")
    return peak


def peak_rss(models: list[str | Path], threads: int | None = 2, seconds: float = MEM_SECONDS
             ) -> list[tuple[int | None, str | None]]:
    """For each model: (bytes, None) by which the peak RSS of a fresh process grows when it loads
    the model and converts `seconds` of synthetic input (torch and onnxruntime already imported:
    their own footprint is left out), or (None, why not). One process per model, side by side."""
    import multiprocessing as mp

    if peak_rss_bytes() is None:
        return [(None, "this OS does not report a process's peak memory (no getrusage)")] * len(models)
    ctx = mp.get_context("spawn")
    jobs = []
    for model in models:
        queue = ctx.Queue()
        proc = ctx.Process(target=_rss_child, args=(str(model), threads, seconds, queue))
        proc.start()
        jobs.append((proc, queue))
    results = []
    for proc, queue in jobs:
        try:
            results.append(queue.get(timeout=600))
        except Exception:
            results.append((None, "the measuring process did not answer"))
        proc.join(timeout=30)
    return results


def _rss_child(model: str, threads: int | None, seconds: float, queue) -> None:
    try:
        try:
            import onnxruntime  # noqa: F401 (imported first: the runtimes are the baseline, not the model)
        except ImportError:
            pass
        from ..timing import synthetic_inputs
        if threads:
            torch.set_num_threads(threads)
        base = _rss()
        backend = open_backend(model, "cpu", threads=threads)
        x = synthetic_inputs(*backend.info.widths, seconds)
        backend.run(x["phone"], x["pitch"], x["pitchf"], 0, x["noise"])
        queue.put((_peak_rss() - base, None))
    except Exception as e:  # reported, not raised: the parent goes on without this number
        queue.put((None, f"{type(e).__name__}: {str(e)[:120]}"))


def _proc_status(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return None


def _rss() -> int:
    """The resident set now; on Linux the peak is also reset here (clear_refs 5), so that the
    imports' own peak does not hide a smaller model's."""
    now = _proc_status("VmRSS")
    if now is not None:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")
            return now
        except OSError:
            pass
    return _peak_rss()  # no reset possible: growth of the lifetime peak (0 if the imports peaked higher)


def _peak_rss() -> int:
    peak = _proc_status("VmHWM")
    return peak if peak is not None else peak_rss_bytes()


def _student_recipe(backend: Backend) -> str | None:
    ckpt = getattr(getattr(backend, "model", None), "checkpoint", None)
    recipe = ckpt.metadata.get("recipe") if ckpt is not None else None
    return recipe if isinstance(recipe, str) else None


# ------------------------------------------------------------------------------------ verdict
def _best_rtf(rtf_role: dict[str, Any]) -> tuple[str, float] | None:
    for runtime in ("cpu_ort", "cpu_torch"):
        row = rtf_role.get(runtime)
        if row:
            return runtime, row["synthesizer"]
    return None


def verdict(report: dict[str, Any], recipe: str | None = None, fidelity_reason: str | None = None) -> str:
    """One line: the student against TARGETS and the recipe to try next."""
    p = report["params"]
    size = p["teacher"] / p["student"] if p["student"] else None
    speed, runtime = None, None
    t, st = _best_rtf(report["rtf"]["teacher"]), _best_rtf(report["rtf"]["student"])
    if t and st and t[0] == st[0]:
        runtime, speed = t[0], t[1] / st[1]
    elif report["rtf"]["teacher"].get("cpu_torch") and report["rtf"]["student"].get("cpu_ort"):
        runtime, speed = "mixed", report["rtf"]["teacher"]["cpu_torch"]["synthesizer"] / \
            report["rtf"]["student"]["cpu_ort"]["synthesizer"]

    quality_misses, quality_known = _quality_misses(report["fidelity"])
    lean_misses = []
    if size is not None and size < TARGETS["size_ratio"]:
        lean_misses.append(f"{size:.1f}x smaller < {TARGETS['size_ratio']:g}x")
    if speed is not None and speed < TARGETS["speed_ratio"]:
        lean_misses.append(f"{speed:.1f}x faster < {TARGETS['speed_ratio']:g}x")
    mb = (report["file_bytes"]["student"] or 0) / 1e6
    if mb > TARGETS["file_mb_fp32"]:
        lean_misses.append(f"file {mb:.1f} MB > {TARGETS['file_mb_fp32']:g} MB")

    where = {"cpu_ort": "onnxruntime CPU", "cpu_torch": "torch CPU", "mixed": "student ONNX vs teacher torch"}
    lean = (f"{size:.1f}x smaller" if size else "size unknown") + (
        f", {speed:.1f}x faster ({where[runtime]})" if speed else ", speed not measured")
    current = recipe or _recipe_by_size(size)
    if fidelity_reason is not None:
        return (f"SIZE/SPEED ONLY: {lean}; fidelity not measured ({fidelity_reason.split(':')[0]}), so compare the "
                ".pth student (or an --interface rvc export) before trusting it.")
    if not quality_known:
        return f"UNDECIDED: {lean}; no fidelity metric could be computed (no voiced frames in the clips?)."
    if quality_misses:
        bigger = _neighbour(current, +1)
        advice = (f"next: the {bigger} recipe (a wider student), or more steps of {current}" if bigger
                  else f"next: more steps of {current}, or prune the teacher instead of distilling")
        return f"FAIL: {'; '.join(quality_misses)} ({lean}); {advice}."
    if lean_misses:
        smaller = _neighbour(current, -1)
        advice = (f"next: the {smaller} recipe (a smaller student)" if smaller
                  else "next: prune it (distill-rvc prune) or export it to ONNX")
        return f"NOT LEAN ENOUGH: within every quality target, but {'; '.join(lean_misses)}; {advice}."
    smaller = _neighbour(current, -1)
    return (f"PASS: {lean} and within every measured quality target; "
            + (f"for more speed try the {smaller} recipe." if smaller else "export it with distill-rvc export."))


def _quality_misses(f: dict[str, Any]) -> tuple[list[str], bool]:
    checks = [("mcd_db", "MCD {:.2f} dB > {:g}", lambda v, lim: v > lim),
              ("f0_rmse_cents", "F0 RMSE {:.1f} cents > {:g}", lambda v, lim: v > lim),
              ("vuv_error", "V/UV error {:.1%} > {:.0%}", lambda v, lim: v > lim),
              ("f0_corr", "F0 correlation {:.3f} < {:g}", lambda v, lim: v < lim),
              ("secs", "SECS {:.3f} < {:g}", lambda v, lim: v < lim)]
    misses, known = [], False
    for key, text, bad in checks:
        v = f.get(key)
        if v is None:
            continue
        known = True
        if bad(v, TARGETS[key]):
            misses.append(text.format(v, TARGETS[key]))
    dns = f.get("dnsmos")
    if dns and dns.get("drop") is not None and dns["drop"] > TARGETS["dnsmos_drop"]:
        misses.append(f"DNSMOS drop {dns['drop']:.2f} > {TARGETS['dnsmos_drop']:g}")
    return misses, known


def _recipe_by_size(size: float | None) -> str:
    if not size:
        return "4gb"
    return min(RECIPES, key=lambda r: abs(math.log(r[1] / size)))[0]


def _neighbour(recipe: str, step: int) -> str | None:
    """The next recipe up (+1, a larger student) or down (-1); cpu trains the 2gb student on a CPU."""
    names = [r for r, _ in RECIPES]
    name = "2gb" if recipe == "cpu" else recipe
    if name not in names:
        return None
    i = names.index(name) + step
    return names[i] if 0 <= i < len(names) else None


# -------------------------------------------------------------------------------------- writing
def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)[:40]


def _write(out: Path, report, outputs, comparisons, per_clip, clips, info, teacher: Path, student: Path,
           notes: list[str], fidelity_reason, s: CompareSettings, audio_s: float) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    make_folder(out)
    sr = info["teacher"].sr
    files = [write_json(out / "report.json", report)]
    figures: list[tuple[str, Any, Path]] = []
    for i, (name, _) in enumerate(clips[: s.plot_clips]):
        fig = _mel_figure(plt, name, outputs["teacher"][i], outputs["student"][i], sr)
        figures.append((f"mel/{i}", fig, out / f"mel_{i}_{_slug(name)}.png"))
        if comparisons:
            fig = _f0_figure(plt, name, comparisons[i], s.f0_method)
            figures.append((f"f0/{i}", fig, out / f"f0_{i}_{_slug(name)}.png"))
    figures.append(("speed_size", _speed_size_figure(plt, report), out / "speed_size.png"))
    for _, fig, path in figures:
        files.append(atomic_write(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=100)))
    md = format_markdown(report, info, teacher, student, clips, per_clip, notes, fidelity_reason, s, audio_s,
                         [p.name for _, _, p in figures])
    files.append(write_text(out / "report.md", md))
    files.append(_tensorboard(out, report, outputs, clips, sr, figures, md))
    for _, fig, _ in figures:
        plt.close(fig)
    return files


def _mel_figure(plt, name: str, teacher: np.ndarray, student: np.ndarray, sr: int):
    mel = metrics._mel(sr)
    with torch.no_grad():
        m = mel(torch.from_numpy(np.stack([teacher, student]).astype(np.float32))).numpy()
    fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    lo, hi = float(m.min()), float(m.max())
    for ax, spec, who in zip(axes, m, ("teacher", "student")):
        im = ax.imshow(spec, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma",
                       extent=(0, spec.shape[1] / 100, 0, spec.shape[0]))
        ax.set_ylabel(f"{who}\nmel bin")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes, label="ln mel")
    fig.suptitle(f"{name}: log-mel, teacher vs student")
    return fig


def _f0_figure(plt, name: str, c: metrics.ClipComparison, f0_method: str = "harvest"):
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for f0, who, style in ((c.teacher_f0, "teacher", "-"), (c.student_f0, "student", "--")):
        y = np.where(f0 > 0, f0, np.nan)  # gaps where unvoiced (a plot, not a number)
        ax.plot(np.arange(len(f0)) / 100, y, style, label=who, linewidth=1.2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("F0 of the output (Hz)")
    ax.legend()
    # the outputs' F0 is always measured with harvest (metrics.py); --f0 chose the inputs' F0
    ax.set_title(f"{name}: F0 of the two outputs (converted with --f0 {f0_method}; measured with harvest)")
    fig.tight_layout()
    return fig


def _speed_size_figure(plt, report):
    panels = [("parameters (M)", [(report["params"][r] or 0) / 1e6 for r in ROLES]),
              ("file (MB)", [(report["file_bytes"][r] or 0) / 1e6 for r in ROLES]),
              ("GMAC per s of audio", [(report["macs_per_s"][r] or 0) / 1e9 for r in ROLES])]
    for runtime in ("cpu_torch", "cpu_ort", "gpu"):
        vals = [report["rtf"][r].get(runtime) for r in ROLES]
        if any(vals):
            panels.append((f"RTF {runtime} (synth)", [v["synthesizer"] if v else 0 for v in vals]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.5))
    for ax, (title, vals) in zip(np.atleast_1d(axes), panels):
        ax.bar(list(ROLES), vals, color=["#888888", "#2a7ab0"])
        ax.set_title(title, fontsize=10)
        for x, v in enumerate(vals):
            ax.annotate(f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=8)
    fig.suptitle("teacher vs student: size and speed (lower is better)")
    fig.tight_layout()
    return fig


def _tensorboard(out: Path, report, outputs, clips, sr: int, figures, md: str) -> Path:
    """TensorBoard events in out/tensorboard: the clips' audio side by side, the plots, the report.
    Written into a temporary folder that replaces the old one at the end, so it appears whole."""
    from torch.utils.tensorboard import SummaryWriter

    final = out / "tensorboard"
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".tensorboard.", dir=out))
    except OSError as e:
        raise DistillRVCError(f"cannot write {final}: {e.strerror or e}") from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; the folder follows the umask like any other
        writer = SummaryWriter(str(tmp))
        for i, (name, _) in enumerate(clips):
            for role in ROLES:
                audio = np.clip(outputs[role][i], -1.0, 1.0)
                writer.add_audio(f"clip_{i}/{role}", torch.from_numpy(audio)[None], 0, sr)
            writer.add_text(f"clip_{i}/name", name, 0)
        for tag, fig, _ in figures:
            writer.add_figure(tag, fig, 0, close=False)
        writer.add_text("report", md, 0)
        writer.add_text("verdict", report["verdict"], 0)
        writer.close()
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DistillRVCError(f"cannot write {final}: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# --------------------------------------------------------------------------------- markdown
def targets_markdown() -> list[str]:
    """The verdict's targets, stated in the report itself (with where they come from)."""
    t = TARGETS
    return ["", "## Targets", "",
            "distill-rvc's targets for a student of RVC's v2 40k teacher (the verdict checks these; they are "
            "defined in distill-rvc, `distill_rvc/report.py`, TARGETS):", "",
            f"- size: at least {t['size_ratio']:g}x fewer parameters than the teacher, and a file of at most "
            f"{t['file_mb_fp32']:g} MB in fp32 ({t['file_mb_fp16']:g} MB in fp16)",
            f"- speed: the synthesizer at least {t['speed_ratio']:g}x faster than the teacher's",
            f"- MCD at most {t['mcd_db']:g} dB; F0 RMSE at most {t['f0_rmse_cents']:g} cents; F0 correlation at "
            f"least {t['f0_corr']:g}; V/UV error at most {100 * t['vuv_error']:g} %",
            f"- SECS (speaker similarity) at least {t['secs']:g}; DNSMOS at most {t['dnsmos_drop']:g} below the "
            "teacher's"]


def _fmt(v: Any, spec: str = ".3g", unit: str = "") -> str:
    return "not measured" if v is None else f"{v:{spec}}{unit}"


def _ratio(t: Any, s: Any) -> str:
    return f"{t / s:.2f}x" if t and s else "-"


def format_markdown(report, info, teacher: Path, student: Path, clips, per_clip, notes: list[str],
                    fidelity_reason, s: CompareSettings, audio_s: float, images: list[str]) -> str:
    r = report
    lines = [f"# {student.name} vs {teacher.name}", "",
             f"**Verdict:** {r['verdict']}", "",
             f"{len(clips)} clip(s), {audio_s:.1f} s of audio; {s.f0_method} F0; {info['teacher'].sr} Hz; "
             f"{s.threads or 'all'} CPU thread(s) on {cpu_name()}; torch {torch.__version__}. Speeds are medians "
             f"of {s.runs} runs, the models taking turns.", "",
             "## Size and cost", "", "| | teacher | student | teacher / student |", "|---|---|---|---|"]
    for key, label, scale, unit in (("params", "parameters", 1e6, " M"), ("file_bytes", "file", 1e6, " MB"),
                                    ("macs_per_s", "MACs per second of audio", 1e9, " G")):
        t, st = r[key]["teacher"], r[key]["student"]
        lines.append(f"| {label} | {_fmt(t and t / scale, '.3f', unit)} | {_fmt(st and st / scale, '.3f', unit)} | "
                     f"{_ratio(t, st)} |")
    for kind, label in (("cpu_rss", f"peak RSS growth, {s.mem_seconds:g} s pass (CPU)"),
                        ("gpu", f"max_memory_allocated, {s.mem_seconds:g} s pass (GPU)")):
        t, st = r["peak_mem_bytes"]["teacher"][kind], r["peak_mem_bytes"]["student"][kind]
        lines.append(f"| {label} | {_fmt(t and t / 1e6, '.1f', ' MB')} | {_fmt(st and st / 1e6, '.1f', ' MB')} | "
                     f"{_ratio(t, st)} |")
    lines += ["", "## Real-time factor (seconds of compute per second of audio; lower is faster)", "",
              "Synthesizer: one pass over each clip's frames. Pipeline: plus the content features and F0 of the "
              "clips as `convert` computes them (with RVC's context pads).", "",
              "| runtime | teacher synth | student synth | speed-up | teacher pipeline | student pipeline |",
              "|---|---|---|---|---|---|"]
    for runtime in ("cpu_torch", "cpu_ort", "gpu"):
        t, st = r["rtf"]["teacher"][runtime], r["rtf"]["student"][runtime]
        lines.append(f"| {runtime} | {_fmt(t and t['synthesizer'], '.3f')} | {_fmt(st and st['synthesizer'], '.3f')}"
                     f" | {_ratio(t and t['synthesizer'], st and st['synthesizer'])} | "
                     f"{_fmt(t and t['pipeline'], '.3f')} | {_fmt(st and st['pipeline'], '.3f')} |")
    f = r["fidelity"]
    dns = f["dnsmos"]
    lines += ["", "## Fidelity of the student to the teacher (same inputs, same noise)", ""]
    if fidelity_reason:
        lines += [f"Not measured: {fidelity_reason}.", ""]
    lines += ["| metric | value | target |", "|---|---|---|",
              f"| log-mel L1 (ln) | {_fmt(f['log_mel_l1'], '.3f')} | - |",
              f"| MCD (dB, c1-c24, teacher-voiced frames) | {_fmt(f['mcd_db'], '.2f')} | <= {TARGETS['mcd_db']:g} |",
              f"| F0 RMSE (cents, frames voiced in both) | {_fmt(f['f0_rmse_cents'], '.1f')} | "
              f"<= {TARGETS['f0_rmse_cents']:g} |",
              f"| F0 correlation | {_fmt(f['f0_corr'], '.3f')} | >= {TARGETS['f0_corr']:g} |",
              f"| V/UV disagreement | {_fmt(f['vuv_error'] and 100 * f['vuv_error'], '.1f', ' %')} | "
              f"<= {100 * TARGETS['vuv_error']:g} % |",
              f"| SECS (resemblyzer cosine) | {_fmt(f['secs'], '.3f')} | >= {TARGETS['secs']:g} |",
              f"| DNSMOS OVRL teacher / student | " + (f"{dns['teacher']:.2f} / {dns['student']:.2f} (drop "
                                                       f"{dns['drop']:.2f})" if dns else "not measured")
              + f" | drop <= {TARGETS['dnsmos_drop']:g} |"]
    if per_clip:
        lines += ["", "| clip | log-mel L1 | MCD dB | F0 RMSE cents | V/UV % |", "|---|---|---|---|---|"]
        for (name, _), row in zip(clips, per_clip):
            lines.append(f"| {name} | {_fmt(row['log_mel_l1'], '.3f')} | {_fmt(row['mcd_db'], '.2f')} | "
                         f"{_fmt(row['f0_rmse_cents'], '.1f')} | "
                         f"{_fmt(row['vuv_error'] and 100 * row['vuv_error'], '.1f')} |")
    if notes:
        lines += ["", "## Not measured, and why", ""] + [f"- {n}" for n in notes]
    lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in images]
    lines += targets_markdown()
    lines += ["", "TensorBoard: `tensorboard --logdir tensorboard` in this folder.", ""]
    return "\n".join(lines)
