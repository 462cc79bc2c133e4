"""The teacher-output cache: the frozen teacher runs once per training crop, so a step runs only the student.

    teacher_batches(folder, session, dataset, train_idx, cfg, loss_cfg, identity) -> CachedBatches | None
    CachedBatches.draw(step) -> Batch whose `.teacher` holds the cached TeacherTargets
    TeacherTargets.outputs(device, dtype) -> (SynthOutput, feature maps) as the teacher's forward gives

What is stored is exactly what DistillLoss reads from the teacher: the audio (mel, stft,
adversarial), m_p and logs_p (prior), z (latent) and the decoder feature maps it compares
("dec.ups.*": for a v2 40k teacher 256x10 + 128x100 + 64x200 + 32x400 values a frame, 98 % of
the bytes) in float16, the audio and the prior noise they were made with in float32: about 85 KB
per frame and seed for a v2 40k teacher, 8.5 MB per second of audio. float16 is enough there:
the teacher scored against its own float16 copy gives prior, latent and feature terms of
5e-5 to 2e-4 (bench/bench_teacher_cache.py), against 0.2-0.5 for a trained student's mel term.

Crops, not whole segments. The teacher on a whole segment differs from the teacher on a crop
everywhere, not only near the edges: the text encoder's attention is global, and the NSF sine's
phase is accumulated from the start of the input, so a slice of a whole-segment target has a
phase the student on its crop cannot know: on the shared teacher the slice differs from the
crop's own output by 24 % of the waveform in the crop's middle half, log-mel L1 0.35 (2 crops
of one segment), as much as a trained student's whole error (bench/bench_teacher_cache.py).
So each segment is tiled, per noise seed k, into crops of `segment_frames` at an offset drawn
from (seed, segment, k); the teacher runs on exactly those crops with that noise, and a cached
target equals a fresh teacher forward on the same crop (to float16). The price: crop starts
come from K offsets instead of any frame.

Layout, under the run folder (RUN/teacher_cache/): it belongs to one teacher, speaker, key,
crop length and seed, not to the dataset, whose folder may be shared or read-only:

    key.json                     what it was made from; a cache of another teacher/recipe/dataset is rebuilt
    <segment>.<k>.<array>.npy    [n_crops, ...] each written atomically; `starts` last marks it complete

Not here: drawing today's uncached batches (batches.py) or the step (trainer.py).
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write, make_folder, write_json
from ..errors import DistillRVCError
from ..features.pitch import coarse_pitch
from ..memory import GB
from ..models.synthesizer import SynthOutput
from .batches import Batch
from .losses import capture
from .recipes import LossConfig, TrainConfig

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FP16_MAX = 65504.0
# "auto" caches when the teacher frames a run would compute exceed those of the build this many times.
AUTO_MIN_GAIN = 4.0
TARGETS = ("audio", "m_p", "logs_p", "z")


@dataclass
class TeacherTargets:
    """The teacher's outputs for B crops of T frames, as stored (float16 mostly)."""

    audio: torch.Tensor  # [B, 1, T * hop]
    m_p: torch.Tensor  # [B, inter, T]
    logs_p: torch.Tensor  # [B, inter, T]
    z: torch.Tensor  # [B, inter, T]
    features: dict[str, torch.Tensor]  # module name -> [B, C, L]

    def __getitem__(self, sl: slice) -> "TeacherTargets":
        return TeacherTargets(self.audio[sl], self.m_p[sl], self.logs_p[sl], self.z[sl],
                              {k: v[sl] for k, v in self.features.items()})

    def __len__(self) -> int:
        return self.audio.shape[0]

    def outputs(self, device: torch.device, dtype: torch.dtype) -> tuple[SynthOutput, dict[str, torch.Tensor]]:
        """What `capture(teacher)` + `teacher(...)` return, in the teacher's dtype on `device`."""
        def move(x):
            return x.to(device=device, dtype=dtype)
        mask = torch.ones(self.m_p.shape[0], 1, self.m_p.shape[2], device=device, dtype=dtype)
        out = SynthOutput(move(self.audio), move(self.z), None, move(self.m_p), move(self.logs_p), mask)
        return out, {k: move(v) for k, v in self.features.items()}


# ------------------------------------------------------------------------- crops
def crop_starts(segment_id: str, frames: int, cfg: TrainConfig, k: int) -> np.ndarray:
    """Start frames of the crops of seed k: a tiling of `segment_frames`, at an offset from (seed, segment, k)."""
    t = cfg.segment_frames
    u = _unit(f"{cfg.seed}:{segment_id}:{k}:offset")
    offset = int(u * min(t, frames - t + 1))
    return np.arange(offset, frames - t + 1, t, dtype=np.int64)


