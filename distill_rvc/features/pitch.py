"""F0: extraction (harvest, dio, rmvpe, fcpe), RVC's coarse pitch quantisation and transposition.

`extract_f0` gives F0 in Hz at 100 frames/s (hop 160 at 16 kHz, N // 160 + 1 frames for N
samples, 0 = unvoiced), with RVC's settings (rvc-format.md §5.2): floor 50 Hz, ceiling
1100 Hz; harvest and dio are refined by stonemask. `coarse_pitch` maps F0 to the integer
bins 1..255 that `enc_p.emb_pitch` embeds, with RVC's mel formula and constants.

There is no energy gate: like RVC, harvest may call faint noise next to a voiced stretch
voiced (with a -80 dB noise floor in silent gaps, about 10 % of frames in our test signal),
and the teacher was trained on exactly that.

FCPE keeps to the same 50-1100 Hz range: under 50 Hz is unvoiced, over 1100 Hz is clamped
(`fcpe.py`). RMVPE gives its own bins' range (31.7-2005 Hz), as RVC's does.

Not for: reading audio (`audio.py`) or the RMVPE and FCPE networks themselves (`rmvpe.py`, `fcpe.py`).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import DistillRVCError

F0_MIN, F0_MAX = 50.0, 1100.0
MEL_MIN = 1127.0 * np.log(1.0 + F0_MIN / 700.0)  # 77.75496616579427
MEL_MAX = 1127.0 * np.log(1.0 + F0_MAX / 700.0)  # 1064.4082331636394
SAMPLE_RATE, HOP = 16000, 160  # 10 ms frames
F0_METHODS = ("harvest", "dio", "rmvpe", "fcpe")


def import_pyworld():
    """pyworld, imported without its pkg_resources deprecation warning (it needs setuptools < 81,
    which the package pins: pyworld 0.3.5 imports pkg_resources)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import pyworld
    return pyworld


def extract_f0(audio_16k: np.ndarray, method: str = "harvest", *, rmvpe_path: str | Path | None = None,
               fcpe_path: str | Path | None = None, device: str = "cpu", filter_radius: int = 0) -> np.ndarray:
    """Mono 16 kHz audio [N] -> F0 in Hz, float32 [N // 160 + 1], 0 where unvoiced.

    method: "harvest" (accurate, slow), "dio" (fast, rougher), "rmvpe" (RVC's neural
    model; needs `rmvpe_path`, runs on `device`) or "fcpe" (torchfcpe's network, fp32 on
    `device`; weights from `fcpe_path`, else $DISTILL_RVC_FCPE, else the torchfcpe wheel).
    `filter_radius` > 2 applies RVC's inference median filter (kernel 3) to harvest; training
    extraction uses none (the default).
    """
    if method not in F0_METHODS:
        raise DistillRVCError(f"unknown F0 method {method!r}; use one of {', '.join(F0_METHODS)}")
    x = np.asarray(audio_16k)
    if x.ndim != 1 or x.size == 0:
        raise DistillRVCError(f"expected mono audio [N] with samples, got an array of shape {list(x.shape)}")
    if not np.isfinite(x).all():
        raise DistillRVCError("the audio contains NaN or infinite samples")
    if method == "rmvpe":
        if rmvpe_path is None:
            raise DistillRVCError("the rmvpe F0 method needs the model file: pass --rmvpe path/to/rmvpe.pt")
        path = Path(rmvpe_path).resolve()
        if not path.is_file():
            raise DistillRVCError(f"{rmvpe_path}: no such file (the RMVPE model, rmvpe.pt)")
        return _cached_rmvpe(str(path), path.stat().st_mtime_ns, str(device)).infer(x)
    if method == "fcpe":
        from .fcpe import find_fcpe

        path = find_fcpe(fcpe_path).resolve()
        return _cached_fcpe(str(path), path.stat().st_mtime_ns, str(device)).infer(x)

    pyworld = import_pyworld()
    x64 = np.ascontiguousarray(x, dtype=np.float64)
    track = pyworld.harvest if method == "harvest" else pyworld.dio
    f0, t = track(x64, SAMPLE_RATE, f0_floor=F0_MIN, f0_ceil=F0_MAX, frame_period=1000.0 * HOP / SAMPLE_RATE)
    f0 = pyworld.stonemask(x64, f0, t, SAMPLE_RATE)
    if method == "harvest" and filter_radius > 2:
        from scipy import signal

        f0 = signal.medfilt(f0, 3)
    return f0.astype(np.float32)


@functools.lru_cache(maxsize=2)
def _cached_rmvpe(path: str, mtime_ns: int, device: str):
    """One RMVPE per (file version, device): `prepare` calls extract_f0 once per segment."""
    from .rmvpe import load_rmvpe

    return load_rmvpe(path, device)


@functools.lru_cache(maxsize=2)
def _cached_fcpe(path: str, mtime_ns: int, device: str):
    """One FCPE per (file version, device), as for RMVPE."""
    from .fcpe import load_fcpe

    return load_fcpe(path, device)


def coarse_pitch(f0: np.ndarray) -> np.ndarray:
    """F0 in Hz (0 = unvoiced) -> int64 bins in 1..255; unvoiced frames become 1."""
    f0_mel = 1127.0 * np.log(1.0 + np.asarray(f0, dtype=np.float64) / 700.0)
    voiced = f0_mel > 0
    f0_mel[voiced] = (f0_mel[voiced] - MEL_MIN) * 254.0 / (MEL_MAX - MEL_MIN) + 1.0
    f0_mel[f0_mel <= 1] = 1
    f0_mel[f0_mel > 255] = 255
    return np.rint(f0_mel).astype(np.int64)


def transpose_f0(f0: np.ndarray, semitones: float) -> np.ndarray:
    """Shift F0 by `semitones` (RVC's f0_up_key): f0 * 2^(n/12); unvoiced stays 0."""
    return np.asarray(f0, dtype=np.float64) * 2.0 ** (semitones / 12.0)
