"""The content encoder against an independent float64 re-computation of fairseq's HuBERT forward
(rvc-format.md, appendix), on fairseq-layout checkpoints written by examples/make_stand_in_hubert.py."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from distill_rvc import DistillRVCError
from distill_rvc.features import ContentEncoder, load_content_encoder
from tests.fixtures.planted import Planted, run_pickle
from tests.fixtures import TINY_TEACHER
from examples.make_stand_in_hubert import fairseq_globals, hubert_checkpoint, model_weights, real_size, write_hubert

STRIDES = [5, 2, 2, 2, 2, 2, 2]


def _gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _ln(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def reference(sd, audio, *, heads, output_layer, final_proj, normalize=False):
    """fairseq's HubertModel.extract_features(output_layer=N) [+ final_proj], written out by
    hand in float64 from the raw fairseq keys."""
    w = {k: v.double() for k, v in sd.items()}
    x = torch.from_numpy(np.asarray(audio, dtype=np.float64))[None, None]
    if normalize:
        x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-5)
    i = 0
    while f"feature_extractor.conv_layers.{i}.0.weight" in w:
        x = torch.nn.functional.conv1d(x, w[f"feature_extractor.conv_layers.{i}.0.weight"], stride=STRIDES[i])
        if i == 0:  # GroupNorm(C groups, C channels): each channel over the whole input
            mean = x.mean(-1, keepdim=True)
            var = ((x - mean) ** 2).mean(-1, keepdim=True)
            x = (x - mean) / torch.sqrt(var + 1e-5) * w["feature_extractor.conv_layers.0.2.weight"][:, None] \
                + w["feature_extractor.conv_layers.0.2.bias"][:, None]
        x = _gelu(x)
        i += 1
    x = _ln(x.transpose(1, 2), w["layer_norm.weight"], w["layer_norm.bias"])
    x = x @ w["post_extract_proj.weight"].T + w["post_extract_proj.bias"]
    v, g = w["encoder.pos_conv.0.weight_v"], w["encoder.pos_conv.0.weight_g"]
    kernel, groups = v.shape[2], x.shape[-1] // v.shape[1]
    weight = g * v / torch.sqrt((v ** 2).sum(dim=(0, 1), keepdim=True))
    pos = torch.nn.functional.conv1d(x.transpose(1, 2), weight, w["encoder.pos_conv.0.bias"], padding=kernel // 2,
                                     groups=groups)
    if kernel % 2 == 0:
        pos = pos[..., :-1]  # SamePad
    x = x + _gelu(pos).transpose(1, 2)
    x = _ln(x, w["encoder.layer_norm.weight"], w["encoder.layer_norm.bias"])
    t, e = x.shape[1], x.shape[2]
    d = e // heads
    for n in range(output_layer):
        p = f"encoder.layers.{n}."

        def lin(y, name):
            return y @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q = lin(x, "self_attn.q_proj") * d ** -0.5
        k, vv = lin(x, "self_attn.k_proj"), lin(x, "self_attn.v_proj")
        q, k, vv = (y.view(t, heads, d).transpose(0, 1) for y in (q[0], k[0], vv[0]))
        attn = torch.softmax(q @ k.transpose(1, 2), dim=-1) @ vv
        o = lin(attn.transpose(0, 1).reshape(1, t, e), "self_attn.out_proj")
        x = _ln(x + o, w[p + "self_attn_layer_norm.weight"], w[p + "self_attn_layer_norm.bias"])
        h = lin(_gelu(lin(x, "fc1")), "fc2")
        x = _ln(x + h, w[p + "final_layer_norm.weight"], w[p + "final_layer_norm.bias"])
    if final_proj:
        x = x @ w["final_proj.weight"].T + w["final_proj.bias"]
    return x[0].numpy()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("hubert") / "hubert_base.pt"
    write_hubert(path)
    return path, hubert_checkpoint()["model"]


def _audio(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.3 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def test_v1_and_v2_match_fairseq_semantics(tiny):
    path, sd = tiny
    enc = load_content_encoder(path)
    assert isinstance(enc, ContentEncoder) and not enc.training
    audio = _audio(8000)
    v2 = enc.extract(audio, "v2")
    v1 = enc.extract(audio, "v1")
    t = (8000 - 400) // 320 + 1
    assert v2.shape == (t, 32) and v1.shape == (t, 256) and v2.dtype == np.float32
    np.testing.assert_allclose(v2, reference(sd, audio, heads=4, output_layer=12, final_proj=False), atol=2e-4)
    np.testing.assert_allclose(v1, reference(sd, audio, heads=4, output_layer=9, final_proj=True), atol=2e-4)
    # v1 really is layer 9: the layer-12 output through final_proj is something else.
    assert np.abs(v1 - reference(sd, audio, heads=4, output_layer=12, final_proj=True)).max() > 1e-2
    assert np.array_equal(enc.extract(audio, "v2"), v2)  # deterministic


@pytest.mark.parametrize("n", [400, 719, 720, 1040, 16000, 16399])
def test_frame_count(tiny, n):
    enc = load_content_encoder(tiny[0])
    assert enc.extract(_audio(n), "v2").shape[0] == (n - 400) // 320 + 1 == enc.config.frames(n)


def test_models_with_fewer_layers_stop_after_the_last(tmp_path):
    path = write_hubert(tmp_path / "h3.pt", layers=3, heads=2)
    enc = load_content_encoder(path)
    assert enc.config.layers == 3 and enc.config.heads == 2
    audio = _audio(4000)
    v2 = enc.extract(audio, "v2")
    sd = hubert_checkpoint(layers=3, heads=2)["model"]
    np.testing.assert_allclose(v2, reference(sd, audio, heads=2, output_layer=3, final_proj=False), atol=2e-4)
    w, b = sd["final_proj.weight"].float().numpy(), sd["final_proj.bias"].float().numpy()
    np.testing.assert_allclose(enc.extract(audio, "v1"), v2 @ w.T + b, atol=1e-4)


def test_conv_stack_read_from_the_stored_config(tmp_path):
    convs = [(8, 10, 5), (8, 3, 2), (12, 3, 3), (12, 2, 2)]
    enc = load_content_encoder(write_hubert(tmp_path / "c.pt", layers=1, conv_layers=convs))
    assert enc.config.conv_layers == tuple(convs)
    # Receptive field and hop by hand: hop = 5*2*3*2 = 60; field = 10 + 5*(3-1) + 10*(3-1) + 30*(2-1) = 70.
    assert enc.config.min_samples == 70
    for n in (70, 129, 130, 1000):
        assert enc.extract(_audio(n), "v2").shape[0] == (n - 70) // 60 + 1


def test_old_args_namespace_and_normalize(tmp_path):
    path = write_hubert(tmp_path / "old.pt", style="args", heads=8, normalize=True)
    enc = load_content_encoder(path)
    assert enc.config.heads == 8 and enc.config.normalize
    sd = hubert_checkpoint(heads=8)["model"]
    audio = 3.0 * _audio(3000)
    np.testing.assert_allclose(enc.extract(audio, "v2"),
                               reference(sd, audio, heads=8, output_layer=12, final_proj=False, normalize=True),
                               atol=2e-4)


def test_fixture_is_realistic_plain_weights_only_load_fails(tiny):
    with pytest.raises(Exception, match="fairseq.data.dictionary.Dictionary"):
        torch.load(tiny[0], weights_only=True)
    ckpt = hubert_checkpoint()
    assert list(ckpt) == ["args", "cfg", "model", "criterion", "optimizer_history", "task_state", "extra_state",
                          "last_optimizer_state"]


def test_real_size_layout_has_the_documented_value_count():
    shapes = {k: v.shape for k, v in model_weights(**real_size()).items()}
    assert len(shapes) == 214
    assert sum(math.prod(s) for s in shapes.values()) == 94_697_600
    assert shapes["encoder.pos_conv.0.weight_v"] == (768, 48, 128)
    assert shapes["encoder.pos_conv.0.weight_g"] == (1, 1, 128)
    assert shapes["label_embs_concat"] == (504, 256)


def test_planted_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    path = write_hubert(tmp_path / "evil.pt", extra={"cfg": {"model": Planted(marker)}})
    with pytest.raises(DistillRVCError, match=r"refused.*Nothing in it was run"):
        load_content_encoder(path)
    assert not marker.exists()
    # The unsafe way really runs it (then trips over the missing fairseq): the test can fail.
    with pytest.raises(ModuleNotFoundError, match="fairseq"):
        run_pickle(path)
    assert marker.exists()


def test_bad_input_and_foreign_files(tiny, tmp_path):
    enc = load_content_encoder(tiny[0])
    with pytest.raises(DistillRVCError, match="shorter than one content frame"):
        enc.extract(_audio(399), "v2")
    with pytest.raises(DistillRVCError, match="unknown RVC version"):
        enc.extract(_audio(1000), "v3")
    with pytest.raises(DistillRVCError, match="NaN"):
        enc.extract(np.full(1000, np.nan, dtype=np.float32), "v2")
    with pytest.raises(DistillRVCError, match="mono"):
        enc.extract(np.zeros((2, 1000), dtype=np.float32), "v2")
    with pytest.raises(DistillRVCError, match="RVC voice model"):
        load_content_encoder(TINY_TEACHER)
    no_proj = write_hubert(tmp_path / "np.pt", final_dim=None, layers=1)
    with pytest.raises(DistillRVCError, match="no final_proj.*v2"):
        load_content_encoder(no_proj).extract(_audio(1000), "v1")

    def broken(name, change, match):
        ckpt = hubert_checkpoint(layers=2)
        change(ckpt["model"])
        with fairseq_globals():
            torch.save(ckpt, tmp_path / name)
        with pytest.raises(DistillRVCError, match=match):
            load_content_encoder(tmp_path / name)

    broken("missing.pt", lambda m: m.pop("encoder.layers.1.fc2.bias"), r"missing weights for layers.1.fc2.bias")
    broken("cond.pt", lambda m: m.update({"encoder.layers.0.cond_layer_norm.weight": torch.zeros(32)}),
           "unexpected weight encoder.layers.0.cond_layer_norm.weight")
    broken("shape.pt", lambda m: m.update({"encoder.layers.1.fc1.weight": torch.zeros(64, 16)}),
           "layers.1.fc1.weight has shape")


class HubertConfig:
    """Pickles as fairseq.models.hubert.HubertConfig, a global the loader has no stand-in for."""


HubertConfig.__module__ = "fairseq.models.hubert"


def test_other_fairseq_globals_are_refused_by_name(tmp_path, monkeypatch):
    import sys
    import types

    module = types.ModuleType("fairseq.models.hubert")
    module.HubertConfig = HubertConfig
    monkeypatch.setitem(sys.modules, "fairseq.models.hubert", module)
    path = write_hubert(tmp_path / "cfg.pt", extra={"cfg": {"model": HubertConfig()}})
    monkeypatch.delitem(sys.modules, "fairseq.models.hubert")
    with pytest.raises(DistillRVCError, match="pickles fairseq.models.hubert.HubertConfig"):
        load_content_encoder(path)


@pytest.mark.slow
def test_real_size_encoder(tmp_path):
    path = write_hubert(tmp_path / "hubert_base.pt", **real_size())
    enc = load_content_encoder(path)
    assert enc.config.heads == 12 and enc.config.layers == 12 and enc.config.conv_layers[0] == (512, 10, 5)
    audio = _audio(16000)
    assert enc.extract(audio, "v2").shape == (49, 768)
    assert enc.extract(audio, "v1").shape == (49, 256)


@pytest.mark.gpu
def test_cuda_matches_cpu(tiny):
    audio = _audio(16000)
    cpu = load_content_encoder(tiny[0]).extract(audio, "v2")
    gpu = load_content_encoder(tiny[0], device="cuda").extract(audio, "v2")
    np.testing.assert_allclose(gpu, cpu, atol=1e-3)
