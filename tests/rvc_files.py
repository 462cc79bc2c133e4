"""Writers of model files exactly as RVC and its forks write them (rvc-format.md §3).

Tests build small or real-size synthesizers with random weights and save them in each
real layout: inference models, G_*.pth training checkpoints, pretrained bases, Applio
files, with either weight-norm naming.
"""
from __future__ import annotations

from pathlib import Path

import torch

from distill_rvc import SynthConfig, Synthesizer
from distill_rvc.models.weight_norm import apply_weight_norm, to_rvc_keys


def rvc_state_dict(config: SynthConfig, *, with_posterior: bool = True, wn_style: str = "legacy",
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """A random synthesizer's state dict under RVC's key names.

    wn_style "legacy" gives `.weight_g/.weight_v` (RVC), "parametrizations" gives
    `.parametrizations.weight.original0/1` (torch >= 2.1's weight_norm).
    """
    torch.manual_seed(seed)
    model = apply_weight_norm(Synthesizer(config, with_posterior=with_posterior))
    with torch.no_grad():
        for layer in model.flow.flows[::2]:  # zero-initialised in RVC; give them a signal
            layer.post.weight.normal_(0, 0.02)
    sd = model.state_dict()
    return to_rvc_keys(sd) if wn_style == "legacy" else dict(sd)


def inference_dict(config: SynthConfig, *, wn_style: str = "legacy", seed: int = 0, version_key: bool = True,
                   sd: dict | None = None) -> dict:
    """What RVC's `savee`/`extract_small_model` writes: fp16 weights without enc_q."""
    sd = sd if sd is not None else rvc_state_dict(config, with_posterior=False, wn_style=wn_style, seed=seed)
    out = {
        "weight": {k: v.half() for k, v in sd.items() if "enc_q" not in k},
        "config": config.to_rvc_list(),
        "info": "20epoch",
        "sr": f"{config.sr // 1000}k",
        "f0": int(config.f0),
    }
    if version_key:
        out["version"] = config.version
    return out


def write_inference(path: Path, config: SynthConfig, **kw) -> Path:
    torch.save(inference_dict(config, **kw), path)
    return path


def write_training(path: Path, config: SynthConfig, *, seed: int = 0, wn_style: str = "legacy") -> Path:
    """RVC's `save_checkpoint`: fp32 `model` with enc_q, `iteration` (= epoch), optimizer, lr."""
    sd = rvc_state_dict(config, with_posterior=True, wn_style=wn_style, seed=seed)
    torch.save({"model": sd, "iteration": 7, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]},
                "learning_rate": 1e-4}, path)
    return path


def write_pretrained(path: Path, config: SynthConfig, *, seed: int = 0) -> Path:
    """A pretrained base (f0G40k.pth): fp16 `model` with enc_q, nothing else."""
    sd = rvc_state_dict(config, with_posterior=True, seed=seed)
    torch.save({"model": {k: v.half() for k, v in sd.items()}}, path)
    return path


def write_applio(path: Path, config: SynthConfig, *, vocoder: str = "HiFi-GAN", seed: int = 0,
                 embedder_model: str = "contentvec") -> Path:
    """Applio's extract_model: RVC's inference dict plus its extra keys."""
    out = inference_dict(config, seed=seed)
    out.update(epoch=100, step=5000, creation_date="2026-01-02T03:04:05", model_hash="ab" * 32,
               dataset_length=120, model_name="someone", author="someone", embedder_model=embedder_model,
               speakers_id=1, vocoder=vocoder)
    torch.save(out, path)
    return path
