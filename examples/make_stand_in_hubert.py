"""A random-weight stand-in for RVC's `hubert_base.pt`, in fairseq's real checkpoint layout.

    python examples/make_stand_in_hubert.py               # examples/stand_in_hubert.pt (small, 768-d)
    python examples/make_stand_in_hubert.py OUT --real-size

`convert`, `compare` and `prepare` need RVC's content encoder; this file lets the quick start
and the tests run them without it. Its features mean nothing: use the real `hubert_base.pt`
for your voice.

`write_hubert(path, ...)` saves what fairseq's Trainer saves for HuBERT/ContentVec: a dict
with `args`, `cfg`, `model`, `criterion`, `optimizer_history`, `task_state` (holding a
pickled `fairseq.data.dictionary.Dictionary`), `extra_state` and `last_optimizer_state`.
The `model` keys, their order and nesting are fairseq's; sizes are parameters, so a tiny
random encoder (the default) or a real-size one (`real_size()`) can be written. The keys are
generated here from the fairseq layout, not from distill-rvc's module, so loading them
checks the key mapping.

fairseq itself is never imported: the Dictionary is a look-alike class that pickles under
fairseq's global name, registered in `sys.modules` only while the file is saved.

    from make_stand_in_hubert import write_hubert
    write_hubert(tmp_path / "hubert_base.pt", embed_dim=768, layers=2)   # feeds a v2 teacher
"""
from __future__ import annotations

import argparse
import os
import contextlib
import sys
import types
from pathlib import Path
from typing import Any, Iterator

import torch

