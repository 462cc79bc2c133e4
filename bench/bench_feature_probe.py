"""How much of a content encoder's features the spectrum explains linearly: a ceiling check for `teach-encoder`.

    python bench/bench_feature_probe.py --hubert hubert_a.pt --train wav_train --held wav_held [--context 4]

A ridge regression from the log-mel (the student's own front end, `encoder.frontend.LogMel`,
80 mels, at HuBERT's 50 frames/s: mel frames 2t, ±--context frames stacked) to the encoder's
v2 features, fitted on --train and scored on --held (other voices): the share of the feature
variance it explains (R², over all frames and channels, against the training mean) and the
mean per-frame cosine, beside the training mean alone. A distilled encoder far below this
ceiling has more to learn; one near it is limited by what the features are.

Measured 2026-12-04 on hubert_a (`make_hubert.py --variant a`, random weights), the espeak-ng
protocol of bench/make_shared_data.py (4 voices to fit, 2 others held out), ridge 1e3:

    frames          train 32278, held out 16779; inputs 720 (80 mels x 9)
    held-out R²     0.048   (training R² 0.095)
    held-out cosine 0.894   (the training mean alone: 0.888)
    (teach-encoder's 1.99 M student, 1500 steps, bench_encoder_student.py: R² 0.060, cosine 0.896)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from distill_rvc.encoder.frontend import LogMel  # noqa: E402
from distill_rvc.features.audio import load_audio  # noqa: E402
from distill_rvc.features.encoders import open_encoder  # noqa: E402


def pairs(files: list[Path], encoder, mel: LogMel, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Stacked log-mel [T, (2 context + 1) n_mels] and features [T, 768] of every file."""
    xs, ys = [], []
    for f in files:
        audio = load_audio(f, 16000)
        feats = encoder.extract(audio, "v2")
        with torch.no_grad():
            m = mel(torch.from_numpy(audio)[None])[0].T.numpy()[::2]  # mel frame 2t is centred on HuBERT's t
        t = min(len(m), len(feats))
        m = np.pad(m[:t], ((context, context), (0, 0)), mode="edge")
        xs.append(np.concatenate([m[k:k + t] for k in range(2 * context + 1)], axis=1))
        ys.append(feats[:t])
    return np.concatenate(xs), np.concatenate(ys)


def scores(pred: np.ndarray, y: np.ndarray, mean: np.ndarray) -> tuple[float, float]:
    r2 = 1.0 - ((y - pred) ** 2).sum() / ((y - mean) ** 2).sum()
    cos = (pred * y).sum(1) / (np.linalg.norm(pred, axis=1) * np.linalg.norm(y, axis=1) + 1e-9)
    return float(r2), float(cos.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hubert", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--held", type=Path, required=True)
    ap.add_argument("--context", type=int, default=4)
    ap.add_argument("--ridge", type=float, default=1e3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    encoder, mel = open_encoder(args.hubert), LogMel(80)
    x, y = pairs(sorted(args.train.glob("*.wav")), encoder, mel, args.context)
    xh, yh = pairs(sorted(args.held.glob("*.wav")), encoder, mel, args.context)
    mu_x, mean = x.mean(0), y.mean(0)
    a = np.concatenate([x - mu_x, np.ones((len(x), 1), np.float32)], axis=1).astype(np.float64)
    w = np.linalg.solve(a.T @ a + args.ridge * np.eye(a.shape[1]), a.T @ (y - mean))
    fit = lambda z: (np.concatenate([z - mu_x, np.ones((len(z), 1))], axis=1) @ w + mean)  # noqa: E731
    r2_train, _ = scores(fit(x), y, mean)
    r2, cos = scores(fit(xh), yh, mean)
    _, cos_mean = scores(np.broadcast_to(mean, yh.shape), yh, mean)
    print(f"frames          train {len(x)}, held out {len(xh)}; inputs {x.shape[1]} (80 mels x {2 * args.context + 1})")
    print(f"held-out R²     {r2:.3f}   (training R² {r2_train:.3f})")
    print(f"held-out cosine {cos:.3f}   (the training mean alone: {cos_mean:.3f})")


if __name__ == "__main__":
    main()
