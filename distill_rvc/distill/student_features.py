"""The student pipeline's own content features: `teach --encoder encoder.pt` (issue 14, item 4).

    student_features(encoder_path, dataset, folder, teacher, device, ...) -> StudentFeatures
    StudentFeatures[i] -> StudentSegment: the cache's Segment plus `.student_phone` [T, C]

What a user runs is the small content encoder feeding the student synthesizer, so that chain
is what gets distilled: the teacher keeps hearing the cache's HuBERT features, the student
hears the small encoder's features of the same audio, frame for frame (Batch.for_student),
and the losses compare what the two make (audio, prior, latent, decoder maps), never the
features themselves. The function-preserving init calibrates the student on its own features
too (refit.student_phone): its fits map what the student will hear to what the teacher does.

Design: the features are computed once, at the start of `teach`, from each segment's stored
audio, not written by `prepare` as a second stream. The encoder is a choice of the run, not
of the data: one cache (possibly shared or read-only) serves runs with HuBERT and with any
number of encoders, and the small encoder costs about 0.23 GFLOP per second of audio, seconds
for an hour of speech. The audio is the same window HuBERT heard: `prepare` stores the
window at the model's rate and gave HuBERT `resample(window, sr, 16000)`, which is exactly
what the encoder gets here (features.audio.resample), so the frame counts agree. A cache
without audio is refused, saying how to make one with it.

Layout, under the run folder (RUN/student_features/<key>/), memory-mapped like the teacher
cache; <key> is a digest of the encoder file and of the segments' ids and audio, so another
encoder or another dataset gets another folder (older ones are removed):

    key.json            the encoder (file, sha256, kind, version, dim) and the dataset it was made for
    <segment id>.npy    float32 [T_h, C] at 50 Hz, T_h = the cache's HuBERT frames; written atomically,
                        so a killed run recomputes only the segments it had not written

Lengths: the encoder gives floor((N - 400) / 320) + 1 frames for N samples at 16 kHz. A
difference of one frame from the cache's HuBERT count (a resampling round trip, an import
whose features were made from slightly longer audio) is trimmed, or padded by repeating the
last frame; more is refused: those features were not made from this audio.

Not here: the encoder itself (encoder/, features/encoders.py) or how the batches use the
features (batches.py, teacher_cache.py, evaluate.py, function_init.py).
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write, make_folder, write_json
from ..data.dataset import Segment
from ..errors import DistillRVCError
from ..features.audio import resample
from ..safe_load import file_sha256

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ENCODER_RATE = 16000
MAX_FRAME_DIFF = 1  # frames of disagreement with the cache's HuBERT features that are trimmed or padded
_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")
PREPARE_HINT = ("prepare one that does: `distill-rvc prepare AUDIO_DIR --hubert hubert_base.pt --version {v} "
                "--sr {sr} --out DIR` stores each segment's audio (so does `import-rvc-logs` from 0_gt_wavs)")


@dataclass
class StudentSegment(Segment):
    """A cache segment with the student's own content features beside the teacher's `phone`."""

    student_phone: torch.Tensor | None = None  # [T, C] float32 at 100 frames/s, repeated x2 as `phone`


class StudentFeatures:
    """`dataset` with each segment's student features (memory-mapped from `folder`); everything
    else (frames, segments, check, sample_rate, ...) is the wrapped dataset's."""

    def __init__(self, dataset, folder: Path, encoder: dict[str, Any], seconds: float = 0.0, computed: int = 0):
        self.base, self.folder, self.encoder = dataset, Path(folder), encoder
        self.seconds, self.computed = seconds, computed  # this run's extraction: time and segments

    def __getattr__(self, name: str):
        if name == "base":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.base, name)

    def __len__(self) -> int:
        return len(self.base)

    def path(self, segment_id: str) -> Path:
        return self.folder / f"{_file_id(segment_id)}.npy"

    def __getitem__(self, i: int) -> StudentSegment:
        seg = self.base[i]
        try:
            feats = np.load(self.path(seg.id), mmap_mode="r")
        except (OSError, ValueError, EOFError) as e:
            raise DistillRVCError(f"{self.folder}: the student features of segment {seg.id} are damaged ({e}); "
                                  "delete the folder to compute them again") from None
        t = seg.phone.shape[0]
        own = np.repeat(np.asarray(feats[: (t + 1) // 2], dtype=np.float32), 2, axis=0)[:t]
        return StudentSegment(seg.id, seg.phone, seg.pitch, seg.pitchf, seg.audio, torch.from_numpy(own))

    def line(self) -> str:
        """The `encoder` line of format_teach."""
        e = self.encoder
        done = (f"{self.computed} segment(s) encoded in {self.seconds:.0f} s" if self.computed
                else "features from an earlier run")
        return (f"encoder    the student hears {e['file']} ({e['kind']}, {e['version']} {e['dim']}-d; {done}), "
                "the teacher the cache's features")


def student_features(encoder_path: str | Path, dataset, folder: str | Path, teacher, device: str | torch.device = "cpu",
                     *, main: bool = True, resume_check: bool = False, progress: bool = True) -> StudentFeatures:
    """`dataset` with the features of the content encoder at `encoder_path` for every segment,
    computed once into `folder`/<key>/ (module docstring) on `device`.

    Refused in one line: an encoder whose version or width is not the teacher's, a dataset
    without audio, a segment whose encoder frames differ from its HuBERT frames by more than one.
    `main`: this process may remove other encoders' folders (torchrun's rank 0).
    `resume_check`: the run is being resumed, so features of another encoder in `folder` are refused.
    """
    from tqdm.auto import tqdm

    from ..features.encoders import open_encoder

    encoder_path, folder = Path(encoder_path), Path(folder)
    cfg = teacher.config
    encoder = open_encoder(encoder_path, device=str(device))
    try:
        dim = encoder.dim(cfg.version)
    except DistillRVCError as e:
        raise DistillRVCError(f"{encoder_path}: {e} (the teacher is {cfg.version})") from None
    if dim != cfg.phone_dim:
        raise DistillRVCError(f"{encoder_path}: the encoder gives {dim}-d features but the teacher ({cfg.version}) "
                              f"takes {cfg.phone_dim}-d: train one with `distill-rvc teach-encoder --version "
                              f"{cfg.version}`")
    has_audio = getattr(dataset, "has_audio", None)
    if has_audio is None:  # an in-memory dataset: look
        has_audio = all(dataset[i].audio is not None for i in range(len(dataset)))
    if not has_audio:
        raise DistillRVCError(f"{getattr(dataset, 'root', 'the dataset')}: teach --encoder runs the encoder on each "
                              "segment's audio, and this cache holds none; "
                              + PREPARE_HINT.format(v=cfg.version, sr=cfg.sr))
    sr = int(getattr(dataset, "sample_rate", cfg.sr))
    info = {"file": encoder_path.name, "sha256": file_sha256(encoder_path), "kind": encoder.kind,
            "version": cfg.version, "dim": dim}
    if resume_check:
        _refuse_other_encoder(folder, info)
    key = _key(info, dataset)
    here = folder / key[:16]
    make_folder(here)
    if main:
        for old in folder.iterdir():
            if old.is_dir() and old != here:
                shutil.rmtree(old, ignore_errors=True)
                log.info("removed the student features of another encoder or dataset: %s", old)
    write_json(here / "key.json", {"format_version": FORMAT_VERSION, "encoder": info, "key": key,
                                   "segments": len(dataset)})
    out = StudentFeatures(dataset, here, info)
    todo = [i for i in range(len(dataset)) if not out.path(_segment_id(dataset, i)).is_file()]
    began = time.perf_counter()
    for i in tqdm(todo, disable=not progress or not todo, desc="student features", unit="segment"):
        sid = _segment_id(dataset, i)
        feats = _encode(encoder, np.asarray(_source_audio(dataset, i), dtype=np.float32), sr, cfg.version, sid)
        feats = _fit_length(feats, _hubert_frames(dataset, i), sid, encoder_path)
        atomic_write(out.path(sid), lambda tmp, a=feats: _save(tmp, a))
    out.seconds, out.computed = time.perf_counter() - began, len(todo)
    if todo:
        log.info("student features: %d segment(s) through %s in %.1f s -> %s", len(todo), encoder_path.name,
                 out.seconds, here)
    del encoder
    return out


def _encode(encoder, audio: np.ndarray, sr: int, version: str, segment_id: str) -> np.ndarray:
    """A segment's audio at the model's rate -> the encoder's features [T_e, C] at 50 Hz."""
    audio_16k = resample(audio, sr, ENCODER_RATE)
    if len(audio_16k) < encoder.min_samples:
        raise DistillRVCError(f"segment {segment_id}: {len(audio_16k)} samples at 16 kHz, shorter than one content "
                              f"frame ({encoder.min_samples})")
    return np.asarray(encoder.extract(audio_16k, version), dtype=np.float32)


def _fit_length(feats: np.ndarray, frames: int, segment_id: str, encoder_path: Path) -> np.ndarray:
    """[T_e, C] -> [frames, C]: one frame trimmed or the last one repeated; more is refused."""
    diff = feats.shape[0] - frames
    if abs(diff) > MAX_FRAME_DIFF:
        raise DistillRVCError(f"segment {segment_id}: {encoder_path.name} gives {feats.shape[0]} frames for its audio "
                              f"but the cache holds {frames} frames of content features: they were not computed from "
                              "this audio at 50 frames/s; prepare the data again with `distill-rvc prepare`")
    if diff > 0:
        return np.ascontiguousarray(feats[:frames])
    if diff < 0:
        return np.concatenate([feats, np.repeat(feats[-1:], -diff, axis=0)])
    return feats


def _save(tmp: Path, array: np.ndarray) -> None:
    with open(tmp, "wb") as f:
        np.save(f, array)


def _segment_id(dataset, i: int) -> str:
    segments = getattr(dataset, "segments", None)
    return str(segments[i]["id"]) if segments is not None else dataset[i].id


def _file_id(segment_id: str) -> str:
    return segment_id if _SAFE.match(segment_id) else hashlib.sha256(segment_id.encode()).hexdigest()[:24]


def _stored(dataset, i: int, name: str) -> np.ndarray | None:
    """segments/<id>.<name>.npy of an on-disk cache (memory-mapped), None for other datasets."""
    root, segments = getattr(dataset, "root", None), getattr(dataset, "segments", None)
    if root is None or segments is None:
        return None
    return np.load(Path(root) / "segments" / f"{segments[i]['id']}.{name}.npy", mmap_mode="r")


def _source_audio(dataset, i: int) -> np.ndarray:
    """The segment's whole stored audio (Segment.audio is cut to the frames, the file is not)."""
    audio = _stored(dataset, i, "audio")
    return dataset[i].audio.numpy() if audio is None else audio


def _hubert_frames(dataset, i: int) -> int:
    """The cache's content frames at 50 Hz (the .phone.npy rows; in memory, the 100 Hz frames halved)."""
    phone = _stored(dataset, i, "phone")
    return (dataset[i].phone.shape[0] + 1) // 2 if phone is None else int(phone.shape[0])


def _key(info: dict[str, Any], dataset) -> str:
    """sha256 over the encoder's identity (not its file name) and every segment's id, frames and audio."""
    h = hashlib.sha256(json.dumps({k: info[k] for k in ("sha256", "version", "dim")}, sort_keys=True).encode())
    for i in range(len(dataset)):
        audio = np.ascontiguousarray(_source_audio(dataset, i), dtype=np.float32)
        h.update(f"{_segment_id(dataset, i)}:{audio.shape[0]}:{_hubert_frames(dataset, i)}".encode())
        h.update(audio.tobytes())
    return h.hexdigest()


def _refuse_other_encoder(folder: Path, info: dict[str, Any]) -> None:
    """A resumed run finds the features of the encoder it started with, or none (then the checkpoint's
    fingerprint decides); those of another encoder are refused before any work."""
    for key_file in sorted(folder.glob("*/key.json")) if folder.is_dir() else []:
        try:
            old = json.loads(key_file.read_text(encoding="utf-8")).get("encoder", {})
        except (OSError, ValueError):
            continue
        if old.get("sha256") and old["sha256"] != info["sha256"]:
            raise DistillRVCError(f"cannot resume {folder.parent}: the run was started with the encoder "
                                  f"{old.get('file')} (sha256 {old['sha256'][:12]}), not {info['file']} (sha256 "
                                  f"{info['sha256'][:12]}); pass the same --encoder, or a new --out")
