"""`prepare`: RVC's preprocess steps by hand, and a folder of mixed, partly broken files end to end."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from distill_rvc import DistillRVCError
from distill_rvc.cli import cli
from distill_rvc.data.dataset import Dataset
from distill_rvc.features import coarse_pitch, extract_f0, load_content_encoder, resample
from distill_rvc.data.prepare import PrepareSettings, loudness_mix, prepare, preprocess, windows
from examples.make_stand_in_hubert import write_hubert
from tests.fixtures.rmvpe_files import write_rmvpe
from tests.fixtures.audio import speech_like


def test_windows_follow_rvc_loop():
    sr = 1000
    lengths = [len(w) for w in windows(np.zeros(10 * sr), sr)]  # starts 0, 3.4, 6.8 s; the rest <= 4.0 s
    assert lengths == [3700, 3700, 3200]
    assert [len(w) for w in windows(np.zeros(4 * sr), sr)] == [4000]  # not longer than 3.7 + 0.3: one window
    assert [len(w) for w in windows(np.zeros(4001), sr)] == [3700, 601]


def test_loudness_mix():
    x = np.array([0.1, -0.5, 0.25], dtype=np.float32)
    np.testing.assert_allclose(loudness_mix(x), 0.75 * (x / 0.5 * 0.9) + 0.25 * x, rtol=1e-6)
    assert loudness_mix(np.array([0.1, 2.6], dtype=np.float32)) is None  # RVC drops peaks above 2.5
    assert loudness_mix(np.zeros(10, dtype=np.float32)) is None


def test_preprocess_slices_windows_and_normalises():
    sr = 40000
    audio = np.concatenate([speech_like(sr, 5.0, pauses=False), np.zeros(2 * sr, dtype=np.float32),
                            speech_like(sr, 2.0, seed=1, pauses=False)])
    segments = preprocess(audio, sr)
    # Clips: 0-5.5 s and 6.5-9 s (0.5 s of silence kept each side, give or take the 30 ms RMS blur);
    # the first is windowed into 3.7 s + the 2.1 s from 3.4 s on.
    assert np.allclose([len(s) / sr for s in segments], [3.7, 2.1, 2.5], atol=0.05)
    for s in segments:
        assert s.dtype == np.float32 and 0.675 < np.abs(s).max() <= 0.9 + 1e-6


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    audio = root / "audio"
    (audio / "sub").mkdir(parents=True)
    sf.write(audio / "a.wav", speech_like(22050, 3.0), 22050, subtype="PCM_16")
    sf.write(audio / "b.flac", speech_like(44100, 2.5, f0=220, channels=2, seed=1), 44100)
    sf.write(audio / "sub" / "c.wav", speech_like(48000, 2.5, f0=110, channels=2, seed=2), 48000, subtype="FLOAT")
    sf.write(audio / "d.ogg", speech_like(48000, 2.0, f0=180, seed=3), 48000)
    (audio / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))
    sf.write(audio / "silent.flac", np.zeros(44100, dtype=np.float32), 44100)
    (audio / "notes.txt").write_text("not audio")
    hubert = write_hubert(root / "hubert_base.pt", layers=2)
    return root, audio, hubert


def test_prepare_mixed_folder_then_resume(mixed_folder, caplog):
    root, audio, hubert = mixed_folder
    out = root / "data"
    with caplog.at_level(logging.WARNING):
        report = prepare(audio, out, hubert, PrepareSettings(version="v2", f0_method="harvest", sr=40000),
                         progress=False)
    assert report.files == 6 and report.prepared == 4
    assert [name for name, _ in report.bad] == ["corrupt.wav", "silent.flac"]
    assert "cannot read audio" in report.bad[0][1] and "silent" in report.bad[1][1]
    assert "corrupt.wav" in caplog.text and "silent.flac" in caplog.text

    ds = Dataset(out)
    assert (ds.version, ds.feature_dim, ds.sample_rate, ds.f0) == ("v2", 32, 40000, True)
    assert len(ds) == report.segments >= 4
    assert {s["source"] for s in ds.segments} == {"a.wav", "b.flac", "d.ogg", "sub/c.wav"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extractor"]["f0_method"] == "harvest"
    assert manifest["extractor"]["content_encoder"]["file"] == "hubert_base.pt"

    # Each stored segment is consistent: features and F0 are those of its own audio at 16 kHz.
    encoder = load_content_encoder(hubert)
    first = ds.segments[0]
    seg_audio = np.load(out / "segments" / f"{first['id']}.audio.npy", mmap_mode="r")
    assert isinstance(seg_audio, np.memmap)
    audio_16k = resample(np.asarray(seg_audio), 40000, 16000)
    np.testing.assert_allclose(np.load(out / "segments" / f"{first['id']}.phone.npy"),
                               encoder.extract(audio_16k, "v2"), atol=1e-5)
    f0 = np.load(out / "segments" / f"{first['id']}.f0.npy")
    np.testing.assert_array_equal(f0, extract_f0(audio_16k, "harvest"))
    assert len(f0) == len(audio_16k) // 160 + 1 and (f0 > 0).mean() > 0.3
    np.testing.assert_array_equal(np.load(out / "segments" / f"{first['id']}.pitch.npy"), coarse_pitch(f0))
    assert ds[0].phone.shape[0] == ds[0].pitch.shape[0] == len(ds[0].audio) // 400

    again = prepare(audio, out, hubert, PrepareSettings(version="v2", f0_method="harvest", sr=40000), progress=False)
    assert (again.prepared, again.resumed, again.segments) == (0, 4, 0)
    assert [name for name, _ in again.bad] == ["corrupt.wav", "silent.flac"]  # retried, still bad
    with pytest.raises(DistillRVCError, match="other settings .*extractor"):
        prepare(audio, out, hubert, PrepareSettings(version="v2", f0_method="dio", sr=40000), progress=False)


def test_prepare_with_rmvpe_and_v1(mixed_folder, tmp_path):
    root, audio, hubert = mixed_folder
    rmvpe = write_rmvpe(tmp_path / "rmvpe.pt", channels=4, n_blocks=1, inter_layers=1, gru_hidden=8)
    report = prepare(audio / "d.ogg", tmp_path / "data", hubert,
                     PrepareSettings(version="v1", f0_method="rmvpe", rmvpe=rmvpe, sr=32000), progress=False)
    ds = Dataset(tmp_path / "data")
    assert report.prepared == 1 and (ds.version, ds.feature_dim, ds.sample_rate) == ("v1", 256, 32000)
    assert ds.manifest["extractor"]["rmvpe"]["file"] == "rmvpe.pt"


def test_refusals(mixed_folder, tmp_path):
    root, audio, hubert = mixed_folder
    with pytest.raises(DistillRVCError, match="needs the model file"):
        prepare(audio, tmp_path / "o", hubert, PrepareSettings(f0_method="rmvpe"))
    with pytest.raises(DistillRVCError, match="no audio files"):
        prepare(tmp_path, tmp_path / "o", hubert)
    bad_only = tmp_path / "bad"
    bad_only.mkdir()
    (bad_only / "x.wav").write_bytes(b"nonsense")
    with pytest.raises(DistillRVCError, match="none of the 1 audio files could be used"):
        prepare(bad_only, tmp_path / "o", hubert, progress=False)
    with pytest.raises(DistillRVCError, match="sample rate 44100"):
        prepare(audio, tmp_path / "o", hubert, PrepareSettings(sr=44100))


def test_cli(mixed_folder, tmp_path):
    root, audio, hubert = mixed_folder
    one = tmp_path / "one"
    one.mkdir()
    (one / "a.wav").write_bytes((audio / "a.wav").read_bytes())
    (one / "broken.flac").write_bytes(b"fLaC" + bytes(100))
    args = ["prepare", str(one), "--hubert", str(hubert), "--f0", "dio", "--out", str(tmp_path / "data"), "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("prepared 1 file(s): ")
    assert "skipped 1 unusable file(s):\n  broken.flac: cannot read audio (File contains data" in result.stdout
    assert "skipping broken.flac" in result.stderr
    result = CliRunner().invoke(cli, ["prepare", str(one), "--hubert", str(tmp_path / "nope.pt"), "--out",
                                      str(tmp_path / "x")])
    assert result.exit_code == 2 and result.output.startswith("error: ") and "no such file" in result.output
    assert len(result.output.strip().splitlines()) == 1
