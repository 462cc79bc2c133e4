"""FCPE on the real shipped weights (torchfcpe's fcpe_c_v001.pt): against torchfcpe's own code,
on a harmonic sweep of known F0, on espeak-ng speech against harvest, and end to end in the CLI.

Thresholds were picked from measured numbers (bench/bench_f0.py) with a margin:
sweep median 1.04 c (limit 2), speech median 5.85 c over six voices (limit 10), V/UV
agreement 0.91 (limit 0.85). A log10 front end (sweep 2.6 c) or an HTK filterbank
(speech ~680 c) fails them.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from distill_rvc import DistillRVCError
from distill_rvc.cli import cli
from distill_rvc.data.dataset import Dataset
from distill_rvc.features import extract_f0, load_fcpe
from distill_rvc.features.fcpe import ENV_VAR, FCPE, find_fcpe
from examples.make_stand_in_hubert import write_hubert
from tests.fixtures import TINY_TEACHER
from tests.fixtures.audio import speech_like
from tests.fixtures.rmvpe_files import write_rmvpe

SPEECH = Path(__file__).resolve().parents[1] / "fixtures" / "speech"
ROOT = Path(__file__).resolve().parents[2]


def _weights() -> Path | None:
    try:
        return find_fcpe()
    except DistillRVCError:
        return None


WEIGHTS = _weights()
needs_weights = pytest.mark.skipif(
    WEIGHTS is None, reason="FCPE weights not found: `pip install --no-deps torchfcpe==0.0.4` (make install) "
                            f"or set ${ENV_VAR} to fcpe_c_v001.pt")
_SPEC = importlib.util.find_spec("torchfcpe")
needs_wheel = pytest.mark.skipif(
    _SPEC is None or not any((Path(p) / "assets" / "fcpe_c_v001.pt").is_file()
                             for p in _SPEC.submodule_search_locations or []),
    reason="the torchfcpe wheel is not installed: `pip install --no-deps torchfcpe==0.0.4` (make install)")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    return load_fcpe(WEIGHTS) if WEIGHTS is not None else None


def cents(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(1200.0 * np.log2(a / b))


def sweep(seconds: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """A 100 -> 400 Hz exponential glide with 8 harmonics (1/k) at 16 kHz, and its true F0 per frame."""
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(100.0 * 4.0 ** (t / seconds)) / sr
    x = 0.25 * sum(np.sin(k * phase) / k for k in range(1, 9))
    true = 100.0 * 4.0 ** (np.arange(len(x) // 160 + 1) * 160 / sr / seconds)  # at frame i's time, i * 10 ms
    return x.astype(np.float32), true


def sweep_median_error(m: FCPE) -> tuple[float, float]:
    x, true = sweep()
    f0 = m.infer(x)
    voiced = f0 > 0
    return float(np.median(cents(f0[voiced], true[voiced]))), float(voiced.mean())


# ---------------------------------------------------------------------------- where the weights come from
def test_find_fcpe_order_and_the_error_naming_all_three_ways(tmp_path, monkeypatch):
    given, env = tmp_path / "given.pt", tmp_path / "env.pt"
    given.write_bytes(b"x")
    env.write_bytes(b"x")
    monkeypatch.setenv(ENV_VAR, str(env))
    assert find_fcpe(given) == given
    assert find_fcpe() == env
    with pytest.raises(DistillRVCError, match="missing.pt: no such file .*--fcpe"):
        find_fcpe(tmp_path / "missing.pt")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone.pt"))
    with pytest.raises(DistillRVCError, match=f"gone.pt: no such file \\(from \\${ENV_VAR}"):
        find_fcpe()
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DistillRVCError) as e:
        find_fcpe()
    assert "--fcpe PATH" in str(e.value) and f"${ENV_VAR}" in str(e.value)
    assert "pip install --no-deps torchfcpe==0.0.4" in str(e.value)


@needs_wheel
def test_the_wheel_is_found_without_running_its_init(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    code = ("import sys; from distill_rvc.features.fcpe import find_fcpe; p = find_fcpe(); "
            "assert 'torchfcpe' not in sys.modules and 'torchaudio' not in sys.modules, sorted(sys.modules); "
            "print(p)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("torchfcpe/assets/fcpe_c_v001.pt")


# ---------------------------------------------------------------------------- the network against torchfcpe
@needs_weights
def test_layout_matches_the_checkpoint():
    ckpt = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    theirs = {k: tuple(v.shape) for k, v in ckpt["model"].items()}
    with torch.device("meta"):
        ours = {k: tuple(v.shape) for k, v in FCPE().state_dict().items()}
    assert len(theirs) == 73 and sum(np.prod(s) for s in theirs.values()) == pytest.approx(10.83e6, rel=1e-3)
    # ours folds weight_g / weight_v into one weight and drops the training-only blur constant
    assert set(theirs) - set(ours) == {"output_proj.weight_g", "output_proj.weight_v", "gaussian_blurred_cent_mask"}
    assert set(ours) - set(theirs) == {"output_proj.weight"}
    assert ours["output_proj.weight"] == theirs["output_proj.weight_v"] == (360, 512)
    # by hand from torchfcpe's source: conv1d 128 -> 512 (k3), 1x1 to 2 x 1024 for the GLU, depthwise k31
    assert ours["input_stack.0.weight"] == (512, 128, 3)
    assert ours["net.encoder_layers.5.conformer.net.2.weight"] == (2048, 512, 1)
    assert ours["net.encoder_layers.5.conformer.net.4.conv.weight"] == (1024, 1, 31)
    np.testing.assert_allclose(load_fcpe(WEIGHTS).cent_table, ckpt["model"]["cent_table"], atol=1e-3)


def _import_torchfcpe(monkeypatch):
    """The installed torchfcpe, imported with stand-ins for what its imports need but the shipped
    (conv-only) model at 16 kHz never calls: torchaudio's Resample, einops, local_attention."""
    audio, transforms = types.ModuleType("torchaudio"), types.ModuleType("torchaudio.transforms")

    class Resample:
        def __init__(self, *a, **k):
            raise AssertionError("torchfcpe resampled: the test audio must be 16 kHz")

    transforms.Resample, audio.transforms = Resample, transforms
    einops = types.ModuleType("einops")
    einops.rearrange = einops.repeat = None
    local = types.ModuleType("local_attention")
    local.LocalAttention = None
    for name, module in {"torchaudio": audio, "torchaudio.transforms": transforms, "einops": einops,
                         "local_attention": local}.items():
        if name.startswith("torchaudio") or importlib.util.find_spec(name) is None:
            monkeypatch.setitem(sys.modules, name, module)
    for name in [n for n in sys.modules if n == "torchfcpe" or n.startswith("torchfcpe.")]:
        monkeypatch.delitem(sys.modules, name)
    import torchfcpe

    for name in [n for n in sys.modules if n == "torchfcpe" or n.startswith("torchfcpe.")]:
        monkeypatch.setitem(sys.modules, name, sys.modules[name])  # removed again after the test
    return torchfcpe


