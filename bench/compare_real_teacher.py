"""A real-size `compare`: RVC's v2 40k teacher against a student from a short `teach --recipe 4gb` run.

    python bench/compare_real_teacher.py OUT                 # teach 60 steps on the CPU, 3 clips of 4 s
    python bench/compare_real_teacher.py OUT --steps 200 --clips 5

Everything is made here, nothing is downloaded: the teacher is the real v2 40k architecture
(27.5 M parameters) with random weights drawn the way RVC initialises them, the content encoder
a real-size fairseq-layout ContentVec with random weights (examples/make_stand_in_hubert.py), the training
data and the clips speech-like audio from examples/make_example_dataset.py. So size, MACs,
speed and memory are those of the real models, and the fidelity numbers only say how far a
briefly trained student is from this teacher, not how a trained voice would sound.

Writes OUT/big.pth, OUT/hubert_base.pt, OUT/data, OUT/run (the teach run, big_4gb.pth),
OUT/clips and OUT/report (report.md, report.json, plots, tensorboard/), and prints the verdict.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # distill_rvc, examples and tests.fixtures

from distill_rvc import Synthesizer, rvc_config, save_model  # noqa: E402
from distill_rvc.distill.teach import TeachSettings, teach  # noqa: E402
from distill_rvc.features import write_wav  # noqa: E402
from distill_rvc.compare import CompareSettings, compare  # noqa: E402
from examples.make_stand_in_hubert import real_size, write_hubert  # noqa: E402
from examples.make_example_dataset import SR, make_example_dataset, utterance  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--steps", type=int, default=60, help="teach steps (4gb recipe, on the CPU)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--clip-seconds", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    times = {}

    start = time.perf_counter()
    torch.manual_seed(0)
    teacher = out / "big.pth"
    if not teacher.exists():
        save_model(Synthesizer(rvc_config("v2", 40000, True)).eval(), teacher, plain_rvc=True,
                   metadata={"info": "random weights, RVC's init (bench/compare_real_teacher.py)"})
    hubert = out / "hubert_base.pt"
    if not hubert.exists():
        write_hubert(hubert, **real_size())
    data = out / "data"
    if not (data / "manifest.json").exists():
        make_example_dataset(data, utterances=16, seconds=2.0)
    clips = out / "clips"
    rng = np.random.default_rng(7)
    for i in range(args.clips):
        audio, _ = utterance(rng, args.clip_seconds)
        write_wav(clips / f"clip_{i}.wav", audio, SR)
    times["make_inputs_s"] = time.perf_counter() - start

    start = time.perf_counter()
    result = teach(teacher, data, out / "run", TeachSettings(recipe="4gb", steps=args.steps, batch_size=args.batch_size,
                                                            device="cpu", check_budget=False, progress=True))
    times["teach_s"] = time.perf_counter() - start

    start = time.perf_counter()
    cmp = compare(teacher, result.student_path, clips, hubert, out / "report",
                  CompareSettings(threads=args.threads, runs=args.runs), progress=True)
    times["compare_s"] = time.perf_counter() - start
    r = cmp.to_dict()
    print(r["verdict"])
    print(json.dumps({"params": r["params"], "file_bytes": r["file_bytes"], "macs_per_s": r["macs_per_s"],
                      "rtf": r["rtf"], "peak_mem_bytes": r["peak_mem_bytes"], "fidelity": r["fidelity"],
                      "teach": {"steps": result.train.steps, "fidelity": result.train.fidelity}, "times": times},
                     indent=2))
    for note in cmp.notes:
        print("note:", note)


if __name__ == "__main__":
    main()
