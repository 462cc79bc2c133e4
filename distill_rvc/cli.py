"""The `distill-rvc` command line: thin click wrappers over the Python API.

Every command is a function of the package you can call from Python; this module only
parses options, formats results and turns `DistillRVCError` into one line on stderr with
exit code 2 (no traceback).
"""
from __future__ import annotations

import errno
import json
import logging
import sys

import click

from .errors import DistillRVCError


class _Group(click.Group):
    """Runs a command; user errors become `error: ...` and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DistillRVCError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                click.echo("error: disk full; nothing was replaced (free some space and run it again)", err=True)
                sys.exit(2)
            raise


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more detail (debug messages) to stderr.")
@click.version_option(package_name="distill-rvc")
def cli(verbose: bool) -> None:
    """Distil, prune and export slim students of RVC voice models.

    Typical flow: `inspect` a teacher, `prepare` audio, `teach` a student, `export` it to
    ONNX, `compare` it with the teacher. Every command explains its options with --help.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s: %(message)s",
                        stream=sys.stderr)


# --------------------------------------------------------------------------- inspect
@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of text.")
@click.option("--no-memory", is_flag=True,
              help="Skip the inference-memory measurement (it traces the model at five lengths, a few seconds).")
def inspect(model: str, as_json: bool, no_memory: bool) -> None:
    """Describe MODEL (.pth): format, version, sample rate, f0, speakers, parameters per part,
    file size, weight dtype and inference memory (longest chunk that fits 2, 4 and 6 GB).

    Reads RVC inference models, Applio files, G_*.pth training checkpoints, pretrained bases
    and distill-rvc students; anything else is refused with the reason.
    """
    from .inspect_model import format_report, inspect_model

    info = inspect_model(model, memory=not no_memory)
    click.echo(json.dumps(info, indent=2) if as_json else format_report(info))


# =========================================================================== distillation
# `teach`, `plan`, `recipes` (issue 4): thin wrappers over distill_rvc.distill.
def _teacher_config(teacher: str | None):
    """The teacher file's architecture, or RVC's v2 40k f0 config when no file is given."""
    from .checkpoint import read_checkpoint
    from .config import rvc_config

    return read_checkpoint(teacher).config if teacher else rvc_config("v2", 40000, True)


def _recipes(names: tuple[str, ...]):
    from .distill.recipes import list_recipes, load_recipe

    return [load_recipe(n) for n in names] if names else list_recipes()


@cli.command()
@click.option("--teacher", required=True, type=click.Path(dir_okay=False),
              help="The trained RVC model to distil (.pth: inference model, G_*.pth, or a distill-rvc file).")
@click.option("--recipe", default="4gb", show_default=True,
              help="A shipped recipe (see `distill-rvc recipes`) or a path to a recipe .toml.")
@click.option("--data", required=True, type=click.Path(file_okay=False),
              help="A prepared dataset cache (`distill-rvc prepare`, or examples/make_example_dataset.py).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Run folder for checkpoints, TensorBoard logs and student.pth [default: runs/<teacher>-<recipe>].")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Override the recipe's number of steps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Override the recipe's batch size (no accumulation).")
@click.option("--key", type=float, default=None,
              help="Shift the data's F0 by this many semitones, to move a source voice into the teacher's range "
                   "(as RVC's transpose; overrides the recipe's [train] key).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its newest checkpoint.")
