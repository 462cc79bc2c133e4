"""distill-rvc: distil, prune and export slim students of RVC voice models.

Public API (every CLI command is a thin layer over these):
    load_model(path) -> Synthesizer      read any supported model file
    save_model(model, path)              write RVC's format (or the project format, as .drvc.pt)
    Synthesizer, SynthConfig             the model and its typed architecture
    DistillRVCError                      user-facing errors
"""
from .checkpoint import load_model, read_checkpoint, save_model
from .config import SynthConfig, rvc_config
from .errors import DistillRVCError
from .models import Synthesizer

__version__ = "0.1.0"
__all__ = ["DistillRVCError", "SynthConfig", "Synthesizer", "load_model", "read_checkpoint", "rvc_config",
           "save_model"]
