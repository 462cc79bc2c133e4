"""Peak memory of `convert` against input length: chunked (bounded) vs one pass (grows).

    python bench/bench_convert_memory.py                        # 0.5, 2 and 6 minutes
    python bench/bench_convert_memory.py --minutes 1 4 --one-pass-up-to 1

Each conversion runs in a fresh process (the tiny example teacher, a small fairseq-layout
content encoder from examples/make_stand_in_hubert.py, dio F0), which reports its peak RSS (VmHWM on
Linux, ru_maxrss elsewhere) and how much it grew over the process's RSS before converting.
The input is speech-like audio (examples/make_example_dataset.py), written as a 16 kHz WAV.
Chunked runs use --chunk-seconds 30; "one pass" makes the whole input a single chunk, as a
converter without chunking would. What a chunked run still holds whole is the 16 kHz input
and its F0 (about 4 MB per minute): the output is written as the chunks come.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # distill_rvc, examples and tests.fixtures

MB = 1e6


def _child(model: str, hubert: str, wav: str, out: str, chunk_s: float, queue) -> None:
    import torch

    from distill_rvc.chunking import ChunkSizes
    from distill_rvc.convert import ConvertSettings, convert
    from distill_rvc.memory import peak_rss_bytes, rss_bytes

    torch.set_num_threads(1)
    before = rss_bytes() or peak_rss_bytes()
    start = time.perf_counter()
    report = convert(model, hubert, wav, out, ConvertSettings(f0_method="dio", chunks=ChunkSizes.with_center(chunk_s)))
    peak = peak_rss_bytes()  # VmHWM on Linux
    queue.put({"peak_rss_mb": peak / MB, "growth_mb": (peak - before) / MB, "wall_s": time.perf_counter() - start,
               "passes": report.timings.passes})


def run(model: Path, hubert: Path, wav: Path, out: Path, chunk_s: float) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(str(model), str(hubert), str(wav), str(out), chunk_s, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[0.5, 2.0, 6.0])
    ap.add_argument("--chunk-seconds", type=float, default=30.0)
    ap.add_argument("--one-pass-up-to", type=float, default=2.0,
                    help="also run one-pass conversions for inputs up to this many minutes")
    args = ap.parse_args()

    import numpy as np

    from distill_rvc.features import resample, write_wav
    from examples.make_stand_in_hubert import write_hubert
    from examples.make_example_dataset import SR, utterance

    model = ROOT / "examples" / "tiny_teacher.pth"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hubert = write_hubert(tmp / "hubert_base.pt", embed_dim=768, layers=2)
        rng = np.random.default_rng(0)
        piece = np.concatenate([utterance(rng, 10.0)[0] for _ in range(6)])  # one minute, then repeated
        piece = resample(piece, SR, 16000)
        for minutes in args.minutes:
            wav = tmp / f"{minutes:g}min.wav"
            reps = int(np.ceil(minutes))
            write_wav(wav, np.tile(piece, reps)[: int(minutes * 60 * 16000)], 16000)
            modes = [("chunked", args.chunk_seconds)]
            if minutes <= args.one_pass_up_to:
                modes.append(("one pass", minutes * 60 + 10))
            for mode, chunk in modes:
                r = run(model, hubert, wav, tmp / "out.wav", chunk)
                r.update(minutes=minutes, mode=mode)
                rows.append(r)
                print(f"{minutes:>5g} min  {mode:<9} passes {r['passes']:>3}  peak RSS {r['peak_rss_mb']:8.0f} MB  "
                      f"grew {r['growth_mb']:8.0f} MB  ({r['wall_s']:.0f} s)", flush=True)
    chunked = {r["minutes"]: r for r in rows if r["mode"] == "chunked"}
    one_pass = {r["minutes"]: r for r in rows if r["mode"] == "one pass"}
    if len(chunked) > 1:
        a, b = chunked[min(chunked)], chunked[max(chunked)]
        print(f"chunked: a {b['minutes'] / a['minutes']:.0f}x longer input, peak RSS x{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}")
    for minutes, r in one_pass.items():
        if minutes in chunked and r["passes"] != chunked[minutes]["passes"]:
            print(f"{minutes:g} min in one pass: peak RSS x{r['peak_rss_mb'] / chunked[minutes]['peak_rss_mb']:.1f} "
                  "that of the chunked run")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
