"""The file-format boundary: every RVC checkpoint kind loads; every bad file is refused."""
from __future__ import annotations

import json

import pytest
import torch

from distill_rvc import DistillRVCError, load_model, read_checkpoint, rvc_config, save_model
from distill_rvc.checkpoint import FORMAT_APPLIO, FORMAT_PRETRAINED, FORMAT_PROJECT, FORMAT_RVC, FORMAT_TRAINING
from distill_rvc.config import RVC_CONFIGS
from tests.fixtures.planted import Planted, run_pickle
from tests.fixtures.rvc_files import (inference_dict, rvc_state_dict, write_applio, write_inference, write_pretrained,
                       write_training)

# rvc-format.md §3a (key counts) and §4 (parameter counts, weight-norm g included).
KEY_COUNTS = {(4, True): 457, (4, False): 446, (5, True): 516, (5, False): 503}
PARAMS = {  # (version, sr): (f0 inference, f0 full G, nono inference)
    ("v1", 32000): (27_471_170, 36_294_338, 27_402_432),
    ("v1", 40000): (27_439_042, 36_360_514, 27_367_616),
    ("v1", 48000): (27_479_362, 36_400_834, 27_402_432),
    ("v2", 32000): (28_057_538, 36_880_706, 27_990_208),
    ("v2", 40000): (27_537_346, 36_458_818, 27_465_920),
    ("v2", 48000): (28_716_994, 37_638_466, 28_645_568),
}
# A sample of rvc-format.md §3d's v2 40k f0 table.
V2_40K_SHAPES = {
    "dec.noise_convs.0.weight": [256, 1, 80], "dec.noise_convs.3.weight": [32, 1, 1],
    "dec.conv_pre.weight": [512, 192, 7], "dec.ups.0.weight_g": [512, 1, 1], "dec.ups.0.weight_v": [512, 256, 16],
    "dec.ups.3.weight_v": [64, 32, 4], "dec.resblocks.0.convs1.0.weight_v": [256, 256, 3],
    "dec.resblocks.11.convs2.2.weight_v": [32, 32, 11], "dec.conv_post.weight": [1, 32, 7],
    "dec.cond.weight": [512, 256, 1], "flow.flows.0.pre.weight": [192, 96, 1],
    "flow.flows.6.enc.in_layers.2.weight_v": [384, 192, 5], "flow.flows.2.enc.res_skip_layers.2.weight_v": [192, 192, 1],
    "flow.flows.4.enc.cond_layer.weight_v": [1152, 256, 1], "flow.flows.0.post.weight": [96, 192, 1],
    "emb_g.weight": [109, 256], "enc_p.emb_phone.weight": [192, 768], "enc_p.emb_pitch.weight": [256, 192],
    "enc_p.encoder.attn_layers.5.emb_rel_k": [1, 21, 96], "enc_p.encoder.ffn_layers.0.conv_1.weight": [768, 192, 3],
    "enc_p.encoder.norm_layers_2.5.gamma": [192], "enc_p.proj.weight": [384, 192, 1],
}


@pytest.mark.parametrize("version,sr", RVC_CONFIGS)
@pytest.mark.parametrize("f0", [True, False], ids=["f0", "nono"])
def test_real_config_inference_files_round_trip(tmp_path, version, sr, f0):
    cfg = rvc_config(version, sr, f0)
    raw = inference_dict(cfg)
    stages = len(cfg.upsample_rates)
    assert len(raw["weight"]) == KEY_COUNTS[(stages, f0)]
    assert sum(v.numel() for v in raw["weight"].values()) == PARAMS[(version, sr)][0 if f0 else 2]
    assert not any("conv_post.bias" in k for k in raw["weight"])
    if (version, sr, f0) == ("v2", 40000, True):
        assert {k: list(raw["weight"][k].shape) for k in V2_40K_SHAPES} == V2_40K_SHAPES
    path = tmp_path / "m.pth"
    torch.save(raw, path)

    ckpt = read_checkpoint(path)
    assert ckpt.format == FORMAT_RVC
    assert ckpt.config == cfg
    assert ckpt.stored_params == PARAMS[(version, sr)][0 if f0 else 2]

    # Our writer produces RVC's exact key names and shapes.
    model = load_model(path)
    out = tmp_path / "again.pth"
    save_model(model, out, plain_rvc=True)
    again = torch.load(out, weights_only=True)
    assert {k: v.shape for k, v in again["weight"].items()} == {k: v.shape for k, v in raw["weight"].items()}
    assert again["config"] == raw["config"] and again["version"] == version and again["f0"] == int(f0)
    assert again["sr"] == raw["sr"] and all(v.dtype == torch.float16 for v in again["weight"].values())
    # ... and the weights survive (both are fp16 roundings of the same folded weights).
    model2 = load_model(out)
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        assert torch.allclose(a, b, rtol=2e-3, atol=1e-4), k


