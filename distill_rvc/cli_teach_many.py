"""`distill-rvc teach-many`, the click command: maps its options to TeachManySettings and prints the table.

A module of its own only because cli.py is at the layout's 450 lines; cli.py adds the command
to its group (which turns DistillRVCError into one line and exit 2). Not here: the queue
itself (distill_rvc/queue/).
"""
from __future__ import annotations

import sys

import click

from .cli_options import device_option, quiet_option
from .queue import QueueStopped, TeachManySettings, format_teach_many, teach_many as run_teach_many

SOME_FAILED = 3  # the exit code when the queue ran to its end but some voices failed


@click.command("teach-many")
@click.argument("voices", type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="The queue's folder: OUT/<voice>/ per voice (teach's run folder), queue.json, summary.md/json.")
@click.option("--retry-failed", is_flag=True, help="Run the voices that failed before again (else they are skipped).")
@click.option("--recipe", default=None, help="Replace [defaults] recipe (a voice's own key still wins).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Replace [defaults] steps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Replace [defaults] batch_size.")
@device_option(None, "Replace [defaults] device: cpu, cuda, cuda:1 [default: teach's, cuda if available].")
@quiet_option()
def teach_many(voices: str, out: str, retry_failed: bool, recipe: str | None, steps: int | None,
               batch_size: int | None, device: str | None, quiet: bool) -> None:
    """Distil many voices unattended, one after another: VOICES is a .toml file or a folder.

    \b
    VOICES.toml: [defaults] holds any teach option for every voice (recipe, steps,
    batch_size, key, device, check_budget, checkpoint_every), then one [[voice]] per voice:
        [defaults]
        recipe = "tiny"
        steps = 2000
        [[voice]]
        name = "alto"              # OUT/alto/ [default: the teacher's name]
        teacher = "alto.pth"       # relative to the .toml file
        data = "alto-data"         # a prepared dataset (distill-rvc prepare)
        key = 2                    # the voice's own keys win over [defaults]
    A folder instead holds <name>.pth and its dataset <name>/ per voice (options from here).

    A mistake in the file (unknown key, wrong type, unknown recipe) is refused before
    anything runs. A voice whose teacher or data is missing or broken, or whose training
    fails, is recorded as failed with its reason and the queue goes on.

    Rerun the same command to resume: done voices are skipped (one whose student file is
    gone is written again), the voice that was running continues from its checkpoint,
    failed ones stay failed unless --retry-failed. Ctrl-C or SIGTERM saves and stops
    (exit 130 or 143). The end: a table of voice, status, steps, fidelity (held-out
    log-mel L1 at init -> end), time and student or error, also in OUT/summary.md and
    summary.json. Exit 0 when every voice is done, 3 when some failed, 2 for bad input.
    Voices run one at a time (no parallel jobs yet).
    """
    settings = TeachManySettings(retry_failed=retry_failed, progress=not quiet, recipe=recipe, steps=steps,
                                 batch_size=batch_size, device=device)
    try:
        result = run_teach_many(voices, out, settings)
    except QueueStopped as e:
        click.echo(f"interrupted: {e}; run the same command to continue", err=True)
        sys.exit(e.exit_code)
    click.echo(format_teach_many(result))
    if result.failed:
        sys.exit(SOME_FAILED)