@click.option("--device", default=None, help="cuda, cuda:1 or cpu [default: cuda if available].")
@click.option("--no-budget-check", is_flag=True,
              help="Start even if the memory plan exceeds the recipe's budget (an OOM halves the micro-batch).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def teach(teacher: str, recipe: str, data: str, out: str | None, steps: int | None, batch_size: int | None,
          key: float | None, resume: bool, device: str | None, no_budget_check: bool, quiet: bool) -> None:
    """Distil TEACHER into a slim student with a recipe; writes OUT/student.pth.

    The student is initialised from the teacher's most important channels, trained to match
    its waveform, mel, prior, latent and decoder features, logged to TensorBoard
    (`tensorboard --logdir runs`) and checkpointed; --resume continues exactly.
    """
    from pathlib import Path

    from .distill.teach import teach as run_teach
    from .memory import GB

    if out is None:
        out = str(Path("runs") / f"{Path(teacher).stem}-{Path(recipe).stem}")
    result = run_teach(teacher, recipe, data, out, steps=steps, batch_size=batch_size, key=key, resume=resume,
                       device=device, check_budget=not no_budget_check, progress=not quiet)
    t = result.train
    f = t.fidelity
    p = result.params
    click.echo(f"student    {result.student_path} ({result.format})")
    click.echo(f"params     teacher {p['teacher']:,} -> student {p['student']:,} ({p['teacher'] / p['student']:.1f}x "
               "smaller)")
    click.echo(f"trained    {t.steps} steps in {t.seconds:.0f} s, micro-batch {t.micro_batch}")
    click.echo(f"fidelity   held-out log-mel L1 vs teacher: {f['mel_l1_init']:.3f} at init -> {f['mel_l1']:.3f} "
               f"({f['mel_l1_ratio']:.2f}x)")
    if result.plan is not None:
        click.echo(f"memory     planned peak {result.plan.total / GB:.2f} GB ({result.plan.device}), "
                   f"budget {result.plan.budget_bytes / GB:g} GB; measured peak {t.peak_memory_bytes / GB:.2f} GB "
                   f"({'CUDA max_memory_allocated' if (device or '').startswith('cuda') or _cuda() else 'process RSS'})")
    click.echo(f"logs       tensorboard --logdir {Path(out).parent}")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@cli.command()
@click.option("--teacher", default=None, type=click.Path(dir_okay=False),
              help="Plan for this teacher [default: RVC's v2 40k architecture, no file needed].")
@click.option("--recipe", "recipe_names", multiple=True,
              help="Recipe name or .toml path; repeat for several [default: every shipped recipe].")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def plan(teacher: str | None, recipe_names: tuple[str, ...], as_json: bool) -> None:
    """Predict the peak training memory of recipes, part by part, without a GPU.

    Traces one real training step on fake tensors (nothing is allocated), then adds the
    CUDA context and allocator slack it cannot see. `teach` refuses plans over budget.
    """
    import dataclasses

    from .distill.planner import format_plan, plan_training

    cfg = _teacher_config(teacher)
    plans = [plan_training(cfg, r) for r in _recipes(recipe_names)]
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(p) | {"fits": p.fits} for p in plans], indent=2))
    else:
        click.echo("\n\n".join(format_plan(p) for p in plans))


@cli.command()
@click.option("--teacher", default=None, type=click.Path(dir_okay=False),
              help="Size the students for this teacher [default: RVC's v2 40k architecture].")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def recipes(teacher: str | None, as_json: bool) -> None:
    """List the shipped recipes with their student's size and cost for a teacher."""
    from .distill.planner import recipe_summaries

    rows = recipe_summaries(_teacher_config(teacher), _recipes(()))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    t = rows[0]
    click.echo(f"teacher: {t['teacher_params']:,} params, {t['teacher_macs_per_s'] / 1e9:.2f} GMAC per second of audio")
    click.echo(f"{'recipe':<7} {'budget':>7} {'params':>11} {'smaller':>8} {'GMAC/s':>7} {'cheaper':>8} "
               f"{'batch x frames':>15} {'precision':>9}  file")
    for r in rows:
        budget = f"{r['budget_gb']:g} GB" + ("*" if r["device"] == "cpu" else "")
        click.echo(f"{r['recipe']:<7} {budget:>7} {r['student_params']:>11,} {r['param_ratio']:>7.1f}x "
                   f"{r['student_macs_per_s'] / 1e9:>7.2f} {r['teacher_macs_per_s'] / r['student_macs_per_s']:>7.1f}x "
                   f"{str(r['batch_size']) + ' x ' + str(r['segment_frames']):>15} {r['precision']:>9}  {r['file_format']}")
    click.echo("* budget in RAM (trains on the CPU)")


def main() -> None:
    cli(prog_name="distill-rvc")


if __name__ == "__main__":
    main()
