"""The synthesizer and its parts (RVC's network, one configurable implementation)."""
from .synthesizer import NOISE_SCALE, Synthesizer, SynthOutput

__all__ = ["NOISE_SCALE", "Synthesizer", "SynthOutput"]
