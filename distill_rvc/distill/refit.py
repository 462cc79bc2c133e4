"""Research (issue 13): refit a student initialised from the teacher so each layer reproduces
the teacher's outputs on real features, by ridge regression (reconstruction-based pruning).

- `refit_decoder(student, teacher, items, chosen)`: the decoder's convs in forward order, each
  mapping the *student's own* inputs to the teacher's outputs at the kept channels; the
  upsamplers as their exactly equivalent zero-stuffed convolutions;
- `refit_enc_flow(student, teacher, cal)`: enc_p's output projection and each flow coupling's
  `post`, so the prior and the latent match the teacher's;
- `refit_encoder(...)`: enc_p's blocks (measured: adds almost nothing).

Each ridge shrinks towards zero, or with `anchor=True` towards the weights the layer has (the
teacher's copy): measured on the shared teacher 0.514 vs 0.470 log-mel L1 at step 0 (zero
wins), on a tiny trained teacher 0.44 vs 1.17 at the same ridge strengths (the anchor wins;
with 100x weaker ridges both reach ~0.4). The ridge strength is scale-dependent.

Channel choice and copying are in function_init.py. Not wired into `teach` yet.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..models import Synthesizer
from ..models.decoder import LRELU_SLOPE


# ----------------------------------------------------------------------------- decoder refit
def _conv_design(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """[B, C, L] input -> [B*L_out, C*k] rows so that conv(x) = rows @ W.reshape(out, -1).T + b."""
    k, d, p, s = conv.kernel_size[0], conv.dilation[0], conv.padding[0], conv.stride[0]
    xp = F.pad(x, (p, p))
    cols = xp.unfold(2, (k - 1) * d + 1, s)[..., ::d]  # [B, C, L_out, k]
    return cols.permute(0, 2, 1, 3).reshape(-1, x.shape[1] * k)


def _ridge(a: torch.Tensor, y: torch.Tensor, lam: float, w0: torch.Tensor | None = None) -> torch.Tensor:
    """argmin ||[a 1] w - y||^2 + lam * trace-scaled ||w - w0||^2 -> w [(D+1), O] (last row: bias,
    not regularised); w0 = None shrinks towards zero."""
    a1 = torch.cat([a, torch.ones(a.shape[0], 1, dtype=a.dtype)], 1).double()
    gram = a1.T @ a1
    reg = lam * gram.diagonal().mean() * torch.eye(gram.shape[0], dtype=gram.dtype)
    reg[-1, -1] = 0
    rhs = a1.T @ y.double()
    if w0 is not None:
        rhs = rhs + reg @ w0.double()
    return torch.linalg.solve(gram + reg, rhs).float()


def _fit_conv(s_conv: nn.Conv1d, x_s: torch.Tensor, y_t: torch.Tensor, lam: float, max_rows: int,
              anchor: bool = False) -> None:
    """Refit `s_conv` so s_conv(x_s) ~ y_t; with `anchor`, the ridge pulls towards its present
    weights instead of towards zero (a strong lam then changes little rather than shrinking)."""
    a = _conv_design(x_s, s_conv)
    y = y_t.permute(0, 2, 1).reshape(-1, y_t.shape[1])
    if a.shape[0] > max_rows:
        sel = torch.randperm(a.shape[0], generator=torch.Generator().manual_seed(0))[:max_rows]
        a, y = a[sel], y[sel]
    w0 = None
    if anchor:
        b = s_conv.bias.detach() if s_conv.bias is not None else torch.zeros(s_conv.out_channels)
        w0 = torch.cat([s_conv.weight.detach().reshape(s_conv.out_channels, -1).T, b[None]], 0)
    w = _ridge(a, y, lam, w0)
    s_conv.weight.copy_(w[:-1].T.reshape(s_conv.weight.shape))
    if s_conv.bias is not None:
        s_conv.bias.copy_(w[-1])


def _stuffed_conv_of_transpose(up: nn.ConvTranspose1d) -> tuple[nn.Conv1d, int]:
    """A Conv1d on the zero-stuffed input equal to `up` (weights [in, out, k] -> flipped [out, in, k])."""
    k, u, p = up.kernel_size[0], up.stride[0], up.padding[0]
    conv = nn.Conv1d(up.in_channels, up.out_channels, k, padding=k - 1 - p, bias=True)
    conv.weight.data.copy_(up.weight.detach().flip(-1).transpose(0, 1))
    conv.bias.data.copy_(up.bias.detach())
    return conv, u


def _stuff(x: torch.Tensor, u: int) -> torch.Tensor:
    b, c, n = x.shape
    out = x.new_zeros(b, c, n * u)
    out[..., ::u] = x
    return out[..., :(n - 1) * u + 1]


def _fit_transpose(up: nn.ConvTranspose1d, x_s: torch.Tensor, y_t: torch.Tensor, lam: float, max_rows: int,
                   anchor: bool = False) -> None:
    conv, u = _stuffed_conv_of_transpose(up)
    _fit_conv(conv, _stuff(x_s, u), y_t, lam, max_rows, anchor)  # same length as the transpose's output
    up.weight.copy_(conv.weight.flip(-1).transpose(0, 1))
    up.bias.copy_(conv.bias)


@torch.no_grad()
def refit_decoder(student: Synthesizer, teacher: Synthesizer, zs: list[tuple], chosen: dict[str, torch.Tensor],
                  lam: float = 1e-3, max_rows: int = 40000, fit_post: bool = True, anchor: bool = False) -> None:
    """Sequential ridge refit of the student's decoder on (z, f0) pairs `zs` from the *teacher's*
    enc_p + flow: every conv maps the student's own inputs to the teacher's outputs at its kept
    channels. zs: [(z [1, inter, T], pitchf [1, T])], or (z, pitchf, z_student) to fit on the student's
    own latent (then conv_pre is refitted too). Research code: an NSF (f0) ResBlock1 decoder with
    the teacher's kernel sizes, dilations and number of resblocks per stage (the 4gb recipe's)."""
    td, sd = teacher.dec, student.dec
    nk_t, nk_s = td.num_kernels, sd.num_kernels
    t_cfg, s_cfg = teacher.config, student.config
    pairwise = (t_cfg.resblock == s_cfg.resblock == "1" and nk_t == nk_s
                and tuple(t_cfg.resblock_kernel_sizes) == tuple(s_cfg.resblock_kernel_sizes))
    g_t = teacher.emb_g(torch.zeros(1, dtype=torch.long)).unsqueeze(-1)
    g_s = student.emb_g(torch.zeros(1, dtype=torch.long)).unsqueeze(-1)
    z = torch.cat([a[0] for a in zs], 0)
    f0 = torch.cat([a[1] for a in zs], 0)
    z_s = torch.cat([a[2] for a in zs], 0) if len(zs[0]) > 2 else z  # the student's own latent, if given
    src = td.m_source(f0, td.upp, False).transpose(1, 2)
    idx_pre = chosen["dec.stage.-1"]
    # conv_pre + cond: z is full width; teacher output at kept channels.
    x_t = td.conv_pre(z) + td.cond(g_t)
    if z_s is not z:
        _fit_conv(sd.conv_pre, z_s, x_t[:, idx_pre] - sd.cond(g_s), lam, max_rows, anchor)
    x_s = sd.conv_pre(z_s) + sd.cond(g_s)
    shift = (x_t[:, idx_pre] - x_s).mean((0, 2))
    sd.conv_pre.bias.add_(shift)
    x_s = x_s + shift[None, :, None]
    for i in range(len(td.ups)):
        idx = chosen[f"dec.stage.{i}"]
        xin_t, xin_s = F.leaky_relu(x_t, LRELU_SLOPE), F.leaky_relu(x_s, LRELU_SLOPE)
        y_t = td.ups[i](xin_t) + td.noise_convs[i](src)
        noise_s = sd.noise_convs[i](src)
        _fit_transpose(sd.ups[i], xin_s, (y_t[:, idx] - noise_s), lam, max_rows, anchor)
        x_t, x_s = y_t, sd.ups[i](xin_s) + noise_s
        if not pairwise:  # other resblocks: each student block's last conv fitted to the teacher's stage output
            x_t, x_s = _fit_stage_blocks(td.resblocks[i * nk_t:(i + 1) * nk_t], sd.resblocks[i * nk_s:(i + 1) * nk_s],
                                         x_t, x_s, idx, lam, max_rows, anchor)
            continue
        xs_t, xs_s = 0, 0
        for j in range(nk_t):
            bt, bs = td.resblocks[i * nk_t + j], sd.resblocks[i * nk_s + j]
            h_t, h_s = x_t, x_s
            for c1t, c2t, c1s, c2s in zip(bt.convs1, bt.convs2, bs.convs1, bs.convs2):
                a_t, a_s = F.leaky_relu(h_t, LRELU_SLOPE), F.leaky_relu(h_s, LRELU_SLOPE)
                m_t = c1t(a_t)
                _fit_conv(c1s, a_s, m_t[:, idx], lam, max_rows, anchor)
                m_s = c1s(a_s)
                b_t, b_s = F.leaky_relu(m_t, LRELU_SLOPE), F.leaky_relu(m_s, LRELU_SLOPE)
                r_t = c2t(b_t)
                # the residual target: what the teacher's stream will be, minus what the student's already is
                _fit_conv(c2s, b_s, (h_t + r_t)[:, idx] - h_s, lam, max_rows, anchor)
                h_t, h_s = h_t + r_t, h_s + c2s(b_s)
            xs_t, xs_s = xs_t + h_t, xs_s + h_s
        x_t, x_s = xs_t / nk_t, xs_s / nk_s
    if fit_post:
        a_t, a_s = F.leaky_relu(x_t), F.leaky_relu(x_s)
        y_t = td.conv_post(a_t)
        conv = nn.Conv1d(sd.conv_post.in_channels, 1, sd.conv_post.kernel_size[0],
                         padding=sd.conv_post.padding[0], bias=True)
        conv.weight.copy_(sd.conv_post.weight)
        conv.bias.zero_()
        _fit_conv(conv, a_s, y_t, lam, max_rows, anchor)
        sd.conv_post.weight.copy_(conv.weight)  # conv_post has no bias: drop the fitted one (it is ~0)


def _fit_stage_blocks(t_blocks, s_blocks, x_t: torch.Tensor, x_s: torch.Tensor, idx: torch.Tensor, lam: float,
                      max_rows: int, anchor: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A stage whose resblocks do not pair with the teacher's (ResBlock2, other kernels or
    counts): the student's blocks run as they are up to their last conv, which is fitted so
    that each block's output is the teacher's stage output (the mean of its blocks) at the
    kept channels. Returns both stage outputs."""
    target = sum(b(x_t) for b in t_blocks) / len(t_blocks)
    outs = []
    for block in s_blocks:
        if hasattr(block, "convs"):  # ResBlock2: x += c(lrelu(x))
            h = x_s
            for c in block.convs[:-1]:
                h = h + c(F.leaky_relu(h, LRELU_SLOPE))
            a, last = F.leaky_relu(h, LRELU_SLOPE), block.convs[-1]
        else:  # ResBlock1: x += c2(lrelu(c1(lrelu(x))))
            h = x_s
            for c1, c2 in list(zip(block.convs1, block.convs2))[:-1]:
                h = h + c2(F.leaky_relu(c1(F.leaky_relu(h, LRELU_SLOPE)), LRELU_SLOPE))
            a, last = F.leaky_relu(block.convs1[-1](F.leaky_relu(h, LRELU_SLOPE)), LRELU_SLOPE), block.convs2[-1]
        _fit_conv(last, a, target[:, idx] - h, lam, max_rows, anchor)
        outs.append(h + last(a))
    return target, sum(outs) / len(outs)


