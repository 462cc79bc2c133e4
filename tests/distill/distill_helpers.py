"""Helpers of the distillation tests."""
from __future__ import annotations

from distill_rvc.distill.recipes import load_recipe


def quick_recipe(name: str = "tiny", **train):
    """A shipped recipe shrunk to a few cheap CPU steps (small batch, short crops)."""
    settings = dict(batch_size=2, segment_frames=24, steps=6, lr=1e-3, warmup_steps=2, eval_items=2, eval_frames=60,
                    checkpoint_every=1000, eval_every=1000, log_every=1)
    settings.update(train)
    return load_recipe(name).replace(train=settings)
