"""Per-layer widths of pruned synthesizers: the `arch` spec of the project file format.

Structured pruning leaves widths that RVC's 18-item config cannot express (the decoder's
stages no longer halve, each resblock conv keeps its own inner width, each FFN its own
filter width). `arch` records exactly those widths as plain data, so a pruned model is a
state dict plus this dict, never a pickled module:

    {"dec": {"conv_pre": 360,                    # conv_pre / cond out = ups.0 in
             "ups": [176, 88, 48, 24],           # each stage's width (ups.i out, noise_convs.i, resblocks)
             "resblocks": [[176, 168, 176], ...]},  # inner width of convs1.j per resblock ([] for ResBlock2)
     "enc_p": {"ffn": [536, 536, ...]}}          # FFN filter width (conv_1 out) per layer

Every other width (the latent, enc_p's hidden width, the flow, the speaker embedding,
`conv_post`'s single output) is the config's. `build_model(config, arch)` builds the
config's model and swaps in convs of these widths; the modules' forward passes read no
width, so nothing else changes. Not here: choosing widths or channels (prune/widths.py,
prune/engine.py).
"""
from __future__ import annotations

from typing import Any

from torch import nn

from ..config import SynthConfig
from ..errors import DistillRVCError

Arch = dict[str, Any]


def default_widths(config: SynthConfig) -> Arch:
    """The widths an unpruned model of `config` has, in the arch layout."""
    stages = config.stage_channels()
    nk = len(config.resblock_kernel_sizes)
    inner = [[stages[k // nk]] * len(config.resblock_dilation_sizes[k % nk]) if config.resblock == "1" else []
             for k in range(len(stages) * nk)]
    return {"dec": {"conv_pre": config.upsample_initial_channel, "ups": stages, "resblocks": inner},
            "enc_p": {"ffn": [config.filter_channels] * config.n_layers}}


def widths_of(model: nn.Module) -> Arch:
    """The widths a Synthesizer actually has, read off its modules."""
    dec = model.dec
    return {"dec": {"conv_pre": dec.conv_pre.out_channels,
                    "ups": [up.out_channels for up in dec.ups],
                    "resblocks": [[c.out_channels for c in block.convs1] if hasattr(block, "convs1") else []
                                  for block in dec.resblocks]},
            "enc_p": {"ffn": [ffn.conv_1.out_channels for ffn in model.enc_p.encoder.ffn_layers]}}


def validate_arch(config: SynthConfig, arch: Any) -> Arch:
    """`arch` as read from a file, checked against the config's layout; raises DistillRVCError."""
    def bad(msg: str):
        raise DistillRVCError(f"invalid pruned-model widths (arch): {msg}")

    def width(x: Any, where: str) -> int:
        if isinstance(x, bool) or not isinstance(x, int) or x < 1:
            bad(f"{where} must be a positive integer, not {x!r}")
        return x

    def widths(x: Any, n: int, where: str) -> list[int]:
        if not isinstance(x, list) or len(x) != n:
            bad(f"{where} must be a list of {n} widths")
        return [width(v, f"{where}[{i}]") for i, v in enumerate(x)]

    want = default_widths(config)
    if not isinstance(arch, dict) or set(arch) != {"dec", "enc_p"}:
        bad("expected the keys dec and enc_p")
    dec, enc_p = arch["dec"], arch["enc_p"]
    if not isinstance(dec, dict) or set(dec) != {"conv_pre", "ups", "resblocks"}:
        bad("dec must have the keys conv_pre, ups and resblocks")
    if not isinstance(enc_p, dict) or set(enc_p) != {"ffn"}:
        bad("enc_p must have the key ffn")
    blocks = dec["resblocks"]
    if not isinstance(blocks, list) or len(blocks) != len(want["dec"]["resblocks"]):
        bad(f"dec.resblocks must list {len(want['dec']['resblocks'])} resblocks")
    return {"dec": {"conv_pre": width(dec["conv_pre"], "dec.conv_pre"),
                    "ups": widths(dec["ups"], len(want["dec"]["ups"]), "dec.ups"),
                    "resblocks": [widths(b, len(w), f"dec.resblocks[{k}]")
                                  for k, (b, w) in enumerate(zip(blocks, want["dec"]["resblocks"]))]},
            "enc_p": {"ffn": widths(enc_p["ffn"], config.n_layers, "enc_p.ffn")}}


def apply_arch(model: nn.Module, arch: Arch) -> nn.Module:
    """Swap the convs of a freshly built Synthesizer for ones of `arch`'s widths (in place).

    The new convs are untrained; this is for building a model whose weights are loaded next.
    """
    dec, d = model.dec, arch["dec"]
    pre, ups = d["conv_pre"], d["ups"]
    dec.conv_pre = _resized(dec.conv_pre, out_channels=pre)
    if hasattr(dec, "cond"):
        dec.cond = _resized(dec.cond, out_channels=pre)
    nk = dec.num_kernels
    for i, width in enumerate(ups):
        dec.ups[i] = _resized(dec.ups[i], in_channels=([pre] + ups)[i], out_channels=width)
        if dec.nsf:
            dec.noise_convs[i] = _resized(dec.noise_convs[i], out_channels=width)
        for k in range(i * nk, (i + 1) * nk):
            block = dec.resblocks[k]
            if hasattr(block, "convs1"):
                for j, inner in enumerate(d["resblocks"][k]):
                    block.convs1[j] = _resized(block.convs1[j], in_channels=width, out_channels=inner)
                    block.convs2[j] = _resized(block.convs2[j], in_channels=inner, out_channels=width)
            else:
                for j, conv in enumerate(block.convs):
                    block.convs[j] = _resized(conv, in_channels=width, out_channels=width)
    dec.conv_post = _resized(dec.conv_post, in_channels=ups[-1])
    for ffn, width in zip(model.enc_p.encoder.ffn_layers, arch["enc_p"]["ffn"]):
        ffn.conv_1 = _resized(ffn.conv_1, out_channels=width)
        ffn.conv_2 = _resized(ffn.conv_2, in_channels=width)
    return model


def _resized(conv: nn.Module, in_channels: int | None = None, out_channels: int | None = None) -> nn.Module:
    """A conv like `conv` (kernel, stride, padding, dilation, bias, device, dtype) with other widths."""
    in_channels = conv.in_channels if in_channels is None else in_channels
    out_channels = conv.out_channels if out_channels is None else out_channels
    if (in_channels, out_channels) == (conv.in_channels, conv.out_channels):
        return conv
    kw = dict(kernel_size=conv.kernel_size, stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
              groups=conv.groups, bias=conv.bias is not None, device=conv.weight.device, dtype=conv.weight.dtype)
    if isinstance(conv, nn.ConvTranspose1d):
        kw["output_padding"] = conv.output_padding
    return type(conv)(in_channels, out_channels, **kw)


def not_rvc_because(config: SynthConfig, arch: Arch | None) -> str | None:
    """Why RVC's 18-item config cannot express these widths (None when it can): the first of
    stages that do not halve from conv_pre, an inner width unlike its stage, or unequal FFN widths."""
    if arch is None:
        return None
    pre, ups, ffn = arch["dec"]["conv_pre"], arch["dec"]["ups"], arch["enc_p"]["ffn"]
    halving = [pre // 2 ** (i + 1) for i in range(len(ups))]
    if ups != halving or min(halving) < 1:
        return (f"decoder stages {'/'.join(map(str, ups))} do not halve from conv_pre {pre} "
                f"(RVC builds {'/'.join(map(str, halving))})")
    nk = len(config.resblock_kernel_sizes)
    for k, block in enumerate(arch["dec"]["resblocks"]):
        if any(w != ups[k // nk] for w in block):
            return f"resblock {k} has inner widths {'/'.join(map(str, block))}, not its stage's {ups[k // nk]}"
    if len(set(ffn)) > 1:
        return f"enc_p FFN widths {'/'.join(map(str, ffn))} differ (RVC has one filter_channels)"
    return None


def normalize(config: SynthConfig, arch: Arch | None) -> tuple[SynthConfig, Arch | None]:
    """(config, arch) -> the same architecture with arch=None where a config can say it.

    Widths that are uniform (stages halving from conv_pre, every inner width equal to its
    stage, one FFN width) are just another `upsample_initial_channel` / `filter_channels`:
    such a model stays in RVC's own file format.
    """
    if arch is None:
        return config, None
    pre, ups, ffn = arch["dec"]["conv_pre"], arch["dec"]["ups"], arch["enc_p"]["ffn"]
    uniform = (all(w == pre // 2 ** (i + 1) for i, w in enumerate(ups)) and len(set(ffn)) == 1
               and pre // 2 ** len(ups) >= 1)
    if uniform:
        plain = config.replace(upsample_initial_channel=pre, filter_channels=ffn[0])
        if default_widths(plain) == arch:
            return plain, None
    return config, (None if default_widths(config) == arch else arch)
