"""RMVPE: the real key layout, the log-mel front end and the decoding (rvc-format.md §5.2)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from distill_rvc import DistillRVCError
from distill_rvc.features import RMVPE, extract_f0, load_rmvpe
from distill_rvc.features.rmvpe import RMVPEConfig, decode
from tests.fixtures import TINY_TEACHER
from tests.fixtures.rmvpe_files import rmvpe_weights, write_rmvpe

TINY = dict(channels=4, n_blocks=1, inter_layers=2, gru_hidden=16)
TINY_CONFIG = RMVPEConfig(n_blocks=1, en_de_layers=5, inter_layers=2, channels=4, gru_hidden=16)


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return write_rmvpe(tmp_path_factory.mktemp("rmvpe") / "rmvpe.pt", **TINY)


def test_real_layout_matches_rvc_e2e():
    with torch.device("meta"):
        ours = {k: tuple(v.shape) for k, v in RMVPE().state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in rmvpe_weights(device="meta").items()}
    assert ours == theirs and len(ours) == 741
    # Shapes read off RVC's E2E(4, 1, (2, 2)) source by hand.
    assert ours["unet.encoder.layers.0.conv.0.conv.0.weight"] == (16, 1, 3, 3)
    assert ours["unet.encoder.layers.0.conv.0.shortcut.weight"] == (16, 1, 1, 1)
    assert ours["unet.intermediate.layers.0.conv.0.conv.0.weight"] == (512, 256, 3, 3)
    assert ours["unet.decoder.layers.0.conv1.0.weight"] == (512, 256, 3, 3)  # ConvTranspose2d: [in, out, kh, kw]
    assert ours["unet.decoder.layers.4.conv2.0.conv.0.weight"] == (16, 32, 3, 3)
    assert ours["cnn.weight"] == (3, 16, 3, 3)
    assert ours["fc.0.gru.weight_ih_l0"] == (768, 384) and ours["fc.0.gru.weight_hh_l0_reverse"] == (768, 256)
    assert ours["fc.1.weight"] == (360, 512)


def test_decode_is_the_local_weighted_average_of_cents():
    cents = 20 * np.arange(360) + 1997.3794084376191
    sal = np.zeros((4, 360), dtype=np.float32)
    sal[0, 99:102] = [0.2, 0.8, 0.4]  # peak at bin 100, neighbours weigh in
    sal[1, 150] = 0.03  # at the threshold: unvoiced
    sal[2, 0:3] = [0.9, 0.5, 0.1]  # peak at the first bin: the window runs off the edge
    sal[2, 10] = 0.5  # outside +-4 bins of the peak: ignored
    f0 = decode(sal)
    expected0 = 10 * 2 ** ((0.2 * cents[99] + 0.8 * cents[100] + 0.4 * cents[101]) / 1.4 / 1200)
    expected2 = 10 * 2 ** ((0.9 * cents[0] + 0.5 * cents[1] + 0.1 * cents[2]) / 1.5 / 1200)
    np.testing.assert_allclose(f0, [expected0, 0, expected2, 0], rtol=1e-5)
    assert 10 * 2 ** (cents[0] / 1200) == pytest.approx(31.7, abs=0.05)  # the lowest bin


def test_log_mel_matches_a_numpy_stft():
    import librosa

    rng = np.random.default_rng(0)
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000) + 0.01 * rng.standard_normal(8000))
    mel = RMVPE(TINY_CONFIG).log_mel(torch.from_numpy(audio).float()[None])[0].double().numpy()
    padded = np.pad(audio, 512, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)  # periodic Hann
    frames = np.stack([padded[i * 160: i * 160 + 1024] * window for i in range(8000 // 160 + 1)])
    mag = np.abs(np.fft.rfft(frames, axis=1)).T
    basis = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=128, fmin=30, fmax=8000, htk=True)
    expected = np.log(np.maximum(basis @ mag, 1e-5))
    assert mel.shape == (128, 51)
    np.testing.assert_allclose(mel, expected, atol=2e-3)


@pytest.mark.parametrize("n", [300, 4000, 16000, 16161])
def test_infer_frames_and_extract_f0(tiny_path, n):
    model = load_rmvpe(tiny_path)
    assert model.config == TINY_CONFIG
    audio = (0.3 * np.sin(2 * np.pi * 200 * np.arange(n) / 16000)).astype(np.float32)
    f0 = model.infer(audio)
    assert f0.shape == (n // 160 + 1,) and f0.dtype == np.float32
    assert ((f0 == 0) | ((f0 > 31) & (f0 < 2100))).all()
    np.testing.assert_array_equal(extract_f0(audio, "rmvpe", rmvpe_path=tiny_path), f0)


def test_salience_is_the_network_output_on_padded_mel(tiny_path):
    model = load_rmvpe(tiny_path)
    audio = np.random.default_rng(1).standard_normal(4000).astype(np.float32) * 0.1
    sal = model.salience(audio)
    mel = model.log_mel(torch.from_numpy(audio)[None])  # 26 frames -> padded to 32 by reflection
    padded = torch.cat([mel, mel.flip(-1)[..., 1:7]], dim=-1)
    with torch.no_grad():
        direct = model(padded)[0, :26].numpy()
    np.testing.assert_allclose(sal, direct, atol=1e-5)


def test_bad_files(tmp_path):
    with pytest.raises(DistillRVCError, match="not an RMVPE checkpoint"):
        load_rmvpe(TINY_TEACHER)
    w = rmvpe_weights(**TINY)
    w.pop("cnn.bias")
    torch.save(w, tmp_path / "cut.pt")
    with pytest.raises(DistillRVCError, match=r"do not fit RVC's RMVPE layout \(cnn.bias\)"):
        load_rmvpe(tmp_path / "cut.pt")
    with pytest.raises(DistillRVCError, match="no such file"):
        extract_f0(np.zeros(1600, dtype=np.float32), "rmvpe", rmvpe_path=tmp_path / "nope.pt")


@pytest.mark.gpu
def test_cuda_matches_cpu(tiny_path):
    audio = (0.3 * np.sin(2 * np.pi * 200 * np.arange(16000) / 16000)).astype(np.float32)
    cpu = load_rmvpe(tiny_path).salience(audio)
    gpu = load_rmvpe(tiny_path, device="cuda").salience(audio)
    np.testing.assert_allclose(gpu, cpu, atol=1e-3)
