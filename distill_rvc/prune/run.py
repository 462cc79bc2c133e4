"""`prune()`: structured pruning of a teacher or student with Torch-Pruning, then recovery distillation.

    PruneSettings                      every option of the command, frozen; `check()` refuses bad ones
    prune(model, out, settings, ...)   the command: prune, recover, save, measure -> PruneReport
    cpu_latency(models)                median CPU seconds of `infer` per model, side by side (timing.py)

The steps: load the model (and its teacher) -> the widths of each step: `ratio * i / steps` of
the original widths removed (or the ratio that meets a global --target-params / --target-macs
budget), RVC-buildable ("rvc", the default) or per layer ("free") (widths.py) -> per step: rank
channels (magnitude, or Taylor from distillation-loss gradients) and remove the lowest
(engine.py), then distil the pruned model back toward the teacher for `recover_steps`
(recovery.py) -> save (the project format with the `arch` widths, or RVC's format when the
widths are uniform) -> a report: params, MACs/s, file size, CPU latency, fidelity to the teacher.

The flow is not pruned: it costs about 1 % of the MACs and of the CPU time
(bench/bench_prune.py), so its width is left to distillation (the recipe's hidden_channels,
n_flows, flow_wn_layers), which keeps RVC's layout and numerics.

Not here: the width search (widths.py), removing channels (engine.py), the trainer glue
(recovery.py), the report and its text (report.py), the widths spec (models/arch.py), the
training loop (distill/trainer.py).
"""
from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from ..atomic import write_json
from ..backends import TorchBackend
from ..checkpoint import FORMAT_PROJECT, load_model, save_model
from ..errors import DistillRVCError
from ..memory import macs_per_second
from ..models import Synthesizer
from ..models.arch import not_rvc_because, widths_of
from ..safe_load import file_sha256
from ..timing import side_by_side, synthetic_inputs, timed, torch_threads
from .engine import IMPORTANCES, prune_synthesizer
from .recovery import FIDELITY, Recovery
from .report import PruneReport
from .widths import PARTS, WIDTH_MODES, count_params, planned_widths, ratio_for_target

log = logging.getLogger(__name__)

DEFAULT_RATIO = 0.3  # without --ratio or a target


# ------------------------------------------------------------------------ the settings
@dataclass(frozen=True)
class PruneSettings:
    """Every option of `prune` (the CLI's names in brackets); the files are `prune`'s arguments.

    `ratio`: share of channels removed from every pruned layer (None: 0.3), reached in `steps`
    equal steps, each followed by `recover_steps` of distillation. `target_params` /
    `target_macs` (MAC per second of audio) replace `ratio` by the smallest ratio that meets
    them. `widths_mode` "rvc" keeps the widths RVC-buildable, "free" rounds every layer on its
    own (to `round_to`). `recipe` (name, path or Recipe) sets recovery's training and losses
    (None: the model's own teach recipe, else "4gb"); `batch_size` overrides its batch.
    `latency_seconds=0` skips the CPU timing. `half`: write fp16 weights.
    """

    ratio: float | None = None
    steps: int = 1
    importance: str = "magnitude"  # or "taylor" (needs data)
    round_to: int = 8
    widths_mode: str = "rvc"  # [--widths]
    parts: tuple[str, ...] = PARTS
    target_params: int | None = None
    target_macs: float | None = None
    recover_steps: int = 0
    recipe: Any = None  # str | Path | distill.recipes.Recipe | None
    batch_size: int | None = None
    device: str | None = None  # where recovery runs: auto, cpu, cuda, cuda:N
    latency_seconds: float = 2.0
    latency_runs: int = 3
    threads: int | None = None  # for the latency timing
    half: bool = True

    def check(self) -> None:
        """Raise DistillRVCError, naming the option, for the first bad or conflicting one."""
        if self.ratio is not None and not 0 <= self.ratio < 1:
            raise DistillRVCError(f"--ratio must be in [0, 1) (the share of channels removed), not {self.ratio}")
        if self.ratio is not None and self.target is not None:
            raise DistillRVCError("give either --ratio or a target (--target-params / --target-macs), not both")
        if self.target_params is not None and self.target_macs is not None:
            raise DistillRVCError("give one target: --target-params or --target-macs")
        for name, value in (("--target-params", self.target_params), ("--target-macs", self.target_macs)):
            if value is not None and value <= 0:
                raise DistillRVCError(f"{name} must be positive")
        if self.steps < 1:
            raise DistillRVCError("--steps must be at least 1")
        if self.recover_steps < 0:
            raise DistillRVCError("--recover-steps must be 0 or more")
        if self.batch_size is not None and self.batch_size < 1:
            raise DistillRVCError("--batch-size must be at least 1")
        if self.importance not in IMPORTANCES:
            raise DistillRVCError(f"unknown importance {self.importance!r} (expected {' or '.join(IMPORTANCES)})")
        if self.round_to < 1:
            raise DistillRVCError("--round-to must be at least 1")
        if not self.parts or set(self.parts) - set(PARTS):
            raise DistillRVCError(f"parts to prune must be among {', '.join(PARTS)}")
        if self.widths_mode not in WIDTH_MODES:
            raise DistillRVCError(f"--widths must be {' or '.join(WIDTH_MODES)}, not {self.widths_mode!r}")
        if self.device is not None:  # checked even when nothing will run there: a typo is still a typo
            from ..options import resolve_device

            resolve_device(self.device)

    @property
    def target(self) -> dict[str, float] | None:
        """The budget as the report names it, or None (prune by `ratio`)."""
        if self.target_params is not None:
            return {"params": self.target_params}
        if self.target_macs is not None:
            return {"macs_per_s": self.target_macs}
        return None

    @property
    def needs_data(self) -> bool:
        return self.recover_steps > 0 or self.importance == "taylor"


