"""`compare`: a student beside its teacher on size, speed, memory and fidelity, with a verdict.

    run.py        compare(teacher, student, audio, hubert, out, settings) -> CompareResult: the stages in order
    settings.py   CompareSettings: how to measure, checked once
    pair.py       the two models opened as backends, checked to take the same inputs
    clips.py      the clips loaded, their features computed once, rendered by each model
    fidelity.py   the student's output against the teacher's (metrics.py), pooled and per clip
    speed.py      real-time factors on torch CPU, onnxruntime CPU (an ONNX export per model), the GPU
    cost.py       MACs per second of audio, peak memory (memory.py's fresh-process RSS; the GPU's)
    whole_chain.py  both whole chains (encoder + F0 + synthesizer) timed stage by stage (chain.py)
    targets.py    TARGETS, the verdict line and the recipe ladder read off the shipped recipes
    result.py     CompareResult (to_dict() is report.json) and format_compare, what the CLI prints
    markdown.py   report.md's text
    figures.py    the plots
    write.py      the report folder: report.json, PNGs, report.md, tensorboard/

Not here: the metric definitions (metrics.py), timing and memory primitives (timing.py,
memory.py), conversion of files (convert.py), training.
"""
from .result import CompareResult, format_compare
from .run import compare
from .settings import CompareSettings
from .targets import TARGETS, verdict

__all__ = ["compare", "CompareSettings", "CompareResult", "format_compare", "verdict", "TARGETS"]