@pytest.mark.parametrize("version,sr", RVC_CONFIGS)
@pytest.mark.parametrize("f0", [True, False], ids=["f0", "nono"])
def test_training_checkpoints_config_read_off_the_shapes(tmp_path, version, sr, f0):
    cfg = rvc_config(version, sr, f0)
    path = write_training(tmp_path / "G_2333333.pth", cfg)
    ckpt = read_checkpoint(path)
    assert ckpt.format == FORMAT_TRAINING
    assert ckpt.config == cfg
    if f0:
        assert ckpt.stored_params == PARAMS[(version, sr)][1]
    model = load_model(path, with_posterior=True)
    assert hasattr(model, "enc_q") and not hasattr(load_model(path), "enc_q")


def test_pretrained_base_and_parametrizations_naming(tmp_path):
    cfg = rvc_config("v2", 40000, True)
    ckpt = read_checkpoint(write_pretrained(tmp_path / "f0G40k.pth", cfg))
    assert ckpt.format == FORMAT_PRETRAINED and ckpt.config == cfg and ckpt.stored_dtype == torch.float16

    legacy = write_inference(tmp_path / "legacy.pth", cfg, seed=3)
    modern = write_inference(tmp_path / "modern.pth", cfg, seed=3, wn_style="parametrizations")
    assert any(".parametrizations.weight.original0" in k for k in torch.load(modern, weights_only=True)["weight"])
    a, b = load_model(legacy).state_dict(), load_model(modern).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_training_checkpoint_uses_sibling_config_json(tmp_path):
    cfg = rvc_config("v1", 48000, False)
    path = write_training(tmp_path / "G_100.pth", cfg)
    (tmp_path / "config.json").write_text(json.dumps({
        "data": {"sampling_rate": 48000, "filter_length": 2048},
        "model": {"upsample_rates": [10, 6, 2, 2, 2], "resblock_dilation_sizes": [[1, 3, 5]] * 3}}))
    assert read_checkpoint(path).config == cfg


def test_missing_version_means_v1(tmp_path):
    cfg = rvc_config("v1", 40000, True)
    path = write_inference(tmp_path / "old.pth", cfg, version_key=False)
    assert read_checkpoint(path).config.version == "v1"


def test_applio_files(tmp_path):
    cfg = rvc_config("v2", 40000, True)
    ckpt = read_checkpoint(write_applio(tmp_path / "applio.pth", cfg))
    assert ckpt.format == FORMAT_APPLIO and ckpt.metadata["embedder_model"] == "contentvec"
    cfg24 = rvc_config("v2", 24000, True)
    assert cfg24.hop_length == 240
    assert read_checkpoint(write_applio(tmp_path / "a24.pth", cfg24)).config.sr == 24000
    with pytest.raises(DistillRVCError, match="RefineGAN vocoder"):
        read_checkpoint(write_applio(tmp_path / "refine.pth", cfg, vocoder="RefineGAN"))


def test_spk_embed_dim_comes_from_emb_g_rows(tmp_path):
    cfg = rvc_config("v2", 40000, True).replace(spk_embed_dim=4)
    raw = inference_dict(cfg)
    raw["config"][15] = 109  # the list says 109; the weights have 4 rows, as RVC trusts
    torch.save(raw, tmp_path / "m.pth")
    assert load_model(tmp_path / "m.pth").emb_g.weight.shape[0] == 4


@pytest.fixture(scope="module")
def small_raw():
    from examples.make_tiny_teacher import TINY_CONFIG
    return inference_dict(TINY_CONFIG)


def _refused(tmp_path, obj, match):
    path = tmp_path / "bad.pth"
    torch.save(obj, path)
    with pytest.raises(DistillRVCError, match=match):
        read_checkpoint(path)


