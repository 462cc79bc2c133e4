"""`teach-encoder`'s data: speech files -> fixed-length 16 kHz segments and the teacher's
features for each, cached memory-mapped under the run's work folder.

    find_audio(folder) -> [Path]                     audio files under `folder`, recursively, sorted
    build_cache(files, root, teacher, ...) -> FeatureCache
    FeatureCache.audio [S, L] / .feats [S, T, C]     np.memmap (read-only), T = frames(L)

Each file is loaded at 16 kHz mono, given RVC's input conditioning (the student learns on
what the converter will feed it), and cut into whole segments, the last one ending where the
file ends (it overlaps the one before), so no speech is dropped. A file shorter than one
segment but at least `min_samples` long (the training crop) is padded with silence to one
segment and counted as padded; a shorter, empty, unreadable or silent file is skipped and
counted, and so is a silent segment. The teacher sees each segment whole (its GroupNorm and
attention span the input).

The cache is keyed by the teacher file's sha256, the version, the segment and crop lengths and
the files' names, sizes and times: any change rebuilds it. Features are written into
feats.partial.npy with a progress file, so a killed extraction resumes where it stopped;
manifest.json, written last and atomically, marks a finished cache.
Not for: training batches (train.py).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..atomic import atomic_write, make_folder, write_json
from ..errors import DistillRVCError
from ..features.audio import SILENCE_PEAK, condition_audio, load_audio

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".aif", ".aiff"}
CACHE_FORMAT = "distill-rvc-encoder-cache-2"  # -2: end-aligned last segments, short files padded
FLUSH_EVERY = 16  # segments between progress saves


def find_audio(folder: str | Path, option: str = "--audio") -> list[Path]:
    """Audio files (by suffix) under `folder`, recursively; refuses a missing or empty folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DistillRVCError(f"{option} {folder}: no such folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise DistillRVCError(f"{option} {folder}: no audio files (looked for {', '.join(sorted(AUDIO_SUFFIXES))})")
    return files


@dataclass
class FeatureCache:
    folder: Path
    audio: np.ndarray  # [S, L] float32, memory-mapped
    feats: np.ndarray  # [S, T, C] float32, memory-mapped
    files: int  # files that gave at least one segment
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count (files or segments)
    padded: int = 0  # files shorter than a segment, padded with silence to one
    extracted: int = 0  # segments whose features this call computed (0: all from the cache)

    @property
    def seconds(self) -> float:
        return self.audio.shape[0] * self.audio.shape[1] / 16000


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # np.save(path) would append .npy to the temporary name
            np.save(f, array)

    atomic_write(path, write)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def usable_speech(path: Path, skip: Callable[[str], None]) -> np.ndarray | None:
    """`path` as mono 16 kHz float32 [N], or None (the reason passed to `skip`) when it is
    unreadable, empty, non-finite or silent."""
    try:
        audio = load_audio(path, 16000, check=False)
    except DistillRVCError as e:
        log.warning("skipped %s", e)
        skip("unreadable files")
        return None
    if audio.size == 0 or not np.isfinite(audio).all():
        skip("empty or non-finite files")
        return None
    if np.abs(audio).max() < SILENCE_PEAK:
        skip("silent files")
        return None
    return audio


def _segments(files: list[Path], samples: int, min_samples: int) -> tuple[np.ndarray, int, int, dict[str, int]]:
    """`samples`-long segments of every usable file -> ([S, L], files used, files padded, skipped counts)."""
    segments, used, padded, skipped = [], 0, 0, {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for path in files:
        audio = usable_speech(path, skip)
        if audio is None:
            continue
        if audio.shape[0] < min_samples:
            skip(f"files shorter than {min_samples / 16000:g} s")
            continue
        audio = condition_audio(audio)
        if audio.shape[0] < samples:
            audio = np.pad(audio, (0, samples - audio.shape[0]))
            padded += 1
        starts = list(range(0, audio.shape[0] - samples + 1, samples))
        if audio.shape[0] - (starts[-1] + samples) >= min_samples:  # a tail worth a crop: end-aligned
            starts.append(audio.shape[0] - samples)
        kept = 0
        for start in starts:
            seg = audio[start:start + samples]
            if np.abs(seg).max() < SILENCE_PEAK:
                skip("silent segments")
                continue
            segments.append(seg)
            kept += 1
        used += kept > 0
    if not segments:
        return np.zeros((0, samples), np.float32), used, padded, skipped
    return np.stack(segments).astype(np.float32), used, padded, skipped


def _describe(skipped: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in skipped.items()) or "none usable"


def build_cache(files: list[Path], root: Path, teacher: Any, teacher_sha256: str, version: str,
                segment_samples: int, folder: str | Path, *, min_samples: int | None = None,
                option: str = "--audio", progress: bool = False) -> FeatureCache:
    """Segments of `files` and `teacher.extract(segment, version)` for each, cached in `folder`.
    `min_samples` (default: one segment): the shortest file used, padded to a segment."""
    min_samples = segment_samples if min_samples is None else min(min_samples, segment_samples)
    folder = make_folder(folder)
    key = {
        "format": CACHE_FORMAT, "teacher_sha256": teacher_sha256, "version": version,
        "segment_samples": segment_samples, "min_samples": min_samples,
        "files": [[str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns] for p in files],
    }
    manifest = _read_json(folder / "manifest.json")
    if manifest is not None and manifest.get("key") == key and (folder / "feats.npy").is_file():
        audio = np.load(folder / "audio.npy", mmap_mode="r")
        feats = np.load(folder / "feats.npy", mmap_mode="r")
        return FeatureCache(folder, audio, feats, manifest["used_files"], manifest["skipped"], manifest["padded"])

    started = _read_json(folder / "progress.json")
    if started is None or started.get("key") != key or not (folder / "audio.npy").is_file():
        for name in ("manifest.json", "progress.json", "audio.npy", "feats.npy", "feats.partial.npy"):
            (folder / name).unlink(missing_ok=True)
        audio, used, padded, skipped = _segments(files, segment_samples, min_samples)
        if audio.shape[0] == 0:
            raise DistillRVCError(f"{option} {root}: no usable speech for {segment_samples / 16000:g} s segments "
                                  f"({_describe(skipped)}); give longer, non-silent audio")
        _save_npy(folder / "audio.npy", audio)
        started = {"key": key, "done": 0, "used_files": used, "padded": padded, "skipped": skipped}
        write_json(folder / "progress.json", started)
    audio = np.load(folder / "audio.npy", mmap_mode="r")
    count = audio.shape[0]
    frames = (segment_samples - 400) // 320 + 1
    shape = (count, frames, teacher.dim(version))
    partial = folder / "feats.partial.npy"
    done = int(started["done"])
    if done and partial.is_file():
        feats = np.load(partial, mmap_mode="r+")
        if feats.shape != shape:
            done = 0
    if not done or not partial.is_file():
        done = 0
        feats = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=shape)
    bar = None
    if progress and done < count:
        from tqdm import tqdm
        bar = tqdm(total=count, initial=done, desc="teacher features", unit="seg", leave=False)
    extracted = 0
    for i in range(done, count):
        out = teacher.extract(np.array(audio[i]), version)  # a writable copy of the memmap row
        if out.shape != shape[1:]:
            raise DistillRVCError(f"the teacher gave {list(out.shape)} features for a segment, expected {list(shape[1:])}")
        feats[i] = out
        extracted += 1
        if bar is not None:
            bar.update()
        if (i + 1) % FLUSH_EVERY == 0 or i + 1 == count:
            feats.flush()  # the features reach the disk before the progress that counts them
            write_json(folder / "progress.json", {**started, "done": i + 1})
    if bar is not None:
        bar.close()
    del feats
    os.replace(partial, folder / "feats.npy")
    write_json(folder / "manifest.json", {"key": key, "used_files": started["used_files"], "padded": started["padded"],
                                          "skipped": started["skipped"], "segments": count})
    (folder / "progress.json").unlink(missing_ok=True)
    return FeatureCache(folder, audio, np.load(folder / "feats.npy", mmap_mode="r"), started["used_files"],
                        started["skipped"], started["padded"], extracted)
