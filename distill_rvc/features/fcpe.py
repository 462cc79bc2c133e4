"""FCPE: the torchfcpe pitch network (`fcpe_c_v001.pt`, MIT), as our own module on its real weights.

torchfcpe's package cannot be imported here (its `__init__` imports torchaudio, which does not
load with our torch), so the network and its front end are rebuilt from its source:

    log-mel [B, T, 128]      16 kHz, n_fft = win = 1024, hop 160, Hann, reflect pad 432 each
                             side, no centring; |STFT| = sqrt(re^2 + im^2 + 1e-9); librosa's
                             Slaney mel filterbank 0-8000 Hz; log(clamp(x, 1e-5)); the last
                             frame repeated to N // 160 + 1 frames.
    input stack              conv1d(128 -> 512, k3), GroupNorm(4), LeakyReLU, conv1d(512, k3)
    6 x conformer conv block x + [LayerNorm, 1x1 conv -> 2048, GLU, depthwise conv k31, SiLU,
                             1x1 conv -> 512]  (the shipped model is `conv_only`: no attention)
    head                     LayerNorm, weight-normed linear 512 -> 360, sigmoid
    decoding                 torchfcpe's "local_argmax": the salience-weighted mean of cents over
                             +-4 bins around the peak (edge bins repeated), unvoiced where the
                             peak salience <= 0.006 (its inference default); f0 = 10 * 2^(c / 1200).

The 360 bins span 32.7-1975.5 Hz. `infer` then applies the project's 50-1100 Hz range
(pitch.py, rvc-format.md §5.2), the way torchfcpe's own `infer(f0_min=50, f0_max=1100)` does:
frames under 50 Hz are unvoiced, frames over 1100 Hz are clamped to 1100 (coarse_pitch
saturates there anyway), so FCPE's F0 lands in the range harvest and dio give.

`find_fcpe(path)` says where the weights come from: the path given (`--fcpe`), else the
`DISTILL_RVC_FCPE` environment variable, else the installed torchfcpe wheel's
`assets/fcpe_c_v001.pt`, located with `importlib.util.find_spec` (which does not run the
package's `__init__`).

Not for: harvest/dio/rmvpe or coarse pitch (`pitch.py`, `rmvpe.py`); training FCPE (a slim
student of it: `fcpe_student/`, `distill-rvc teach-f0`).
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DistillRVCError
from ..safe_load import safe_torch_load

SAMPLE_RATE, N_FFT, HOP, N_MELS, FMIN, FMAX = 16000, 1024, 160, 128, 0.0, 8000.0
THRESHOLD = 0.006  # torchfcpe's inference default for "local_argmax"
F0_FLOOR, F0_CEIL = 50.0, 1100.0  # the project's range (pitch.F0_MIN / F0_MAX)
ENV_VAR = "DISTILL_RVC_FCPE"
WHEEL_ASSET = Path("assets") / "fcpe_c_v001.pt"
WHAT = "FCPE model (torchfcpe's fcpe_c_v001.pt)"


@dataclass(frozen=True)
class FCPEConfig:
    """Sizes of a CFNaiveMelPE; the defaults are the shipped fcpe_c_v001.pt."""

    n_mels: int = N_MELS
    hidden: int = 512
    layers: int = 6
    bins: int = 360
    f0_min: float = 32.7  # the first and last bins' pitch
    f0_max: float = 1975.5


class ConvModule(nn.Module):
    """The conformer convolution module, names as in torchfcpe (`net.0` .. `net.6`). [B, T, C] -> [B, T, C]"""

    def __init__(self, dim: int, kernel: int = 31):
        super().__init__()
        self.net = nn.ModuleDict({
            "0": nn.LayerNorm(dim),
            "2": nn.Conv1d(dim, 4 * dim, 1),  # GLU halves it to 2 * dim
            "4": _DepthWise(2 * dim, kernel),
            "6": nn.Conv1d(2 * dim, dim, 1),
        })

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net["0"](x).transpose(1, 2)  # [B, C, T]
        h = F.glu(self.net["2"](h), dim=1)
        h = F.silu(self.net["4"](h))
        return self.net["6"](h).transpose(1, 2)


class _DepthWise(nn.Module):
    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class EncoderLayer(nn.Module):
    """x + conv module (x). `norm` is the attention's pre-norm: in the file, unused without attention."""

    def __init__(self, dim: int):
        super().__init__()
        self.conformer = ConvModule(dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conformer(x)


class _Encoder(nn.Module):
    def __init__(self, dim: int, layers: int):
        super().__init__()
        self.encoder_layers = nn.ModuleList(EncoderLayer(dim) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.encoder_layers:
            x = layer(x)
        return x


class FCPE(nn.Module):
    """torchfcpe's CFNaiveMelPE (conv-only) plus its mel front end and local-argmax decoding."""

    def __init__(self, config: FCPEConfig = FCPEConfig()):
        super().__init__()
        self.config = config
        c = config
        self.input_stack = nn.Sequential(nn.Conv1d(c.n_mels, c.hidden, 3, padding=1), nn.GroupNorm(4, c.hidden),
                                         nn.LeakyReLU(), nn.Conv1d(c.hidden, c.hidden, 3, padding=1))
        self.net = _Encoder(c.hidden, c.layers)
        self.norm = nn.LayerNorm(c.hidden)
        self.output_proj = nn.Linear(c.hidden, c.bins)  # the file's weight_g * weight_v / |weight_v|, folded
        cents = torch.linspace(_cents(c.f0_min), _cents(c.f0_max), c.bins)
        self.register_buffer("cent_table", cents)
        self.register_buffer("mel_basis", _mel_basis(c.n_mels), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """16 kHz audio [B, N] -> log-mel [B, N // 160 + 1, 128]."""
        n = audio.shape[-1]
        left = (N_FFT - HOP) // 2
        right = max((N_FFT - HOP + 1) // 2, N_FFT - n - left)  # short inputs still give one frame
        x = F.pad(audio.unsqueeze(1), (left, right), mode="reflect" if right < n else "constant").squeeze(1)
        spec = torch.stft(x, N_FFT, hop_length=HOP, win_length=N_FFT, window=self.window, center=False,
                          return_complex=True)
        mag = torch.sqrt(spec.real ** 2 + spec.imag ** 2 + 1e-9)
        mel = torch.log(torch.clamp(self.mel_basis @ mag, min=1e-5)).transpose(1, 2)  # [B, T', 128]
        frames = n // HOP + 1
        if mel.shape[1] < frames:
            mel = torch.cat([mel, mel[:, -1:].expand(-1, frames - mel.shape[1], -1)], dim=1)
        return mel[:, :frames]

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel [B, T, 128] -> salience [B, T, 360] in (0, 1)."""
        x = self.input_stack(mel.transpose(1, 2)).transpose(1, 2)
        return torch.sigmoid(self.output_proj(self.norm(self.net(x))))

    @torch.no_grad()
    def salience(self, audio_16k: np.ndarray) -> torch.Tensor:
        """Mono 16 kHz audio [N] -> salience [N // 160 + 1, 360] (float32, on the model's device)."""
        x = torch.as_tensor(np.ascontiguousarray(audio_16k, dtype=np.float32), device=self.cent_table.device)
        return self(self.log_mel(x[None]))[0]

    @torch.no_grad()
    def decode(self, salience: torch.Tensor, threshold: float = THRESHOLD) -> np.ndarray:
        """Salience [T, 360] -> F0 in Hz [T] (float32; 0 = unvoiced), in the project's 50-1100 Hz range."""
        peak, center = salience.max(dim=-1, keepdim=True)
        idx = (center + torch.arange(-4, 5, device=salience.device)).clamp(0, salience.shape[-1] - 1)
        weights = salience.gather(-1, idx)
        cents = (self.cent_table[idx] * weights).sum(-1) / weights.sum(-1)
        f0 = 10.0 * 2.0 ** (cents / 1200.0)
        f0[(peak[..., 0] <= threshold) | (f0 < F0_FLOOR)] = 0.0
        return f0.clamp(max=F0_CEIL).float().cpu().numpy()

    def infer(self, audio_16k: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
        """Mono 16 kHz audio [N] -> F0 in Hz [N // 160 + 1] (float32, 0 = unvoiced)."""
        return self.decode(self.salience(audio_16k), threshold)


def _cents(f0_hz: float) -> float:
    return 1200.0 * float(np.log2(f0_hz / 10.0))


def _mel_basis(n_mels: int) -> torch.Tensor:
    import librosa

    return torch.from_numpy(librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels, fmin=FMIN,
                                                fmax=FMAX)).float()  # Slaney scale and norm, as torchfcpe


def find_fcpe(path: str | Path | None = None) -> Path:
    """Where the FCPE weights are: `path`, else $DISTILL_RVC_FCPE, else the installed torchfcpe wheel."""
    if path is not None:
        given = Path(path)
        if not given.is_file():
            raise DistillRVCError(f"{path}: no such file (the {WHAT}, for --fcpe)")
        return given
    env = os.environ.get(ENV_VAR)
    if env:
        if not Path(env).is_file():
            raise DistillRVCError(f"{env}: no such file (from ${ENV_VAR}, the {WHAT})")
        return Path(env)
    spec = importlib.util.find_spec("torchfcpe")  # a top-level package: its __init__ does not run
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            if (Path(folder) / WHEEL_ASSET).is_file():
                return Path(folder) / WHEEL_ASSET
    raise DistillRVCError(
        "--f0 fcpe needs the FCPE weights (fcpe_c_v001.pt): pass --fcpe PATH, set $DISTILL_RVC_FCPE, or "
        "`pip install --no-deps torchfcpe==0.0.4` (its wheel ships them; `make install` does this); "
        "or use --f0 harvest or dio")


def _fcpe_weights(path: Path, ckpt: object) -> tuple[FCPEConfig, dict[str, torch.Tensor]]:
    """The config and our state dict from a torchfcpe checkpoint ({model, config_dict, ...})."""
    if not (isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict)
            and isinstance(ckpt.get("config_dict"), dict)):
        raise DistillRVCError(f"{path}: not an FCPE checkpoint (expected torchfcpe's {{model, config_dict}}); "
                              "pass torchfcpe's fcpe_c_v001.pt")
    cfg, model = ckpt["config_dict"], dict(ckpt["model"])
    mel, net = cfg.get("mel") or {}, cfg.get("model") or {}
    want_mel = {"sr": SAMPLE_RATE, "n_fft": N_FFT, "win_size": N_FFT, "hop_size": HOP, "fmin": 0, "fmax": 8000}
    odd = [f"mel.{k}={mel.get(k)!r}" for k, v in want_mel.items() if mel.get(k) != v]
    if net.get("type") != "CFNaiveMelPE":
        odd.append(f"model.type={net.get('type')!r}")
    if not net.get("conv_only", False):
        odd.append("model.conv_only=False (an attention FCPE)")
    if net.get("use_harmonic_emb"):
        odd.append("model.use_harmonic_emb=True")
    if odd:
        raise DistillRVCError(f"{path}: an FCPE this module does not build ({', '.join(odd)}); "
                              "use torchfcpe's fcpe_c_v001.pt")
    g, v = model.pop("output_proj.weight_g", None), model.pop("output_proj.weight_v", None)
    if g is not None and v is not None:  # torch's old weight_norm: w = g * v / |v| (norm per output row)
        model["output_proj.weight"] = g * v / v.norm(dim=1, keepdim=True)
    model.pop("gaussian_blurred_cent_mask", None)  # a training-only constant
    try:
        config = FCPEConfig(n_mels=int(mel["num_mels"]), hidden=int(net["hidden_dims"]), layers=int(net["n_layers"]),
                            bins=int(net["out_dims"]), f0_min=float(net["f0_min"]), f0_max=float(net["f0_max"]))
    except (KeyError, TypeError, ValueError):
        raise DistillRVCError(f"{path}: the FCPE config_dict lacks its sizes (mel.num_mels, model.hidden_dims, "
                              "n_layers, out_dims, f0_min, f0_max); damaged or another model") from None
    return config, model


def load_fcpe(path: str | Path | None = None, device: str | torch.device = "cpu") -> FCPE:
    """Read torchfcpe's checkpoint (`find_fcpe(path)`) -> `FCPE` in eval mode, float32, on `device`."""
    path = find_fcpe(path)
    config, weights = _fcpe_weights(path, safe_torch_load(path, what=WHAT))
    with torch.device("meta"):
        expected = FCPE(config).state_dict()
    problems = sorted(set(expected) ^ set(weights))
    if problems or any(getattr(weights[k], "shape", None) != v.shape for k, v in expected.items()):
        bad = problems[0] if problems else next(k for k, v in expected.items() if weights[k].shape != v.shape)
        raise DistillRVCError(f"{path}: the weights do not fit torchfcpe's CFNaiveMelPE layout ({bad}); "
                              "damaged or another model")
    model = FCPE(config)
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    return model.to(device).eval()
