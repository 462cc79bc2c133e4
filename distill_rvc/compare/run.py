"""`distill-rvc compare`: the teacher and a student side by side on size, speed, memory and fidelity.

    features and F0 of each clip, once (the teacher's chunking; harvest by default)    clips.py
    -> both models synthesise the same chunks with the same prior noise, NSF noise off
    -> fidelity: log-mel L1, MCD, F0 RMSE / correlation, V/UV (metrics.py), SECS and
       DNSMOS when their extras are installed                                         fidelity.py
    -> speed: synthesizer and pipeline RTF on torch CPU, onnxruntime CPU, the GPU      speed.py
    -> size: params, file bytes, MACs per second; peak memory of a pass                cost.py
    -> the whole chains (encoder + F0 + synthesizer) stage by stage                   whole_chain.py
    -> the verdict against the project's targets, and the recipe to try next          targets.py
    -> report.json, report.md, PNG plots, TensorBoard                                   write.py

With --student-encoder / --student-f0 the student converts with its own chain: its clips'
features come from that encoder and F0 (the same chunking and noise), so fidelity is judged on
the chain the user will run, against the teacher's chain.

A w-okada-interface ONNX student draws its noise inside the graph, so its output cannot be
compared sample by sample: it gets size and speed only, and the report says so.

Not for: the metric definitions (`metrics.py`), conversion of files (`convert.py`), training.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from ..atomic import finite
from ..convert import check_trained_encoder
from ..options import resolve_device
from ..timing import torch_threads
from .clips import clip_features, load_clips, render
from .cost import macs, peak_memory
from .fidelity import measure_fidelity
from .pair import check_inputs, open_pair, student_recipe
from .result import ROLES, CompareResult
from .settings import CompareSettings
from .speed import measure_speed
from .targets import verdict
from .whole_chain import measure_chain, student_inputs
from .write import write

log = logging.getLogger(__name__)


def compare(teacher: str | Path, student: str | Path, audio: str | Path, hubert: str | Path, out: str | Path,
            settings: CompareSettings | None = None, *, progress: bool = False) -> CompareResult:
    """Compare `student` (.pth or .onnx) with `teacher` (.pth) on the clips in `audio`; write the
    report into `out`. Returns what was measured and the files written."""
    from ..features.encoders import open_encoder

    s = (settings or CompareSettings()).check()
    paths = {"teacher": Path(teacher), "student": Path(student)}
    check_inputs(paths["teacher"], paths["student"], Path(audio), Path(hubert))
    stage = _Stages(progress)

    stage("load")
    notes: list[str] = []
    models, fidelity_reason = open_pair(paths["teacher"], paths["student"], s.threads)
    encoder = open_encoder(hubert, "cpu", threads=s.threads)
    own = _student_encoder(models, encoder, Path(hubert), s)  # refused here, before any work
    clips = load_clips(Path(audio), s.max_clips, s.max_clip_s, notes)
    device = resolve_device("auto")
    gpu = device if device.type == "cuda" else None
    sr = models["teacher"].info.sr
    with torch_threads(s.threads):
        stage("features")
        features = clip_features(clips, models["teacher"], encoder, s)
        student_features = _student_features(clips, models["teacher"], encoder, own, Path(hubert), s)
        stage("fidelity")
        outputs = {"teacher": render(features, models["teacher"], s.sid),
                   "student": render(student_features or features, models["student"], s.sid)}
        fidelity, per_clip, comparisons = measure_fidelity(outputs, sr, fidelity_reason, s.extras, notes)
        stage("speed")
        rtf = measure_speed(models, features, encoder, s, gpu, notes)
    stage("whole chain")
    chain = None
    if s.chain:
        first = Path(audio) / clips[0][0] if Path(audio).is_dir() else Path(audio)
        chain = measure_chain(paths, Path(hubert), first, s, notes)
    else:
        notes.append("whole chain not measured: turned off (--no-chain)")
    stage("size and memory")
    measured = {"params": {r: models[r].info.params for r in ROLES},
                "file_bytes": {r: models[r].info.file_bytes for r in ROLES},
                "macs_per_s": macs(models, notes), "peak_mem_bytes": peak_memory(paths, models, s, gpu, notes),
                "rtf": rtf, "fidelity": fidelity}
    line = verdict(measured, student_recipe(models["student"]), fidelity_reason)  # on the numbers as measured
    result = CompareResult(teacher=paths["teacher"], student=paths["student"], out=Path(out), settings=s,
                           **finite(measured), verdict=line, sr=sr, clips=[name for name, _ in clips],
                           audio_s=features.audio_s, per_clip=per_clip, fidelity_reason=fidelity_reason, notes=notes,
                           chain=chain)
    stage("write")
    result.files = write(result, outputs, comparisons)
    stage.close()
    return result


def _student_encoder(models, encoder, hubert: Path, s: CompareSettings):
    """The content encoder the student converts with (`encoder` unless --student-encoder). A
    student `teach --encoder` made is refused any encoder but its own."""
    from ..features.encoders import open_encoder

    path = student_inputs(s, hubert)[0]
    own = encoder if path == hubert else open_encoder(path, "cpu", threads=s.threads)
    check_trained_encoder(models["student"].info, own, "--student-encoder")
    return own


def _student_features(clips, teacher, encoder, own, hubert: Path, s: CompareSettings):
    """The clips' features from the student's own encoder and F0 (the teacher's chunking and
    noise), or None when it converts with the teacher's."""
    import dataclasses

    _, method, model = student_inputs(s, hubert)
    if own is encoder and method == s.f0_method and not s.student_f0:
        return None
    f0 = dataclasses.replace(s, f0_method=method, rmvpe=model if method == "rmvpe" else s.rmvpe,
                             fcpe=model if method == "fcpe" else s.fcpe)
    return clip_features(clips, teacher, own, f0)


class _Stages:
    """The progress bar over compare's seven stages (one step as each ends), and a debug log of
    when each began."""

    def __init__(self, progress: bool):
        from tqdm import tqdm

        self.bar = tqdm(total=7, desc="compare", unit="step", disable=not progress, leave=False)
        self.started = time.perf_counter()
        self.begun = False

    def __call__(self, name: str) -> None:
        if self.begun:
            self.bar.update()
        self.begun = True
        log.debug("compare: %s at %.1f s", name, time.perf_counter() - self.started)
        self.bar.set_description(f"compare: {name}")

    def close(self) -> None:
        self.bar.update()
        self.bar.close()
