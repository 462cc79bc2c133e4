"""How `compare` measures: the `CompareSettings` a caller (or the CLI) gives, checked once.

`check()` refuses a bad value with a `DistillRVCError` naming the option, the same way from
Python and from the command line (options.py), and returns the settings in the form the
stages use. Not here: the inputs (files, clips: run.py and clips.py) or what is measured.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..chunking import ChunkSizes
from ..errors import DistillRVCError
from ..options import check_threads

MEM_SECONDS = 10.0  # input length of the peak memory passes


@dataclass(frozen=True)
class CompareSettings:
    f0_method: str = "harvest"
    rmvpe: str | Path | None = None
    fcpe: str | Path | None = None  # for f0_method "fcpe" (None: $DISTILL_RVC_FCPE, else the torchfcpe wheel)
    transpose: float = 0.0
    sid: int = 0
    max_clips: int = 8
    max_clip_s: float = 20.0  # longer clips are cut (harvest and the teacher are slow)
    plot_clips: int = 3
    threads: int | None = 2
    runs: int = 3
    memory_gb: float = 4.0
    chunks: ChunkSizes | None = None
    ort: bool = True  # time onnxruntime too (exports each .pth to a temporary ONNX file)
    peak_rss: bool = True  # measure peak RSS in a fresh process per model
    mem_seconds: float = MEM_SECONDS  # input length of the memory passes
    extras: bool = True  # SECS and DNSMOS when installed
    student_encoder: str | Path | None = None  # the student chain's content encoder (None: the teacher's)
    student_f0: str | None = None  # the student chain's F0, "METHOD[:MODEL]" (None: the teacher's)
    chain: bool = True  # time both whole chains (encoder + F0 + synthesizer) stage by stage

    def check(self) -> "CompareSettings":
        """These settings with their values checked (threads: 0 means all cores, None)."""
        if self.student_f0 is not None:
            from ..features.pitch import F0_METHODS

            method, _, model = self.student_f0.partition(":")
            if method not in F0_METHODS:
                raise DistillRVCError(f"--student-f0 {self.student_f0}: unknown F0 method {method!r}; use one of "
                                      f"{', '.join(F0_METHODS)}, optionally with :MODEL (fcpe:f0.pt)")
            if method == "rmvpe" and not model:
                raise DistillRVCError(f"--student-f0 {self.student_f0}: rmvpe needs its model: rmvpe:path/to/rmvpe.pt")
            if model and not Path(model).is_file():
                raise DistillRVCError(f"--student-f0 {self.student_f0}: {model}: no such file")
        if self.student_encoder is not None and not Path(self.student_encoder).is_file():
            raise DistillRVCError(f"--student-encoder {self.student_encoder}: no such file")
        return dataclasses.replace(self, threads=check_threads(self.threads))
