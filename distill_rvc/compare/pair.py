"""The two models `compare` puts side by side, opened as backends and checked to be a pair.

    check_inputs(...)        the teacher a .pth, every input file there
    open_pair(teacher, ...)  role -> CPU backend, deterministic where it can be, and the reason
                             fidelity cannot be measured (None when it can)
    student_recipe(backend)  the teach recipe the student's file names, if any

A pair takes the same inputs (sample rate, feature width, F0 or not); a student of another
teacher is refused. Not here: timing or measuring them (speed.py, cost.py, fidelity.py).
"""
from __future__ import annotations

from pathlib import Path

from ..backends import Backend, ModelInfo, TorchBackend, open_backend
from ..errors import DistillRVCError
from ..onnx.runtime import OrtBackend


def check_inputs(teacher: Path, student: Path, audio: Path, hubert: Path) -> None:
    if teacher.suffix.lower() == ".onnx":
        raise DistillRVCError(f"{teacher}: the teacher must be a .pth (its torch model is the reference)")
    for path, what in ((teacher, "teacher"), (student, "student"), (hubert, "content encoder")):
        if not path.is_file():
            raise DistillRVCError(f"{path}: no such file (the {what})")
    if not audio.exists():
        raise DistillRVCError(f"{audio}: no such file or folder (the clips to compare on)")


def open_pair(teacher: Path, student: Path, threads: int | None) -> tuple[dict[str, Backend], str | None]:
    """{"teacher": ..., "student": ...} on the CPU, and why their outputs cannot be compared
    sample by sample (None when they can)."""
    from ..checkpoint import load_model

    models: dict[str, Backend] = {"teacher": TorchBackend(load_model(teacher), "cpu", deterministic=True,
                                                          path=teacher)}
    models["student"], reason = _open_student(student, threads)
    t, s = models["teacher"].info, models["student"].info
    _check_pair(t, s)
    if reason is None and s.inter_channels != t.inter_channels:
        reason = (f"the student's prior has {s.inter_channels} channels, the teacher's "
                  f"{t.inter_channels}: the same noise cannot be fed to both")
    return models, reason


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


def _check_pair(t: ModelInfo, s: ModelInfo) -> None:
    if (t.sr, t.phone_dim, t.f0) != (s.sr, s.phone_dim, s.f0):
        raise DistillRVCError(
            f"the student ({s.sr} Hz, {s.phone_dim}-d features, {'f0' if s.f0 else 'no f0'}) does not take the "
            f"teacher's inputs or make its output ({t.sr} Hz, {t.phone_dim}-d, {'f0' if t.f0 else 'no f0'}); "
            "compare a student distilled from this teacher")


def student_recipe(backend: Backend) -> str | None:
    """The recipe a teach-made .pth records in its metadata (None for ONNX files and others)."""
    ckpt = backend.model.checkpoint if isinstance(backend, TorchBackend) else None
    recipe = ckpt.metadata.get("recipe") if ckpt is not None else None
    return recipe if isinstance(recipe, str) else None
