"""Fidelity of a student to its teacher: objective distances between two outputs of one input.

Both outputs come from identical inputs and noise, so they are frame-aligned and compared
frame by frame, never time-warped (compression-notes.md §6):

    log_mel_l1     mean |ln mel_teacher - ln mel_student| with RVC's own mel of the model's rate
    mcd_db         (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2), d = 1..24, mean over frames
                   voiced in the teacher; c = pyworld's code_spectral_envelope (25 dims) of the
                   CheapTrick envelope at 16 kHz, with each output's own harvest F0
    f0_rmse_cents  sqrt(mean (1200 log2(f_student / f_teacher))^2) over frames voiced in both
    f0_corr        Pearson correlation of F0 (Hz) over frames voiced in both
    vuv_error      fraction of frames whose voicing differs (harvest at 16 kHz on both)
    secs           cosine of resemblyzer speaker embeddings (when resemblyzer is installed)
    dnsmos         DNSMOS P.835 OVRL of teacher and student (when speechmos is installed)

Clips are pooled frame by frame (`fidelity`), so a long clip weighs more than a short one.
A number that cannot be computed (no voiced frames, extra not installed) is None, never NaN.

Not for: running models (`convert`, `report`) or training losses (`distill.losses`).
"""
from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field

import numpy as np

from .features.audio import resample
from .features.pitch import extract_f0, import_pyworld

log = logging.getLogger(__name__)

ANALYSIS_SR = 16000
MCD_DIMS = 24  # c1..c24; c0 (the frame's level) is left out
MCD_K = 10.0 / math.log(10.0)
DNSMOS_WINDOW_S = 9.01  # DNSMOS's input length (speechmos's INPUT_LENGTH)


# ----------------------------------------------------------------------------- single metrics
def f0_rmse_cents(f0_ref: np.ndarray, f0_test: np.ndarray) -> float | None:
    """RMSE in cents of `f0_test` against `f0_ref` (Hz, 0 = unvoiced) over frames voiced in both."""
    cents = _cents(f0_ref, f0_test)
    return float(np.sqrt(np.mean(cents ** 2))) if cents.size else None


def f0_corr(f0_ref: np.ndarray, f0_test: np.ndarray) -> float | None:
    """Pearson correlation of the F0 values (Hz) of frames voiced in both; None under 2 frames
    or when either track is constant there."""
    a, b = _both_voiced(f0_ref, f0_test)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def vuv_error(f0_ref: np.ndarray, f0_test: np.ndarray) -> float | None:
    """Fraction of frames (over the shorter track) voiced in one track and unvoiced in the other."""
    n = min(len(f0_ref), len(f0_test))
    if n == 0:
        return None
    return float(np.mean((np.asarray(f0_ref[:n]) > 0) != (np.asarray(f0_test[:n]) > 0)))


def mcd_from_cepstra(c_ref: np.ndarray, c_test: np.ndarray, frames: np.ndarray | None = None) -> float | None:
    """Mean plain MCD (dB) of [F, D] cepstra over c1..c24 (column 0 is c0, left out), on the
    boolean `frames` mask (all frames if None)."""
    per_frame = _mcd_per_frame(c_ref, c_test)
    if frames is not None:
        per_frame = per_frame[np.asarray(frames[: len(per_frame)], dtype=bool)]
    return float(per_frame.mean()) if per_frame.size else None


def mcd_db(ref: np.ndarray, test: np.ndarray, sr: int) -> float | None:
    """Plain (frame-aligned, no DTW) MCD of `test` against `ref` [N] at `sr`, over frames voiced
    in `ref`; None if `ref` has no voiced frame."""
    a, b = world_analysis(ref, sr), world_analysis(test, sr)
    return mcd_from_cepstra(a.cepstra, b.cepstra, a.f0 > 0)


def log_mel_l1(ref: np.ndarray, test: np.ndarray, sr: int) -> float:
    """Mean absolute difference of RVC's natural-log mel spectrograms (the training loss's mel
    for this rate: n_fft 2048 at 40/48 kHz, hop sr/100) of two signals [N] at `sr`."""
    return float(_mel_abs_diff(ref, test, sr).mean())


