"""`flow`: the volume-preserving coupling flow between the prior and the decoder latent.

`ResidualCouplingBlock` = [coupling, flip] x n_flows (RVC: 4 flows, 3 WN layers, kernel 5).
Inference runs it in reverse: z = flow^-1(z_p). `WN` (WaveNet-style gated residual stack)
is shared with the posterior encoder `enc_q`. Parameter names match RVC's keys
(`flows.{0,2,4,6}.{pre,enc,post}`, `enc.{in_layers,res_skip_layers,cond_layer}`).
"""
from __future__ import annotations

import torch
from torch import nn

from .commons import same_padding


class WN(nn.Module):
    """Gated dilated conv stack conditioned on the speaker embedding g.

    Layer i: a = in_layers[i](x) + cond_layer(g)[2H*i : 2H*(i+1)];
    acts = tanh(a[:H]) * sigmoid(a[H:]); res_skip_layers[i](acts) gives the residual
    (first H channels, all but the last layer) and the skip (the rest).
    """

    def __init__(self, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin_channels: int = 0):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        if gin_channels:
            self.cond_layer = nn.Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            dilation = dilation_rate**i
            self.in_layers.append(nn.Conv1d(hidden_channels, 2 * hidden_channels, kernel_size, dilation=dilation,
                                            padding=same_padding(kernel_size, dilation)))
            out = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(nn.Conv1d(hidden_channels, out, 1))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, H, T], x_mask [B, 1, T], g [B, gin, 1] -> [B, H, T]"""
        h = self.hidden_channels
        output = torch.zeros_like(x)
        conds = self.cond_layer(g).split(2 * h, dim=1) if g is not None else [None] * self.n_layers
        for i, (in_layer, res_skip, cond) in enumerate(zip(self.in_layers, self.res_skip_layers, conds)):
            x_in = in_layer(x)
            if cond is not None:
                x_in = x_in + cond
            a, b = x_in.split(h, dim=1)
            acts = torch.tanh(a) * torch.sigmoid(b)
            res_skip_acts = res_skip(acts)
            if i < self.n_layers - 1:
                res, skip = res_skip_acts.split(h, dim=1)
                x = (x + res) * x_mask
                output = output + skip
            else:
                output = output + res_skip_acts
        return output * x_mask


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling: x1 <- x1 + post(WN(pre(x0))) (reverse: minus)."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin_channels: int = 0):
        super().__init__()
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.post = nn.Conv1d(hidden_channels, self.half_channels, 1)
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> torch.Tensor:
        """[B, C, T] -> [B, C, T]"""
        x0, x1 = torch.split(x, [self.half_channels] * 2, dim=1)
        h = self.pre(x0) * x_mask
        h = self.enc(h, x_mask, g=g)
        m = self.post(h) * x_mask
        x1 = (x1 - m) * x_mask if reverse else m + x1 * x_mask
        return torch.cat([x0, x1], dim=1)


class Flip(nn.Module):
    """Reverses the channel order so the next coupling transforms the other half."""

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return torch.flip(x, [1])


class ResidualCouplingBlock(nn.Module):
    """[coupling, flip] x n_flows; `reverse=True` maps z_p -> z for inference."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int = 5, dilation_rate: int = 1,
                 n_layers: int = 3, n_flows: int = 4, gin_channels: int = 0):
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(ResidualCouplingLayer(channels, hidden_channels, kernel_size, dilation_rate, n_layers,
                                                    gin_channels=gin_channels))
            self.flows.append(Flip())

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None,
                reverse: bool = False) -> torch.Tensor:
        """[B, C, T] -> [B, C, T]"""
        flows = reversed(self.flows) if reverse else self.flows
        for flow in flows:
            x = flow(x, x_mask, g=g, reverse=reverse)
        return x
