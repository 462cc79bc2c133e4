"""The prepared-dataset cache that `teach` and `prune` train from.

A cache is a folder:

    DATA_DIR/manifest.json                 what is inside, and how it was made
    DATA_DIR/segments/<id>.phone.npy       float32 [T_h, C] content features at 50 Hz (as RVC stores them)
    DATA_DIR/segments/<id>.f0.npy          float32 [T] F0 in Hz at 100 Hz, 0 = unvoiced
    DATA_DIR/segments/<id>.pitch.npy       uint8   [T] coarse pitch 1..255 (f0 models)
    DATA_DIR/segments/<id>.audio.npy       float32 [N] audio at the model's rate (optional)

Arrays are opened with `np.load(mmap_mode="r")`, so training never loads the whole set into
RAM. `DatasetWriter` records each source file in the manifest once all its segments are on
disk, which makes `prepare` resumable (finished sources are skipped). Readers repeat the
features x2 to 100 frames/s and cut the streams to a common length, as RVC's loader does.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write, make_folder, write_json
from ..errors import DistillRVCError

FORMAT = "distill-rvc-dataset"
FORMAT_VERSION = 1
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass
class Segment:
    """One training segment at 100 frames/s (T frames; N = T * hop samples of audio)."""

    id: str
    phone: torch.Tensor  # [T, C] float32, features repeated x2
    pitch: torch.Tensor | None  # [T] int64 coarse 1..255 (None for no-f0 data)
    pitchf: torch.Tensor | None  # [T] float32 Hz
    audio: torch.Tensor | None  # [T * hop] float32 at the model's rate, if the cache has audio


class Dataset(torch.utils.data.Dataset):
    """Read side of a cache folder; items are `Segment`s."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.is_file():
            raise DistillRVCError(f"{self.root}: not a prepared dataset (no manifest.json); run `distill-rvc prepare`")
        try:
            self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise DistillRVCError(f"{manifest_path}: damaged manifest ({e})") from None
        if self.manifest.get("format") != FORMAT:
            raise DistillRVCError(f"{manifest_path}: not a distill-rvc dataset manifest")
        if self.manifest.get("format_version", 0) > FORMAT_VERSION:
            raise DistillRVCError(f"{manifest_path}: written by a newer distill-rvc; upgrade it")
        self.segments: list[dict[str, Any]] = self.manifest["segments"]
        if not self.segments:
            raise DistillRVCError(f"{self.root}: the dataset has no segments")

    # metadata ---------------------------------------------------------------
    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def feature_dim(self) -> int:
        return int(self.manifest["feature_dim"])

    @property
    def sample_rate(self) -> int:
        return int(self.manifest["sample_rate"])

    @property
    def f0(self) -> bool:
        return bool(self.manifest["f0"])

    @property
    def hop_length(self) -> int:
        return self.sample_rate // 100

    @property
    def has_audio(self) -> bool:
        return all(s.get("samples") for s in self.segments)

    def frames(self, i: int) -> int:
        return int(self.segments[i]["frames"])

    def __len__(self) -> int:
        return len(self.segments)

    def check(self) -> None:
        """Refuse a damaged cache up front: every segment's files present, readable to their
        end, and of the shapes the manifest says. Only the .npy headers are read (memory-mapped),
        so this costs a few file opens per segment, not the data; a second call on the same
        Dataset (teach checks before its init reads the cache, the trainer before step 1) is free."""
        if getattr(self, "_checked", False):
            return
        for seg in self.segments:
            problem = self._problem(seg)
            if problem:
                raise DistillRVCError(
                    f"{self.root}: segment {seg.get('id')} (from {seg.get('source', '?')}): {problem}; the cache is "
                    "damaged: run `distill-rvc prepare` on the same audio into a new --out folder")
        self._checked = True

    def _problem(self, seg: dict[str, Any]) -> str | None:
        sid = str(seg.get("id", ""))
        if not _SAFE_ID.match(sid):
            return "bad segment id in manifest.json"
        files = {"phone": "content features", "f0": "F0"}
        if self.f0:
            files["pitch"] = "coarse pitch"
        if seg.get("samples"):
            files["audio"] = "audio"
        arrays = {}
        for name, what in files.items():
            path = self.root / "segments" / f"{sid}.{name}.npy"
            if not path.is_file():
                return f"{what} file {path.name} is missing"
            try:
                arrays[name] = np.load(path, mmap_mode="r")
            except (OSError, ValueError, EOFError) as e:
                return f"{what} file {path.name} is truncated or unreadable ({e})"
        phone, f0 = arrays["phone"], arrays["f0"]
        if phone.ndim != 2 or phone.shape[1] != self.feature_dim:
            return f"content features of shape {list(phone.shape)}, expected [T, {self.feature_dim}]"
        for name in ("f0", "pitch", "audio"):
            if name in arrays and arrays[name].ndim != 1:
                return f"{files[name]} of shape {list(arrays[name].shape)}, expected one dimension"
        frames = min(2 * len(phone), len(f0))
        if "audio" in arrays:
            if len(arrays["audio"]) != int(seg["samples"]):
                return f"audio of {len(arrays['audio'])} samples, the manifest says {seg['samples']}"
            frames = min(frames, len(arrays["audio"]) // self.hop_length)
        if frames != int(seg.get("frames", -1)):
            return f"{frames} frames on disk, the manifest says {seg.get('frames')}"
        if "pitch" in arrays and len(arrays["pitch"]) < frames:
            return f"coarse pitch of {len(arrays['pitch'])} frames, expected at least {frames}"
        return None

    def __getitem__(self, i: int) -> Segment:
        seg = self.segments[i]
        sid = seg["id"]
        base = self.root / "segments"
        phone = np.load(base / f"{sid}.phone.npy", mmap_mode="r")
        f0 = np.load(base / f"{sid}.f0.npy", mmap_mode="r")
        audio = np.load(base / f"{sid}.audio.npy", mmap_mode="r") if seg.get("samples") else None
        t = min(2 * len(phone), len(f0))
        if audio is not None:
            t = min(t, len(audio) // self.hop_length)
        phone100 = np.repeat(np.asarray(phone[: (t + 1) // 2], dtype=np.float32), 2, axis=0)[:t]
        if not np.isfinite(phone100).all():
            raise DistillRVCError(f"{self.root}: segment {sid} has NaN or inf in its content features")
        pitch = pitchf = None
        if self.f0:
            pitch = torch.from_numpy(np.array(np.load(base / f"{sid}.pitch.npy", mmap_mode="r")[:t], dtype=np.int64))
            pitchf = torch.from_numpy(np.array(f0[:t], dtype=np.float32))
        return Segment(
            id=sid, phone=torch.from_numpy(phone100), pitch=pitch, pitchf=pitchf,
            audio=None if audio is None else torch.from_numpy(np.array(audio[: t * self.hop_length], dtype=np.float32)))


class DatasetWriter:
    """Write side: `add_source(source, [(phone_50hz, f0, pitch, audio), ...])` per input file.

    A source is recorded only after all its segments are written, so an interrupted run
    resumes with `done(source)` skipping what is complete.
    """

    def __init__(self, root: str | Path, *, version: str, feature_dim: int, sample_rate: int, f0: bool,
                 extractor: dict[str, Any] | None = None):
        self.root = Path(root)
        make_folder(self.root / "segments")  # read-only / blocked: one line (atomic.py)
        path = self.root / "manifest.json"
        settings = {"version": version, "feature_dim": int(feature_dim), "sample_rate": int(sample_rate),
                    "f0": bool(f0), "extractor": extractor or {}}
        if path.is_file():
            self.manifest = json.loads(path.read_text(encoding="utf-8"))
            old = {k: self.manifest.get(k) for k in settings}
            if old != settings:
                changed = [k for k in settings if old[k] != settings[k]]
                raise DistillRVCError(f"{self.root} was prepared with other settings ({', '.join(changed)}); "
                                      "use a new output folder")
        else:
            self.manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **settings,
                             "sources": {}, "segments": []}

    def done(self, source: str) -> bool:
        return source in self.manifest["sources"]

    def add_source(self, source: str, segments: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None,
                                                           np.ndarray | None]], status: str = "ok") -> list[str]:
        """Write one source's segments (phone [T_h, C] at 50 Hz, f0 [T] Hz, pitch [T], audio [N]);
        `status` other than "ok" records a skipped source (and its reason) with no segments."""
        ids = []
        n0 = len(self.manifest["sources"])
        for j, (phone, f0, pitch, audio) in enumerate(segments):
            sid = f"{n0}_{j}"
            phone = np.asarray(phone, dtype=np.float32)
            if phone.ndim != 2 or phone.shape[1] != self.manifest["feature_dim"]:
                raise DistillRVCError(f"{source}: features of shape {phone.shape}, expected [T, "
                                      f"{self.manifest['feature_dim']}]")
            if f0 is None:
                f0 = np.zeros(2 * len(phone), dtype=np.float32)
            self._save(f"{sid}.phone.npy", phone)
            self._save(f"{sid}.f0.npy", np.asarray(f0, dtype=np.float32))
            if self.manifest["f0"]:
                if pitch is None:
                    from ..features import coarse_pitch
                    pitch = coarse_pitch(f0)
                self._save(f"{sid}.pitch.npy", np.asarray(pitch, dtype=np.uint8))
            if audio is not None:
                self._save(f"{sid}.audio.npy", np.asarray(audio, dtype=np.float32))
            frames = min(2 * len(phone), len(f0))
            if audio is not None:
                frames = min(frames, len(audio) // (self.manifest["sample_rate"] // 100))
            self.manifest["segments"].append({"id": sid, "source": source, "frames": int(frames),
                                              "samples": int(len(audio)) if audio is not None else 0})
            ids.append(sid)
        self.manifest["sources"][source] = {"status": status, "segments": ids}
        write_json(self.root / "manifest.json", self.manifest)
        return ids

    def _save(self, name: str, array: np.ndarray) -> None:
        if not _SAFE_ID.match(name):
            raise ValueError(name)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.save(f, array)

        atomic_write(self.root / "segments" / name, write)
