"""F0 extractors side by side on a CPU: accuracy and speed of harvest, dio and fcpe in one run.

    python bench/bench_f0.py                       # 1 thread, 3 timed runs, fixtures' 12 utterances
    python bench/bench_f0.py --threads 2 --runs 5 --audio /work/fid-data/wav_held
    python bench/bench_f0.py --model teacher.pth --hubert hubert_base.pt   # + the whole convert chain

Accuracy (cents are |1200 log2(a / b)|, over the frames both call voiced):
  - sweep: a 3 s 100 -> 400 Hz glide with 8 harmonics against its true F0 (every frame voiced,
    so V/UV error = the share of frames called unvoiced);
  - speech: espeak-ng utterances (tests/fixtures/speech, six voices; or --audio) against harvest,
    RVC's reference extractor here; V/UV error = the share of frames where the voicing differs.
  Columns: median and 95th-percentile cents, gross = share of frames off by more than 50 cents.
Speed: the real-time factor (compute seconds per second of audio; below 1 is faster than
real time) on all the speech concatenated, the extractors taking turns in each run (median kept).
With --model and --hubert, also the whole `convert` chain (content features + F0 + synthesizer)
on the first --chain-seconds of that speech, per F0 method, side by side.
FCPE needs its weights (--fcpe, $DISTILL_RVC_FCPE or the torchfcpe wheel).

Measured 2026-12-02 on the shared dev machine (2 cores, load ~15 from other jobs: the
RTFs are slow in absolute terms, the ratios are side by side), 1 thread, torch 2.13 CPU,
`python bench/bench_f0.py --model /work/shared/teachers/ref_v2_40k.pth --hubert /work/fid-data/hubert_a.pt`
(12 espeak-ng utterances, six voices, 44.2 s):

    sweep vs truth    median c   p95 c   gross >50c   V/UV err
      harvest             0.18    0.58       0.007      0.000
      dio                 0.18    0.56       0.003      0.003
      fcpe                1.04    2.93       0.000      0.000
    speech vs harvest (pooled)
      dio                 0.01   10.70       0.038      0.167
      fcpe                6.13  160.11       0.097      0.090
    F0 alone, RTF at 1 thread (44.2 s)
      harvest 0.941   dio 0.037 (x25.3)   fcpe 0.121 (x7.8 vs harvest)
    whole convert chain, RTF at 1 thread (10 s)
      ref_v2_40k.pth (full-size teacher):  harvest 6.47  dio 6.04 (x1.07)  fcpe 5.36 (x1.21)
      examples/tiny_teacher.pth:           harvest 1.34  dio 0.69 (x1.95)  fcpe 0.73 (x1.84)
        (`--model examples/tiny_teacher.pth --hubert /work/fid-data/hubert_a.pt --chain-only`)

dio agrees with harvest to 0.01 c because both are WORLD trackers refined by the same
stonemask; its voicing differs on 17 % of frames, FCPE's on 9 %.
Per voice, FCPE's median vs harvest is 4.4-10.4 c; the 95th percentiles (90-200 c, 1195 c on
usf4 for dio and FCPE alike: octave disagreements with harvest) are where trackers disagree,
and which one is right there is not measured here (no ground truth for speech).
So `convert` defaults to fcpe: with a small synthesizer the chain is 1.8x faster than with
harvest and real-time at 1 thread; accuracy on the known-F0 sweep stays at about a cent.
`prepare` keeps harvest (the teachers here were trained on WORLD F0).

Not for: RMVPE (no real weights here; bench_features.py times it at real size), or streaming
and batch figures of models (`distill-rvc bench`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill_rvc.features import extract_f0, resample  # noqa: E402
from distill_rvc.features.fcpe import find_fcpe  # noqa: E402
from distill_rvc.timing import cpu_name, side_by_side, timed  # noqa: E402

METHODS = ("harvest", "dio", "fcpe")


def sweep(seconds: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """The test's sweep (tests/features/test_fcpe.py): audio [N] at 16 kHz and the true F0 per frame."""
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(100.0 * 4.0 ** (t / seconds)) / sr
    x = 0.25 * sum(np.sin(k * phase) / k for k in range(1, 9))
    return x.astype(np.float32), 100.0 * 4.0 ** (np.arange(len(x) // 160 + 1) * 160 / sr / seconds)


def speech(folder: Path) -> dict[str, list[np.ndarray]]:
    """voice -> its utterances at 16 kHz (the voice is the file name before the last '_')."""
    out: dict[str, list[np.ndarray]] = {}
    for path in sorted(folder.glob("*.wav")):
        x, sr = sf.read(path, dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        out.setdefault(path.stem.rsplit("_", 1)[0], []).append(resample(x, sr, 16000) if sr != 16000 else x)
    if not out:
        raise SystemExit(f"{folder}: no .wav files")
    return out


def scores(f0: list[np.ndarray], ref: list[np.ndarray]) -> dict[str, float]:
    """Pooled over utterances: median / p95 cents and gross rate on both-voiced frames, V/UV error."""
    f, r = np.concatenate(f0), np.concatenate(ref)
    both = (f > 0) & (r > 0)
    c = np.abs(1200.0 * np.log2(f[both] / r[both]))
    return {"median": float(np.median(c)), "p95": float(np.percentile(c, 95)), "gross": float((c > 50).mean()),
            "vuv": float(((f > 0) != (r > 0)).mean())}


def row(name: str, s: dict[str, float]) -> str:
    return f"  {name:<14} {s['median']:8.2f} {s['p95']:7.2f} {s['gross']:11.3f} {s['vuv']:10.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per extractor (median kept)")
    ap.add_argument("--audio", type=Path, default=ROOT / "tests" / "fixtures" / "speech",
                    help="a folder of speech .wav (voice_N.wav); default: the espeak-ng fixtures")
    ap.add_argument("--model", default=None, help="an RVC .pth: also time the whole convert chain per F0 method")
    ap.add_argument("--hubert", default=None, help="its content encoder (with --model)")
    ap.add_argument("--chain-seconds", type=float, default=10.0)
    ap.add_argument("--chain-only", action="store_true", help="with --model: skip the accuracy and F0-only timing")
    ap.add_argument("--fcpe", default=None, help="fcpe_c_v001.pt [default: $DISTILL_RVC_FCPE, else the wheel]")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fcpe = find_fcpe(args.fcpe)

    def f0(x: np.ndarray, method: str) -> np.ndarray:
        return extract_f0(x, method, fcpe_path=fcpe)

    print(f"# {cpu_name()}, {args.threads} thread(s), torch {torch.__version__}, fcpe: {fcpe}")
    voices = speech(args.audio)
    if args.chain_only and args.model and args.hubert:
        audio = np.concatenate([u for us in voices.values() for u in us])
        return chain(args.model, args.hubert, audio[: int(args.chain_seconds * 16000)], fcpe, args.runs, args.threads)
    header = f"  {'':<14} {'median c':>8} {'p95 c':>7} {'gross >50c':>11} {'V/UV err':>10}"
    x, true = sweep()
    print("sweep vs truth\n" + header)
    for m in METHODS:
        print(row(m, scores([f0(x, m)], [np.where(true > 0, true, 0)])))

    tracks = {m: {v: [f0(u, m) for u in us] for v, us in voices.items()} for m in METHODS}
    seconds = sum(len(u) for us in voices.values() for u in us) / 16000
    n = sum(len(us) for us in voices.values())
    print(f"speech vs harvest ({len(voices)} voices, {n} utterances, {seconds:.1f} s; pooled)\n" + header)
    for m in ("dio", "fcpe"):
        pooled = [t for v in voices for t in tracks[m][v]], [t for v in voices for t in tracks["harvest"][v]]
        print(row(m, scores(*pooled)))
    print("per voice\n" + header)
    for v in voices:
        for m in ("dio", "fcpe"):
            print(row(f"{m} {v}", scores(tracks[m][v], tracks["harvest"][v])))

    audio = np.concatenate([u for us in voices.values() for u in us])
    medians = side_by_side([timed(lambda m=m: f0(audio, m)) for m in METHODS], runs=args.runs, warmup=1)
    print(f"RTF at {args.threads} thread(s) ({seconds:.1f} s of speech, median of {args.runs}; below 1 = faster "
          "than real time)")
    for m, t in zip(METHODS, medians):
        print(f"  {m:<8} {t / seconds:7.4f}   ({t:.2f} s; x{medians[0] / t:.1f} vs harvest)")
    if args.model and args.hubert:
        chain(args.model, args.hubert, audio[: int(args.chain_seconds * 16000)], fcpe, args.runs, args.threads)


def chain(model: str, hubert: str, clip: np.ndarray, fcpe: Path, runs: int, threads: int) -> None:
    """RTF of `convert`'s whole chain on `clip` per F0 method (the chunks as convert cuts them)."""
    from distill_rvc.backends import open_backend
    from distill_rvc.convert import Converter, ConvertSettings
    from distill_rvc.features import load_content_encoder

    backend, encoder = open_backend(model), load_content_encoder(hubert)
    convs = [Converter(backend, encoder, ConvertSettings(f0_method=m, fcpe=fcpe)) for m in METHODS]
    medians = side_by_side([timed(lambda c=c: c.convert_audio(clip)) for c in convs], runs=runs, warmup=1)
    seconds = len(clip) / 16000
    print(f"convert chain RTF at {threads} thread(s) ({Path(model).name}, {seconds:.1f} s, median of {runs})")
    for m, t in zip(METHODS, medians):
        print(f"  {m:<8} {t / seconds:7.4f}   ({t:.2f} s; x{medians[0] / t:.2f} vs harvest)")


if __name__ == "__main__":
    main()
