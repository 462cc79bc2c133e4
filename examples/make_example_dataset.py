"""Make the example dataset cache `examples/data/` and clips `examples/clips/` (deterministic, seconds).

Speech-like audio without any recording: a band-limited harmonic source whose F0 glides and
wobbles, shaped by three vowel formants that change from syllable to syllable, with breath
noise, syllable envelopes and pauses. The F0 track is known from the construction, so it is
written as is (0 in the pauses). Content features stand in for HuBERT's: a fixed, seeded
random projection of the 50 Hz log-mel to 768 dimensions, so they follow what is said (the
formants) as real features do. Not a substitute for real speech when judging quality.

    python examples/make_example_dataset.py              # writes examples/data/ and examples/clips/
    python examples/make_example_dataset.py OUT --utterances 24 --seconds 3 --clips CLIPS

The clips are three more utterances as 16-bit WAVs at 40 kHz, for `convert` and `compare`.
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from distill_rvc.data.dataset import DatasetWriter

SR, HOP = 40000, 400  # the bundled teacher's rate; 100 frames/s
# (F1, F2, F3) in Hz of a few vowels (roughly a, e, i, o, u).
VOWELS = ((730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410), (300, 870, 2240))


def _resonator(x: np.ndarray, freq: float, bandwidth: float, sr: int) -> np.ndarray:
    """Two-pole resonance at `freq` (unity gain at DC is irrelevant here; the output is normalised)."""
    r = np.exp(-np.pi * bandwidth / sr)
    a = [1.0, -2 * r * np.cos(2 * np.pi * freq / sr), r * r]
    return lfilter([1 - r], a, x)


def utterance(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(audio [N] float32 at SR, f0 [N / HOP] Hz with 0 in pauses)."""
    frames = int(seconds * 100)
    f0 = np.zeros(frames)
    voiced_segments = []
    t = int(rng.integers(5, 15))
    base = rng.uniform(95, 260)
    while t < frames - 10:
        length = int(rng.integers(15, 35))  # a 150-350 ms syllable
        end = min(t + length, frames - 5)
        k = np.arange(end - t)
        glide = base * 2 ** (rng.uniform(-3, 3) / 12 * k / max(len(k) - 1, 1))
        f0[t:end] = glide * (1 + 0.015 * np.sin(2 * np.pi * 5.5 * k / 100 + rng.uniform(0, 6)))
        voiced_segments.append((t, end, VOWELS[int(rng.integers(len(VOWELS)))]))
        t = end + int(rng.integers(4, 16))  # a 40-160 ms pause

    n = frames * HOP
    f0_samples = np.repeat(f0, HOP)
    phase = 2 * np.pi * np.cumsum(f0_samples) / SR
    source = np.zeros(n)
    for h in range(1, 41):  # band-limited: harmonics below 0.45 SR only
        alive = (h * f0_samples < 0.45 * SR) & (f0_samples > 0)
        source += alive * np.sin(h * phase) / h
    audio = np.zeros(n)
    for start, end, formants in voiced_segments:
        a, b = start * HOP, end * HOP
        x = source[a:b] + 0.02 * rng.standard_normal(b - a)  # breath noise
        y = sum(_resonator(x, f, 60 + 0.08 * f, SR) * g for f, g in zip(formants, (1.0, 0.6, 0.3)))
        env = np.minimum(1, np.minimum(np.arange(b - a), np.arange(b - a)[::-1]) / (0.02 * SR))
        audio[a:b] = y * env * rng.uniform(0.6, 1.0)
    audio += 0.001 * rng.standard_normal(n)
    audio *= 0.6 / max(np.abs(audio).max(), 1e-9)
    return audio.astype(np.float32), f0.astype(np.float32)


def content_features(audio: np.ndarray, projection: np.ndarray, mel_basis: np.ndarray) -> np.ndarray:
    """audio [N] -> [N / (2 HOP), 768]: 50 Hz log-mel through a fixed random projection."""
    n_fft, hop = 2048, 2 * HOP
    padded = np.pad(audio, n_fft // 2, mode="reflect")
    count = len(audio) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:count] * np.hanning(n_fft)
    logmel = np.log(np.abs(np.fft.rfft(frames, axis=1)) ** 2 @ mel_basis.T + 1e-5)  # [T_h, 80]
    logmel = (logmel - logmel.mean()) / (logmel.std() + 1e-5)
    return np.tanh(logmel @ projection).astype(np.float32)


def make_example_dataset(out: str | Path, utterances: int = 12, seconds: float = 2.0, seed: int = 0) -> Path:
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    rng = np.random.default_rng(seed)
    projection = np.random.default_rng(1234).standard_normal((80, 768)) / np.sqrt(80)
    import librosa

    mel_basis = librosa.filters.mel(sr=SR, n_fft=2048, n_mels=80)
    writer = DatasetWriter(out, version="v2", feature_dim=768, sample_rate=SR, f0=True,
                           extractor={"content": "example: random projection of a 50 Hz log-mel",
                                      "f0": "known from the construction"})
    for i in range(utterances):
        audio, f0 = utterance(rng, seconds)
        writer.add_source(f"synthetic_{i:03d}.wav", [(content_features(audio, projection, mel_basis), f0, None, audio)])
    return out


def make_example_clips(out: str | Path, clips: int = 3, seconds: float = 4.0, seed: int = 100) -> list[Path]:
    """`clips` speech-like WAVs (not in the dataset: another seed) in `out`."""
    from distill_rvc.features import write_wav

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = [out / f"clip_{i}.wav" for i in range(clips)]
    for path in paths:
        write_wav(path, utterance(rng, seconds)[0], SR)
    return paths


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=str(Path(__file__).with_name("data")))
    ap.add_argument("--utterances", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clips", default=str(Path(__file__).with_name("clips")), help="where the WAV clips go")
    args = ap.parse_args()
    path = make_example_dataset(args.out, args.utterances, args.seconds, args.seed)
    print(f"wrote {os.path.relpath(path)} ({args.utterances} utterances of {args.seconds:g} s, v2 features, 40 kHz, with F0 and audio)")
    clips = make_example_clips(args.clips)
    print(f"wrote {os.path.relpath(clips[0].parent)} ({len(clips)} speech-like WAVs of 4 s at 40 kHz)")
