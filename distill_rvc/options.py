"""Option checks shared by the CLI and the Python API: every option is validated here, once.

Each function takes the value a user gave and returns it in the form the code needs, or raises
`DistillRVCError` with a message naming the option (the CLI prints it as one line, exit 2).
The API entry points (`convert`, `prepare`, `train`, `prune`, ...) call the same functions, so
a bad value is refused the same way from Python and from the command line.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .errors import DistillRVCError

if TYPE_CHECKING:
    import torch

DEVICES = "auto, cpu, cuda or cuda:N"
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

# convert: below this centre length each chunk is mostly its 2 x 1 s of context (a 0.01 s centre
# ran at real-time factor 62); 1 s is also the shortest chunk `ChunkSizes.for_chunk` accepts.
MIN_CHUNK_SECONDS = 1.0


def resolve_device(device: "str | torch.device | None", option: str = "--device") -> "torch.device":
    """"auto" (or None) -> cuda when torch sees a GPU, else cpu; cpu, cuda, cuda:N are checked.

    The one device check of distill-rvc: teach, prune, prepare, convert and bench call it.
    """
    import torch

    if isinstance(device, torch.device):
        text = str(device)
    else:
        text = "auto" if device is None else str(device).strip().lower()
    if not _DEVICE.match(text):
        raise DistillRVCError(f"{option} {str(device)!r}: expected {DEVICES}")
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(text)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DistillRVCError(f"{option} {text}: torch sees no CUDA GPU here; use {option} cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DistillRVCError(f"{option} {text}: this machine has {torch.cuda.device_count()} CUDA GPU(s) "
                                  f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    return dev


def check_threads(threads: int | None, option: str = "--threads") -> int | None:
    """CPU threads: a positive count, or 0 / None for all cores (returned as None)."""
    if threads is None or threads == 0:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise DistillRVCError(f"{option} {threads}: expected a positive number of threads (0 = all cores)")
    return threads


def check_chunk_seconds(seconds: float | None, option: str = "--chunk-seconds") -> float | None:
    """convert's chunk length: None (from the memory budget) or at least MIN_CHUNK_SECONDS."""
    if seconds is None:
        return None
    if not seconds > 0:
        raise DistillRVCError(f"{option} {seconds:g}: must be positive (leave it out to size chunks by --memory-gb)")
    if seconds < MIN_CHUNK_SECONDS:
        raise DistillRVCError(
            f"{option} {seconds:g}: at least {MIN_CHUNK_SECONDS:g} s; each chunk carries 1 s of context on both "
            "sides, so shorter chunks spend nearly all their time on context (0.01 s runs 60x slower than real time)")
    return float(seconds)


def check_tolerance(tolerance: float | None, option: str = "--tolerance") -> float | None:
    """export's parity tolerance: None (the default) or a positive number."""
    if tolerance is None:
        return None
    if not tolerance > 0:
        raise DistillRVCError(f"{option} {tolerance:g}: must be a positive number (the largest allowed "
                              "difference between the ONNX and PyTorch outputs)")
    return float(tolerance)


def _same(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwrite(output: str | Path, inputs: Iterable[str | Path | None], option: str = "--output") -> None:
    """Refuse an output file that is one of the inputs (also through a symlink, a hard link or
    another spelling of the path)."""
    output = Path(output)
    for src in inputs:
        if src is not None and _same(output, Path(src)):
            raise DistillRVCError(f"{option} {output} is the input file {src}: it would be overwritten; "
                                  "write to another file")


def refuse_output_inside(output: str | Path, folder: str | Path, option: str = "--output") -> None:
    """Refuse an output folder that is the input folder or lies inside it (the outputs would
    replace inputs, or become inputs of the next run)."""
    output, folder = Path(output), Path(folder)
    out_r, in_r = output.resolve(), folder.resolve()
    if out_r == in_r or in_r in out_r.parents or _same(output, folder):
        raise DistillRVCError(f"{option} {output} is inside the input folder {folder}: its files would replace "
                              "or mix with the inputs; write to a folder outside it")
