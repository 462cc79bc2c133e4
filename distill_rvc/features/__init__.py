"""The inputs RVC feeds its synthesizer: content features, F0 and coarse pitch."""
from .pitch import coarse_pitch, transpose_f0

__all__ = ["coarse_pitch", "transpose_f0"]
