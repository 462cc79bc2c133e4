"""`teach-f0`'s data: speech (plus synthetic harmonic sweeps and pitch-shifted copies) -> the
FCPE front end's log-mel and the teacher FCPE's salience for every frame, cached.

    load_clips(files, shifts) -> ([audio [N]], skipped)      16 kHz, RVC's input conditioning
    sweeps(count, seed) -> [audio [N]]                       harmonic glides over 50-1000 Hz
    build_targets(clips, teacher, folder, key) -> Targets    cached in `folder` under `key`
    Targets.mel [F, 128] / .salience [F, 360] / .offsets [n + 1]

Each clip is seen whole by the teacher (its GroupNorm spans the input), as it will be in
use; the student learns on crops of the same frames, cut from the whole clip's log-mel, so
a crop's input is exactly what the front end gives at those frames. The salience is kept
as float16 (its values are in (0, 1); the rounding, < 5e-4, is far below the loss's scale).
The cache (mel.npy, salience.npy, offsets.npy, then manifest.json, each written atomically)
is keyed by the teacher's sha256, the files' names, sizes and times and the augmentation:
any change rebuilds it. A run killed while the teacher runs starts that pass over (it takes
minutes: about 0.06 s of teacher per second of audio at one thread).
Not for: training batches (train.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write, make_folder, write_json
from ..encoder.data import usable_speech
from ..features.audio import condition_audio
from ..features.fcpe import FCPE, HOP, SAMPLE_RATE


CACHE_FORMAT = "distill-rvc-fcpe-targets"


@dataclass
class Targets:
    mel: np.ndarray  # [F, 128] float32: every clip's log-mel, one after another
    salience: np.ndarray  # [F, 360] float16: the teacher's, frame for frame
    offsets: np.ndarray  # [n + 1] int64: clip i is frames offsets[i]:offsets[i + 1]
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def clips(self) -> int:
        return len(self.offsets) - 1

    @property
    def seconds(self) -> float:
        return float(self.offsets[-1]) * HOP / SAMPLE_RATE

    def clip(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Clip i's (log-mel [T, 128], teacher salience [T, 360])."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.mel[a:b], self.salience[a:b]


def load_clips(files: list[Path], shifts: tuple[float, ...] = (), min_seconds: float = 0.0
               ) -> tuple[list[np.ndarray], dict[str, int]]:
    """Every usable file at 16 kHz, conditioned as the converter conditions its input, plus one
    copy per semitone shift in `shifts` (librosa's pitch_shift). Unusable files are counted."""
    clips, skipped = [], {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for path in files:
        audio = usable_speech(path, skip)
        if audio is None:
            continue
        if audio.shape[0] < min_seconds * SAMPLE_RATE:
            skip("files shorter than a crop")
        else:
            audio = condition_audio(audio)
            clips.append(audio)
            for semitones in shifts:
                import librosa

                clips.append(librosa.effects.pitch_shift(audio, sr=SAMPLE_RATE, n_steps=float(semitones))
                             .astype(np.float32))
    return clips, skipped


def sweeps(count: int, seed: int, seconds: float = 4.0) -> list[np.ndarray]:
    """`count` synthetic voiced sounds of known shape: an exponential F0 glide between two
    log-uniform pitches in 50-1000 Hz, 1-12 harmonics falling as 1/k^a, a level of -26 to
    -6 dBFS, white noise 15-45 dB below it and a silent stretch at each end (for unvoiced)."""
    rng = np.random.default_rng(seed)
    out = []
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    for _ in range(count):
        lo, hi = np.exp(rng.uniform(np.log(50.0), np.log(1000.0), 2))
        f0 = lo * (hi / lo) ** (t / seconds)
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        decay = rng.uniform(0.5, 2.0)
        harmonics = [k for k in range(1, int(rng.integers(1, 13)) + 1) if k * f0.max() < SAMPLE_RATE / 2]
        x = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k ** decay for k in harmonics)
        x = x / np.abs(x).max() * 10 ** (rng.uniform(-26, -6) / 20)
        x = x + rng.standard_normal(n) * np.sqrt(np.mean(x ** 2)) * 10 ** (-rng.uniform(15, 45) / 20)
        gap = int(rng.uniform(0.1, 0.5) * SAMPLE_RATE)
        x[:gap] = 0.0
        x[n - gap:] = 0.0
        out.append(x.astype(np.float32))
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # np.save(path) would append .npy to the temporary name
            np.save(f, array)

    atomic_write(path, write)


def file_key(files: list[Path], root: Path) -> list[list[Any]]:
    """What identifies the input files: names (relative to `root`), sizes and times."""
    return [[str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def cached_targets(folder: Path, key: dict[str, Any]) -> Targets | None:
    """The finished cache in `folder` made under `key`, else None."""
    manifest = _read_json(folder / "manifest.json")
    if manifest is None or manifest.get("key") != key:
        return None
    try:
        arrays = [np.load(folder / f"{name}.npy", mmap_mode="r") for name in ("mel", "salience", "offsets")]
    except (OSError, ValueError):
        return None
    return Targets(*arrays, skipped=dict(manifest.get("skipped", {})))


@torch.no_grad()
def build_targets(clips: list[np.ndarray], teacher: FCPE, folder: str | Path, key: dict[str, Any],
                  skipped: dict[str, int] | None = None, progress: bool = False) -> Targets:
    """The teacher's salience for every clip (whole), with the clips' log-mel; written to `folder`."""
    folder = make_folder(folder)
    device = teacher.cent_table.device
    mels, sals = [], []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(clips), desc="teacher salience", unit="clip", leave=False)
    for audio in clips:
        mel = teacher.log_mel(torch.from_numpy(np.ascontiguousarray(audio)).to(device)[None])  # [1, T, 128]
        mels.append(mel[0].cpu().numpy())
        sals.append(teacher(mel)[0].cpu().numpy().astype(np.float16))
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    offsets = np.concatenate([[0], np.cumsum([m.shape[0] for m in mels])]).astype(np.int64)
    (folder / "manifest.json").unlink(missing_ok=True)  # the arrays below no longer match an old manifest
    _save_npy(folder / "mel.npy", np.concatenate(mels).astype(np.float32))
    _save_npy(folder / "salience.npy", np.concatenate(sals))
    _save_npy(folder / "offsets.npy", offsets)
    write_json(folder / "manifest.json", {"key": key, "skipped": skipped or {}, "clips": len(clips),
                                          "frames": int(offsets[-1])})
    return cached_targets(folder, key)