def secs(ref: np.ndarray, test: np.ndarray, sr: int) -> float | None:
    """Speaker similarity: cosine of resemblyzer's embeddings (None when resemblyzer is absent)."""
    encoder = _voice_encoder()
    if encoder is None:
        return None
    from resemblyzer import preprocess_wav

    a = encoder.embed_utterance(preprocess_wav(np.asarray(ref, dtype=np.float32), source_sr=sr))
    b = encoder.embed_utterance(preprocess_wav(np.asarray(test, dtype=np.float32), source_sr=sr))
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def dnsmos_ovrl(audio: np.ndarray, sr: int) -> float | None:
    """DNSMOS P.835 overall score (1..5) of [N] at `sr` (None when speechmos is absent).

    DNSMOS scores 9.01 s windows. speechmos slides one every second (and first doubles a short
    clip until it is longer than that), which costs a model run per second of audio; we score
    back-to-back windows instead, a short clip tiled to one window, and average them.
    """
    try:
        from speechmos import dnsmos
    except ImportError:
        return None
    x = np.clip(resample(audio, sr, ANALYSIS_SR), -1.0, 1.0).astype(np.float32)
    n = int(DNSMOS_WINDOW_S * ANALYSIS_SR)
    if len(x) < n:
        x = np.tile(x, -(-n // max(len(x), 1)))[:n]
    scores = [dnsmos.run(x[i: i + n], sr=ANALYSIS_SR)["ovrl_mos"] for i in range(0, len(x) - n + 1, n)]
    return float(np.mean(scores))


def extras_available() -> dict[str, bool]:
    """Which optional metrics can run here: {"secs": resemblyzer, "dnsmos": speechmos}."""
    import importlib.util

    return {"secs": importlib.util.find_spec("resemblyzer") is not None,
            "dnsmos": importlib.util.find_spec("speechmos") is not None}


# ----------------------------------------------------------------------------- analyses
@dataclass
class WorldAnalysis:
    """One signal at 16 kHz, 10 ms frames: harvest F0 [F] (Hz, 0 unvoiced) and the coded
    CheapTrick envelope [F, 25] (c0..c24)."""

    f0: np.ndarray
    cepstra: np.ndarray


def world_analysis(audio: np.ndarray, sr: int) -> WorldAnalysis:
    """harvest + stonemask F0 (RVC's settings) and pyworld's coded spectral envelope at 16 kHz."""
    pyworld = import_pyworld()
    x = np.ascontiguousarray(resample(audio, sr, ANALYSIS_SR), dtype=np.float64)
    f0 = extract_f0(x.astype(np.float32), "harvest").astype(np.float64)
    t = np.arange(len(f0)) * 0.01
    envelope = pyworld.cheaptrick(x, f0, t, ANALYSIS_SR)
    coded = pyworld.code_spectral_envelope(envelope, ANALYSIS_SR, MCD_DIMS + 1)
    return WorldAnalysis(f0=f0.astype(np.float32), cepstra=np.asarray(coded))


@dataclass
class ClipComparison:
    """Per-frame evidence from one (teacher, student) pair, kept so clips pool by frame."""

    mel_abs: np.ndarray  # [F_mel] mean |Δ log-mel| per mel frame
    mcd: np.ndarray  # [V] MCD (dB) of each frame voiced in the teacher
    cents: np.ndarray  # [B] 1200 log2(f_s / f_t) of frames voiced in both
    f0_pairs: np.ndarray  # [B, 2] (teacher, student) F0 of those frames
    vuv_differs: np.ndarray  # [F] bool
    teacher_f0: np.ndarray = field(repr=False)  # [F] for plots
    student_f0: np.ndarray = field(repr=False)


def compare_clip(teacher: np.ndarray, student: np.ndarray, sr: int) -> ClipComparison:
    """Frame-by-frame comparison of a student output with the teacher output [N] at `sr`."""
    n = min(len(teacher), len(student))
    teacher, student = np.asarray(teacher[:n], dtype=np.float32), np.asarray(student[:n], dtype=np.float32)
    a, b = world_analysis(teacher, sr), world_analysis(student, sr)
    voiced = a.f0 > 0
    f = min(len(a.f0), len(b.f0))
    ft, fs = _both_voiced(a.f0, b.f0)
    return ClipComparison(
        mel_abs=_mel_abs_diff(teacher, student, sr),
        mcd=_mcd_per_frame(a.cepstra, b.cepstra)[voiced[: min(len(a.cepstra), len(b.cepstra))]],
        cents=_cents(a.f0, b.f0), f0_pairs=np.stack([ft, fs], axis=1),
        vuv_differs=(a.f0[:f] > 0) != (b.f0[:f] > 0), teacher_f0=a.f0, student_f0=b.f0)


def pooled(comparisons: list[ClipComparison]) -> dict[str, float | None]:
    """The objective metrics over all frames of all clips (None where no frame qualifies)."""
    def cat(name: str) -> np.ndarray:
        arrays = [getattr(c, name) for c in comparisons]
        return np.concatenate(arrays) if arrays else np.zeros(0)

    mel, mcd, cents, vuv = cat("mel_abs"), cat("mcd"), cat("cents"), cat("vuv_differs")
    pairs = np.concatenate([c.f0_pairs for c in comparisons]) if comparisons else np.zeros((0, 2))
    return {
        "log_mel_l1": float(mel.mean()) if mel.size else None,
        "mcd_db": float(mcd.mean()) if mcd.size else None,
        "f0_rmse_cents": float(np.sqrt(np.mean(cents ** 2))) if cents.size else None,
        "f0_corr": f0_corr(pairs[:, 0], pairs[:, 1]) if len(pairs) else None,
        "vuv_error": float(vuv.mean()) if vuv.size else None,
    }


GROSS_CENTS = 1200 * float(np.log2(1.2))  # a 20 % F0 error (~316 cents): the usual gross pitch error


def pitch_errors(comparisons: list[ClipComparison]) -> dict[str, float | None]:
    """F0 error split the usual way: the share of frames voiced in both that are more than 20 %
    apart (gross errors, octave flips among them), and the RMSE in cents of the others. On a
    buzzy teacher the few flips dominate a plain RMSE (`pooled`'s f0_rmse_cents)."""
    cents = np.abs(np.concatenate([c.cents for c in comparisons])) if comparisons else np.zeros(0)
    fine = cents[cents <= GROSS_CENTS]
    return {"f0_gross_error": float((cents > GROSS_CENTS).mean()) if cents.size else None,
            "f0_rmse_fine_cents": float(np.sqrt(np.mean(fine ** 2))) if fine.size else None}


# ----------------------------------------------------------------------------- helpers
def _both_voiced(f0_ref: np.ndarray, f0_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(f0_ref), len(f0_test))
    a = np.asarray(f0_ref[:n], dtype=np.float64)
    b = np.asarray(f0_test[:n], dtype=np.float64)
    both = (a > 0) & (b > 0)
    return a[both], b[both]


def _cents(f0_ref: np.ndarray, f0_test: np.ndarray) -> np.ndarray:
    a, b = _both_voiced(f0_ref, f0_test)
    return 1200.0 * np.log2(b / a)


def _mcd_per_frame(c_ref: np.ndarray, c_test: np.ndarray) -> np.ndarray:
    n = min(len(c_ref), len(c_test))
    diff = np.asarray(c_ref[:n, 1: MCD_DIMS + 1], dtype=np.float64) - np.asarray(c_test[:n, 1: MCD_DIMS + 1])
    return MCD_K * np.sqrt(2.0 * np.sum(diff ** 2, axis=1))


def _mel_abs_diff(ref: np.ndarray, test: np.ndarray, sr: int) -> np.ndarray:
    """[F] mean over mel bins of |Δ log-mel| per frame."""
    import torch

    n = min(len(ref), len(test))
    mel = _mel(sr)
    with torch.no_grad():
        x = torch.from_numpy(np.stack([np.asarray(ref[:n], np.float32), np.asarray(test[:n], np.float32)]))
        m = mel(x)  # [2, n_mels, F]
    return (m[0] - m[1]).abs().mean(dim=0).numpy().astype(np.float64)


@functools.lru_cache(maxsize=4)
def _mel(sr: int):
    """RVC's training mel of the configuration for this rate (teach's implementation)."""
    from .config import rvc_config
    from .distill.spectral import MelSpectrogram
    from .errors import DistillRVCError

    try:
        return MelSpectrogram.for_model(rvc_config("v2", sr))
    except DistillRVCError:  # a rate RVC has no config for: its 10 ms hop, FFT and mel sizes of the nearest
        n_fft = 2048 if sr > 32000 else 1024
        return MelSpectrogram(sr, n_fft, sr // 100, n_fft, 128 if sr > 40000 else 80)


@functools.lru_cache(maxsize=1)
def _voice_encoder():
    try:
        from resemblyzer import VoiceEncoder
    except ImportError:
        return None
    return VoiceEncoder("cpu", verbose=False)
