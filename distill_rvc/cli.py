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


def main() -> None:
    cli(prog_name="distill-rvc")


if __name__ == "__main__":
    main()
