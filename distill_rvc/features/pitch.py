"""F0: RVC's coarse pitch quantisation (and, with the features issue, F0 extraction).

`coarse_pitch` maps F0 in Hz to the integer bins 1..255 that `enc_p.emb_pitch` embeds,
with RVC's mel formula and constants (rvc-format.md §5.2).
"""
from __future__ import annotations

import numpy as np

F0_MIN, F0_MAX = 50.0, 1100.0
MEL_MIN = 1127.0 * np.log(1.0 + F0_MIN / 700.0)  # 77.75496616579427
MEL_MAX = 1127.0 * np.log(1.0 + F0_MAX / 700.0)  # 1064.4082331636394


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
