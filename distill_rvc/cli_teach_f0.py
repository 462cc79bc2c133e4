"""`distill-rvc teach-f0`, the click command: maps its options to TeachF0Settings and prints the summary.

A module of its own only because cli.py is at the layout's 450 lines; cli.py adds the command
to its group (which turns DistillRVCError into one line and exit 2). Not here: the work
itself (distill_rvc/fcpe_student/teach.py).
"""
from __future__ import annotations

import sys

import click

from .cli_options import FCPE_HELP, device_option, quiet_option, threads_option
from .distill.train_state import Interrupted
from .fcpe_student.teach import TeachF0Settings, format_teach_f0, teach_f0 as run_teach_f0

_D = TeachF0Settings()


@click.command("teach-f0")
@click.option("--audio", required=True, type=click.Path(file_okay=False),
              help="A folder of speech to learn from (WAV, FLAC, OGG, MP3; searched recursively; any voices, "
                   "the wider their pitch range the better).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The student F0 model to write (.pt, torchfcpe's format); its targets, checkpoints and "
                   "TensorBoard logs go to OUT.work/ beside it (e.g. f0.work/).")
@click.option("--fcpe", type=click.Path(dir_okay=False), default=None, help="The teacher: " + FCPE_HELP)
@click.option("--hidden", type=click.IntRange(min=4), default=_D.hidden, show_default=True,
              help="The student's channels (a multiple of 4; the shipped FCPE has 512).")
@click.option("--layers", type=click.IntRange(min=1), default=_D.layers, show_default=True,
              help="The student's conformer conv layers (the shipped FCPE has 6).")
@click.option("--init", type=click.Choice(["teacher", "random"]), default=_D.init, show_default=True,
              help="The student's first weights: teacher = the teacher's most used channels and evenly spaced "
                   "layers (a good F0 before any step), random = a random network whose head starts at the "
                   "data's mean salience.")
@click.option("--steps", type=click.IntRange(min=1), default=_D.steps, show_default=True,
              help="Training steps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=_D.batch_size, show_default=True,
              help="Crops per step.")
@click.option("--crop-seconds", type=click.FloatRange(min=0.01), default=_D.crop_seconds, show_default=True,
              help="Length of each training crop.")
@click.option("--sweeps", type=click.IntRange(min=0), default=_D.sweeps, show_default=True,
              help="Synthetic harmonic sweeps (4 s, 50-1000 Hz) added to the training data, for a wide F0 range.")
@click.option("--shift", "shifts", type=float, multiple=True,
              help="Add a pitch-shifted copy of every training file, by this many semitones (repeatable, "
                   "e.g. --shift -6 --shift 6).")
@click.option("--held", default=None, type=click.Path(file_okay=False),
              help=f"A folder of held-out speech (ideally other voices) for the held-out F0 error "
                   f"[default: the last {_D.held_files} files of --audio].")
@device_option("cpu", "cpu, cuda, cuda:1 or auto.")
@threads_option("CPU threads for torch (0 = all cores) [default: torch's]. On a busy machine 1 can be "
                "much faster than 2.")
@quiet_option()
def teach_f0(audio: str, out: str, fcpe: str | None, hidden: int, layers: int, init: str, steps: int, batch_size: int,
             crop_seconds: float, sweeps: int, shifts: tuple[float, ...], held: str | None, device: str,
             threads: int | None, quiet: bool) -> None:
    """Distil the FCPE pitch network into a slim student; writes OUT (f0.pt).

    The student is the same network as the shipped fcpe_c_v001.pt (10.8 M params, 43 MB)
    with fewer channels and layers (the default, 256 x 6, has 2.9 M and 11 MB) and learns
    the teacher's salience on your speech, so it gives the teacher's F0. The file is in
    torchfcpe's own format: use it as --fcpe f0.pt or --f0 fcpe:f0.pt. The teacher's salience
    is cached once; training is logged to TensorBoard and checkpointed: running the same
    command again resumes. Ctrl-C or SIGTERM finishes the current step, saves and exits.
    """
    settings = TeachF0Settings(fcpe=fcpe, hidden=hidden, layers=layers, init=init, steps=steps, batch_size=batch_size,
                               crop_seconds=crop_seconds, sweeps=sweeps, shifts=tuple(shifts), held=held,
                               device=device, threads=threads, progress=not quiet)
    try:
        result = run_teach_f0(audio, out, settings)
    except Interrupted as e:
        click.echo(f"interrupted: {e}; run the same command again to continue", err=True)
        sys.exit(e.exit_code)
    click.echo(format_teach_f0(result))
