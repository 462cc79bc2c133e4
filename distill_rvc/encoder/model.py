"""The distilled content encoder: a small network that predicts HuBERT's features from audio.

    EncoderArch(...)                     the sizes (a recipe's [model] table; stored in encoder.pt)
    StudentEncoder(arch)(audio [B, N])   -> features [B, T, C], T = floor((N - 400) / 320) + 1
    count_cost(model) -> Cost            parameters and FLOPs per second of audio (counted, not timed)

    audio -> LogMel (100 Hz) -> conv k3 s2 (50 Hz) -> ConvNeXt-style blocks
          (depthwise conv, LayerNorm, pointwise MLP, residual) -> LayerNorm -> linear head (C)

The stride-2 conv (padding 1) gives exactly HuBERT's frame count for any N >= 400, and its
output t is centred on mel frame 2t, that is on samples [320 t, 320 t + 400), HuBERT's frame t.
The model also carries what `distill_rvc.features.encoders` asks of every content encoder
(kind, path, device, min_samples, frames, dim, extract, params, file_bytes).
Not for: training (train.py) or the file format (checkpoint.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DistillRVCError
from .frontend import SAMPLE_RATE, WINDOW, LogMel

if TYPE_CHECKING:
    from ..memory import InferenceMemory

FRAME = 320  # HuBERT's frame step in samples (20 ms)
WIDTHS = {"v1": 256, "v2": 768}  # RVC's content feature widths
LAYERS = {"v1": "9+final_proj", "v2": "12"}  # the HuBERT output each version distils


@dataclass(frozen=True)
class EncoderArch:
    """The student's sizes; `out_dim` follows the version (256 for v1, 768 for v2)."""

    n_mels: int = 80
    dim: int = 192
    blocks: int = 8
    kernel: int = 7  # depthwise conv taps at 50 Hz
    expansion: int = 3  # the blocks' MLP width, times dim
    out_dim: int = 768

    def check(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DistillRVCError(f"encoder recipe: model.{f.name} = {value!r}; give a whole number >= 1")
        if self.kernel % 2 == 0:
            raise DistillRVCError(f"encoder recipe: model.kernel = {self.kernel}; give an odd number (it is centred)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EncoderArch":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise DistillRVCError(f"encoder arch: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(names))}")
        arch = cls(**data)
        arch.check()
        return arch

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Block(nn.Module):
    """x + MLP(LN(depthwise_conv(x))): [B, T, D] -> [B, T, D]."""

    def __init__(self, dim: int, kernel: int, expansion: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * expansion)
        self.fc2 = nn.Linear(dim * expansion, dim)
        self.scale = nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> [B, T, D]"""
        y = self.dwconv(x.transpose(1, 2)).transpose(1, 2)
        return x + self.scale * self.fc2(F.gelu(self.fc1(self.norm(y))))


class StudentEncoder(nn.Module):
    """Audio [B, N] at 16 kHz -> content features [B, T, C] at 50 Hz, aligned with HuBERT's."""

    kind = "student"
    min_samples = WINDOW

    def __init__(self, arch: EncoderArch, version: str = "v2"):
        super().__init__()
        if version not in WIDTHS:
            raise DistillRVCError(f"unknown RVC version {version!r}; use v1 (256-d features) or v2 (768-d)")
        self.arch, self.version = arch, version
        self.path: Path | None = None  # set by checkpoint.load_encoder
        self.file_bytes = 0
        self.frontend = LogMel(arch.n_mels)
        self.conv_in = nn.Conv1d(arch.n_mels, arch.dim, 3, stride=2, padding=1)
        self.blocks = nn.ModuleList(Block(arch.dim, arch.kernel, arch.expansion) for _ in range(arch.blocks))
        self.norm = nn.LayerNorm(arch.dim)
        self.head = nn.Linear(arch.dim, arch.out_dim)

    @property
    def device(self) -> str:
        return str(self.head.weight.device)

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def frames(self, samples: int) -> int:
        """HuBERT's frame count for `samples` samples: floor((N - 400) / 320) + 1, 0 if N < 400."""
        return 0 if samples < WINDOW else (samples - WINDOW) // FRAME + 1

    def memory(self, version: str, ladder_s: tuple[float, ...] = (10, 30, 60, 120)) -> "InferenceMemory":
        """Peak bytes of one pass by input length (chunking's budget), traced on fake tensors as
        ContentEncoder.memory is."""
        from ..memory import InferenceMemory, fake_peaks

        self.dim(version)
        arch, trained_for = self.arch, self.version
        with torch.no_grad():
            peaks = fake_peaks(lambda: StudentEncoder(arch, trained_for).eval(),
                               [lambda m, s=s: m(torch.zeros(1, int(s * 16000))) for s in ladder_s])
        weights = peaks[0].get("param", 0) + peaks[0].get("buffer", 0)
        return InferenceMemory(seconds=tuple(ladder_s), peaks=tuple(p["total"] for p in peaks), weights=weights,
                               dtype="float32")

    def dim(self, version: str) -> int:
        if version != self.version:
            raise DistillRVCError(f"this student encoder was trained for {self.version} ({self.arch.out_dim}-d) "
                                  f"features, not {version}; train one with teach-encoder --version {version}")
        return self.arch.out_dim

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, N] (N >= 400) -> [B, floor((N - 400) / 320) + 1, out_dim]"""
        x = self.conv_in(self.frontend(audio)).transpose(1, 2)  # [B, T, D]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

    @torch.no_grad()
    def extract(self, audio_16k: np.ndarray, version: str) -> np.ndarray:
        """Mono 16 kHz audio [N] -> float32 features [T, C], as ContentEncoder.extract."""
        self.dim(version)
        audio = np.asarray(audio_16k)
        if audio.ndim != 1:
            raise DistillRVCError(f"expected mono audio [N], got an array of shape {list(audio.shape)}")
        if audio.shape[0] < WINDOW:
            raise DistillRVCError(f"audio of {audio.shape[0]} samples is shorter than one content frame "
                                  f"({WINDOW} samples = 25 ms at 16 kHz)")
        if not np.isfinite(audio).all():
            raise DistillRVCError("the audio contains NaN or infinite samples")
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(self.head.weight.device)
        return self(x.unsqueeze(0))[0].float().cpu().numpy()


@dataclass(frozen=True)
class Cost:
    params: int
    flops_per_second: float  # FLOPs (2 per multiply-add) for one second of 16 kHz audio

    @property
    def gflops(self) -> float:
        return self.flops_per_second / 1e9


def count_cost(model: nn.Module, seconds: float = 10.0) -> Cost:
    """Parameters and FLOPs per second of audio, counted by torch's FlopCounterMode on
    `seconds` of input (long enough that the edges do not matter). Elementwise ops
    (GELU, LayerNorm, log) are not counted: convs and matmuls are."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, int(seconds * SAMPLE_RATE), device=next(model.parameters()).device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return Cost(sum(p.numel() for p in model.parameters()), counter.get_total_flops() / seconds)
