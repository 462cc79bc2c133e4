from __future__ import annotations

import pytest

from distill_rvc import DistillRVCError, SynthConfig, rvc_config
from distill_rvc.config import parse_sample_rate


def test_rvc_list_round_trip_and_defaults():
    cfg = rvc_config("v2", 48000, True)
    items = cfg.to_rvc_list()
    assert items == [1025, 32, 192, 192, 768, 2, 6, 3, 0.0, "1", [3, 7, 11], [[1, 3, 5]] * 3,
                     [12, 10, 2, 2], 512, [24, 20, 4, 4], 109, 256, 48000]
    assert SynthConfig.from_rvc_list(items, version="v2", f0=True) == cfg
    assert cfg.hop_length == 480 and cfg.n_fft == 2048 and cfg.n_mels == 128
    assert SynthConfig.from_rvc_list(items).version == "v1"  # RVC's default
    assert SynthConfig.from_dict(cfg.to_dict()) == cfg


def test_sample_rate_strings():
    assert parse_sample_rate("40k") == 40000 and parse_sample_rate("44.1k") == 44100 and parse_sample_rate(32000) == 32000
    with pytest.raises(DistillRVCError, match="sample rate"):
        parse_sample_rate("fast")


def test_fits_rvc_reasons():
    cfg = rvc_config()
    assert cfg.fits_rvc() == (True, "")
    assert cfg.replace(n_flows=2).fits_rvc() == (False, "2 flows (RVC hard-codes 4)")
    assert not cfg.replace(flow_wn_layers=2).fits_rvc()[0]
    assert cfg.replace(inter_channels=96).fits_rvc()[1].startswith("latent width 96")
    assert cfg.replace(inter_channels=96).fits_rvc(latent_192=False)[0]
    assert not cfg.replace(phone_dim=128).fits_rvc()[0]
    two = dict(resblock="2", resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 3), (1, 3)))
    assert cfg.replace(**two).fits_rvc()[0]
    three = dict(two, resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)))  # RVC would build only 2 of 3 convs
    assert cfg.replace(**three).fits_rvc()[1].startswith("ResBlock2 with other than 2 dilations")


def test_invalid_configs_refused():
    with pytest.raises(DistillRVCError, match="unknown fields"):
        SynthConfig.from_dict({"hidden": 3})
    with pytest.raises(DistillRVCError, match="n_heads"):
        rvc_config().replace(hidden_channels=191)
    with pytest.raises(DistillRVCError, match="version"):
        SynthConfig(version="v9")
    with pytest.raises(DistillRVCError, match="18-item"):
        SynthConfig.from_rvc_list([1, 2, 3])
