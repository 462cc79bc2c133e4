"""A teacher's audio with a small content encoder in place of HuBERT, against the teacher chain (issue 14).

    python bench/bench_encoder_fidelity.py --hubert hubert_a.pt --audio HELD_WAVS \
        --encoder small=encoder_v2.pt [--encoder other=hubert_b.pt] [--teacher big.pth] [--clips 8]

Each --audio clip (--clips of them, spread over the sorted files) is converted by `convert` with
the teacher, once per content encoder: the reference is --hubert (the chain the teacher was
trained on), then each --encoder LABEL=PATH (a distilled encoder .pt, an encoder .onnx, or another
HuBERT). Everything else is the same for all: F0 (--f0 of the input clip), speaker 0, prior
noise seed 0, no index. Each output is compared with the reference's (metrics.compare_clip,
pooled by frame): log-mel L1, MCD, F0 RMSE, gross F0 error rate, V/UV disagreement. Two rows
calibrate the scale: "floor", the reference plus white noise at 40 dB SNR (a change no listener
hears as another voice), and whatever a meaningless encoder scores (pass one, e.g. a HuBERT of
another seed: `make_hubert.py --variant a --seed 7`), which is what knowing nothing costs.
All conversions and measurements run in this one process, at --threads.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import soundfile  # noqa: E402

TEACHER = ROOT.parent / "shared" / "teachers" / "ref_v2_40k.pth"


def main() -> None:
    from distill_rvc import metrics
    from distill_rvc.convert import ConvertSettings, convert
    from distill_rvc.encoder.data import find_audio

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", type=Path, default=TEACHER)
    ap.add_argument("--hubert", type=Path, required=True, help="the reference content encoder")
    ap.add_argument("--encoder", action="append", required=True, metavar="LABEL=PATH")
    ap.add_argument("--audio", type=Path, required=True, help="a folder of held-out speech")
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--f0", default="dio")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    files = sorted(find_audio(args.audio))
    picked = [files[round(i * (len(files) - 1) / max(1, args.clips - 1))] for i in range(min(args.clips, len(files)))]
    encoders = [("hubert", args.hubert)] + [(s.partition("=")[0], Path(s.partition("=")[2])) for s in args.encoder]
    settings = ConvertSettings(f0_method=args.f0, seed=0)
    outs: dict[str, list[np.ndarray]] = {}
    sr = None
    with tempfile.TemporaryDirectory() as tmp:
        clips = Path(tmp) / "clips"
        clips.mkdir()
        for f in picked:
            (clips / f.name).symlink_to(f.resolve())
        for label, path in encoders:
            t = time.perf_counter()
            result = convert(args.teacher, path, clips, Path(tmp) / label, settings, threads=args.threads)
            print(f"{label:10s} {path.name}: converted {len(result.files)} clips in {time.perf_counter() - t:.0f} s",
                  flush=True)
            outs[label] = []
            for f in picked:
                audio, sr = soundfile.read(Path(tmp) / label / f.with_suffix(".wav").name, dtype="float32")
                outs[label].append(audio)
    ref = outs["hubert"]
    rng = np.random.default_rng(0)
    rows = {"floor (40 dB)": [a + rng.standard_normal(len(a)).astype(np.float32) * float(np.sqrt(np.mean(a ** 2)))
                              * 10 ** (-40 / 20) for a in ref]}
    rows.update({label: outs[label] for label, _ in encoders[1:]})
    print(f"\n{len(picked)} clips of {args.audio} ({sum(len(a) for a in ref) / sr:.1f} s), teacher {args.teacher.name}, "
          f"F0 {args.f0}; against the teacher chain ({args.hubert.name})")
    print(f"{'encoder':14s} {'L1':>6s} {'MCD dB':>7s} {'F0 RMSE c':>10s} {'gross %':>8s} {'V/UV %':>7s}")
    for label, audio in rows.items():
        comps = [metrics.compare_clip(r, a, sr) for r, a in zip(ref, audio)]
        m = {**metrics.pooled(comps), **metrics.pitch_errors(comps)}
        fmt = lambda v, s: "–" if v is None else format(v, s)  # noqa: E731
        print(f"{label:14s} {fmt(m['log_mel_l1'], '6.3f')} {fmt(m['mcd_db'], '7.2f')} "
              f"{fmt(m['f0_rmse_cents'], '10.0f')} {fmt(None if m['f0_gross_error'] is None else 100 * m['f0_gross_error'], '8.1f')} "
              f"{fmt(100 * m['vuv_error'], '7.1f')}")


if __name__ == "__main__":
    main()
