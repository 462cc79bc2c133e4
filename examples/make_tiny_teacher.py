"""Make the bundled tiny teacher `examples/tiny_teacher.pth` (fixed seed, RVC's real format).

A v2 40 kHz pitch model with RVC's interface (768-d content features, latent width 192,
hop 400, the real four upsampling stages) but narrow layers, so it is a few hundred KB.
Its weights are random, drawn with a fixed seed. RVC zero-initialises the flow's `post`
layers and draws the decoder's convs from N(0, 0.01), which a trained model has long left;
here the flow gets small random `post` weights, and the decoder gets no biases (they sum to a
DC offset in so narrow a net), 8x its init scale and a DC-free `conv_post`, so the output is a
zero-mean signal around 0.05 RMS that depends on every input.

    python examples/make_tiny_teacher.py            # rewrites examples/tiny_teacher.pth
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from distill_rvc import SynthConfig, Synthesizer, save_model

TINY_CONFIG = SynthConfig(
    spec_channels=1025, inter_channels=192, hidden_channels=16, filter_channels=32, n_heads=2, n_layers=2,
    kernel_size=3, resblock="1", resblock_kernel_sizes=(3, 7, 11), resblock_dilation_sizes=((1, 3, 5),) * 3,
    upsample_rates=(10, 10, 2, 2), upsample_initial_channel=32, upsample_kernel_sizes=(16, 16, 4, 4),
    spk_embed_dim=109, gin_channels=16, sr=40000, version="v2", f0=True, phone_dim=768,
)


def make_tiny_teacher(seed: int = 1234, config: SynthConfig = TINY_CONFIG) -> Synthesizer:
    """The tiny teacher (or, with another `config`, a model of that shape with the same init)."""
    torch.manual_seed(seed)
    model = Synthesizer(config)
    with torch.no_grad():
        for layer in model.flow.flows[::2]:
            layer.post.weight.normal_(0.0, 0.05)
        for name, param in model.dec.named_parameters():
            if name.endswith("bias"):
                param.zero_()
        for conv in model.dec.modules():
            if isinstance(conv, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                conv.weight.mul_(8.0)
        post = model.dec.conv_post.weight
        post -= post.mean(dim=-1, keepdim=True)
    return model.eval()


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("tiny_teacher.pth")
    model = make_tiny_teacher()
    save_model(model, out, metadata={"info": "distill-rvc tiny example teacher (random weights, seed 1234)"},
               plain_rvc=True)
    print(f"wrote {out} ({out.stat().st_size:,} bytes, {sum(p.numel() for p in model.parameters()):,} params)")
