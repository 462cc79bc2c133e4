"""The synthesizer's building blocks against independent computations of rvc-format.md's formulas."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distill_rvc import DistillRVCError, Synthesizer, load_model, rvc_config
from distill_rvc.config import RVC_CONFIGS
from distill_rvc.features import coarse_pitch
from distill_rvc.models.decoder import SineGen
from distill_rvc.models.text_encoder import MultiHeadAttention
from distill_rvc.models.weight_norm import fold, fold_state_dict, to_rvc_keys
from tests.fixtures import TINY_TEACHER


def test_coarse_pitch_matches_rvc_formula():
    f0 = np.array([0.0, 50, 100, 220, 440, 880, 1100, 3000, 20])
    assert coarse_pitch(f0).tolist() == [1, 1, 20, 60, 122, 217, 255, 255, 1]
    # Independent evaluation of the formula for a sweep.
    hz = np.linspace(51, 1099, 500)
    mel = 1127 * np.log(1 + hz / 700)
    lo, hi = 1127 * np.log(1 + 50 / 700), 1127 * np.log(1 + 1100 / 700)
    expected = np.clip(np.rint((mel - lo) * 254 / (hi - lo) + 1), 1, 255)
    assert np.array_equal(coarse_pitch(hz), expected)


def test_sine_source_for_constant_f0():
    sr, upp, t, f0 = 40000, 400, 50, 220.0
    out = SineGen(sr)(torch.full((1, t), f0), upp, noise=False)[0, :, 0].double().numpy()
    n = np.arange(1, t * upp + 1)  # the first sample already has phase f0/sr
    assert np.abs(out - 0.1 * np.sin(2 * np.pi * f0 * n / sr)).max() < 1e-5


def test_sine_source_phase_is_continuous_across_frames_and_long_inputs():
    sr, upp, t = 40000, 400, 1000  # 10 s
    rng = np.random.default_rng(0)
    f0 = rng.uniform(80, 400, t)
    f0[100:150] = 0  # an unvoiced gap
    out = SineGen(sr)(torch.tensor(f0, dtype=torch.float32)[None], upp, noise=False)[0, :, 0].double().numpy()
    f0_32 = f0.astype(np.float32).astype(np.float64)
    start = np.concatenate([[0.0], np.cumsum(f0_32 * upp / sr)[:-1]])  # phase at each frame start
    phase = start[:, None] + f0_32[:, None] * np.arange(1, upp + 1) / sr
    expected = 0.1 * np.sin(2 * np.pi * phase) * (f0_32 > 0)[:, None]
    assert np.abs(out - expected.reshape(-1)).max() < 2e-5


def test_sine_source_noise_levels():
    torch.manual_seed(0)
    f0 = torch.zeros(1, 200)
    f0[:, 100:] = 150.0
    clean = SineGen(40000)(f0, 400, noise=False)[0, :, 0]
    noisy = SineGen(40000)(f0, 400, noise=True)[0, :, 0]
    diff = noisy - clean
    assert diff[: 100 * 400].std().item() == pytest.approx(0.1 / 3, rel=0.03)  # unvoiced
    assert diff[100 * 400:].std().item() == pytest.approx(0.003, rel=0.03)  # voiced


def test_weight_norm_folding():
    torch.manual_seed(0)
    v, g = torch.randn(8, 4, 3), torch.rand(8, 1, 1) + 0.5
    expected = g.numpy() * v.numpy() / np.sqrt((v.numpy() ** 2).sum(axis=(1, 2), keepdims=True))
    assert np.allclose(fold(g, v).numpy(), expected, atol=1e-6)

    # ConvTranspose1d: the norm runs over the *input* channels (dim 0), as torch's legacy hook.
    for conv in (torch.nn.Conv1d(4, 6, 5), torch.nn.ConvTranspose1d(6, 4, 16, 10, padding=3)):
        with pytest.warns(FutureWarning):
            wn = torch.nn.utils.weight_norm(conv)
        sd = {f"dec.ups.0.{k}": t.detach() for k, t in wn.state_dict().items()}
        folded = fold_state_dict(sd)
        plain = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0],
                           padding=conv.padding[0])
        plain.load_state_dict({k.split(".")[-1]: t for k, t in folded.items()})
        x = torch.randn(1, conv.in_channels, 20)
        assert torch.allclose(plain(x), wn(x), atol=1e-6)
        # Splitting a plain weight into (g, v) for RVC's files folds back to the same weight.
        again = fold_state_dict(to_rvc_keys(folded))
        assert torch.allclose(again["dec.ups.0.weight"], folded["dec.ups.0.weight"], atol=1e-6)


def _reference_attention(attn: MultiHeadAttention, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A literal loop over rvc-format.md §1.3: relative keys/values inside a +-w window."""
    b, c, t = x.shape
    h, d, w = attn.n_heads, attn.k_channels, attn.window_size
    q, k, v = attn.conv_q(x), attn.conv_k(x), attn.conv_v(x)
    out = torch.zeros(b, c, t)
    ek, ev = attn.emb_rel_k[0], attn.emb_rel_v[0]
    for bi in range(b):
        for hi in range(h):
            sl = slice(hi * d, (hi + 1) * d)
            for i in range(t):
                scores = torch.empty(t)
                for j in range(t):
                    s = q[bi, sl, i] @ k[bi, sl, j]
                    if abs(j - i) <= w:
                        s = s + q[bi, sl, i] @ ek[j - i + w]
                    s = s / math.sqrt(d)
                    scores[j] = s if mask[bi, 0, i] * mask[bi, 0, j] else -1e4
                p = torch.softmax(scores, 0)
                acc = torch.zeros(d)
                for j in range(t):
                    acc += p[j] * v[bi, sl, j]
                    if abs(j - i) <= w:
                        acc += p[j] * ev[j - i + w]
                out[bi, sl, i] = acc
    return attn.conv_o(out)