HUBERT_CONV = [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
CONV_SPEC = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"


class Dictionary:
    """Look-alike of fairseq.data.dictionary.Dictionary (pickles under that global name)."""

    def __init__(self, n_symbols: int = 500):
        self.bos_word, self.unk_word, self.pad_word, self.eos_word = "<s>", "<unk>", "<pad>", "</s>"
        self.symbols = ["<s>", "<pad>", "</s>", "<unk>"] + [str(i) for i in range(n_symbols)]
        self.count = [1] * len(self.symbols)
        self.indices = {s: i for i, s in enumerate(self.symbols)}
        self.bos_index, self.pad_index, self.eos_index, self.unk_index = 0, 1, 2, 3
        self.nspecial = 4


Dictionary.__module__ = "fairseq.data.dictionary"
Dictionary.__qualname__ = "Dictionary"


@contextlib.contextmanager
def fairseq_globals() -> Iterator[None]:
    """Register fake `fairseq.data.dictionary` modules so pickle can name the Dictionary global."""
    names = ["fairseq", "fairseq.data", "fairseq.data.dictionary"]
    saved = {n: sys.modules.get(n) for n in names}
    mods = {n: types.ModuleType(n) for n in names}
    mods["fairseq.data.dictionary"].Dictionary = Dictionary
    sys.modules.update(mods)
    try:
        yield
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def real_size() -> dict[str, Any]:
    """The sizes of RVC's hubert_base.pt (ContentVec legacy, 94.7 M values)."""
    return dict(embed_dim=768, layers=12, heads=12, ffn_dim=3072, conv_dim=512, final_dim=256,
                pos_conv_kernel=128, pos_conv_groups=16)


def model_weights(*, embed_dim: int = 32, layers: int = 12, heads: int = 4, ffn_dim: int = 64, conv_dim: int = 16,
                  final_dim: int | None = 256, pos_conv_kernel: int = 16, pos_conv_groups: int = 4,
                  conv_layers: list[tuple[int, int, int]] | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """fairseq HuBERT `model` tensors (fp32, random, fairseq's key order and names)."""
    g = torch.Generator().manual_seed(seed)
    conv_layers = conv_layers or [(conv_dim, k, s) for _, k, s in HUBERT_CONV]

    def rnd(*shape: int, scale: float | None = None) -> torch.Tensor:
        fan_in = shape[1] * (shape[2] if len(shape) > 2 else 1) if len(shape) > 1 else 1
        return torch.randn(*shape, generator=g) * (scale if scale is not None else fan_in ** -0.5)

    def norm(dim: int) -> dict[str, torch.Tensor]:
        return {"weight": 1.0 + rnd(dim, scale=0.1), "bias": rnd(dim, scale=0.1)}

    w: dict[str, torch.Tensor] = {"mask_emb": rnd(embed_dim, scale=1.0)}
    if final_dim:
        w["label_embs_concat"] = rnd(504, final_dim, scale=1.0)
    c_in = 1
    for i, (c, k, _) in enumerate(conv_layers):
        w[f"feature_extractor.conv_layers.{i}.0.weight"] = rnd(c, c_in, k)
        if i == 0:
            for name, t in norm(c).items():
                w[f"feature_extractor.conv_layers.0.2.{name}"] = t
        c_in = c
    w["post_extract_proj.weight"] = rnd(embed_dim, c_in)
    w["post_extract_proj.bias"] = rnd(embed_dim, scale=0.02)
    w["encoder.pos_conv.0.bias"] = rnd(embed_dim, scale=0.02)
    w["encoder.pos_conv.0.weight_g"] = 0.5 + torch.rand(1, 1, pos_conv_kernel, generator=g)
    w["encoder.pos_conv.0.weight_v"] = rnd(embed_dim, embed_dim // pos_conv_groups, pos_conv_kernel)
    for n in range(layers):
        p = f"encoder.layers.{n}."
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):  # fairseq's MultiheadAttention order
            w[p + f"self_attn.{proj}.weight"] = rnd(embed_dim, embed_dim)
            w[p + f"self_attn.{proj}.bias"] = rnd(embed_dim, scale=0.02)
        for name, t in norm(embed_dim).items():
            w[p + f"self_attn_layer_norm.{name}"] = t
        w[p + "fc1.weight"], w[p + "fc1.bias"] = rnd(ffn_dim, embed_dim), rnd(ffn_dim, scale=0.02)
        w[p + "fc2.weight"], w[p + "fc2.bias"] = rnd(embed_dim, ffn_dim), rnd(embed_dim, scale=0.02)
        for name, t in norm(embed_dim).items():
            w[p + f"final_layer_norm.{name}"] = t
    for name, t in norm(embed_dim).items():
        w[f"encoder.layer_norm.{name}"] = t
    for name, t in norm(c_in).items():
        w[f"layer_norm.{name}"] = t
    if final_dim:
        w["final_proj.weight"], w["final_proj.bias"] = rnd(final_dim, embed_dim), rnd(final_dim, scale=0.02)
    return w


def hubert_checkpoint(*, style: str = "cfg", dtype: torch.dtype = torch.float16, heads: int = 4,
                      normalize: bool = False, extra: dict[str, Any] | None = None, **sizes: Any) -> dict[str, Any]:
    """The dict fairseq saves. `style` "cfg" = plain nested dicts (fairseq >= 2021, RVC's file);
    "args" = an old argparse.Namespace in `args` and no cfg."""
    model = {k: v.to(dtype) for k, v in model_weights(heads=heads, **sizes).items()}
    embed_dim = sizes.get("embed_dim", 32)
    conv_spec = CONV_SPEC if "conv_layers" not in sizes else repr(sizes["conv_layers"])
    model_cfg = {"_name": "hubert", "label_rate": 50, "extractor_mode": "default",
                 "encoder_layers": sizes.get("layers", 12), "encoder_embed_dim": embed_dim,
                 "encoder_ffn_embed_dim": sizes.get("ffn_dim", 64), "encoder_attention_heads": heads,
                 "activation_fn": "gelu", "dropout": 0.1, "attention_dropout": 0.1, "final_dim": 256,
                 "layer_norm_first": False, "conv_feature_layers": conv_spec, "conv_bias": False,
                 "logit_temp": 0.1, "conv_pos": sizes.get("pos_conv_kernel", 16),
                 "conv_pos_groups": sizes.get("pos_conv_groups", 4), "feature_grad_mult": 0.1,
                 "untie_final_proj": False, "mask_prob": 0.8}
    task_cfg = {"_name": "hubert_pretraining", "data": "/checkpoint/data/librispeech", "labels": ["km"],
                "label_dir": "/checkpoint/labels", "label_rate": 50, "sample_rate": 16000,
                "normalize": normalize, "enable_padding": False, "max_sample_size": 250000,
                "min_sample_size": 32000, "single_target": False, "random_crop": True, "pad_audio": False}
    out: dict[str, Any] = {"args": None, "cfg": None, "model": model}
    if style == "cfg":
        out["cfg"] = {"_name": None, "common": {"fp16": True, "log_interval": 200, "seed": 1337},
                      "model": model_cfg, "task": task_cfg,
                      "criterion": {"_name": "hubert", "pred_masked_weight": 1.0, "loss_weights": [10.0]},
                      "optimization": {"max_update": 400000, "lr": [0.0005]}}
    elif style == "args":
        flat = {k: v for k, v in {**task_cfg, **model_cfg}.items() if k != "_name"}
        out["args"] = argparse.Namespace(arch="hubert", task="hubert_pretraining", **flat)
    else:
        raise ValueError(style)
    out.update({
        "criterion": None,
        "optimizer_history": [{"criterion_name": "HubertCriterion", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": None}, "num_updates": 400000}],
        "task_state": {"dictionaries": [Dictionary()]},
        "extra_state": {"metrics": {}, "previous_training_time": 1234.5,
                        "train_iterator": {"epoch": 100, "iterations_in_epoch": 0, "shuffle": True}},
        "last_optimizer_state": None,
    })
    out.update(extra or {})
    return out


def write_hubert(path: str | Path, **kw: Any) -> Path:
    """Save `hubert_checkpoint(**kw)` at `path` as torch.save does in fairseq."""
    ckpt = hubert_checkpoint(**kw)
    with fairseq_globals():
        torch.save(ckpt, path)
    return Path(path)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=str(Path(__file__).with_name("stand_in_hubert.pt")))
    ap.add_argument("--real-size", action="store_true", help="RVC's sizes (94.7 M values, 190 MB), for timing")
    args = ap.parse_args()
    sizes = real_size() if args.real_size else dict(embed_dim=768, layers=2)
    path = write_hubert(args.out, **sizes)
    print(f"wrote {os.path.relpath(path)} ({path.stat().st_size / 1e6:.1f} MB, random weights: a stand-in, not a content encoder)")