# ----------------------------------------------------------------------------- enc_p / flow refit
def student_phone(item) -> torch.Tensor:
    """The content features the student hears for a calibration item: its own encoder's
    (`student_phone`, teach --encoder) where the item has them, else the teacher's `phone`.
    Every fit maps them to the teacher's outputs on its own features, so the student starts
    out compensating what its encoder gets wrong, as far as these layers can."""
    own = getattr(item, "student_phone", None)
    return item.phone if own is None else own


@torch.no_grad()
def refit_embedding(student: Synthesizer, cal: list, lam: float = 1e-2, max_rows: int = 40000) -> bool:
    """Refit the student's `emb_phone` so that on its own content features (`student_phone`) it
    gives what its present weights (the teacher's kept channels) give on the teacher's: the one
    layer that reads the features, fitted at any depth. The ridge pulls towards the present
    weights, so with few frames or an encoder that already agrees it changes little. Returns
    False (nothing done) when no item has features of its own, or the student has a phone_proj."""
    if not any(getattr(c, "student_phone", None) is not None for c in cal) or student.config.phone_proj_dim:
        return False
    emb = student.enc_p.emb_phone
    x = torch.cat([student_phone(c)[0] for c in cal], 0)  # [N, C]
    y = emb(torch.cat([c.phone[0] for c in cal], 0))  # [N, H]
    if x.shape[0] > max_rows:
        sel = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))[:max_rows]
        x, y = x[sel], y[sel]
    w = _ridge(x, y, lam, torch.cat([emb.weight.T, emb.bias[None]], 0))
    emb.weight.copy_(w[:-1].T)
    emb.bias.copy_(w[-1])
    return True