# ------------------------------------------------------------------------ the command
def prune(model: str | Path, out: str | Path, settings: PruneSettings | None = None, *,
          teacher: str | Path | None = None, data: Any = None, run_dir: str | Path | None = None,
          report: str | Path | None = None, progress: bool = True) -> PruneReport:
    """Prune the model file `model` into `out` (a .pth; the project format is written as
    .drvc.pt beside it); see the module docstring for the steps.

    `teacher`: the model file recovery distils toward (default: the unpruned model itself);
    `data`: a prepared dataset cache (a folder) or an open `Dataset`, which recovery and Taylor
    importance train on and fidelity is measured on. `run_dir`: recovery's logs and checkpoints
    (default runs/prune-<out>-<time>). Returns the report, also written as JSON to `report`
    when given.
    """
    from tqdm.auto import tqdm

    s = settings if settings is not None else PruneSettings()
    model_path, out = Path(model), Path(out)
    s.check()
    if out.suffix.lower() != ".pth":
        raise DistillRVCError(f"--out must name a .pth file, not {out.name!r}")
    student = load_model(model_path)
    target_model = load_model(teacher) if teacher else None
    if target_model is not None:
        _check_pair(student, target_model)
    if isinstance(data, (str, os.PathLike)):
        from ..data.dataset import Dataset

        data = Dataset(data)
    if s.needs_data and data is None:
        raise DistillRVCError("recovery distillation and Taylor importance need data: pass --data (a prepared "
                              "dataset cache)")
    recovery = None if data is None else Recovery.build(student, target_model, data, s.recipe, s.recover_steps,
                                                        s.batch_size, s.device)

    base = widths_of(student)
    ratio = s.ratio
    if s.target is not None:
        ratio = ratio_for_target(student.config, base, round_to=s.round_to, parts=s.parts, params=s.target_params,
                                 macs=s.target_macs, mode=s.widths_mode)
        log.info("ratio %.4f meets the target %s", ratio, s.target)
    ratio = DEFAULT_RATIO if ratio is None else ratio
    original = copy.deepcopy(student)
    before = _describe(student) | {"file_bytes": model_path.stat().st_size}
    unpruned = recovery.fidelity(student) if recovery else None
    if run_dir is None and s.recover_steps:
        run_dir = Path("runs") / f"prune-{out.stem}-{datetime.now():%Y%m%d-%H%M%S}"

    schedule = []
    with tqdm(total=s.steps, desc="prune", unit="step", disable=not progress, dynamic_ncols=True) as bar:
        for i in range(1, s.steps + 1):
            step_ratio = ratio * i / s.steps
            widths = planned_widths(base, step_ratio, s.round_to, s.parts, s.widths_mode)
            grads = recovery.gradients(i) if (recovery and s.importance == "taylor") else None
            used = prune_synthesizer(student, widths, s.importance, grads)
            row: dict[str, Any] = {"step": i, "ratio": round(step_ratio, 6), "params": count_params(student)["total"],
                                   "importance": used, "mel_l1_pruned": None, "mel_l1_recovered": None}
            if recovery:
                row["mel_l1_pruned"] = recovery.fidelity(student)
            if s.recover_steps:
                row["mel_l1_recovered"] = recovery.recover(student, Path(run_dir) / f"step_{i}", progress)
            schedule.append(row)
            bar.update(1)
            bar.set_postfix(params=f"{row['params']:,}")

    student = student.cpu().float().eval()
    carried = {k: v for k, v in (student.checkpoint.metadata if student.checkpoint else {}).items()
               if k not in ("info", "fidelity", "params", "steps", "not_rvc_because", "prune")}
    final = schedule[-1]["mel_l1_recovered"] if s.recover_steps else schedule[-1]["mel_l1_pruned"]
    fidelity = {"metric": FIDELITY, "unpruned": unpruned, "final": final}
    recorded = {"ratio": ratio, "steps": s.steps, "importance": s.importance, "round_to": s.round_to,
                "widths": s.widths_mode, "parts": list(s.parts),
                "recover_steps": s.recover_steps, "target": s.target,
                "recipe": recovery.recipe.name if recovery else None,
                "model_sha256": file_sha256(model_path), "teacher_sha256": file_sha256(teacher) if teacher else None}
    metadata = {**carried, "info": f"distill-rvc pruned ({ratio:.2f}) from {model_path.name}",
                "prune": recorded, "fidelity": fidelity, "params": count_params(student)}
    saved = save_model(student, out, metadata=metadata, half=s.half)  # project format: .drvc.pt, not .pth
    fmt, written = saved.format, saved.path
    why = (not_rvc_because(student.config, student.arch) or student.config.fits_rvc()[1]
           if fmt == FORMAT_PROJECT else None)
    after = _describe(student) | {"file_bytes": written.stat().st_size}
    latency: dict[str, Any] = {}
    if s.latency_seconds > 0:
        times = cpu_latency({"before": original, "after": student}, s.latency_seconds, s.latency_runs, s.threads)
        before["latency_s"], after["latency_s"] = times["before"], times["after"]
        latency = {"seconds_of_audio": s.latency_seconds, "threads": s.threads or torch.get_num_threads(),
                   "runs": s.latency_runs}
    result = PruneReport(
        model=str(model_path), teacher=str(teacher) if teacher else None, out=str(out), format=fmt, ratio=ratio,
        steps=s.steps, importance=s.importance, round_to=s.round_to, widths_mode=s.widths_mode, parts=list(s.parts),
        target=s.target, recover_steps=s.recover_steps, recipe=recorded["recipe"], before=before, after=after,
        widths={"before": base, "after": widths_of(student)}, fidelity=fidelity, schedule=schedule,
        latency=latency, run_dir=str(run_dir) if run_dir else None, written=str(written), not_rvc_because=why)
    if report is not None:
        write_json(report, result.to_dict())
    return result


