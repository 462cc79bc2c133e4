"""`SynthConfig`: the typed architecture of one synthesizer, teacher or student.

RVC describes a model by an 18-item positional list (rvc-format.md §1.2) plus the file's
`version` and `f0` keys, and hard-codes the rest (4 flows, 3 WN layers per flow, ...).
This module parses that list once, at the file boundary, into a dataclass that also
carries the knobs a student needs. Nothing else in the package sees the list.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import DistillRVCError

# n_mels of RVC's mel loss per sample rate (configs/*/*.json, Applio's 24k config).
_N_MELS = {24000: 80, 32000: 80, 40000: 125, 44100: 128, 48000: 128}
PHONE_DIMS = {"v1": 256, "v2": 768}


@dataclass
class SynthConfig:
    """Architecture of a synthesizer; defaults are RVC's v2 40k f0 model."""

    # RVC's 18-item list, in order.
    spec_channels: int = 1025
    segment_size: int = 32
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    p_dropout: float = 0.0
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple[int, ...] = (10, 10, 2, 2)
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    spk_embed_dim: int = 109
    gin_channels: int = 256
    sr: int = 40000
    # From the file's other keys.
    version: str = "v2"
    f0: bool = True
    # Knobs RVC hard-codes; a student may change them.
    phone_dim: int = 768  # content feature width fed to the model (256 v1, 768 v2)
    phone_proj_dim: int = 0  # >0: a Linear(phone_dim -> phone_proj_dim) ahead of emb_phone
    n_flows: int = 4
    flow_wn_layers: int = 3
    flow_kernel_size: int = 5
    window_size: int = 10  # relative-attention window of enc_p
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.resblock = str(self.resblock)
        self.resblock_kernel_sizes = tuple(int(k) for k in self.resblock_kernel_sizes)
        self.resblock_dilation_sizes = tuple(tuple(int(d) for d in ds) for ds in self.resblock_dilation_sizes)
        self.upsample_rates = tuple(int(u) for u in self.upsample_rates)
        self.upsample_kernel_sizes = tuple(int(k) for k in self.upsample_kernel_sizes)
        self.f0 = bool(self.f0)
        self.validate()

    # ----------------------------------------------------------------- derived
    @property
    def hop_length(self) -> int:
        """Output samples per frame (= product of the upsample rates)."""
        return math.prod(self.upsample_rates)

    @property
    def n_fft(self) -> int:
        """STFT size of RVC's spectrogram/mel for this sample rate (filter_length)."""
        return (self.spec_channels - 1) * 2

    @property
    def n_mels(self) -> int:
        return _N_MELS.get(self.sr, 128)

    def stage_channels(self) -> list[int]:
        """Decoder channels after each upsampling stage, e.g. [256, 128, 64, 32]."""
        return [self.upsample_initial_channel // 2 ** (i + 1) for i in range(len(self.upsample_rates))]

    # -------------------------------------------------------------- validation
    def validate(self) -> None:
        def bad(msg: str) -> None:
            raise DistillRVCError(f"invalid model config: {msg}")

        if self.version not in PHONE_DIMS:
            bad(f"unknown version {self.version!r} (expected v1 or v2)")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            bad("upsample_rates and upsample_kernel_sizes differ in length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            bad("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        if self.resblock not in ("1", "2"):
            bad(f"resblock must be '1' or '2', not {self.resblock!r}")
        if self.hidden_channels % self.n_heads:
            bad(f"hidden_channels {self.hidden_channels} is not divisible by n_heads {self.n_heads}")
        if self.inter_channels % 2:
            bad(f"inter_channels {self.inter_channels} must be even (the flow splits it in halves)")
        for u, k in zip(self.upsample_rates, self.upsample_kernel_sizes):
            if (k - u) % 2:
                bad(f"upsample kernel {k} and rate {u} must differ by an even number")
        if min(self.stage_channels()) < 1:
            bad("upsample_initial_channel is too small for the number of upsampling stages")
        for name in ("inter_channels", "hidden_channels", "filter_channels", "n_layers", "gin_channels",
                     "spk_embed_dim", "sr", "phone_dim", "n_flows", "flow_wn_layers"):
            if getattr(self, name) < 1:
                bad(f"{name} must be positive")

    def fits_rvc(self, latent_192: bool = True) -> tuple[bool, str]:
        """Whether RVC's own classes can build this architecture from an 18-item config.

        `latent_192` also asks for RVC's latent width, which real-time clients hard-code
        (their `rnd` input is [1, 192, T]); RVC's classes themselves accept any width.
        Returns (ok, reason): reason names the first field that does not fit.
        """
        if self.n_flows != 4:
            return False, f"{self.n_flows} flows (RVC hard-codes 4)"
        if self.flow_wn_layers != 3:
            return False, f"{self.flow_wn_layers} WN layers per flow (RVC hard-codes 3)"
        if self.flow_kernel_size != 5:
            return False, f"flow kernel {self.flow_kernel_size} (RVC hard-codes 5)"
        if self.window_size != 10:
            return False, f"attention window {self.window_size} (RVC hard-codes 10)"
        if self.resblock == "2" and any(len(d) != 2 for d in self.resblock_dilation_sizes):
            # RVC's ResBlock2 builds exactly two convs (dilation[0], dilation[1]) whatever the list holds
            return False, "ResBlock2 with other than 2 dilations (RVC's ResBlock2 builds exactly 2 convs)"
        if self.phone_dim != PHONE_DIMS[self.version]:
            return False, f"phone_dim {self.phone_dim} (RVC {self.version} takes {PHONE_DIMS[self.version]})"
        if latent_192 and self.inter_channels != 192:
            return False, f"latent width {self.inter_channels} (real-time clients expect 192)"
        return True, ""

    # -------------------------------------------------------------- RVC list
    def to_rvc_list(self) -> list:
        """The 18-item `config` list RVC's constructors take (rvc-format.md §1.2)."""
        return [
            self.spec_channels, self.segment_size, self.inter_channels, self.hidden_channels,
            self.filter_channels, self.n_heads, self.n_layers, self.kernel_size, self.p_dropout,
            self.resblock, list(self.resblock_kernel_sizes), [list(d) for d in self.resblock_dilation_sizes],
            list(self.upsample_rates), self.upsample_initial_channel, list(self.upsample_kernel_sizes),
            self.spk_embed_dim, self.gin_channels, self.sr,
        ]

    @classmethod
    def from_rvc_list(cls, items: list, *, version: str = "v1", f0: bool = True, **overrides: Any) -> "SynthConfig":
        """Parse RVC's 18-item list; `version` defaults to v1 as RVC's loader does."""
        if not isinstance(items, (list, tuple)) or len(items) != 18:
            n = len(items) if isinstance(items, (list, tuple)) else type(items).__name__
            raise DistillRVCError(f"invalid model config: expected RVC's 18-item config list, got {n}")
        names = [f.name for f in dataclasses.fields(cls)][:18]
        kwargs = dict(zip(names, items))
        kwargs["sr"] = parse_sample_rate(kwargs["sr"])
        try:
            kwargs["p_dropout"] = float(kwargs["p_dropout"])
            for name in names:
                if name not in ("p_dropout", "resblock", "resblock_kernel_sizes", "resblock_dilation_sizes",
                                "upsample_rates", "upsample_kernel_sizes"):
                    kwargs[name] = int(kwargs[name])
        except (TypeError, ValueError) as e:
            raise DistillRVCError(f"invalid model config: non-numeric entry ({e})") from None
        if version not in PHONE_DIMS:
            raise DistillRVCError(f"unknown model version {version!r} (expected v1 or v2)")
        kwargs.update(version=version, f0=bool(f0), phone_dim=PHONE_DIMS[version])
        kwargs.update(overrides)
        return cls(**kwargs)

    # ------------------------------------------------------------ plain dict
    def to_dict(self) -> dict[str, Any]:
        """A JSON/pickle-safe dict of plain containers (for the project file format)."""
        d = dataclasses.asdict(self)
        d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SynthConfig":
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        unknown = set(d) - known
        if unknown:
            raise DistillRVCError(f"invalid model config: unknown fields {sorted(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> "SynthConfig":
        return dataclasses.replace(self, **changes)


def parse_sample_rate(sr: Any) -> int:
    """RVC writes the rate as 40000 or as "40k" (`sr2sr`)."""
    if isinstance(sr, str):
        s = sr.strip().lower()
        try:
            return int(float(s[:-1]) * 1000) if s.endswith("k") else int(s)
        except ValueError:
            raise DistillRVCError(f"invalid sample rate {sr!r}") from None
    if isinstance(sr, (int, float)) and sr > 0:
        return int(sr)
    raise DistillRVCError(f"invalid sample rate {sr!r}")


# RVC's shipped configs (rvc-format.md §2) plus Applio's 24k one.
# sr -> (spec_channels, upsample_rates, upsample_kernel_sizes); v2 40k is the v1 40k network.
_RVC_DECODERS = {
    ("v1", 32000): (513, (10, 4, 2, 2, 2), (16, 16, 4, 4, 4)),
    ("v1", 40000): (1025, (10, 10, 2, 2), (16, 16, 4, 4)),
    ("v1", 48000): (1025, (10, 6, 2, 2, 2), (16, 16, 4, 4, 4)),
    ("v2", 32000): (513, (10, 8, 2, 2), (20, 16, 4, 4)),
    ("v2", 40000): (1025, (10, 10, 2, 2), (16, 16, 4, 4)),
    ("v2", 48000): (1025, (12, 10, 2, 2), (24, 20, 4, 4)),
    ("v2", 24000): (513, (10, 6, 2, 2), (20, 12, 4, 4)),  # Applio
}
RVC_CONFIGS = [(v, sr) for (v, sr) in _RVC_DECODERS if sr != 24000]


def rvc_config(version: str = "v2", sr: int | str = 40000, f0: bool = True) -> SynthConfig:
    """The config RVC trains for `version`/`sr`, e.g. `rvc_config("v2", 40000, True)`."""
    sr = parse_sample_rate(sr)
    key = (version, sr)
    if key not in _RVC_DECODERS:
        if (("v1" if version == "v2" else "v2"), sr) in _RVC_DECODERS and version in PHONE_DIMS:
            key = ("v1" if version == "v2" else "v2", sr)
        else:
            raise DistillRVCError(f"RVC has no {version} {sr} Hz config")
    spec, rates, kernels = _RVC_DECODERS[key]
    return SynthConfig(spec_channels=spec, upsample_rates=rates, upsample_kernel_sizes=kernels, sr=sr,
                       version=version, f0=f0, phone_dim=PHONE_DIMS[version])
