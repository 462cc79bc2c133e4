"""The `arch` spec of pruned models: building, validating, normalising, and the file boundary."""
from __future__ import annotations

import copy

import pytest
import torch

from distill_rvc import DistillRVCError, Synthesizer, load_model, save_model
from distill_rvc.checkpoint import FORMAT_PROJECT, FORMAT_STUDENT_RVC, build_model, read_checkpoint
from distill_rvc.models.arch import default_widths, normalize, not_rvc_because, validate_arch, widths_of
from examples.make_tiny_teacher import TINY_CONFIG

RESBLOCK2 = TINY_CONFIG.replace(resblock="2", resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 3), (1, 3)))


def _irregular(config) -> dict:
    """Widths no config can express: stages that do not halve, inner widths of their own."""
    arch = default_widths(config)
    arch["dec"]["conv_pre"] = 24
    arch["dec"]["ups"] = [13, 6, 5, 2]
    arch["dec"]["resblocks"] = [[w - (k + j) % 3 if w > 3 else w for j, w in enumerate(b)]
                                for k, b in enumerate(arch["dec"]["resblocks"])]
    arch["enc_p"]["ffn"] = [20, 9][:config.n_layers]
    return arch


def _run(model: Synthesizer) -> torch.Tensor:
    torch.manual_seed(3)
    t = 12
    cfg = model.config
    return model.infer(torch.randn(1, t, cfg.phone_dim), torch.tensor([t]), torch.randint(1, 256, (1, t)),
                       torch.full((1, t), 160.0), torch.tensor([0]), noise=torch.randn(1, cfg.inter_channels, t),
                       source_noise=False)


@pytest.mark.parametrize("config", [TINY_CONFIG, RESBLOCK2], ids=["resblock1", "resblock2"])
def test_default_widths_are_the_built_model_widths(config):
    assert widths_of(Synthesizer(config)) == default_widths(config)
    assert build_model(config).arch is None


@pytest.mark.parametrize("config", [TINY_CONFIG, RESBLOCK2], ids=["resblock1", "resblock2"])
def test_build_model_builds_the_widths_it_is_given(config):
    arch = _irregular(config)
    model = build_model(config, arch)
    assert widths_of(model) == arch and model.arch == arch
    sd = model.state_dict()
    assert sd["dec.conv_pre.weight"].shape == (24, 192, 7)  # the latent width stays
    assert sd["dec.cond.weight"].shape == (24, 16, 1)
    assert sd["dec.ups.1.weight"].shape == (13, 6, 16)  # ConvTranspose1d: [in, out, k]
    assert sd["dec.noise_convs.2.weight"].shape[0] == 5
    assert sd["dec.conv_post.weight"].shape == (1, 2, 7)
    assert sd["enc_p.encoder.ffn_layers.1.conv_2.weight"].shape == (16, 9, 3)  # hidden width 16 stays
    if config.resblock == "1":
        inner = arch["dec"]["resblocks"][4][1]
        assert sd["dec.resblocks.4.convs1.1.weight"].shape == (inner, 6, 7)
        assert sd["dec.resblocks.4.convs2.1.weight"].shape == (6, inner, 7)
    _run(model.eval())  # the widths fit together


def test_project_file_round_trip_rebuilds_the_same_model(tmp_path):
    torch.manual_seed(0)
    model = build_model(TINY_CONFIG, _irregular(TINY_CONFIG)).eval()
    saved = save_model(model, tmp_path / "p.pth", half=False)
    assert saved.format == FORMAT_PROJECT and saved.path == tmp_path / "p.drvc.pt"
    raw = torch.load(saved.path, weights_only=True)
    assert "config" not in raw and raw["distill_rvc"]["arch"] == model.arch  # RVC refuses it loudly
    loaded = load_model(saved.path)
    assert loaded.arch == model.arch
    # fp32 file; the weight-norm split (g = |w|, v = w) and its fold round to float precision
    torch.testing.assert_close(_run(loaded), _run(model), rtol=0, atol=1e-6)


