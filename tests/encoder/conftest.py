"""Inputs for the student-encoder tests: the fixture speech split by voice, a small stand-in
HuBERT (fast), the shared random-weight HuBERT of ../shared/tools/make_hubert.py (real size),
and one training run on it shared by the tests that read its result."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from examples.make_stand_in_hubert import write_hubert
from tests.fixtures import ROOT, SPEECH

LEARN = ("usm3", "f2", "usm1", "f5")  # make_speech.py's voices to learn from
HELD = ("gbm1", "usf4")  # and the two held out
MAKE_HUBERT = [ROOT.parent / "shared" / "tools" / "make_hubert.py", Path("/work/shared/tools/make_hubert.py")]


def copy_voices(voices: tuple[str, ...], folder: Path, pattern: str = "*") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for voice in voices:
        for wav in sorted(SPEECH.glob(f"{voice}_{pattern}.wav")):
            shutil.copy2(wav, folder / wav.name)
    return folder


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> tuple[Path, Path]:
    """(folder of the four learning voices, folder of the two held-out voices)"""
    root = tmp_path_factory.mktemp("speech")
    return copy_voices(LEARN, root / "learn"), copy_voices(HELD, root / "held")


@pytest.fixture(scope="session")
def small_hubert(tmp_path_factory) -> Path:
    """A stand-in HuBERT in fairseq's layout: 64-d v2 features, 2 layers (fast)."""
    return write_hubert(tmp_path_factory.mktemp("hubert") / "hubert_small.pt", embed_dim=64, layers=2, final_dim=32)


@pytest.fixture(scope="session")
def shared_hubert(tmp_path_factory) -> Path:
    """The shared content encoder (`make_hubert.py --variant a`: HuBERT-base size, random weights)."""
    script = next((p for p in MAKE_HUBERT if p.is_file()), None)
    if script is None:
        pytest.skip("../shared/tools/make_hubert.py not found")
    out = tmp_path_factory.mktemp("shared_hubert") / "hubert_a.pt"
    subprocess.run([sys.executable, str(script), "--variant", "a", "--out", str(out)], check=True,
                   capture_output=True)
    return out


@pytest.fixture(scope="session")
def shared_run(shared_hubert, tmp_path_factory):
    """teach-encoder with the test recipe on the shared HuBERT: one utterance of each of the
    four voices -> one of each of the two held-out voices (the real-size teacher is slow)."""
    from distill_rvc.encoder import TeachEncoderSettings, teach_encoder

    root = tmp_path_factory.mktemp("shared_run")
    learn, held = copy_voices(LEARN, root / "learn", "0"), copy_voices(HELD, root / "held", "0")
    out = root / "encoder.pt"
    result = teach_encoder(shared_hubert, learn, out, TeachEncoderSettings(recipe="test", held=held, progress=False, threads=1))
    return result
