"""Writer of random-weight `rmvpe.pt` files in RVC's real key layout.

RVC's rmvpe.pt is the plain state dict of `E2E(4, 1, (2, 2))` (infer/lib/rmvpe.py). The keys
are generated here from that class structure (ConvBlockRes = conv.0/conv.1 BN/conv.3/conv.4
BN + shortcut; encoder/intermediate/decoder block lists; cnn; fc.0.gru, fc.1), not from
distill-rvc's module, so a strict load checks our layout. The defaults are the real sizes
(90.4 M parameters; the real file's 181 MB means it is stored as float16); pass smaller ones
for fast tests.

    from rmvpe_files import write_rmvpe
    write_rmvpe(tmp_path / "rmvpe.pt", channels=4, n_blocks=1)
"""
from __future__ import annotations

from pathlib import Path

import torch


def rmvpe_weights(*, n_blocks: int = 4, en_de_layers: int = 5, inter_layers: int = 4, channels: int = 16,
                  gru_hidden: int = 256, seed: int = 0, device: str = "cpu") -> dict[str, torch.Tensor]:
    """RMVPE state dict with random weights (`device="meta"`: shapes only, no values)."""
    gen = torch.Generator().manual_seed(seed)
    w: dict[str, torch.Tensor] = {}

    def randn(*shape: int) -> torch.Tensor:
        return torch.empty(shape, device="meta") if device == "meta" else torch.randn(*shape, generator=gen)

    def rand(*shape: int) -> torch.Tensor:
        return torch.empty(shape, device="meta") if device == "meta" else torch.rand(*shape, generator=gen)

    def conv(key: str, *shape: int, bias: bool = False) -> None:
        fan_in = shape[1] * shape[2] * shape[3]
        w[key + ".weight"] = randn(*shape) * (2.0 / fan_in) ** 0.5
        if bias:
            w[key + ".bias"] = randn(shape[0]) * 0.01

    def bn(key: str, c: int) -> None:
        w[key + ".weight"] = 1.0 + 0.1 * randn(c)
        w[key + ".bias"] = 0.1 * randn(c)
        w[key + ".running_mean"] = 0.1 * randn(c)
        w[key + ".running_var"] = 1.0 + 0.1 * rand(c)
        w[key + ".num_batches_tracked"] = torch.tensor(1000, dtype=torch.long)

    def conv_block_res(key: str, c_in: int, c_out: int) -> None:
        conv(key + ".conv.0", c_out, c_in, 3, 3)
        bn(key + ".conv.1", c_out)
        conv(key + ".conv.3", c_out, c_out, 3, 3)
        bn(key + ".conv.4", c_out)
        if c_in != c_out:
            conv(key + ".shortcut", c_out, c_in, 1, 1, bias=True)

    bn("unet.encoder.bn", 1)
    c_in, c_out = 1, channels
    for i in range(en_de_layers):  # Encoder: ResEncoderBlock(c_in, c_out), widths doubling
        for j in range(n_blocks):
            conv_block_res(f"unet.encoder.layers.{i}.conv.{j}", c_in if j == 0 else c_out, c_out)
        c_in, c_out = c_out, c_out * 2
    top = c_out  # Encoder.out_channel
    for i in range(inter_layers):  # Intermediate(top // 2, top)
        for j in range(n_blocks):
            conv_block_res(f"unet.intermediate.layers.{i}.conv.{j}", top // 2 if i == j == 0 else top, top)
    c = top
    for i in range(en_de_layers):  # Decoder: ResDecoderBlock(c, c // 2)
        o = c // 2
        w[f"unet.decoder.layers.{i}.conv1.0.weight"] = randn(c, o, 3, 3) * (2.0 / (9 * c)) ** 0.5
        bn(f"unet.decoder.layers.{i}.conv1.1", o)
        for j in range(n_blocks):
            conv_block_res(f"unet.decoder.layers.{i}.conv2.{j}", 2 * o if j == 0 else o, o)
        c = o
    conv("cnn", 3, channels, 3, 3, bias=True)
    h, n_in = gru_hidden, 3 * 128
    for suffix in ("", "_reverse"):
        w[f"fc.0.gru.weight_ih_l0{suffix}"] = randn(3 * h, n_in) * h ** -0.5
        w[f"fc.0.gru.weight_hh_l0{suffix}"] = randn(3 * h, h) * h ** -0.5
        w[f"fc.0.gru.bias_ih_l0{suffix}"] = randn(3 * h) * 0.01
        w[f"fc.0.gru.bias_hh_l0{suffix}"] = randn(3 * h) * 0.01
    w["fc.1.weight"] = randn(360, 2 * h) * (2 * h) ** -0.5
    w["fc.1.bias"] = randn(360) * 0.01 - 2.0
    return w


def write_rmvpe(path: str | Path, dtype: torch.dtype = torch.float16, **sizes) -> Path:
    """Save a random RMVPE state dict as RVC's rmvpe.pt (a plain dict of tensors)."""
    torch.save({k: v.to(dtype) if v.is_floating_point() else v for k, v in rmvpe_weights(**sizes).items()}, path)
    return Path(path)
