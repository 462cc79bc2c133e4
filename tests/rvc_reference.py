"""An independent, functional fp32 RVC inference, written from rvc-format.md §1 alone.

It runs on an RVC file's own contents (the `weight` dict under RVC's key names and the
18-item `config` list), with torch.nn.functional only, and shares no code with
distill_rvc.models (it must not: it is what those modules are checked against).

Like RVC: every tensor is cast to float32 (RVC's model is fp32 and load_state_dict copies
the fp16 file into it), and weight norm is folded in fp32 as g * v / ||v||, the norm over
every dim but 0. The steps (rvc-format.md §1.3, §1.4):

  g = emb_g(sid);  m_p, logs_p = enc_p(phone, pitch);  z_p = (m_p + exp(logs_p) N 0.66666) mask
  z = flow^-1(z_p, g);  audio = dec(z mask, f0 Hz, g)

`rvc_infer(..., noise=N)` takes the prior noise; the NSF source noise is left out (the
deterministic part of RVC's output, what `Synthesizer.infer(..., source_noise=False)` gives).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

HIDDEN = 192
N_HEADS = 2
N_LAYERS = 6
WINDOW = 10
FLOW_WN_LAYERS = 3
FLOW_KERNEL = 5
PRIOR_NOISE_SCALE = 0.66666
LRELU = 0.1


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """weight = g * v / ||v||, the norm over every dim but 0, computed in fp32."""
    g, v = g.float(), v.float()
    dims = tuple(range(1, v.dim()))
    return g * v / v.pow(2).sum(dim=dims, keepdim=True).sqrt()


def rvc_weights(weight: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An RVC file's `weight` dict -> fp32 tensors, each (weight_g, weight_v) pair folded."""
    out = {}
    for key, value in weight.items():
        if key.endswith(".weight_v"):
            continue
        if key.endswith(".weight_g"):
            prefix = key[: -len(".weight_g")]
            out[prefix + ".weight"] = fold_weight_norm(value, weight[prefix + ".weight_v"])
        else:
            out[key] = value.float()
    return out


# ------------------------------------------------------------------------------ helpers
def _conv(w, prefix, x, stride=1, padding=0, dilation=1):
    return F.conv1d(x, w[prefix + ".weight"], w.get(prefix + ".bias"), stride=stride, padding=padding,
                    dilation=dilation)


def _layer_norm(x, gamma, beta):
    """Channel-first LayerNorm: [B, C, T] normalised over C, eps 1e-5."""
    return F.layer_norm(x.transpose(1, 2), (x.shape[1],), gamma, beta, eps=1e-5).transpose(1, 2)


def _relative_table(emb: torch.Tensor, t: int) -> torch.Tensor:
    """emb [2W+1, d] -> [t, t, d]: entry (i, j) = emb[j - i + W] if |j - i| <= W, else 0."""
    i = torch.arange(t)[:, None]
    j = torch.arange(t)[None, :]
    rel = j - i
    inside = (rel.abs() <= WINDOW)
    table = emb[(rel.clamp(-WINDOW, WINDOW) + WINDOW)]
    return table * inside[..., None].to(emb.dtype)


def _attention(w, prefix, x, mask, heads=N_HEADS):
    """Multi-head self-attention with shared relative keys/values (window 10), x [B, C, T]."""
    b, c, t = x.shape
    d = c // heads
    q = _conv(w, prefix + ".conv_q", x).view(b, heads, d, t).transpose(2, 3)  # [B, H, T, d]
    k = _conv(w, prefix + ".conv_k", x).view(b, heads, d, t).transpose(2, 3)
    v = _conv(w, prefix + ".conv_v", x).view(b, heads, d, t).transpose(2, 3)
    q = q / math.sqrt(d)
    rel_k = _relative_table(w[prefix + ".emb_rel_k"][0], t)
    rel_v = _relative_table(w[prefix + ".emb_rel_v"][0], t)
    scores = q @ k.transpose(2, 3) + torch.einsum("bhid,ijd->bhij", q, rel_k)
    pair = mask[:, :, :, None] * mask[:, :, None, :]  # [B, 1, T, T]
    scores = scores.masked_fill(pair == 0, -1e4)
    p = torch.softmax(scores, dim=-1)
    out = p @ v + torch.einsum("bhij,ijd->bhid", p, rel_v)
    out = out.transpose(2, 3).reshape(b, c, t)
    return _conv(w, prefix + ".conv_o", out)