def _check_pair(model: Synthesizer, teacher: Synthesizer) -> None:
    m, t = model.config, teacher.config
    if (m.sr, m.hop_length, m.f0, m.phone_dim) != (t.sr, t.hop_length, t.f0, t.phone_dim):
        raise DistillRVCError(
            f"the model ({m.version}, {m.sr} Hz, {'f0' if m.f0 else 'no f0'}) and the teacher ({t.version}, {t.sr} Hz, "
            f"{'f0' if t.f0 else 'no f0'}) do not share an interface: pass the teacher the model was taught from")


# --------------------------------------------------------------------------- measures
def cpu_latency(models: dict[str, Synthesizer], seconds: float = 2.0, runs: int = 3,
                threads: int | None = None, seed: int = 0) -> dict[str, float]:
    """Median seconds of `infer` per model on the same `seconds` of synthetic input, on the CPU,
    timed side by side as bench and compare time (timing.py). Models must share the interface."""
    backends = [TorchBackend(m, "cpu", deterministic=True) for m in models.values()]
    x = synthetic_inputs(*backends[0].info.widths, seconds, seed=seed)
    jobs = [timed(lambda b=b: b.run(x["phone"], x["pitch"], x["pitchf"], 0, x["noise"])) for b in backends]
    with torch_threads(threads):
        medians = side_by_side(jobs, max(runs, 1), warmup=1)
    return dict(zip(models, medians))


def _describe(model: Synthesizer) -> dict[str, Any]:
    return {"params": count_params(model), "macs_per_s": macs_per_second(model.config, arch=widths_of(model))}
