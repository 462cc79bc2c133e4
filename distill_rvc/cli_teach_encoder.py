"""`distill-rvc teach-encoder`, the click command: maps its options to TeachEncoderSettings and prints the summary.

A module of its own only because cli.py is at the layout's 450 lines; cli.py adds the command
to its group (which turns DistillRVCError into one line and exit 2). Not here: the work
itself (distill_rvc/encoder/teach.py).
"""
from __future__ import annotations

import sys

import click

from .cli_options import device_option, hubert_option, quiet_option, threads_option
from .distill.train_state import Interrupted
from .encoder.teach import TeachEncoderSettings, format_teach_encoder, teach_encoder as run_teach_encoder


@click.command("teach-encoder")
@hubert_option("The teacher: RVC's content encoder hubert_base.pt (ContentVec, fairseq format).")
@click.option("--audio", required=True, type=click.Path(file_okay=False),
              help="A folder of speech to learn from (WAV, FLAC, OGG, MP3; searched recursively; any voices).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The student encoder to write (.pt); its caches, checkpoints and TensorBoard logs go to "
                   "OUT.work/ beside it (e.g. encoder.work/).")
@click.option("--version", type=click.Choice(["v2", "v1"]), default="v2", show_default=True,
              help="The features to learn: v2 = HuBERT layer 12 (768-d), v1 = layer 9 + final_proj (256-d).")
@click.option("--recipe", default="default", show_default=True,
              help="A shipped encoder recipe (default, test) or a recipe .toml (base = \"default\" and "
                   "[model] / [train] overrides).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Override the recipe's number of steps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Override the recipe's batch size.")
@click.option("--held", default=None, type=click.Path(file_okay=False),
              help="A folder of held-out speech (ideally other voices) for the held-out feature error "
                   "[default: the recipe's held_files last file(s) of --audio].")
@device_option("cpu", "cpu, cuda, cuda:1 or auto.")
@threads_option("CPU threads for torch (0 = all cores) [default: torch's]. On a busy machine 1 can be "
                "much faster than 2.")
@quiet_option()
def teach_encoder(hubert: str, audio: str, out: str, version: str, recipe: str, steps: int | None,
                  batch_size: int | None, held: str | None, device: str, threads: int | None, quiet: bool) -> None:
    """Distil the content encoder HUBERT into a small, fast student; writes OUT (encoder.pt).

    The student (about 2 M params and 0.23 GFLOP per second of audio with the default
    recipe, against HuBERT's 94 M and about 14) hears a log-mel front end and predicts the
    teacher's features at the same 50 frames per second. The teacher's features are cached
    once; training is logged to TensorBoard and checkpointed: running the same command again
    resumes. Ctrl-C or SIGTERM finishes the current step, saves a checkpoint and exits.
    """
    settings = TeachEncoderSettings(recipe=recipe, version=version, steps=steps, batch_size=batch_size, held=held,
                                    device=device, threads=threads, progress=not quiet)
    try:
        result = run_teach_encoder(hubert, audio, out, settings)
    except Interrupted as e:
        click.echo(f"interrupted: {e}; run the same command again to continue", err=True)
        sys.exit(e.exit_code)
    click.echo(format_teach_encoder(result))
