"""The whole conversion chain, teacher's against a student's, stage by stage (issue 14).

    python bench/bench_chain.py --teacher big.pth --hubert hubert_base.pt --rmvpe rmvpe.pt \
        --student tiny.pth --encoder encoder.pt [--student-f0 fcpe[:f0.pt]] [--threads 1,2] [--audio speech.wav]

The teacher chain is what RVC runs (HuBERT + RMVPE + the teacher, torch); the student chain is
the distilled encoder + FCPE + the student on onnxruntime (`distill_rvc/chain.py` exports the
torch stages to temporary graphs). Speed does not depend on the weights, so random-weight
HuBERT (`../shared/tools/make_hubert.py`) and RMVPE (`tests/fixtures/rmvpe_files.write_rmvpe`)
files of the real sizes stand in for the ones users download.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from distill_rvc.chain import Chain, ChainSettings, bench_chain, format_chain  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", type=Path, required=True)
    ap.add_argument("--hubert", type=Path, required=True)
    ap.add_argument("--rmvpe", type=Path, required=True)
    ap.add_argument("--student", type=Path, required=True)
    ap.add_argument("--encoder", type=Path, required=True, help="the student's content encoder (any kind)")
    ap.add_argument("--student-f0", default="fcpe", metavar="METHOD[:MODEL]",
                    help="the student chain's F0, e.g. fcpe or fcpe:f0.pt (a teach-f0 student)")
    ap.add_argument("--runtime", default="onnxruntime", help="the student chain's runtime")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--audio", type=Path)
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()
    teacher = Chain(model=args.teacher, encoder=args.hubert, f0="rmvpe", f0_model=args.rmvpe, name="teacher chain")
    method, _, f0_model = args.student_f0.partition(":")
    student = Chain(model=args.student, encoder=args.encoder, f0=method, f0_model=Path(f0_model) if f0_model else None,
                    runtime=args.runtime, name="student chain")
    student.check()
    settings = ChainSettings(threads=tuple(int(n) for n in args.threads.split(",")), runs=args.runs,
                             seconds=args.seconds, audio=args.audio)
    torch.manual_seed(0)
    result = bench_chain([teacher, student], settings)
    print(format_chain(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