@pytest.mark.parametrize("damage, message", [
    (lambda a: a["dec"].pop("ups"), "dec must have the keys"),
    (lambda a: a["dec"]["ups"].pop(), "dec.ups must be a list of 4"),
    (lambda a: a["dec"].__setitem__("conv_pre", 0), "dec.conv_pre must be a positive integer"),
    (lambda a: a["dec"].__setitem__("conv_pre", 12.0), "dec.conv_pre must be a positive integer"),
    (lambda a: a["dec"].__setitem__("conv_pre", True), "dec.conv_pre must be a positive integer"),
    (lambda a: a["dec"]["resblocks"][3].append(4), r"dec.resblocks\[3\] must be a list of 3"),
    (lambda a: a["enc_p"]["ffn"].append(4), "enc_p.ffn must be a list of 2"),
    (lambda a: a.__setitem__("flow", {}), "expected the keys dec and enc_p"),
])
def test_damaged_widths_are_refused_with_the_reason(tmp_path, damage, message):
    arch = default_widths(TINY_CONFIG)
    damage(arch)
    with pytest.raises(DistillRVCError, match=message):
        validate_arch(TINY_CONFIG, arch)
    # ... and at the file boundary, naming the file.
    model = build_model(TINY_CONFIG, _irregular(TINY_CONFIG))
    raw = torch.load(save_model(model, tmp_path / "p.pth").path, weights_only=True)
    raw["distill_rvc"]["arch"] = arch
    torch.save(raw, tmp_path / "bad.pth")
    with pytest.raises(DistillRVCError, match=r"bad\.pth: damaged distill-rvc model: .*" + message):
        read_checkpoint(tmp_path / "bad.pth")


def test_uniform_widths_are_just_another_rvc_config(tmp_path):
    narrow = TINY_CONFIG.replace(upsample_initial_channel=16, filter_channels=20)
    config, arch = normalize(TINY_CONFIG, default_widths(narrow))
    assert arch is None and config == narrow
    assert normalize(TINY_CONFIG, default_widths(TINY_CONFIG)) == (TINY_CONFIG, None)
    irregular = _irregular(TINY_CONFIG)
    assert normalize(TINY_CONFIG, irregular) == (TINY_CONFIG, irregular)
    # Stages that halve but FFN layers that differ still need the spec.
    mixed = copy.deepcopy(default_widths(narrow))
    mixed["enc_p"]["ffn"] = [20, 12]
    assert normalize(TINY_CONFIG, mixed) == (TINY_CONFIG, mixed)
    # A normalised model is written in RVC's own format.
    model = build_model(TINY_CONFIG, default_widths(narrow))
    model.config, model.arch = normalize(model.config, widths_of(model))
    assert save_model(model, tmp_path / "u.pth").format == FORMAT_STUDENT_RVC
    raw = torch.load(tmp_path / "u.pth", weights_only=True)
    assert raw["config"][4] == 20 and raw["config"][13] == 16  # filter_channels, upsample_initial_channel


def test_not_rvc_because_names_the_first_width_rvc_cannot_express():
    arch = default_widths(TINY_CONFIG)  # conv_pre 32, stages 16/8/4/2, inner widths = stages, ffn 32/32
    assert not_rvc_because(TINY_CONFIG, arch) is None and not_rvc_because(TINY_CONFIG, None) is None
    odd = copy.deepcopy(arch)
    odd["dec"]["conv_pre"] = 22
    odd["dec"]["ups"] = [11, 5, 2, 1]  # floored halvings: RVC builds these
    odd["dec"]["resblocks"] = [[w] * 3 for w in [11] * 3 + [5] * 3 + [2] * 3 + [1] * 3]
    assert not_rvc_because(TINY_CONFIG, odd) is None and normalize(TINY_CONFIG, odd)[1] is None
    stages = copy.deepcopy(arch)
    stages["dec"]["ups"][3] = 3
    assert not_rvc_because(TINY_CONFIG, stages) == ("decoder stages 16/8/4/3 do not halve from conv_pre 32 "
                                                    "(RVC builds 16/8/4/2)")
    inner = copy.deepcopy(arch)
    inner["dec"]["resblocks"][4] = [8, 6, 8]
    assert not_rvc_because(TINY_CONFIG, inner) == "resblock 4 has inner widths 8/6/8, not its stage's 8"
    ffn = copy.deepcopy(arch)
    ffn["enc_p"]["ffn"] = [32, 24]
    assert not_rvc_because(TINY_CONFIG, ffn) == "enc_p FFN widths 32/24 differ (RVC has one filter_channels)"