def _encoder_hidden(enc_p, phone, pitch, lengths):
    """TextEncoder.forward up to the input of `proj`: (hidden [B, H, T], mask)."""
    from ..models.commons import sequence_mask
    x = enc_p.emb_phone(phone)
    if pitch is not None:
        x = x + enc_p.emb_pitch(pitch)
    x = F.leaky_relu(x * math.sqrt(enc_p.hidden_channels), 0.1).transpose(1, -1)
    mask = sequence_mask(lengths, x.size(2)).unsqueeze(1).to(x.dtype)
    return enc_p.encoder(x * mask, mask), mask


@torch.no_grad()
def refit_enc_flow(student: Synthesizer, teacher: Synthesizer, cal: list, noise_seed: int = 100,
                   lam: float = 1e-3, max_rows: int = 40000, proj: bool = True, flow: bool = True,
                   anchor: bool = False) -> None:
    """Ridge refit of enc_p.proj (student's final hidden -> teacher's m_p, logs_p) and, in the flow's
    reverse order, of each coupling's `post` so the student's coupling output matches the teacher's
    (on the student's own inputs). cal: items with phone [1, T, C], lengths, pitch, pitchf (and
    student_phone: the student's own content features, `student_phone`)."""
    from ..models import NOISE_SCALE
    sid = torch.zeros(1, dtype=torch.long)
    hs, ht, masks, noises = [], [], [], []
    for i, c in enumerate(cal):
        h_s, mask = _encoder_hidden(student.enc_p, student_phone(c), c.pitch, c.lengths)
        h_t, _ = _encoder_hidden(teacher.enc_p, c.phone, c.pitch, c.lengths)
        hs.append(h_s)
        ht.append(h_t)
        masks.append(mask)
        noises.append(torch.randn(1, teacher.config.inter_channels, c.phone.shape[1],
                                  generator=torch.Generator().manual_seed(noise_seed + i)))
    h_s, h_t, mask, noise = (torch.cat(x, 0) for x in (hs, ht, masks, noises))
    stats_t = teacher.enc_p.proj(h_t) * mask
    if proj:
        _fit_conv(student.enc_p.proj, h_s, stats_t, lam, max_rows, anchor)
    stats_s = student.enc_p.proj(h_s) * mask
    inter = teacher.config.inter_channels

    def z_p(stats):
        m, logs = stats.split(inter, 1)
        return (m + torch.exp(logs) * noise * NOISE_SCALE) * mask
    x_t, x_s = z_p(stats_t), z_p(stats_s)
    if not flow:
        return
    g_t = teacher.emb_g(sid).unsqueeze(-1).expand(x_t.shape[0], -1, -1)
    g_s = student.emb_g(sid).unsqueeze(-1).expand(x_t.shape[0], -1, -1)
    t_flows, s_flows = list(reversed(teacher.flow.flows)), list(reversed(student.flow.flows))
    assert len(t_flows) == len(s_flows)
    for tf, sf in zip(t_flows, s_flows):
        if not hasattr(tf, "post"):
            x_t, x_s = tf(x_t, mask), sf(x_s, mask)
            continue
        half = tf.half_channels
        y_t = tf(x_t, mask, g=g_t, reverse=True)
        x0, x1 = x_s.split(half, 1)
        h = sf.enc(sf.pre(x0) * mask, mask, g=g_s)
        target_m = x1 - y_t[:, half:]  # x1 - m = teacher's output
        _fit_conv(sf.post, h, target_m * mask, lam, max_rows, anchor)
        x_t, x_s = y_t, sf(x_s, mask, g=g_s, reverse=True)


