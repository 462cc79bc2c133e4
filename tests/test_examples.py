"""The quick start's input scripts, run as the README runs them: the clips are WAVs that
`convert` reads, and the stand-in hubert_base.pt loads as RVC's content encoder."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import soundfile as sf

from tests.fixtures import ROOT
from distill_rvc.data.dataset import Dataset
from distill_rvc.features import load_audio, load_content_encoder


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_example_dataset_clips_and_stand_in_hubert(tmp_path):
    out = _run("examples/make_example_dataset.py", str(tmp_path / "data"), "--utterances", "2", "--seconds", "1",
               "--clips", str(tmp_path / "clips"))
    assert "(2 utterances of 1 s" in out and "(3 speech-like WAVs of 4 s at 40 kHz)" in out
    assert len(Dataset(tmp_path / "data")) > 0
    clips = sorted((tmp_path / "clips").glob("*.wav"))
    assert [c.name for c in clips] == ["clip_0.wav", "clip_1.wav", "clip_2.wav"]
    info = sf.info(clips[0])
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (40000, 1, "PCM_16", 160000)
    audio = load_audio(clips[0], 16000)
    assert np.sqrt(np.mean(audio ** 2)) > 0.05  # speech-like, not silence

    out = _run("examples/make_stand_in_hubert.py", str(tmp_path / "hubert.pt"))
    assert "random weights: a stand-in" in out
    feats = load_content_encoder(tmp_path / "hubert.pt").extract(audio, "v2")
    assert feats.shape == (199, 768) and np.isfinite(feats).all()