def _unit(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16) / 16 ** 15


def _generator(text: str) -> torch.Generator:
    return torch.Generator().manual_seed(int(hashlib.sha256(text.encode()).hexdigest()[:15], 16))


def crop_inputs(seg, start: int, cfg: TrainConfig, f0: bool) -> tuple[torch.Tensor, Any, Any]:
    """(phone [T, C], pitch [T] | None, pitchf [T] | None) of one crop, F0 shifted by the recipe's key."""
    t = cfg.segment_frames
    phone = seg.phone[start:start + t]
    if not f0:
        return phone, None, None
    pitchf = seg.pitchf[start:start + t]
    if cfg.key:
        pitchf = pitchf * 2.0 ** (cfg.key / 12.0)
        return phone, torch.from_numpy(coarse_pitch(pitchf.numpy())), pitchf
    return phone, seg.pitch[start:start + t], pitchf


# ------------------------------------------------------------------------- the cache
class TeacherCache:
    """Read side of RUN/teacher_cache: memory-mapped arrays per (segment, seed)."""

    def __init__(self, folder: Path, segment_ids: list[str], feature_names: list[str], seeds: int):
        self.folder, self.ids, self.feature_names, self.seeds = folder, segment_ids, feature_names, seeds

    def arrays(self) -> tuple[str, ...]:
        return (*TARGETS, *(f"f{j}" for j in range(len(self.feature_names))), "noise", "starts")

    def path(self, i: int, k: int, name: str) -> Path:
        return self.folder / f"{self.ids[i]}.{k}.{name}.npy"

    def complete(self, i: int, k: int) -> bool:
        return all(self.path(i, k, n).is_file() for n in self.arrays())

    def open(self, i: int, k: int) -> dict[str, np.ndarray]:
        try:
            return {n: np.load(self.path(i, k, n), mmap_mode="r") for n in self.arrays()}
        except (OSError, ValueError, EOFError) as e:
            raise DistillRVCError(f"{self.folder}: the teacher cache is damaged ({e}); delete the folder to rebuild "
                                  "it, or pass --no-teacher-cache") from None

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("*.npy"))


def _save(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)
    atomic_write(path, write)


def _half(x: torch.Tensor) -> np.ndarray:
    """float16 unless a value would overflow it (then float32)."""
    x = x.detach().float().cpu()
    return x.numpy().astype(np.float16) if x.abs().max() < FP16_MAX else x.numpy()