@needs_wheel
def test_matches_torchfcpe_itself(model, monkeypatch):
    """Same audio through torchfcpe's InferCFNaiveMelPE and ours. Both are fp32 with the same
    operations in the same order, so the salience agrees to float rounding (< 1e-5) and the
    F0 to 0.01 cent; V/UV is identical (no frame's peak is within 1e-4 of the threshold here)."""
    torchfcpe = _import_torchfcpe(monkeypatch)
    ref = torchfcpe.spawn_bundled_infer_model(device="cpu")
    x, _ = sweep()
    speech, _ = sf.read(SPEECH / "usm3_0.wav", dtype="float32")
    for audio in (x, speech, speech[: 16000 // 2 + 37]):  # an odd length: the last-frame repeat
        wav = torch.from_numpy(audio)[None, :, None]
        mel_ref = ref.wav2mel(wav, 16000)
        mel = model.log_mel(torch.from_numpy(audio)[None])
        assert mel.shape == mel_ref.shape == (1, len(audio) // 160 + 1, 128)
        torch.testing.assert_close(mel, mel_ref, atol=1e-5, rtol=0)
        sal_ref = ref.model(mel_ref)[0]
        torch.testing.assert_close(model(mel)[0], sal_ref, atol=1e-5, rtol=0)
        assert not ((sal_ref.max(-1).values - 0.006).abs() < 1e-4).any()
        f0_ref = ref.infer(wav, sr=16000, decoder_mode="local_argmax", threshold=0.006, f0_max=1100)[0, :, 0].numpy()
        f0_ref[f0_ref < 50] = 0  # the project's floor (ours: in decode)
        f0 = model.infer(audio)
        np.testing.assert_array_equal(f0 > 0, f0_ref > 0)
        assert cents(f0[f0 > 0], f0_ref[f0_ref > 0]).max() < 0.01


# ---------------------------------------------------------------------------- accuracy on the real weights
@needs_weights
def test_harmonic_sweep_median_error(model):
    median, voiced = sweep_median_error(model)
    assert voiced > 0.98
    assert median < 2.0  # measured 1.04 c (harvest: 0.18 c)


@needs_weights
def test_a_wrong_front_end_fails_the_sweep_threshold():
    broken = load_fcpe(WEIGHTS)
    log_mel = broken.log_mel
    broken.log_mel = lambda audio: log_mel(audio) / np.log(10.0)  # log10 instead of ln
    assert sweep_median_error(broken)[0] > 2.0  # measured 2.6 c


@needs_weights
def test_espeak_speech_against_harvest(model):
    """Six espeak-ng voices (tests/fixtures/speech, 16 kHz): pooled over the frames both call voiced."""
    errors, agree = [], []
    for path in sorted(SPEECH.glob("*_0.wav")):
        audio, sr = sf.read(path, dtype="float32")
        assert sr == 16000
        h, f = extract_f0(audio, "harvest"), extract_f0(audio, "fcpe", fcpe_path=WEIGHTS)
        assert f.shape == h.shape == (len(audio) // 160 + 1,) and f.dtype == np.float32
        assert ((f == 0) | ((f >= 50) & (f <= 1100))).all()
        both = (h > 0) & (f > 0)
        errors.append(cents(f[both], h[both]))
        agree.append((h > 0) == (f > 0))
    assert len(errors) == 6
    assert np.median(np.concatenate(errors)) < 10.0  # measured 5.85 c
    assert np.concatenate(agree).mean() > 0.85  # measured 0.91


@needs_weights
def test_silence_and_short_input(model):
    assert model.infer(np.zeros(16000, np.float32)).tolist() == [0.0] * 101
    assert model.infer(np.zeros(100, np.float32)).shape == (1,)  # shorter than a hop: one frame


# ---------------------------------------------------------------------------- bad files
@needs_weights
def test_foreign_truncated_and_altered_files_are_one_line_errors(tmp_path):
    rmvpe = write_rmvpe(tmp_path / "rmvpe.pt", channels=4, n_blocks=1, inter_layers=1, gru_hidden=8)
    with pytest.raises(DistillRVCError, match="rmvpe.pt: not an FCPE checkpoint"):
        load_fcpe(rmvpe)
    data = WEIGHTS.read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(DistillRVCError, match="half.pt: not a readable PyTorch file: truncated"):
        load_fcpe(tmp_path / "half.pt")
    ckpt = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    ckpt["config_dict"]["mel"]["hop_size"] = 256
    torch.save(ckpt, tmp_path / "hop.pt")
    with pytest.raises(DistillRVCError, match=r"hop.pt: an FCPE this module does not build \(mel.hop_size=256\)"):
        load_fcpe(tmp_path / "hop.pt")
    ckpt["config_dict"]["mel"]["hop_size"] = 160
    del ckpt["model"]["net.encoder_layers.3.conformer.net.4.conv.weight"]
    torch.save(ckpt, tmp_path / "cut.pt")
    with pytest.raises(DistillRVCError, match=r"cut.pt: the weights do not fit .*encoder_layers.3.conformer.net.4"):
        load_fcpe(tmp_path / "cut.pt")
    with pytest.raises(DistillRVCError, match="nope.pt: no such file"):
        extract_f0(np.zeros(1600, np.float32), "fcpe", fcpe_path=tmp_path / "nope.pt")


# ---------------------------------------------------------------------------- the CLI end to end
@pytest.fixture(scope="module")
def hubert(tmp_path_factory):
    return write_hubert(tmp_path_factory.mktemp("hubert") / "hubert_base.pt", embed_dim=768, layers=2)


@needs_weights
def test_cli_prepare_with_fcpe(hubert, tmp_path):
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.wav", speech_like(22050, 2.5, f0=180), 22050)
    r = CliRunner().invoke(cli, ["prepare", str(tmp_path / "in"), "--hubert", str(hubert), "--f0", "fcpe",
                                 "--fcpe", str(WEIGHTS), "--device", "cpu", "--out", str(tmp_path / "data"),
                                 "--quiet"])
    assert r.exit_code == 0, r.output
    ds = Dataset(tmp_path / "data")
    extractor = json.loads((tmp_path / "data" / "manifest.json").read_text())["extractor"]
    assert extractor["f0_method"] == "fcpe" and extractor["fcpe"]["file"] == "fcpe_c_v001.pt"
    f0 = np.load(tmp_path / "data" / "segments" / f"{ds.segments[0]['id']}.f0.npy")
    voiced = f0[f0 > 0]
    assert (f0 > 0).mean() > 0.3 and np.median(cents(voiced, np.full_like(voiced, 180.0))) < 60  # 180 Hz +- 5 %


@needs_weights
def test_cli_convert_with_fcpe_and_its_errors(hubert, tmp_path, monkeypatch):
    sf.write(tmp_path / "in.wav", speech_like(16000, 1.5), 16000)
    args = ["convert", "--model", str(TINY_TEACHER), "--hubert", str(hubert), "--f0", "fcpe", "--chunk-seconds", "1",
            "--input", str(tmp_path / "in.wav")]
    monkeypatch.setenv(ENV_VAR, str(WEIGHTS))  # the default lookup, no --fcpe
    r = CliRunner().invoke(cli, args + ["--output", str(tmp_path / "out.wav")])
    assert r.exit_code == 0, r.output
    out, sr = sf.read(tmp_path / "out.wav")
    assert sr == 40000 and len(out) == 1.5 * 40000 and np.abs(out).max() > 0.01

    for fcpe, message in ((tmp_path / "missing.pt", "missing.pt: no such file"),
                          (TINY_TEACHER, "not an FCPE checkpoint")):
        r = CliRunner().invoke(cli, args + ["--fcpe", str(fcpe), "--output", str(tmp_path / "x.wav")])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1 and r.output.startswith("error: ") and message in r.output
    assert not (tmp_path / "x.wav").exists()


def test_cli_convert_without_weights_names_the_three_ways(tmp_path, monkeypatch):
    import distill_rvc.features.fcpe as fcpe_module

    sf.write(tmp_path / "in.wav", speech_like(16000, 1.0), 16000)
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(fcpe_module, "WHEEL_ASSET", Path("assets") / "not-shipped.pt")  # as if no wheel
    r = CliRunner().invoke(cli, ["convert", "--model", str(TINY_TEACHER), "--hubert", str(tmp_path / "h.pt"),
                                 "--f0", "fcpe", "--input", str(tmp_path / "in.wav"), "--output",
                                 str(tmp_path / "out.wav")])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "--fcpe PATH" in r.output and f"${ENV_VAR}" in r.output and "torchfcpe==0.0.4" in r.output
