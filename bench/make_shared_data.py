"""The held-out protocol's inputs for the benches on the shared trained teacher (issues 13 and 14).

    python bench/make_shared_data.py --out /work/fid-data        (needs espeak-ng and ../shared)

Writes, under OUT:
    hubert_a.pt      ../shared/tools/make_hubert.py --variant a: the random-weight content encoder
                     the shared teacher was trained with (189 MB; features from any other are
                     meaningless to it)
    wav_train/       espeak-ng speech of 4 voices the teacher never heard (en-us+m3 -p 50, en+f2
                     -p 60, en-us+m1 -p 45, en+f5 -p 65), 40 of training sentences 1-80 each
    wav_held/        2 more voices (en-gb+m1 -p 50, en-us+f4 -p 65) on sentences 81-120: other
                     voices and other sentences
    cache_train/     `distill-rvc prepare --f0 dio --hubert hubert_a.pt` of wav_train (v2, 40 kHz)
    cache_held/      the same of wav_held

The sentences are the TRAIN list of ../shared/teachers/sentences_and_voices.txt (the teacher's
own voice, en-us+f3 -p 70, is used by none of them). Re-running skips what exists.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
if not SHARED.is_dir():
    SHARED = Path("/work/shared")
TRAIN_VOICES = [("en-us+m3", 50, 0), ("en+f2", 60, 40), ("en-us+m1", 45, 0), ("en+f5", 65, 40)]
HELD_VOICES = [("en-gb+m1", 50, 80), ("en-us+f4", 65, 80)]


def sentences() -> list[str]:
    lines = (SHARED / "teachers" / "sentences_and_voices.txt").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("## TRAIN")) + 1
    out = []
    for line in lines[start:]:
        if line.startswith("#"):
            break
        if line.strip():
            out.append(line.strip())
    return out


def speak(folder: Path, voices, texts: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for voice, pitch, first in voices:
        for i, text in enumerate(texts[first:first + 40]):
            wav = folder / f"{voice.replace('+', '_')}_{first + i:03d}.wav"
            if not wav.exists():
                subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", "150", "-w", str(wav), text],
                               check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    out = ap.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    texts = sentences()
    assert len(texts) == 120, len(texts)
    hubert = out / "hubert_a.pt"
    if not hubert.exists():
        subprocess.run([sys.executable, str(SHARED / "tools" / "make_hubert.py"), "--variant", "a", "--out",
                        str(hubert)], check=True)
    speak(out / "wav_train", TRAIN_VOICES, texts)
    speak(out / "wav_held", HELD_VOICES, texts)
    for name in ("train", "held"):
        subprocess.run([sys.executable, "-m", "distill_rvc", "prepare", str(out / f"wav_{name}"), "--hubert",
                        str(hubert), "--f0", "dio", "--out", str(out / f"cache_{name}"), "--device", "cpu",
                        "--quiet"], check=True)


if __name__ == "__main__":
    main()
