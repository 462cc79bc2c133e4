"""`enc_p`, the prior encoder: content features (+ coarse pitch) -> (m_p, logs_p).

A post-norm transformer with VITS's relative-position attention (window 10, tables shared
by the heads), 1x1-conv projections and a conv FFN, exactly as RVC's `TextEncoder256/768`
(rvc-format.md §1.3). Parameter names match RVC's state-dict keys.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .commons import sequence_mask


class LayerNorm(nn.Module):
    """LayerNorm over the channel axis of a [B, C, T] tensor (RVC's `gamma`/`beta` names)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, T] -> [B, C, T]"""
        x = F.layer_norm(x.transpose(1, -1), (x.size(1),), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class MultiHeadAttention(nn.Module):
    """Self-attention with relative position embeddings inside a +-window band.

    Scores get q_i . emb_rel_k[j - i + w] for |j - i| <= w, and outputs get
    sum_j p_ij emb_rel_v[j - i + w]. This is the quantity VITS computes with its
    pad-and-reshape trick, written as a gather over the band.
    """

    def __init__(self, channels: int, n_heads: int, window_size: int = 10):
        super().__init__()
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        rel_stddev = self.k_channels**-0.5
        self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * rel_stddev)
        self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * rel_stddev)
        nn.init.xavier_uniform_(self.conv_q.weight)
        nn.init.xavier_uniform_(self.conv_k.weight)
        nn.init.xavier_uniform_(self.conv_v.weight)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, T], attn_mask [B, 1, T, T] -> [B, C, T]"""
        b, c, t = x.shape
        h, d, w = self.n_heads, self.k_channels, self.window_size

        def heads(y: torch.Tensor) -> torch.Tensor:  # [B, C, T] -> [B, H, T, d]
            return y.view(b, h, d, t).transpose(2, 3)

        q = heads(self.conv_q(x)) / math.sqrt(d)
        k, v = heads(self.conv_k(x)), heads(self.conv_v(x))

        # Band geometry: rel[i, j] = j - i + w, valid where |j - i| <= w.
        pos = torch.arange(t, device=x.device)
        rel = pos.unsqueeze(0) - pos.unsqueeze(1) + w  # [T, T]
        band = (rel >= 0) & (rel <= 2 * w)
        rel_idx = rel.clamp(0, 2 * w)

        scores = q @ k.transpose(-2, -1)  # [B, H, T, T]
        rel_logits = q @ self.emb_rel_k.transpose(-2, -1)  # [B, H, T, 2w+1]
        scores = scores + torch.gather(rel_logits, -1, rel_idx.expand(b, h, t, t)) * band
        scores = scores.masked_fill(attn_mask == 0, -1e4)
        p = F.softmax(scores, dim=-1)

        out = p @ v
        # p restricted to the band, indexed by relative offset: [B, H, T, 2w+1].
        offs = torch.arange(2 * w + 1, device=x.device) - w
        col = pos.unsqueeze(1) + offs.unsqueeze(0)  # [T, 2w+1] absolute column of each offset
        valid = (col >= 0) & (col < t)
        p_rel = torch.gather(p, -1, col.clamp(0, t - 1).expand(b, h, t, 2 * w + 1)) * valid
        out = out + p_rel @ self.emb_rel_v
        return self.conv_o(out.transpose(2, 3).reshape(b, c, t))


class FFN(nn.Module):
    """Conv1d(k) -> ReLU -> Conv1d(k) with 'same' padding, masked before each conv."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int):
        super().__init__()
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """[B, C, T], [B, 1, T] -> [B, C, T]"""
        x = torch.relu(self.conv_1(F.pad(x * x_mask, self.pad)))
        return self.conv_2(F.pad(x * x_mask, self.pad)) * x_mask


class Encoder(nn.Module):
    """n post-norm blocks: x = LN(x + attn(x)); x = LN(x + ffn(x))."""

    def __init__(self, channels: int, filter_channels: int, n_heads: int, n_layers: int, kernel_size: int,
                 window_size: int = 10):
        super().__init__()
        self.attn_layers = nn.ModuleList(MultiHeadAttention(channels, n_heads, window_size) for _ in range(n_layers))
        self.norm_layers_1 = nn.ModuleList(LayerNorm(channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(FFN(channels, filter_channels, kernel_size) for _ in range(n_layers))
        self.norm_layers_2 = nn.ModuleList(LayerNorm(channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """[B, C, T], [B, 1, T] -> [B, C, T]"""
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        x = x * x_mask
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2):
            x = norm1(x + attn(x, attn_mask))
            x = norm2(x + ffn(x, x_mask))
        return x * x_mask


class TextEncoder(nn.Module):
    """Content features [B, T, phone_dim] (+ coarse pitch [B, T]) -> m_p, logs_p [B, inter, T].

    `phone_proj` (students only) maps the full content width down before `emb_phone`; it is
    folded into `emb_phone` when a student is saved in RVC's format.
    """

    def __init__(self, out_channels: int, hidden_channels: int, filter_channels: int, n_heads: int,
                 n_layers: int, kernel_size: int, phone_dim: int, f0: bool = True, phone_proj_dim: int = 0,
                 window_size: int = 10):
        super().__init__()
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        if phone_proj_dim:
            self.phone_proj = nn.Linear(phone_dim, phone_proj_dim)
        self.emb_phone = nn.Linear(phone_proj_dim or phone_dim, hidden_channels)
        if f0:
            self.emb_pitch = nn.Embedding(256, hidden_channels)
        self.encoder = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, window_size)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, phone: torch.Tensor, pitch: torch.Tensor | None, lengths: torch.Tensor):
        """phone [B, T, C], pitch [B, T] int | None, lengths [B] -> (m_p, logs_p [B, inter, T], mask [B, 1, T])"""
        if hasattr(self, "phone_proj"):
            phone = self.phone_proj(phone)
        x = self.emb_phone(phone)
        if pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = F.leaky_relu(x * math.sqrt(self.hidden_channels), 0.1).transpose(1, -1)  # [B, H, T]
        x_mask = sequence_mask(lengths, x.size(2)).unsqueeze(1).to(x.dtype)
        x = self.encoder(x * x_mask, x_mask)
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return m, logs, x_mask