def test_other_families_refused_by_name(tmp_path, small_raw):
    dd = {k: v for k, v in small_raw.items() if k != "config"} | {"params": {"emb_channels": 768}}
    _refused(tmp_path, dd, "ddPn08")
    _refused(tmp_path, small_raw | {"version": "voras_beta"}, "VoRAS")
    _refused(tmp_path, small_raw | {"version": "v3"}, "unknown RVC model version 'v3'")
    _refused(tmp_path, {"model": {"discriminators.0.convs.0.bias": torch.zeros(3)}}, "discriminator")
    _refused(tmp_path, {"model": {"feature_extractor.conv_layers.0.0.weight": torch.zeros(3)}}, "content encoder")
    _refused(tmp_path, {"unet.x": torch.zeros(2)}, "not an RVC voice model")
    _refused(tmp_path, [1, 2, 3], "not an RVC voice model")


def test_damaged_files_refused(tmp_path, small_raw):
    weight = dict(small_raw["weight"])
    weight["enc_p.emb_phone.weight"] = weight["enc_p.emb_phone.weight"][:, :256]
    _refused(tmp_path, small_raw | {"weight": weight}, r"enc_p.emb_phone.weight has shape \[16, 256\].*needs \[16, 768\]")
    weight = {k: v for k, v in small_raw["weight"].items() if k != "dec.conv_post.weight"}
    _refused(tmp_path, small_raw | {"weight": weight}, "missing weight dec.conv_post.weight")
    weight = {k: v for k, v in small_raw["weight"].items() if k != "dec.ups.1.weight_v"}
    _refused(tmp_path, small_raw | {"weight": weight}, "weight norm")
    _refused(tmp_path, small_raw | {"config": small_raw["config"][:10]}, "18-item")

    good = tmp_path / "good.pth"
    torch.save(small_raw, good)
    data = good.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(DistillRVCError, match="truncated"):
        read_checkpoint(tmp_path / "cut.pth")
    (tmp_path / "text.pth").write_text("this is not a checkpoint")
    with pytest.raises(DistillRVCError, match="not a readable PyTorch file"):
        read_checkpoint(tmp_path / "text.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(DistillRVCError, match="empty"):
        read_checkpoint(tmp_path / "empty.pth")
    with pytest.raises(DistillRVCError, match="no such file"):
        read_checkpoint(tmp_path / "nope.pth")


def test_planted_pickled_code_is_refused_and_never_runs(tmp_path, small_raw):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    torch.save(small_raw | {"info": Planted(marker)}, path)
    with pytest.raises(DistillRVCError, match=r"pickled code.*Nothing in it was run"):
        read_checkpoint(path)
    assert not marker.exists()
    # The same pickle loaded the unsafe way really would run it: the test can fail.
    run_pickle(path)
    assert marker.exists()


def test_student_outside_rvc_space_uses_project_format(tmp_path):
    from distill_rvc import Synthesizer
    from examples.make_tiny_teacher import TINY_CONFIG

    model = Synthesizer(TINY_CONFIG.replace(n_flows=2, phone_proj_dim=8)).eval()
    saved = save_model(model, tmp_path / "student.pth", metadata={"recipe": "tiny"})
    assert saved.format == FORMAT_PROJECT
    path = saved.path  # not *.pth: the runtimes would list it as a voice
    assert path == tmp_path / "student.drvc.pt" and not (tmp_path / "student.pth").exists()
    raw = torch.load(path, weights_only=True)
    assert "config" not in raw  # RVC's loader does cpt["config"]: it fails loudly
    ckpt = read_checkpoint(path)
    assert ckpt.format == FORMAT_PROJECT and ckpt.metadata["recipe"] == "tiny"
    assert ckpt.config.n_flows == 2 and ckpt.config.phone_proj_dim == 0  # projection folded


def test_phone_projection_folds_into_emb_phone(tmp_path):
    from distill_rvc import Synthesizer
    from examples.make_tiny_teacher import TINY_CONFIG

    torch.manual_seed(0)
    model = Synthesizer(TINY_CONFIG.replace(phone_proj_dim=8)).eval()
    path = tmp_path / "s.pth"
    save_model(model, path, half=False, plain_rvc=True)
    folded = load_model(path)
    assert not hasattr(folded.enc_p, "phone_proj") and folded.enc_p.emb_phone.weight.shape == (16, 768)
    t = 30
    args = (torch.randn(1, t, 768), torch.tensor([t]), torch.randint(1, 255, (1, t)), torch.full((1, t), 120.0),
            torch.tensor([0]), torch.randn(1, 192, t), False)
    assert torch.allclose(model.infer(*args), folded.infer(*args), atol=1e-5)


def test_newer_project_format_refused(tmp_path):
    from examples.make_tiny_teacher import TINY_CONFIG
    _refused(tmp_path, {"weight": {}, "distill_rvc": {"format_version": 99, "config": TINY_CONFIG.to_dict()}},
             "newer distill-rvc")