def build(cache: TeacherCache, teacher: torch.nn.Module, dataset, train_idx: list[int], cfg: TrainConfig,
          device: torch.device, dtype: torch.dtype, progress: bool = True) -> None:
    """Run the teacher on every crop of every training segment and seed not yet on disk."""
    from tqdm.auto import tqdm

    todo = [(n, k) for n in range(len(train_idx)) for k in range(cache.seeds) if not cache.complete(n, k)]
    micro = max(1, cfg.batch_size // cfg.accumulation)
    inter, f0 = teacher.config.inter_channels, teacher.config.f0
    for n, k in tqdm(todo, disable=not progress or not todo, desc="teacher cache", unit="segment"):
        i = train_idx[n]
        seg = dataset[i]
        frames = min(seg.phone.shape[0], dataset.frames(i))
        starts = crop_starts(cache.ids[n], frames, cfg, k)
        noise = torch.randn(len(starts), inter, cfg.segment_frames, generator=_generator(f"{cfg.seed}:{cache.ids[n]}:{k}"))
        parts: dict[str, list[np.ndarray]] = {name: [] for name in cache.arrays()[:-2]}
        for a in range(0, len(starts), micro):
            crops = [crop_inputs(seg, int(s), cfg, f0) for s in starts[a:a + micro]]
            b = len(crops)
            phone = torch.stack([c[0] for c in crops]).to(device, dtype)
            pitch = torch.stack([c[1] for c in crops]).long().to(device) if f0 else None
            pitchf = torch.stack([c[2] for c in crops]).float().to(device, dtype) if f0 else None
            lengths = torch.full((b,), cfg.segment_frames, dtype=torch.long, device=device)
            sid = torch.full((b,), cfg.speaker, dtype=torch.long, device=device)
            with torch.no_grad(), capture(teacher, cache.feature_names) as feats:
                out = teacher(phone, lengths, pitch, pitchf, sid, noise=noise[a:a + b].to(device, dtype),
                              source_noise=False)
            # the audio in float32: it is 1 % of the bytes, and float16 put a floor of 0.005 under the
            # mel term and 0.05 under the stft term (bench/bench_teacher_cache.py)
            parts["audio"].append(out.audio.detach().float().cpu().numpy())
            for name in TARGETS[1:]:
                parts[name].append(_half(getattr(out, name)))
            for j, fname in enumerate(cache.feature_names):
                parts[f"f{j}"].append(_half(feats[fname]))
        for name, chunks in parts.items():
            dtypes = {c.dtype for c in chunks}
            _save(cache.path(n, k, name), np.concatenate(chunks if len(dtypes) == 1 else [c.astype(np.float32)
                                                                                        for c in chunks]))
        _save(cache.path(n, k, "noise"), noise.numpy())
        _save(cache.path(n, k, "starts"), starts)  # last: its presence says the others are whole


def bytes_per_frame(teacher: torch.nn.Module, feature_names: list[str]) -> int:
    """Disk bytes of one cached frame of one seed (float16 targets, float32 audio and noise)."""
    from .losses import _probe_shapes
    c = teacher.config
    shapes = _probe_shapes(teacher, feature_names, frames=8) if feature_names else {}
    values = 3 * c.inter_channels + sum(ch * length / 8 for ch, length in shapes.values())
    return int(2 * values + 4 * (c.inter_channels + c.hop_length))


# ------------------------------------------------------------------------- batches
class CachedBatches:
    """The batch of each step, deterministic in (seed, step), with the teacher's targets from the cache."""

    def __init__(self, cache: TeacherCache, dataset, train_indices: list[int], config: TrainConfig,
                 hop: int, f0: bool):
        self.cache, self.dataset, self.train, self.config = cache, dataset, train_indices, config
        self.hop, self.f0 = hop, f0

    def draw(self, step: int, items: range | None = None) -> Batch:
        """The batch of step `step`, or only its `items` (a rank's shard, as Batches.draw)."""
        c = self.config
        g = torch.Generator().manual_seed((c.seed * 1_000_003 + step) % (2**63))
        b, t = c.batch_size, c.segment_frames
        picks = torch.randint(len(self.train), (b,), generator=g).tolist()
        seeds = torch.randint(self.cache.seeds, (b,), generator=g).tolist()
        unit = torch.rand(b, generator=g, dtype=torch.float64).tolist()
        items = range(b) if items is None else items
        b = len(items)
        picks, seeds, unit = (v[items.start:items.stop] for v in (picks, seeds, unit))
        rows: dict[str, list] = {n: [] for n in ("phone", "own", "pitch", "pitchf", "noise", "real", *TARGETS)}
        feats: list[list[torch.Tensor]] = [[] for _ in self.cache.feature_names]
        for n, k, u in zip(picks, seeds, unit):
            arrays = self.cache.open(n, k)
            j = int(u * len(arrays["starts"]))
            start = int(arrays["starts"][j])
            seg = self.dataset[self.train[n]]
            phone, pitch, pitchf = crop_inputs(seg, start, c, self.f0)
            rows["phone"].append(phone)
            if getattr(seg, "student_phone", None) is not None:  # teach --encoder: the student's own features
                rows["own"].append(seg.student_phone[start:start + t])
            rows["pitch"].append(pitch)
            rows["pitchf"].append(pitchf)
            rows["noise"].append(torch.from_numpy(np.array(arrays["noise"][j])))
            if seg.audio is not None and len(seg.audio) >= (start + t) * self.hop:
                rows["real"].append(seg.audio[start * self.hop:(start + t) * self.hop])
            for name in TARGETS:
                rows[name].append(torch.from_numpy(np.array(arrays[name][j])))
            for f, store in enumerate(feats):
                store.append(torch.from_numpy(np.array(arrays[f"f{f}"][j])))
        targets = TeacherTargets(*(torch.stack(rows[name]) for name in TARGETS),
                                 {name: torch.stack(store) for name, store in zip(self.cache.feature_names, feats)})
        return Batch(
            phone=torch.stack(rows["phone"]).float(), lengths=torch.full((b,), t, dtype=torch.long),
            pitch=torch.stack(rows["pitch"]).long() if self.f0 else None,
            pitchf=torch.stack(rows["pitchf"]).float() if self.f0 else None,
            sid=torch.full((b,), c.speaker, dtype=torch.long), noise=torch.stack(rows["noise"]),
            audio=torch.stack(rows["real"]).unsqueeze(1) if len(rows["real"]) == b else None, teacher=targets,
            student_phone=torch.stack(rows["own"]).float() if rows["own"] else None)


# ------------------------------------------------------------------------- entry point
def dataset_digest(dataset, train_idx: list[int]) -> str:
    """sha256 over the training segments' ids, lengths and inputs (content features, F0)."""
    h = hashlib.sha256()
    for i in train_idx:
        seg = dataset[i]
        h.update(f"{seg.id}:{dataset.frames(i)}".encode())
        h.update(seg.phone.numpy().tobytes())
        if seg.pitchf is not None:
            h.update(seg.pitchf.numpy().tobytes())
    return h.hexdigest()


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 of a model's weights: the teacher's identity when no file is named."""
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def teacher_batches(folder: str | Path, session, dataset, train_idx: list[int], cfg: TrainConfig,
                    loss_cfg: LossConfig, teacher_id: str | None, progress: bool = True) -> CachedBatches | None:
    """The cached batch source per `cfg.teacher_cache` (True, False, "auto"), built or resumed in
    `folder`; None when the run goes without (then the trainer runs the teacher every step)."""
    mode = cfg.teacher_cache
    if mode is False:
        return None
    refusal = None
    if cfg.key_jitter:
        refusal = "[train] key_jitter shifts each item's pitch at random, so the teacher's output is not fixed"
    elif loss_cfg.mean_path_fraction:
        refusal = "[loss] mean_path_fraction draws noise-free steps at random, which the cache does not hold"
    teacher = session.teacher
    names = list(session.loss.feature_names)
    frames = sum(max(0, min(dataset.frames(i), dataset[i].phone.shape[0]) // cfg.segment_frames) *
                 cfg.segment_frames for i in train_idx)
    need = frames * cfg.teacher_cache_seeds * bytes_per_frame(teacher, names)
    if mode == "auto":
        if refusal:
            log.info("no teacher cache: %s", refusal)
            return None
        saved = cfg.steps * cfg.batch_size * cfg.segment_frames
        if saved < AUTO_MIN_GAIN * frames * cfg.teacher_cache_seeds:
            log.info("no teacher cache: a run of %d steps computes few teacher frames next to a build of %d",
                     cfg.steps, frames * cfg.teacher_cache_seeds)
            return None
    elif refusal:
        raise DistillRVCError(f"[train] teacher_cache = true cannot be used: {refusal}; set it to 0 or "
                              "pass --no-teacher-cache")
    folder = Path(folder)
    ids = [str(dataset[i].id) for i in train_idx]
    key = {"format_version": FORMAT_VERSION, "teacher": teacher_id or weights_digest(teacher),
           "teacher_dtype": str(session.precision.teacher_dtype), "device": session.device.type,
           "dataset": dataset_digest(dataset, train_idx), "segments": ids, "feature_maps": names,
           "seeds": cfg.teacher_cache_seeds, "seed": cfg.seed, "segment_frames": cfg.segment_frames,
           "speaker": cfg.speaker, "key": cfg.key}
    key_path = folder / "key.json"
    if key_path.is_file():
        try:
            old = json.loads(key_path.read_text(encoding="utf-8"))
        except ValueError:
            old = None
        if old != key:
            what = [k for k in key if not isinstance(old, dict) or old.get(k) != key[k]]
            log.warning("the teacher cache in %s was made for another %s: rebuilding it", folder, ", ".join(what))
            shutil.rmtree(folder)
    cache = TeacherCache(folder, ids, names, cfg.teacher_cache_seeds)
    have = cache.size_bytes() if folder.is_dir() else 0
    make_folder(folder)
    free = shutil.disk_usage(folder).free
    if need - have > 0.95 * free:
        if mode == "auto":
            log.warning("no teacher cache: it needs %.1f GB in %s, %.1f GB are free", need / GB, folder, free / GB)
            return None
        raise DistillRVCError(f"the teacher cache needs {need / GB:.1f} GB in {folder} but {free / GB:.1f} GB are "
                              "free: free some space, lower [train] teacher_cache_seeds, or pass --no-teacher-cache")
    write_json(key_path, key)
    log.info("teacher cache: %s, %.2f GB (%d seeds x %d frames)", folder, need / GB, cfg.teacher_cache_seeds, frames)
    build(cache, teacher, dataset, train_idx, cfg, session.device, session.precision.teacher_dtype, progress)
    return CachedBatches(cache, dataset, train_idx, cfg, teacher.config.hop_length, teacher.config.f0)
