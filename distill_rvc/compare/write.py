"""The report folder: report.json, PNG plots, report.md and tensorboard/, each written whole.

    write(result, outputs, comparisons) -> the files written

Every file goes through atomic.py (a temporary beside it, then os.replace); tensorboard/ is
written into a temporary folder that replaces the old one at the end. Not here: the text of
report.md (markdown.py) or the plots' drawing (figures.py).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import metrics
from ..atomic import _umask, atomic_write, make_folder, write_json, write_text
from ..errors import DistillRVCError
from .figures import f0_figure, mel_figure, speed_size_figure
from .markdown import format_markdown
from .result import ROLES, CompareResult

Figure = tuple[str, Any, Path]  # TensorBoard tag, matplotlib figure, PNG file


def write(result: CompareResult, outputs: dict[str, list[np.ndarray]],
          comparisons: list[metrics.ClipComparison]) -> list[Path]:
    """`outputs`: role -> each clip's output [N]; `comparisons`: per clip, for the F0 plots
    (empty when fidelity was not measured)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    out = result.out
    make_folder(out)
    files = [write_json(out / "report.json", result.to_dict())]
    figures: list[Figure] = []
    for i, name in enumerate(result.clips[: result.settings.plot_clips]):
        fig = mel_figure(plt, name, outputs["teacher"][i], outputs["student"][i], result.sr)
        figures.append((f"mel/{i}", fig, out / f"mel_{i}_{_slug(name)}.png"))
        if comparisons:
            fig = f0_figure(plt, name, comparisons[i], result.settings.f0_method)
            figures.append((f"f0/{i}", fig, out / f"f0_{i}_{_slug(name)}.png"))
    figures.append(("speed_size", speed_size_figure(plt, result), out / "speed_size.png"))
    for _, fig, path in figures:
        files.append(atomic_write(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=100)))
    md = format_markdown(result, [p.name for _, _, p in figures])
    files.append(write_text(out / "report.md", md))
    files.append(_tensorboard(result, outputs, figures, md))
    for _, fig, _ in figures:
        plt.close(fig)
    return files


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)[:40]


def _tensorboard(result: CompareResult, outputs: dict[str, list[np.ndarray]], figures: list[Figure],
                 md: str) -> Path:
    """TensorBoard events in out/tensorboard: the clips' audio side by side, the plots, the report.
    Written into a temporary folder that replaces the old one at the end, so it appears whole."""
    from torch.utils.tensorboard import SummaryWriter

    final = result.out / "tensorboard"
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".tensorboard.", dir=result.out))
    except OSError as e:
        raise DistillRVCError(f"cannot write {final}: {e.strerror or e}") from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; the folder follows the umask like any other
        writer = SummaryWriter(str(tmp))
        for i, name in enumerate(result.clips):
            for role in ROLES:
                audio = np.clip(outputs[role][i], -1.0, 1.0)
                writer.add_audio(f"clip_{i}/{role}", torch.from_numpy(audio)[None], 0, result.sr)
            writer.add_text(f"clip_{i}/name", name, 0)
        for tag, fig, _ in figures:
            writer.add_figure(tag, fig, 0, close=False)
        writer.add_text("report", md, 0)
        writer.add_text("verdict", result.verdict, 0)
        writer.close()
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DistillRVCError(f"cannot write {final}: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
