"""ONNX export side by side with torch: CPU latency, parity and the fp16 file size.

    python bench/bench_onnx.py                         # real-size v2 40k teacher + a student-sized model
    python bench/bench_onnx.py --model runs/x/myvoice_4gb.pth --threads 2 --runs 5
    python bench/bench_onnx.py --keep export/bench     # keep the .onnx files and their cards

Each model is exported twice through `export_onnx` (wokada interface): fp32 (parity at 1 s and
10 s, then `--runs` timed runs of 10 s of audio through onnxruntime and through torch `infer`,
one after the other in this process, `--threads` threads each) and fp16 (parity, file size).
Without `--model`, the models have random weights (seed 0): RVC's v2 40k teacher and a
student-sized config (hidden 96, filter 384, decoder initial channels 256). Prints one JSON
line per model; ratio = onnxruntime / torch (below 1: onnxruntime is faster).
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import onnxruntime
import torch

from distill_rvc import Synthesizer, rvc_config
from distill_rvc.onnx import ExportSettings, export_onnx


def student_config():
    return rvc_config("v2", 40000, True).replace(hidden_channels=96, filter_channels=384,
                                                 upsample_initial_channel=256)


def bench(name: str, model, folder: Path, threads: int, runs: int) -> dict:
    fp32 = export_onnx(model, folder / f"{name}.onnx", ExportSettings(threads=threads, timing_runs=runs)).card
    fp16 = export_onnx(model, folder / f"{name}_fp16.onnx", ExportSettings(fp16=True, threads=threads, timing_runs=0)).card
    lat = fp32["latency"]
    return {
        "model": name, "params": fp32["params"]["total"], "threads": threads, "runs": runs,
        "seconds_of_audio": lat["seconds_of_audio"],
        "onnxruntime_s": round(lat["onnxruntime_s"], 3), "torch_s": round(lat["torch_s"], 3),
        "ort_over_torch": round(lat["ratio"], 3),
        "rtf_onnxruntime": round(lat["onnxruntime_s"] / lat["seconds_of_audio"], 3),
        "rtf_torch": round(lat["torch_s"] / lat["seconds_of_audio"], 3),
        "fp32_mb": round(fp32["file_bytes"] / 1e6, 2), "fp16_mb": round(fp16["file_bytes"] / 1e6, 2),
        "fp16_over_fp32_size": round(fp16["file_bytes"] / fp32["file_bytes"], 3),
        "parity_fp32": {k: fp32["parity"][k] for k in ("max_abs", "max_rel", "lengths_s")},
        "parity_fp16": {k: fp16["parity"][k] for k in ("max_abs", "max_rel", "lengths_s")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="a model file to bench (repeatable); default: the two "
                                                      "random-weight models described above")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="write the .onnx files and cards here instead of a temp folder")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    if args.model:
        models = [(Path(p).stem, p) for p in args.model]
    else:
        torch.manual_seed(0)
        models = [("teacher_v2_40k", Synthesizer(rvc_config("v2", 40000, True)).eval()),
                  ("student_h96_f384_u256", Synthesizer(student_config()).eval())]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        for name, model in models:
            row = bench(name, model, folder, args.threads, args.runs)
            row.update(torch=torch.__version__, onnxruntime=onnxruntime.__version__,
                       cpu=platform.processor() or platform.machine())
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