def _ffn(w, prefix, x, mask):
    k = w[prefix + ".conv_1.weight"].shape[-1]
    pad = ((k - 1) // 2, k // 2)
    h = F.conv1d(F.pad(x * mask, pad), w[prefix + ".conv_1.weight"], w[prefix + ".conv_1.bias"])
    h = torch.relu(h)
    h = F.conv1d(F.pad(h * mask, pad), w[prefix + ".conv_2.weight"], w[prefix + ".conv_2.bias"])
    return h * mask


def text_encoder(w, phone, pitch, lengths, hidden=HIDDEN, heads=N_HEADS, layers=N_LAYERS, inter=HIDDEN):
    """phone [B, T, D], pitch [B, T] (coarse) or None -> m_p, logs_p [B, inter, T], mask [B, 1, T].
    The widths are config[3] (hidden), config[5] (heads), config[6] (layers), config[2] (inter)."""
    t = phone.shape[1]
    x = F.linear(phone, w["enc_p.emb_phone.weight"], w["enc_p.emb_phone.bias"])
    if pitch is not None:
        x = x + F.embedding(pitch, w["enc_p.emb_pitch.weight"])
    x = F.leaky_relu(x * math.sqrt(hidden), LRELU).transpose(1, 2)
    mask = (torch.arange(t)[None, :] < lengths[:, None]).float()[:, None, :]
    x = x * mask
    for i in range(layers):
        e = f"enc_p.encoder"
        y = _attention(w, f"{e}.attn_layers.{i}", x, mask, heads)
        x = _layer_norm(x + y, w[f"{e}.norm_layers_1.{i}.gamma"], w[f"{e}.norm_layers_1.{i}.beta"])
        y = _ffn(w, f"{e}.ffn_layers.{i}", x, mask)
        x = _layer_norm(x + y, w[f"{e}.norm_layers_2.{i}.gamma"], w[f"{e}.norm_layers_2.{i}.beta"])
    x = x * mask
    stats = _conv(w, "enc_p.proj", x) * mask
    return stats[:, :inter], stats[:, inter:], mask


def _wn(w, prefix, x, mask, g, hidden=HIDDEN):
    """WaveNet stack: gated tanh * sigmoid with the speaker condition, residual + skip."""
    cond = _conv(w, prefix + ".cond_layer", g)
    out = torch.zeros_like(x)
    for i in range(FLOW_WN_LAYERS):
        x_in = _conv(w, f"{prefix}.in_layers.{i}", x, padding=(FLOW_KERNEL - 1) // 2)
        a = x_in + cond[:, 2 * hidden * i: 2 * hidden * (i + 1)]
        acts = torch.tanh(a[:, :hidden]) * torch.sigmoid(a[:, hidden:])
        rs = _conv(w, f"{prefix}.res_skip_layers.{i}", acts)
        if i < FLOW_WN_LAYERS - 1:
            x = (x + rs[:, :hidden]) * mask
            out = out + rs[:, hidden:]
        else:
            out = out + rs
    return out * mask


def flow_reverse(w, z, mask, g, hidden=HIDDEN):
    """The coupling flow run backwards: [Flip, coupling^-1] for couplings 6, 4, 2, 0."""
    half = z.shape[1] // 2
    for n in (6, 4, 2, 0):
        z = torch.flip(z, [1])
        x0, x1 = z[:, :half], z[:, half:]
        h = _conv(w, f"flow.flows.{n}.pre", x0) * mask
        h = _wn(w, f"flow.flows.{n}.enc", h, mask, g, hidden)
        m = _conv(w, f"flow.flows.{n}.post", h) * mask
        z = torch.cat([x0, (x1 - m) * mask], 1)
    return z


def sine_source(f0: torch.Tensor, upp: int, sr: int) -> torch.Tensor:
    """SineGen without its noise: f0 [B, T] Hz -> [B, T*upp], 0.1 sin(2 pi phase) where voiced.

    Phase of sample k = 1..upp of frame t = sum_{t'<t} f0[t'] upp / sr + f0[t] k / sr (mod 1),
    evaluated here in float64 (numpy) from that closed form.
    """
    f = f0.detach().double().numpy()
    before = np.concatenate([np.zeros((f.shape[0], 1)), np.cumsum(f * upp / sr, axis=1)[:, :-1]], axis=1)
    k = np.arange(1, upp + 1)
    phase = (before[:, :, None] + f[:, :, None] * k / sr) % 1.0  # [B, T, upp]
    sine = 0.1 * np.sin(2 * np.pi * phase)
    uv = (f > 0)[:, :, None]
    return torch.from_numpy((sine * uv).reshape(f.shape[0], -1)).float()


def _resblock(w, prefix, x, kind, kernel, dilations):
    if kind == "1":
        for j, d in enumerate(dilations):
            h = _conv(w, f"{prefix}.convs1.{j}", F.leaky_relu(x, LRELU), padding=(kernel * d - d) // 2, dilation=d)
            h = _conv(w, f"{prefix}.convs2.{j}", F.leaky_relu(h, LRELU), padding=(kernel - 1) // 2)
            x = x + h
        return x
    for j in range(2):  # RVC's ResBlock2 has exactly two convs, dilation[0] and dilation[1]
        d = dilations[j]
        x = x + _conv(w, f"{prefix}.convs.{j}", F.leaky_relu(x, LRELU), padding=(kernel * d - d) // 2, dilation=d)
    return x


def decoder(w, cfg: list, x, g, f0):
    """GeneratorNSF (f0 given) or the plain Generator (f0 None). x [B, 192, T] -> [B, 1, T*hop]."""
    kind, kernels, dilations, rates = str(cfg[9]), cfg[10], cfg[11], cfg[12]
    ups_kernels, sr = cfg[14], cfg[17]
    if f0 is not None:
        sine = sine_source(f0, math.prod(rates), sr)[:, None, :]  # [B, 1, N]
        har = torch.tanh(sine * w["dec.m_source.l_linear.weight"][0, 0] + w["dec.m_source.l_linear.bias"][0])
    x = _conv(w, "dec.conv_pre", x, padding=3) + _conv(w, "dec.cond", g)
    for i, (u, k) in enumerate(zip(rates, ups_kernels)):
        x = F.leaky_relu(x, LRELU)
        x = F.conv_transpose1d(x, w[f"dec.ups.{i}.weight"], w[f"dec.ups.{i}.bias"], stride=u, padding=(k - u) // 2)
        if f0 is not None:
            s = math.prod(rates[i + 1:])
            if i + 1 < len(rates):
                x = x + _conv(w, f"dec.noise_convs.{i}", har, stride=s, padding=s // 2)
            else:
                x = x + _conv(w, f"dec.noise_convs.{i}", har)
        n = len(kernels)
        x = sum(_resblock(w, f"dec.resblocks.{n * i + j}", x, kind, kernels[j], dilations[j]) for j in range(n)) / n
    x = F.leaky_relu(x, 0.01)
    x = F.conv1d(x, w["dec.conv_post.weight"], None, padding=3)
    return torch.tanh(x)


@torch.no_grad()
def rvc_infer(file: dict, phone, lengths, pitch, pitchf, sid, noise, weights: dict | None = None) -> torch.Tensor:
    """RVC's `infer` on a loaded inference file (`weight`, `config`, `f0`): audio [B, 1, T*hop].

    phone [B, T, 256|768] float, lengths [B], pitch [B, T] coarse 1..255 and pitchf [B, T] Hz
    (ignored for f0=0 files), sid [B], noise [B, 192, T] standard normal. `weights` overrides
    the folded fp32 weights (e.g. to show what a different fold does).
    """
    w = weights if weights is not None else rvc_weights(file["weight"])
    f0 = bool(int(file.get("f0", 1)))
    g = F.embedding(sid, w["emb_g.weight"])[:, :, None]  # [B, 256, 1]
    cfg = file["config"]  # RVC builds from it: inter 2, hidden 3, heads 5, layers 6
    m_p, logs_p, mask = text_encoder(w, phone.float(), pitch if f0 else None, lengths, hidden=cfg[3], heads=cfg[5],
                                     layers=cfg[6], inter=cfg[2])
    z_p = (m_p + torch.exp(logs_p) * noise * PRIOR_NOISE_SCALE) * mask
    z = flow_reverse(w, z_p, mask, g, hidden=cfg[3])
    return decoder(w, file["config"], z * mask, g, pitchf.float() if f0 else None)


def coarse_pitch(f0: torch.Tensor) -> torch.Tensor:
    """RVC's coarse pitch (rvc-format.md §5.2): mel scale, 1..255, unvoiced -> 1."""
    mel = 1127 * np.log(1 + f0.double().numpy() / 700)
    lo, hi = 1127 * np.log(1 + 50 / 700), 1127 * np.log(1 + 1100 / 700)
    mel = np.where(mel > 0, (mel - lo) * 254 / (hi - lo) + 1, mel)
    mel = np.clip(mel, 1, 255)
    return torch.from_numpy(np.rint(mel).astype(np.int64))
