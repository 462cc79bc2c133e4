"""Training batches drawn from the dataset cache, each a pure function of (seed, step).

Every random choice of a step (which segments, where to crop them, their pitch shifts, the
prior noise and whether the step takes the noise-free mean path) comes from a generator
seeded with (seed, step). Resuming at step n therefore continues with exactly the data an
uninterrupted run would have seen, with no sampler state to save; and halving the
micro-batch after an out-of-memory error splits the same items differently.

Any object with `__len__`, `__getitem__ -> Segment` and `frames(i)` serves as a dataset
(`distill_rvc.dataset.Dataset` is the on-disk cache).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import DistillRVCError
from ..features.pitch import coarse_pitch
from .recipes import TrainConfig


@dataclass
class Batch:
    """B crops of T frames, ready for both models."""

    phone: torch.Tensor  # [B, T, C]
    lengths: torch.Tensor  # [B]
    pitch: torch.Tensor | None  # [B, T] int64
    pitchf: torch.Tensor | None  # [B, T] Hz
    sid: torch.Tensor  # [B]
    noise: torch.Tensor  # [B, inter, T] standard normal prior noise (zeros on mean-path steps)
    audio: torch.Tensor | None  # [B, 1, T * hop] real audio, if every segment has it
    teacher: Any = None  # teacher_cache.TeacherTargets: the teacher's outputs, when they were computed once
    student_phone: torch.Tensor | None = None  # [B, T, C] the student's own content features (teach --encoder)

    def to(self, device: torch.device, dtype: torch.dtype = torch.float32) -> "Batch":
        def move(x, float_dtype=None):
            if x is None:
                return None
            return x.to(device, dtype=float_dtype) if float_dtype else x.to(device)
        return Batch(move(self.phone, dtype), move(self.lengths), move(self.pitch), move(self.pitchf),
                     move(self.sid), move(self.noise, dtype), move(self.audio), self.teacher,
                     move(self.student_phone, dtype))

    def for_student(self) -> "Batch":
        """What the student hears: its own content features in `phone` when the batch has them
        (student_features.py), else the teacher's; everything else is shared."""
        return self if self.student_phone is None else replace(self, phone=self.student_phone, student_phone=None)

    def __len__(self) -> int:
        return self.phone.shape[0]


def split_eval(dataset, n_eval: int, seed: int, min_frames: int) -> tuple[list[int], list[int]]:
    """(train indices, held-out indices): held-out segments are picked by a seeded hash of
    their ids, so the split does not change when segments are added."""
    def name(i: int) -> str:
        segments = getattr(dataset, "segments", None)
        return str(segments[i]["id"]) if segments is not None else str(i)

    ranked = sorted(range(len(dataset)), key=lambda i: hashlib.sha256(f"{seed}:{name(i)}".encode()).hexdigest())
    n_eval = min(n_eval, max(len(dataset) - 1, 0))
    held = sorted(ranked[:n_eval])
    train = [i for i in range(len(dataset)) if i not in set(held) and dataset.frames(i) >= min_frames]
    if not train:
        longest = max(dataset.frames(i) for i in range(len(dataset)))
        raise DistillRVCError(f"no training segment has {min_frames} frames (the longest has {longest}); "
                              "lower [train] segment_frames or prepare longer segments")
    return train, held


class Batches:
    """The batch of each step, deterministic in (seed, step)."""

    def __init__(self, dataset, train_indices: list[int], config: TrainConfig, inter_channels: int,
                 hop: int, f0: bool, mean_path_fraction: float = 0.0):
        self.dataset = dataset
        self.train = train_indices
        self.config = config
        self.inter = inter_channels
        self.hop = hop
        self.f0 = f0
        self.mean_path_fraction = mean_path_fraction

    def draw(self, step: int, items: range | None = None) -> Batch:
        """The whole effective batch of optimiser step `step` (slice it into micro-batches), or
        only its `items` (a rank's shard, distributed.shard): the random draws are always the
        whole batch's, so the shards of all ranks together are the batch one process draws."""
        c = self.config
        g = torch.Generator().manual_seed((c.seed * 1_000_003 + step) % (2**63))
        b, t = c.batch_size, c.segment_frames
        picks = torch.randint(len(self.train), (b,), generator=g).tolist()
        unit = torch.rand(b, 2, generator=g, dtype=torch.float64)
        mean_path = bool(torch.rand(1, generator=g).item() < self.mean_path_fraction)
        noise = torch.randn(b, self.inter, t, generator=g)
        if mean_path:
            noise.zero_()
        items = range(b) if items is None else items
        b, noise = len(items), noise[items.start:items.stop]
        phones, pitches, pitchfs, audios, own = [], [], [], [], []
        for k in items:
            pick = picks[k]
            seg = self.dataset[self.train[pick]]
            frames = min(seg.phone.shape[0], self.dataset.frames(self.train[pick]))
            start = int(unit[k, 0] * (frames - t + 1))
            phones.append(seg.phone[start:start + t])
            if getattr(seg, "student_phone", None) is not None:
                own.append(seg.student_phone[start:start + t])
            if self.f0:
                shift = c.key + (2 * float(unit[k, 1]) - 1) * c.key_jitter
                f0 = seg.pitchf[start:start + t]
                if shift:
                    f0 = f0 * 2.0 ** (shift / 12.0)
                    pitches.append(torch.from_numpy(coarse_pitch(f0.numpy())))
                else:
                    pitches.append(seg.pitch[start:start + t])
                pitchfs.append(f0)
            if seg.audio is not None and len(seg.audio) >= (start + t) * self.hop:
                audios.append(seg.audio[start * self.hop:(start + t) * self.hop])
        return Batch(
            phone=torch.stack(phones).float(), lengths=torch.full((b,), t, dtype=torch.long),
            pitch=torch.stack(pitches).long() if self.f0 else None,
            pitchf=torch.stack(pitchfs).float() if self.f0 else None,
            sid=torch.full((b,), c.speaker, dtype=torch.long), noise=noise,
            audio=torch.stack(audios).unsqueeze(1) if len(audios) == b else None,
            student_phone=torch.stack(own).float() if own else None)


def micro_batches(batch: Batch, size: int) -> list[Batch]:
    """Split a batch into consecutive micro-batches of at most `size` items."""
    def part(x, i):
        return None if x is None else x[i:i + size]
    return [Batch(*(part(getattr(batch, f), i) for f in Batch.__dataclass_fields__)) for i in range(0, len(batch), size)]


def eval_items(dataset, indices: list[int], max_frames: int, f0: bool) -> list[Batch]:
    """The held-out segments as single-item batches (cut to `max_frames`); noise is set by the caller."""
    items = []
    for i in indices:
        seg = dataset[i]
        t = min(seg.phone.shape[0], max_frames)
        if t < 8:  # too short for RVC's mel (its STFT pads by most of a 2048-sample window)
            continue
        own = getattr(seg, "student_phone", None)
        items.append(Batch(
            phone=seg.phone[None, :t].float(), lengths=torch.tensor([t]),
            pitch=seg.pitch[None, :t].long() if f0 else None, pitchf=seg.pitchf[None, :t].float() if f0 else None,
            sid=torch.zeros(1, dtype=torch.long), noise=torch.zeros(1, 0, t), audio=None,
            student_phone=None if own is None else own[None, :t].float()))
    return items

