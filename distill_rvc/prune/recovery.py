"""The glue between pruning and the distillation trainer: recovery, Taylor gradients, fidelity.

    Recovery.build(model, teacher, dataset, ...)   the teacher, data, recipe and device, checked
    Recovery.recover(model, run_dir)               `recover_steps` of the teach trainer, same losses
    Recovery.gradients(step)                       fills `.grad` for Taylor importance (no weight moves)
    Recovery.fidelity(model)                       held-out log-mel L1 to the teacher (FIDELITY)
    recovery_recipe(model, recipe)                 the recipe recovery trains with

Every piece is the trainer's own (distill/trainer.py, distill/batches.py): a Session at learning
rate 0 gives the gradients, `evaluate` the fidelity on the segments training holds out, `train`
the recovery, so a pruned model is pulled back toward its teacher exactly as `teach` pulls a
student.

Not here: the training loop and the losses (distill/), when recovery runs (run.py).
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import DistillRVCError
from ..models import Synthesizer
from ..models.arch import widths_of
from ..options import resolve_device

log = logging.getLogger(__name__)

DEFAULT_RECIPE = "4gb"  # recovery settings for models that were not taught by distill-rvc (teachers)
FIDELITY = "held-out log-mel L1 vs the teacher (lower is closer)"


@dataclass
class Recovery:
    """What recovery distillation, Taylor gradients and fidelity share: teacher, data, settings."""

    teacher: Synthesizer
    dataset: Any
    recipe: Any  # distill.recipes.Recipe
    device: torch.device

    @classmethod
    def build(cls, model: Synthesizer, teacher: Synthesizer | None, dataset: Any, recipe=None,
              recover_steps: int = 0, batch_size: int | None = None, device: str | None = None) -> "Recovery":
        """Recovery toward `teacher` (None: an unpruned copy of `model` itself) on `dataset`, with
        `recipe`'s train and loss settings (`recovery_recipe`) for `recover_steps` per step;
        `batch_size` overrides the recipe's batch, `device` is checked by `resolve_device`."""
        dim = getattr(dataset, "feature_dim", model.config.phone_dim)
        if dim != model.config.phone_dim:
            raise DistillRVCError(f"the dataset has {dim}-d content features but the model takes "
                                  f"{model.config.phone_dim}-d: prepare it with the {model.config.version} encoder")
        rec = recovery_recipe(model, recipe)
        n = max(recover_steps, 1)
        train_changes = {"steps": n, "warmup_steps": min(rec.train.warmup_steps, recover_steps // 10),
                         "eval_every": n, "checkpoint_every": n, "keep_checkpoints": 1}
        if batch_size:
            train_changes.update(batch_size=batch_size, accumulation=1)
        rec = rec.replace(train=train_changes)
        dev = resolve_device(device)  # auto, cpu, cuda, cuda:N; anything else is one line (options.py)
        return cls(teacher if teacher is not None else copy.deepcopy(model), dataset, rec, dev)

    def session(self, model: Synthesizer, lr: float | None = None):
        from ..distill.trainer import Session, choose_precision

        train = dataclasses.replace(self.recipe.train, grad_checkpointing=False,
                                    **({"lr": lr, "warmup_steps": 0} if lr is not None else {}))
        # An untrained discriminator and fresh feature projections only add noise to a
        # measurement: Taylor scores and fidelity use the output terms.
        loss = dataclasses.replace(self.recipe.loss, adversarial=0.0, features=0.0)
        precision = choose_precision(train.precision if self.device.type == "cuda" else "fp32", self.device)
        return Session(model, self.teacher, train, loss, self.device, precision)

    def recover(self, model: Synthesizer, run_dir: Path, progress: bool = False) -> float:
        """Distil `model` toward the teacher with the teach trainer (logs and checkpoints in
        `run_dir`); returns its held-out log-mel L1 after."""
        from ..distill.trainer import train

        result = train(model, self.teacher, self.dataset, self.recipe.train, self.recipe.loss, run_dir,
                       device=self.device, progress=progress, fingerprint={"arch": widths_of(model)})
        return result.fidelity["mel_l1"]

    def fidelity(self, model: Synthesizer) -> float:
        """Held-out log-mel L1 to the teacher, on the segments the trainer holds out."""
        from ..distill.batches import eval_items, split_eval
        from ..distill.evaluate import evaluate

        cfg = self.recipe.train
        train_idx, held = split_eval(self.dataset, cfg.eval_items, cfg.seed, cfg.segment_frames)
        held = held or train_idx[:cfg.eval_items]
        items = eval_items(self.dataset, held, cfg.eval_frames, self.teacher.config.f0)
        value, _ = evaluate(self.session(model), items, cfg.seed)
        model.eval()
        return value

    def gradients(self, step: int) -> Callable[[Synthesizer], None]:
        """Fills `.grad` with the distillation loss gradient over one batch (its micro-batches
        accumulate), without moving any weight: the trainer's own step, at learning rate 0."""
        from ..distill.batches import Batches, split_eval

        def fill(model: Synthesizer) -> None:
            session = self.session(model, lr=0.0)
            cfg = session.train_cfg
            train_idx, _ = split_eval(self.dataset, cfg.eval_items, cfg.seed, cfg.segment_frames)
            t = self.teacher.config
            batches = Batches(self.dataset, train_idx, cfg, t.inter_channels, t.hop_length, t.f0)
            session.step(batches.draw(1_000_000 + step), 1, max(cfg.batch_size // cfg.accumulation, 1))
            model.eval()

        return fill


def recovery_recipe(model: Synthesizer, recipe=None):
    """The recipe whose train and loss settings recovery uses: `recipe` (name, path or Recipe),
    else the one the model was taught with (its metadata), else the shipped default."""
    from ..distill.recipes import Recipe, load_recipe

    if isinstance(recipe, Recipe):
        return recipe
    if recipe:
        return load_recipe(recipe)
    ckpt = model.checkpoint
    spec = ckpt.metadata.get("recipe_spec") if ckpt is not None else None
    if isinstance(spec, dict):
        try:
            return Recipe.from_dict(spec, source=f"{ckpt.path} (its teach recipe)")
        except DistillRVCError as e:
            log.warning("ignoring the model's stored recipe (%s); using %s", e, DEFAULT_RECIPE)
    return load_recipe(DEFAULT_RECIPE)
