"""`distill-rvc prune`: structured pruning of a teacher or student, then recovery distillation.

    run.py        the command: PruneSettings (every option) and prune(model, out, settings, ...)
    widths.py     the width search: the widths a ratio keeps (RVC-buildable or per layer), budgets
    engine.py     prune_synthesizer: Torch-Pruning of a Synthesizer down to given widths
    recovery.py   the glue to the distillation trainer: recovery, Taylor gradients, fidelity
    report.py     PruneReport and format_prune, the lines the command prints

From Python, `prune(...)` is the whole command and `prune_synthesizer(model, widths)` prunes
an in-memory model. Not here: the widths spec and rebuilding pruned models (models/arch.py,
checkpoint.py), the training loop (distill/trainer.py).
"""
from .engine import prune_synthesizer
from .report import PruneReport, format_prune
from .run import PruneSettings, prune

__all__ = ["PruneReport", "PruneSettings", "format_prune", "prune", "prune_synthesizer"]
