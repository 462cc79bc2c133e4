"""Importing RVC `logs/<exp>` folders into the dataset cache."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.io import wavfile

from distill_rvc import DistillRVCError
from distill_rvc.cli import cli
from distill_rvc.data.dataset import Dataset
from distill_rvc.data.rvc_logs import ImportRVCLogsSettings, import_rvc_logs
from tests.fixtures.rvc_logs_files import write_rvc_experiment


def test_import_v2_f0_experiment_made_elsewhere(tmp_path):
    exp = write_rvc_experiment(tmp_path / "logs", prefix="/content/Retrieval-based-Voice-Conversion-WebUI")
    report = import_rvc_logs(exp, tmp_path / "data", progress=False)
    assert (report.version, report.sample_rate, report.f0, report.segments) == ("v2", 40000, True, 4)
    ds = Dataset(tmp_path / "data")
    assert (ds.version, ds.feature_dim, ds.sample_rate, ds.f0, len(ds)) == ("v2", 768, 40000, True, 4)
    by_source = {s["source"]: s for s in ds.segments}
    assert set(by_source) == {"myvoice/0", "myvoice/1"}  # windows of one input file form one source
    for i, seg_info in enumerate(ds.segments):
        name = ["0_0", "0_1", "1_0", "1_1"][i]
        raw_phone = np.load(tmp_path / "data" / "segments" / f"{seg_info['id']}.phone.npy", mmap_mode="r")
        assert isinstance(raw_phone, np.memmap)
        assert np.array_equal(raw_phone, np.load(exp / "3_feature768" / f"{name}.npy"))
        seg = ds[i]
        t = len(seg.pitchf)
        sr, audio = wavfile.read(exp / "0_gt_wavs" / f"{name}.wav")
        assert t == min(2 * len(raw_phone), len(np.load(exp / "2b-f0nsf" / f"{name}.wav.npy")), len(audio) // 400)
        np.testing.assert_array_equal(seg.pitchf.numpy(), np.load(exp / "2b-f0nsf" / f"{name}.wav.npy")[:t])
        np.testing.assert_array_equal(seg.pitch.numpy(), np.load(exp / "2a_f0" / f"{name}.wav.npy")[:t])
        np.testing.assert_array_equal(seg.audio.numpy(), audio[: t * 400])

    again = import_rvc_logs(exp, tmp_path / "data", progress=False)
    assert again.segments == 0 and again.resumed == 2 and len(Dataset(tmp_path / "data")) == 4


def test_windows_paths_nono_v1_and_no_filelist(tmp_path):
    exp = write_rvc_experiment(tmp_path / "logs", "old", version="v1", sr=48000, f0=False, files=1, windows=3,
                               prefix="E:\\\\RVC1006Nvidia", windows_paths=True)
    report = import_rvc_logs(exp, tmp_path / "a", progress=False)
    assert (report.version, report.sample_rate, report.f0, report.segments) == ("v1", 48000, False, 3)
    ds = Dataset(tmp_path / "a")
    assert ds[0].pitch is None and ds[0].phone.shape[1] == 256
    (exp / "filelist.txt").unlink()  # never trained: names come from the folders
    assert import_rvc_logs(exp, tmp_path / "b", progress=False).segments == 3


def test_bad_segments_are_skipped_with_a_warning(tmp_path, caplog):
    exp = write_rvc_experiment(tmp_path / "logs")
    bad = np.load(exp / "3_feature768" / "1_0.npy")
    bad[2, 5] = np.nan
    np.save(exp / "3_feature768" / "1_0.npy", bad)
    (exp / "2b-f0nsf" / "0_1.wav.npy").unlink()
    np.save(exp / "2a_f0" / "1_1.wav.npy", np.array([object()]), allow_pickle=True)  # pickled: never loaded
    with caplog.at_level(logging.WARNING):
        report = import_rvc_logs(exp, tmp_path / "data", progress=False)
    assert report.segments == 1
    reasons = dict(report.skipped)
    assert set(reasons) == {"0_1", "1_0", "1_1"}
    assert "missing 2b-f0nsf/0_1.wav.npy" in reasons["0_1"] and "NaN" in reasons["1_0"]
    assert "not a readable .npy" in reasons["1_1"]
    assert "1_0" in caplog.text


def test_refusals(tmp_path):
    with pytest.raises(DistillRVCError, match="not an RVC experiment folder"):
        import_rvc_logs(tmp_path, tmp_path / "out")
    exp = write_rvc_experiment(tmp_path / "logs")
    (exp / "filelist.txt").write_text("a|b\n")
    with pytest.raises(DistillRVCError, match=r"filelist.txt:1: expected 5 .* or 3"):
        import_rvc_logs(exp, tmp_path / "out")
    (exp / "filelist.txt").unlink()
    (exp / "3_feature256").mkdir()
    with pytest.raises(DistillRVCError, match="pass --version"):
        import_rvc_logs(exp, tmp_path / "out")
    assert import_rvc_logs(exp, tmp_path / "out", ImportRVCLogsSettings(version="v2"), progress=False).segments == 4


def test_cli(tmp_path):
    exp = write_rvc_experiment(tmp_path / "logs")
    result = CliRunner().invoke(cli, ["import-rvc-logs", str(exp), "--out", str(tmp_path / "data"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "imported 4 segments" in result.output and "v2, 40000 Hz, f0" in result.output
    result = CliRunner().invoke(cli, ["import-rvc-logs", str(tmp_path), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and result.output.startswith("error: ") and len(result.output.splitlines()) == 1