def _fit_norm(s_norm, u_s: torch.Tensor, target: torch.Tensor) -> None:
    """Per-channel gamma/beta so that the student's LayerNorm of u_s best matches `target` [B, C, T]."""
    n = F.layer_norm(u_s.transpose(1, -1), (u_s.size(1),), None, None, s_norm.eps).transpose(1, -1)
    n = n.transpose(0, 1).reshape(n.shape[1], -1)
    y = target.transpose(0, 1).reshape(target.shape[1], -1)
    nm, ym = n.mean(1, keepdim=True), y.mean(1, keepdim=True)
    gamma = ((n - nm) * (y - ym)).mean(1) / (n - nm).pow(2).mean(1).clamp_min(1e-8)
    s_norm.gamma.copy_(gamma)
    s_norm.beta.copy_(ym[:, 0] - gamma * nm[:, 0])


@torch.no_grad()
def refit_encoder(student: Synthesizer, teacher: Synthesizer, cal: list, chosen: dict[str, torch.Tensor],
                  lam: float = 1e-3, max_rows: int = 40000, anchor: bool = False) -> None:
    """Sequential refit of enc_p's blocks on the student's own stream: each block's conv_o and FFN
    conv_2 so the pre-norm sum matches the teacher's at the kept channels, then each LayerNorm's
    gamma/beta (per channel) so its output matches the teacher's LayerNorm output there."""
    from ..models.commons import sequence_mask
    idx = chosen["enc_p.hidden"]
    phone = torch.cat([c.phone for c in cal], 0)
    own = torch.cat([student_phone(c) for c in cal], 0)
    pitch = torch.cat([c.pitch for c in cal], 0)
    lengths = torch.cat([c.lengths for c in cal], 0)

    def embed(enc_p, phone):
        x = enc_p.emb_phone(phone) + enc_p.emb_pitch(pitch)
        return F.leaky_relu(x * math.sqrt(enc_p.hidden_channels), 0.1).transpose(1, -1)
    x_t, x_s = embed(teacher.enc_p, phone), embed(student.enc_p, own)
    mask = sequence_mask(lengths, x_t.size(2)).unsqueeze(1).to(x_t.dtype)
    attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
    te, se = teacher.enc_p.encoder, student.enc_p.encoder
    x_t, x_s = x_t * mask, x_s * mask

    def conv_o_input(attn, x):
        got = {}
        h = attn.conv_o.register_forward_pre_hook(lambda m, a: got.setdefault("x", a[0]))
        try:
            out = attn(x, attn_mask)
        finally:
            h.remove()
        return got["x"], out

    def ffn_hidden(ffn, x):
        return F.pad(torch.relu(ffn.conv_1(F.pad(x * mask, ffn.pad))) * mask, ffn.pad)

    for i in range(len(se.attn_layers)):
        ta, sa = te.attn_layers[i], se.attn_layers[i]
        u_t = x_t + ta(x_t, attn_mask)
        a_s, _ = conv_o_input(sa, x_s)
        _fit_conv(sa.conv_o, a_s, u_t[:, idx] - x_s, lam, max_rows, anchor)
        u_s = x_s + sa(x_s, attn_mask)
        x_t = te.norm_layers_1[i](u_t)
        _fit_norm(se.norm_layers_1[i], u_s, x_t[:, idx])
        x_s = se.norm_layers_1[i](u_s)
        tf, sf = te.ffn_layers[i], se.ffn_layers[i]
        u_t = x_t + tf(x_t, mask)
        h_s = ffn_hidden(sf, x_s)
        conv = nn.Conv1d(sf.conv_2.in_channels, sf.conv_2.out_channels, sf.conv_2.kernel_size[0])
        conv.weight.copy_(sf.conv_2.weight)
        conv.bias.copy_(sf.conv_2.bias)
        _fit_conv(conv, h_s, u_t[:, idx] - x_s, lam, max_rows, anchor)
        sf.conv_2.weight.copy_(conv.weight)
        sf.conv_2.bias.copy_(conv.bias)
        u_s = x_s + sf(x_s, mask)
        x_t = te.norm_layers_2[i](u_t)
        _fit_norm(se.norm_layers_2[i], u_s, x_t[:, idx])
        x_s = se.norm_layers_2[i](u_s)
