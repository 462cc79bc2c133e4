"""The content encoder as ONNX: torch fp32 vs ONNX fp32 vs ONNX int8, side by side in one run.

    python bench/bench_encoder_onnx.py                       # hubert_a (ContentVec size), the shared teacher
    python bench/bench_encoder_onnx.py --hubert hubert_base.pt --wavs DIR --teacher model.pth

What it does, all in this one process:
1. `export_encoder` writes the fp32 graph (its parity check runs); `quantize_int8` of that graph
   gives the int8 variants (MatMul only or MatMul + Conv; QInt8 or QUInt8 weights).
2. Feature error of each graph against the torch encoder on every clip in --wavs (each clip one
   input, as `prepare` feeds it): cosine similarity per frame (mean and min over all frames) and
   relative L2 (||onnx - torch|| / ||torch|| over all frames).
3. Speed: the first --time-seconds of each clip through each encoder, `timing.side_by_side`
   (the encoders run alternately, --runs times, median kept) at each of --threads; RTF = wall
   time / seconds of audio. Sizes are the files on disk.
4. What int8 does to a teacher's audio: `convert`'s path (`Converter`, dio F0, prior noise seed 0,
   the NSF noise off) on the first --audio-seconds of each clip with torch features and with
   each graph's features; log-mel L1, MCD and pitch errors (metrics.py) of each against the
   torch-feature audio. The "noise floor" row is the torch-feature audio with prior-noise seed 1
   against seed 0: how far two runs that differ only in noise are apart.

Caveat: hubert_a has random weights (ContentVec's size and layout, /work/shared/tools/make_hubert.py
--variant a), so its activations are not a trained model's: int8 error on a real ContentVec may
differ. The teacher (ref_v2_40k.pth) was trained on hubert_a's features, so its audio is a fair
test of what the feature error does downstream.

Measured 2026-12-02 (2-core shared CPU; see the report for the exact output):
  `python bench/bench_encoder_onnx.py --runs 3 --time-seconds 20 --audio-seconds 20`, hubert_a (94.6 M
  params, v2), held clips f4 (89 s) + gbm1 (81 s); machine loaded by other jobs (load 4-12), so the
  2-thread row is slower than the 1-thread one and only the ratios within a row mean anything.
                         file MB  RTF 1 thr (x torch)  RTF 2 thr (x torch)  cosine mean/min  rel L2
    torch (fp16 file)     189.5   0.253 (1.00)         0.278 (1.00)         -                -
    onnx fp32             377.6   0.160 (1.58)         0.269 (1.03)         1.0 / 1.0        1e-5
    int8 MatMul qint8     121.6   0.097 (2.61)         0.196 (1.42)         0.9979 / 0.9966  0.064
    int8 MatMul quint8    121.6   0.138 (1.83)         0.262 (1.06)         0.9980 / 0.9967  0.064
    int8 MatMul+Conv q    94.9    0.220 (1.15)         0.415 (0.67)         0.8923 / 0.7557  0.464
    int8 MatMul+Conv qu   94.9    0.146 (1.74)         0.265 (1.05)         0.8903 / 0.7420  0.468
  Teacher ref_v2_40k audio (first 20 s of each clip, dio, seed 0, NSF off) vs torch-feature audio:
                         log-mel L1  MCD dB  F0 gross  F0 fine cents  V/UV
    noise floor (seed 1)   0.382     6.93    0.033     102.2          0.028
    onnx fp32              0.000     0.00    0.000       0.02         0.000
    int8 MatMul qint8      0.028     0.47    0.006      23.2          0.021
    int8 MatMul quint8     0.030     0.50    0.007      22.3          0.023
    int8 MatMul+Conv qint8 0.638     4.25    0.056      56.7          0.023
    int8 MatMul+Conv quint8 0.642    4.35    0.055      57.4          0.023
  Hence the default: MatMul only, QInt8 weights (fastest, same error as QUInt8; Conv ruins features).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch

from distill_rvc.backends import open_backend
from distill_rvc.convert import Converter, ConvertSettings
from distill_rvc.features import load_audio
from distill_rvc.features.encoders import open_encoder
from distill_rvc.metrics import compare_clip, pitch_errors, pooled
from distill_rvc.onnx.encoder import ExportEncoderSettings, export_encoder, quantize_int8, similarity
from distill_rvc.onnx.interface import ENCODER_KEYS, read_metadata, write_metadata
from distill_rvc.timing import cpu_name, side_by_side, timed, torch_threads

VARIANTS = {  # name -> (ops, weights)
    "int8 MatMul qint8": (("MatMul",), "qint8"),
    "int8 MatMul quint8": (("MatMul",), "quint8"),
    "int8 MatMul+Conv qint8": (("MatMul", "Conv"), "qint8"),
    "int8 MatMul+Conv quint8": (("MatMul", "Conv"), "quint8"),
}


def write_variants(hubert: Path, work: Path, version: str) -> dict[str, Path]:
    paths = {"onnx fp32": work / "encoder_fp32.onnx"}
    start = time.perf_counter()
    result = export_encoder(hubert, paths["onnx fp32"], ExportEncoderSettings(version=version))
    print(json.dumps({"export_fp32_s": round(time.perf_counter() - start, 1), "parity": result.parity["fp32"]}))
    fp32 = onnx.load(str(paths["onnx fp32"]))
    meta = read_metadata(fp32)
    for name, (ops, weights) in VARIANTS.items():
        graph = quantize_int8(fp32, ops, weights)
        del graph.metadata_props[:]
        write_metadata(graph, {**{k: meta[k] for k in ENCODER_KEYS.values()}, ENCODER_KEYS["precision"]: "int8"})
        paths[name] = work / f"encoder_{'_'.join(ops).lower()}_{weights}.onnx"
        paths[name].write_bytes(graph.SerializeToString())
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hubert", default="/work/fid-data/hubert_a.pt")
    ap.add_argument("--wavs", default="/work/fid-data/wav_held")
    ap.add_argument("--teacher", default="/work/shared/teachers/ref_v2_40k.pth")
    ap.add_argument("--work", default="/tmp/encoders/bench")
    ap.add_argument("--version", default="v2")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--time-seconds", type=float, default=20.0)
    ap.add_argument("--audio-seconds", type=float, default=20.0)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(args.threads))
    print(json.dumps({"cpu": cpu_name(), "machine": platform.machine(), "torch": torch.__version__,
                      "onnxruntime": onnxruntime.__version__, "hubert": args.hubert}))

    paths = write_variants(Path(args.hubert), work, args.version)
    clips = {p.name: load_audio(p, 16000) for p in sorted(Path(args.wavs).glob("*.wav"))}
    torch_enc = open_encoder(args.hubert, "cpu")
    sizes = {"torch fp32": Path(args.hubert).stat().st_size, **{n: p.stat().st_size for n, p in paths.items()}}
    print(json.dumps({"clips": {n: round(len(a) / 16000, 1) for n, a in clips.items()},
                      "file_bytes": sizes, "params": torch_enc.params}))

    # 2. feature error, whole clips, 2 threads
    with torch_threads(max(args.threads)):
        refs = {n: torch_enc.extract(a, args.version) for n, a in clips.items()}
        for name, path in paths.items():
            enc = open_encoder(path, threads=max(args.threads))
            outs = {n: enc.extract(a, args.version) for n, a in clips.items()}
            sim = similarity(np.concatenate(list(outs.values())), np.concatenate(list(refs.values())))
            print(json.dumps({"features": name, **{k: round(v, 5) for k, v in sim.items()}}))
            del enc

    # 3. speed
    excerpt = [a[: int(args.time_seconds * 16000)] for a in clips.values()]
    seconds = sum(len(a) for a in excerpt) / 16000
    for threads in args.threads:
        with torch_threads(threads):
            encs = {"torch fp32": torch_enc, **{n: open_encoder(p, threads=threads) for n, p in paths.items()}}
            jobs = [timed(lambda e=e: [e.extract(a, args.version) for a in excerpt]) for e in encs.values()]
            medians = side_by_side(jobs, args.runs, warmup=1)
            base = medians[0]
            for name, m in zip(encs, medians):
                print(json.dumps({"speed": name, "threads": threads, "seconds_of_audio": seconds,
                                  "rtf": round(m / seconds, 4), "speedup_vs_torch": round(base / m, 2)}))
            del encs

    # 4. the teacher's audio
    backend = open_backend(args.teacher, "cpu", deterministic=True)
    excerpt = {n: a[: int(args.audio_seconds * 16000)] for n, a in clips.items()}
    with torch_threads(max(args.threads)):
        def render(enc, seed=0):
            conv = Converter(backend, enc, ConvertSettings(f0_method="dio", seed=seed))
            return {n: conv.convert_audio(a) for n, a in excerpt.items()}

        ref_audio = render(torch_enc)
        rows = {"noise floor (seed 1 vs 0)": lambda: render(torch_enc, seed=1)}
        rows.update({name: (lambda p=p: render(open_encoder(p, threads=max(args.threads)))) for name, p in paths.items()})
        for name, make in rows.items():
            audio = make()
            comps = [compare_clip(ref_audio[n], audio[n], backend.info.sr) for n in excerpt]
            metrics = {**pooled(comps), **pitch_errors(comps)}
            print(json.dumps({"teacher_audio": name, **{k: (round(v, 4) if v is not None else None)
                                                        for k, v in metrics.items()}}))


if __name__ == "__main__":
    main()
