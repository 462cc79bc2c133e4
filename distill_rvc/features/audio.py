"""Audio in and out: load any common file as mono float32 at a rate, RVC's input
conditioning, and atomic WAV writing.

Loading uses soundfile (WAV, FLAC, OGG, MP3, AIFF: whatever libsndfile reads) and soxr for
resampling (librosa's default resampler), never ffmpeg or torchaudio. Files a user cannot
train or convert on (unreadable, empty, silent, NaN, shorter than one content frame) raise
`DistillRVCError` with a one-line message naming the file.

Not for: slicing or loudness normalisation of training data (`prepare.py`) or F0/content
features (`pitch.py`, `content.py`).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import DistillRVCError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
MIN_SECONDS = 0.025  # 400 samples at 16 kHz: the content encoder's receptive field, one frame
SILENCE_PEAK = 1e-4  # -80 dBFS: below 16-bit dither, so nothing to learn a voice from
HIGHPASS_HZ = 48.0  # RVC's Butterworth high-pass, 5th order (rvc-format.md §5.4, §7)
HIGHPASS_ORDER = 5


def check_audio(audio: np.ndarray, sr: int, name: str | Path = "audio") -> None:
    """Raise `DistillRVCError` if `audio` [N] cannot be used: empty, NaN/inf, too short, silent."""
    if audio.size == 0:
        raise DistillRVCError(f"{name}: the audio is empty (no samples)")
    if not np.isfinite(audio).all():
        raise DistillRVCError(f"{name}: the audio contains NaN or infinite samples; re-export it from your editor")
    if audio.shape[-1] < MIN_SECONDS * sr:
        raise DistillRVCError(f"{name}: the audio is {audio.shape[-1] / sr * 1000:.1f} ms long, shorter than one "
                              f"frame ({MIN_SECONDS * 1000:.0f} ms)")
    if np.abs(audio).max() < SILENCE_PEAK:
        raise DistillRVCError(f"{name}: the audio is silent (peak below -80 dBFS)")


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """[N] at sr_in -> float32 [N * sr_out / sr_in] at sr_out (soxr high quality, as librosa does)."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if sr_in == sr_out:
        return audio
    import soxr

    return np.ascontiguousarray(soxr.resample(audio, sr_in, sr_out, quality="HQ"), dtype=np.float32)


def load_audio(path: str | Path, sr: int, *, check: bool = True) -> np.ndarray:
    """Read an audio file as mono float32 [N] at `sr` Hz (channels averaged, then resampled).

    With `check` (the default), unusable audio raises `DistillRVCError` (see `check_audio`).
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise DistillRVCError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DistillRVCError(f"{path}: the file is empty (0 bytes)")
    try:
        data, sr_in = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, TypeError, EOFError) as e:  # LibsndfileError is a RuntimeError
        # libsndfile repeats the path ("Error opening '<path>': <reason>"); keep the reason.
        reason = re.sub(r"^Error opening .*?: ", "", str(e).strip().splitlines()[-1] if str(e).strip() else "")
        reason = reason.rstrip(".")[:120] or type(e).__name__
        raise DistillRVCError(f"{path}: cannot read audio ({reason}); expected WAV, FLAC, OGG or MP3") from None
    audio = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if check:
        check_audio(audio, sr_in, path)
    return resample(audio, sr_in, sr)


def highpass(audio: np.ndarray, sr: int, *, zero_phase: bool) -> np.ndarray:
    """RVC's 5th-order Butterworth high-pass at 48 Hz on [N] -> float32 [N].

    `zero_phase=True` filters forwards and backwards (scipy filtfilt), as RVC's inference
    does; False is the causal filter (lfilter) of RVC's training preprocess, which avoids
    pre-ringing before onsets.
    """
    from scipy import signal

    b, a = signal.butter(N=HIGHPASS_ORDER, Wn=HIGHPASS_HZ, btype="high", fs=sr)
    x = np.asarray(audio, dtype=np.float64)
    out = signal.filtfilt(b, a, x) if zero_phase else signal.lfilter(b, a, x)
    return out.astype(np.float32)


def condition_audio(audio_16k: np.ndarray) -> np.ndarray:
    """RVC's input conditioning of 16 kHz audio [N] before content and F0 extraction.

    Scale down to a peak of 0.95 when louder, then the zero-phase 48 Hz high-pass
    (rvc-format.md §5.4). Content features depend on the input level, so apply this exactly
    once to audio that is about to be converted. As in RVC, scipy's default edge padding lets
    an abrupt loud start or end overshoot for a few hundred samples.
    """
    x = np.asarray(audio_16k, dtype=np.float32)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak / 0.95 > 1.0:
        x = x / (peak / 0.95)
    return highpass(x, 16000, zero_phase=True)


def write_wav(path: str | Path, audio: np.ndarray, sr: int, *, subtype: str = "PCM_16") -> Path:
    """Write mono [N] (or [N, channels]) float audio as a WAV file, atomically.

    `subtype` "PCM_16" clips to [-1, 1) (values beyond would wrap around); "FLOAT" writes
    32-bit float samples unchanged, as RVC's training folders hold them.
    """
    import soundfile as sf

    subtype = subtype.upper()
    if subtype not in ("PCM_16", "PCM_24", "FLOAT"):
        raise DistillRVCError(f"unsupported WAV sample format {subtype!r}; use PCM_16, PCM_24 or FLOAT")
    data = np.asarray(audio, dtype=np.float32)
    if not np.isfinite(data).all():
        raise DistillRVCError(f"{path}: refusing to write audio containing NaN or infinite samples")
    if subtype != "FLOAT":
        data = np.clip(data, -1.0, 1.0 - 2.0 ** -15)
    return atomic_write(path, lambda tmp: sf.write(str(tmp), data, int(sr), subtype=subtype, format="WAV"))
