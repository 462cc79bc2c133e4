"""`teach-f0`: the shipped FCPE (fcpe_c_v001.pt) + speech -> f0.pt, a slim FCPE that gives the same F0.

    TeachF0Settings(...).check()          the options, refused in one line before anything loads
    teach_f0(audio, out, settings) -> TeachF0Result
    format_teach_f0(result) -> str        what `distill-rvc teach-f0` prints

    load the teacher -> the speech at 16 kHz (+ pitch-shifted copies, + synthetic sweeps),
    the teacher's salience for each clip, cached (OUT.work/targets_train, targets_held) ->
    a FCPE(FCPEConfig(hidden, layers)) student, same front end and 360 bins, its weights cut
    from the teacher's channels (teacher_init.py) or random with the head at the prior -> train
    (train.py; resumes from OUT.work/checkpoints when run again with the same --out) ->
    write f0.pt in torchfcpe's format (checkpoint.py) -> time both on 10 s of audio

The held-out files are --held's, or else the last `held_files` files of --audio (sorted).

Measured 2026-12-03 on the shared 2-core dev machine (load 4-8 from other jobs), torch 2.13
CPU, 1 thread: `teach-f0` on 330 espeak-ng clips (11 voices, -p 30..80, -s 130..175; 22 min)
+ 40 sweeps, batch 8 x 2 s crops, held out: 28 clips of two other voices (en-us+m3, en+f4,
131 s); then `python bench/bench_fcpe_student.py` on those held-out files:

    model                  params    MB   vs teacher: med c  p95 c  >50 c  V/UV    vs harvest: med c  V/UV   sweep c
    shipped FCPE (teacher) 10.83 M  43.4              0.00    0.0   0.000  1.000               6.44  0.891     1.03
    256 x 6, 600 steps      2.86 M  11.5              3.32   19.0   0.010  0.976               6.44  0.894     2.48
    128 x 6, 800 steps      0.79 M   3.2              4.36   25.2   0.017  0.966               6.87  0.899     3.09

    salience of 10 s, 1 thread: teacher 1.014 s, 256 x 6 0.366 s (2.8x faster), 128 x 6 0.150 s (6.8x)
    training: 256 x 6 1245 s (held-out 11.5 -> 3.3 c, V/UV 0.759 -> 0.976 from the teacher cut);
              128 x 6 786 s (21.3 -> 4.4 c, 0.754 -> 0.966)

So both students are as close to harvest as the teacher is (6.4-6.9 c vs 6.44 c): the error
against the teacher (3-4 c median) is below the teacher's own disagreement with harvest. A
random init (prior bias) reached 25 c after 100 steps of 256 x 6, where the teacher cut
starts at 11.5 c and is at 4.7 c after 100 steps. The default is 256 x 6 (the more accurate);
128 x 6 fits the chain's budget more easily for one more cent.
Not here: the options' parsing (cli_teach_f0.py), the loop (train.py), the file format (checkpoint.py).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..encoder.data import find_audio
from ..errors import DistillRVCError
from ..features.fcpe import FCPE, WHAT, FCPEConfig, find_fcpe, load_fcpe
from ..options import check_threads, refuse_overwrite, resolve_device
from ..safe_load import file_sha256, safe_torch_load
from ..timing import torch_threads
from .checkpoint import save_fcpe
from .data import CACHE_FORMAT, Targets, build_targets, cached_targets, file_key, load_clips, sweeps
from .teacher_init import init_from_teacher
from .train import Schedule, TrainOutcome, init_from_prior, train_student

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeachF0Settings:
    """`teach-f0`'s options."""

    fcpe: str | Path | None = None  # the teacher (else $DISTILL_RVC_FCPE, else the torchfcpe wheel's)
    hidden: int = 256
    layers: int = 6
    steps: int = 2000
    batch_size: int = 8
    crop_seconds: float = 2.0
    lr: float | None = None  # None: 1e-3 from the teacher's weights, 2e-3 from a random init
    init: str = "teacher"  # "teacher": cut from the teacher's channels (teacher_init.py); "random": the prior bias
    sweeps: int = 40  # synthetic harmonic sweeps of 4 s added to the training data
    shifts: tuple[float, ...] = ()  # semitones: a pitch-shifted copy of every training file per value
    held: str | Path | None = None  # a folder of held-out speech (else the last held_files files of --audio)
    held_files: int = 2
    eval_every: int = 100
    seed: int = 1234
    device: str | None = "cpu"
    threads: int | None = None
    progress: bool = True
    time_it: bool = True  # time teacher and student on 10 s of audio at the end (about 3 s of the teacher)
    stop_after: int | None = None  # tests: stop after this step, as a kill after a checkpoint would

    def check(self) -> Schedule:
        """Checks every option; returns the training schedule."""
        resolve_device(self.device)
        check_threads(self.threads)
        for name in ("hidden", "layers", "steps", "batch_size", "eval_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DistillRVCError(f"--{name.replace('_', '-')} {value!r}: give a whole number >= 1")
        if self.hidden % 4:
            raise DistillRVCError(f"--hidden {self.hidden}: give a multiple of 4 (FCPE's GroupNorm has 4 groups)")
        if not isinstance(self.sweeps, int) or self.sweeps < 0:
            raise DistillRVCError(f"--sweeps {self.sweeps!r}: give a whole number >= 0")
        if not all(isinstance(s, (int, float)) and math.isfinite(s) and abs(s) <= 24 for s in self.shifts):
            raise DistillRVCError(f"--shift {self.shifts!r}: give semitones between -24 and 24")
        if self.init not in ("teacher", "random"):
            raise DistillRVCError(f"--init {self.init!r}: use teacher or random")
        lr = self.lr if self.lr is not None else (1e-3 if self.init == "teacher" else 2e-3)
        for name, value in (("crop_seconds", self.crop_seconds), ("lr", lr)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise DistillRVCError(f"--{name.replace('_', '-')} {value!r}: give a number > 0")
        return Schedule(steps=self.steps, batch_size=self.batch_size,
                        crop_frames=max(1, round(self.crop_seconds * 100)),
                        lr=float(lr), warmup_steps=min(50, max(1, self.steps // 10)), eval_every=self.eval_every,
                        checkpoint_every=self.eval_every, seed=self.seed)


@dataclass
class Speed:
    """Salience of 10 s of audio (front end included), best of 3, at the run's threads, on the CPU."""

    teacher_s: float
    student_s: float
    threads: int

    @property
    def ratio(self) -> float:
        return self.teacher_s / self.student_s


@dataclass
class TeachF0Result:
    out: Path  # f0.pt
    work: Path  # OUT.work: targets, checkpoints, TensorBoard (tb/)
    teacher: Path
    config: FCPEConfig
    params: int
    teacher_params: int
    bytes: int  # f0.pt on disk
    teacher_bytes: int
    train_data: Targets
    held_data: Targets
    outcome: TrainOutcome
    speed: Speed | None  # None: not timed (time_it=False)
    student: FCPE = field(repr=False)  # the trained model, eval mode, on the CPU (as load_fcpe gives it)


def _targets(files: list[Path], root: Path, teacher: FCPE, sha: str, folder: Path, option: str,
             n_sweeps: int, shifts: tuple[float, ...], seed: int, progress: bool) -> Targets:
    key = {"format": CACHE_FORMAT, "teacher_sha256": sha, "files": file_key(files, root),
           "sweeps": n_sweeps, "shifts": list(shifts), "seed": seed}
    found = cached_targets(folder, key)
    if found is not None:
        return found
    clips, skipped = load_clips(files, shifts)
    if not clips:
        reasons = ", ".join(f"{n} {r}" for r, n in skipped.items()) or "none usable"
        raise DistillRVCError(f"{option} {root}: no usable speech ({reasons}); give non-silent audio files")
    return build_targets(clips + sweeps(n_sweeps, seed), teacher, folder, key, skipped, progress)


def _speed(teacher: FCPE, student: FCPE, seed: int) -> Speed:
    """Both on the same 10 s of audio (sweeps: the time does not depend on the content), on the CPU."""
    audio = np.concatenate(sweeps(3, seed))[:160000]
    teacher = teacher.cpu()

    def best(model: FCPE) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            model.salience(audio)
            times.append(time.perf_counter() - t0)
        return min(times)

    return Speed(best(teacher), best(student), torch.get_num_threads())


def _count(model: FCPE) -> int:
    return sum(p.numel() for p in model.parameters())


def teach_f0(audio: str | Path, out: str | Path, settings: TeachF0Settings | None = None) -> TeachF0Result:
    settings = settings or TeachF0Settings()
    schedule = settings.check()
    out = Path(out)
    if out.suffix != ".pt" or out.is_dir():
        raise DistillRVCError(f"--out {out}: give a file name ending in .pt (e.g. f0.pt)")
    teacher_path = find_fcpe(settings.fcpe)
    refuse_overwrite(out, [teacher_path], "--out")
    work = out.with_name(out.stem + ".work")
    device = resolve_device(settings.device)
    threads = check_threads(settings.threads)
    with torch_threads(threads):
        teacher = load_fcpe(teacher_path, device)  # refuses a file that is not an FCPE
        teacher_checkpoint = safe_torch_load(teacher_path, what=WHAT)
        sha = file_sha256(teacher_path)
        audio_root = Path(audio)
        files = find_audio(audio_root)
        if settings.held is not None:
            held_root, held = Path(settings.held), find_audio(settings.held, "--held")
        else:
            n = settings.held_files
            if len(files) <= n:
                raise DistillRVCError(f"--audio {audio_root}: {len(files)} file(s), too few to hold {n} out for "
                                      "validation; give --held DIR (other speakers' speech) or more files")
            files, held, held_root = files[:-n], files[-n:], audio_root
        train_data = _targets(files, audio_root, teacher, sha, work / "targets_train", "--audio", settings.sweeps,
                              tuple(settings.shifts), settings.seed, settings.progress)
        held_data = _targets(held, held_root, teacher, sha, work / "targets_held",
                             "--held" if settings.held is not None else "--audio", 0, (), settings.seed,
                             settings.progress)
        longest = int(np.diff(np.asarray(train_data.offsets)).max())
        schedule = replace(schedule, crop_frames=min(schedule.crop_frames, longest))
        torch.manual_seed(settings.seed)
        config = FCPEConfig(hidden=settings.hidden, layers=settings.layers)
        student = FCPE(config)
        if settings.init == "teacher":
            init_from_teacher(student, teacher)
        else:
            init_from_prior(student, train_data)
        fingerprint = {"schedule": schedule.as_dict(), "hidden": settings.hidden, "layers": settings.layers,
                       "init": settings.init,
                       "teacher": sha, "train_frames": int(train_data.offsets[-1]),
                       "held_frames": int(held_data.offsets[-1])}
        outcome = train_student(student, train_data, held_data, schedule, work, fingerprint, device,
                                settings.progress, settings.stop_after)
        student.cpu().eval()
        save_fcpe(out, student, teacher_checkpoint, outcome.steps)
        speed = _speed(teacher, student, settings.seed) if settings.time_it else None
    return TeachF0Result(out, work, teacher_path, config, _count(student), _count(teacher), out.stat().st_size,
                         teacher_path.stat().st_size, train_data, held_data, outcome, speed, student)


def _skipped(data: Targets) -> str:
    return f" (skipped: {', '.join(f'{n} {r}' for r, n in data.skipped.items())})" if data.skipped else ""


def format_teach_f0(result: TeachF0Result) -> str:
    o, c = result.outcome, result.config
    lines = [
        f"student    FCPE hidden {c.hidden}, {c.layers} layers: {result.params / 1e6:.2f} M params, "
        f"{result.bytes / 1e6:.1f} MB (teacher {result.teacher_params / 1e6:.2f} M, "
        f"{result.teacher_bytes / 1e6:.1f} MB)",
        f"data       {result.train_data.clips} clips, {result.train_data.seconds / 60:.1f} min"
        f"{_skipped(result.train_data)}; held out {result.held_data.clips} clips, "
        f"{result.held_data.seconds / 60:.1f} min{_skipped(result.held_data)}",
        f"trained    {o.steps} steps" + (f" (resumed at {o.resumed_from})" if o.resumed_from else "")
        + f", {o.seconds:.0f} s",
        f"held-out   vs the teacher FCPE: median F0 error {o.start.cents:.1f} -> {o.end.cents:.1f} cents, "
        f"V/UV agreement {o.start.vuv:.3f} -> {o.end.vuv:.3f}, BCE {o.start.bce:.4f} -> {o.end.bce:.4f}",
        *([f"speed      salience of 10 s: teacher {result.speed.teacher_s:.3f} s, "
           f"student {result.speed.student_s:.3f} s ({result.speed.ratio:.1f}x faster, "
           f"{result.speed.threads} thread(s), CPU)"] if result.speed else []),
        f"f0 model   {result.out} (torchfcpe's format: --fcpe {result.out.name}, --f0 fcpe:{result.out.name})",
        f"work       {result.work} (tensorboard --logdir {result.work / 'tb'})",
    ]
    return "\n".join(lines)