@pytest.mark.parametrize("t,window", [(15, 3), (2, 3), (9, 10)])
def test_relative_attention_matches_the_formula(t, window):
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 2, window_size=window)
    x = torch.randn(2, 8, t)
    mask = torch.ones(2, 1, t)
    mask[1, :, t - t // 3:] = 0
    attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
    with torch.no_grad():
        assert torch.allclose(attn(x, attn_mask), _reference_attention(attn, x, mask), atol=1e-5)


@pytest.fixture(scope="module")
def teacher():
    return load_model(TINY_TEACHER)


def _inputs(t=60, seed=0, f0_hz=140.0):
    g = torch.Generator().manual_seed(seed)
    phone = torch.randn(1, t, 768, generator=g)
    f0 = torch.full((1, t), f0_hz)
    f0[:, t // 2: t // 2 + 5] = 0
    pitch = torch.tensor(coarse_pitch(f0.numpy()))
    noise = torch.randn(1, 192, t, generator=g)
    return phone, torch.tensor([t]), pitch, f0, torch.tensor([0]), noise


def test_prior_noise_scaling(teacher):
    phone, lengths, pitch, f0, sid, noise = _inputs()
    with torch.no_grad():
        a = teacher(phone, lengths, pitch, f0, sid, noise=noise, source_noise=False)
        b = teacher(phone, lengths, pitch, f0, sid, noise=torch.zeros_like(noise), source_noise=False)
    assert torch.allclose(b.z_p, b.m_p)
    assert torch.allclose(a.z_p - b.z_p, torch.exp(a.logs_p) * noise * 0.66666, atol=1e-6)


def test_infer_is_deterministic_with_fixed_noise(teacher):
    args = _inputs()
    a = teacher.infer(*args, source_noise=False)
    b = teacher.infer(*args, source_noise=False)
    assert torch.equal(a, b) and a.shape == (1, 1, 60 * 400)
    assert a.abs().max() < 1 and a.std() > 1e-3
    assert not torch.equal(a, teacher.infer(*args, source_noise=True))
    assert not torch.equal(a, teacher.infer(*args[:5], source_noise=False))  # prior noise drawn


def test_decoder_composition_follows_rvc(teacher):
    """dec = tanh(conv_post(lrelu_0.01(...stages...))) with stage = mean_j resblock_j(ups(lrelu_0.1(x)) + noise_conv(source))."""
    dec = teacher.dec
    assert dec.conv_post.bias is None
    _, _, _, f0, sid, _ = _inputs()
    z = torch.randn(1, 192, 60)
    g = teacher.emb_g(sid).unsqueeze(-1)
    with torch.no_grad():
        got = dec(z, f0, g, source_noise=False)
        upp = 400
        f0_up = f0.repeat_interleave(upp, 1)
        phase = torch.cumsum(f0_up.double() / 40000, 1)  # constant-per-frame f0: a plain running sum
        sine = (0.1 * torch.sin(2 * math.pi * phase) * (f0_up > 0)).float()
        source = torch.tanh(dec.m_source.l_linear(sine.unsqueeze(-1))).transpose(1, 2)
        x = dec.conv_pre(z) + dec.cond(g)
        for i, up in enumerate(dec.ups):
            x = up(F.leaky_relu(x, 0.1)) + dec.noise_convs[i](source)
            x = sum(dec.resblocks[3 * i + j](x) for j in range(3)) / 3
        want = torch.tanh(dec.conv_post(F.leaky_relu(x, 0.01)))
    assert torch.allclose(got, want, atol=1e-4)


def test_prior_is_independent_of_batch_padding(teacher):
    phone, _, pitch, f0, sid, _ = _inputs(t=50)
    short = 30
    batch_phone = torch.cat([phone, phone])
    batch_phone[1, short:] = 7.0  # padding garbage must not leak into the short item
    with torch.no_grad():
        m_b, logs_b, _ = teacher.enc_p(batch_phone, torch.cat([pitch, pitch]), torch.tensor([50, short]))
        m_1, logs_1, _ = teacher.enc_p(phone[:, :short], pitch[:, :short], torch.tensor([short]))
    assert torch.allclose(m_b[1, :, :short], m_1[0], atol=1e-5)
    assert torch.allclose(logs_b[1, :, :short], logs_1[0], atol=1e-5)


def test_no_f0_model_and_missing_pitch():
    cfg = rvc_config("v1", 40000, False).replace(hidden_channels=16, filter_channels=32, n_layers=1,
                                                  upsample_initial_channel=32, gin_channels=8)
    model = Synthesizer(cfg).eval()
    assert not hasattr(model.enc_p, "emb_pitch") and not hasattr(model.dec, "m_source")
    out = model.infer(torch.randn(1, 20, 256), torch.tensor([20]), None, None, torch.tensor([0]))
    assert out.shape == (1, 1, 20 * 400)
    f0_model = Synthesizer(cfg.replace(f0=True)).eval()
    with pytest.raises(DistillRVCError, match="pitch"):
        f0_model.infer(torch.randn(1, 20, 256), torch.tensor([20]), None, None, torch.tensor([0]))


@pytest.mark.parametrize("version,sr", RVC_CONFIGS)
def test_real_configs_output_length(version, sr):
    cfg = rvc_config(version, sr, True)
    model = Synthesizer(cfg).eval()
    t = 6
    out = model.infer(torch.randn(1, t, cfg.phone_dim), torch.tensor([t]), torch.full((1, t), 50),
                      torch.full((1, t), 150.0), torch.tensor([0]))
    assert out.shape == (1, 1, t * sr // 100)
