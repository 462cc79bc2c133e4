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


# ---------------------------------------------------------------------------- export
@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False),
              help="The .onnx file to write, e.g. export/NAME.onnx; its model card goes beside it as NAME.json.")
@click.option("--interface", type=click.Choice(["wokada", "rvc"]), default="wokada", show_default=True,
              help="Input signature. wokada: w-okada VC Client and forks (feats, p_len, pitch, pitchf, sid; "
                   "noise drawn inside; audio clipped, 1-D). rvc: RVC/MoeSS/ailia runners (phone, phone_lengths, "
                   "pitch, pitchf, ds, rnd; audio [1, 1, N]; fp32 only).")
@click.option("--fp16", is_flag=True,
              help="Half-precision weights and feats (wokada only; pitchf and the sine phase stay float32). "
                   "Halves the file; for GPU/DirectML clients (on a CPU it runs slower than fp32).")
@click.option("--opset", type=click.Choice(["17", "18"]), default="17", show_default=True,
              help="ONNX opset: 17 is what the w-okada client writes and older onnxruntime reads; "
                   "18 is what RVC's newest exporter writes.")
@click.option("--no-simplify", is_flag=True, help="Do not simplify the graph with onnxslim (used only when installed).")
@click.option("--embedder", default=None,
              help="Content encoder named in the metadata for the w-okada client (hubert_base, contentvec, "
                   "hubert-base-japanese). Default: the one the model file names, else hubert_base.")
@click.option("--tolerance", type=float, default=None,
              help="Largest parity error accepted, relative to the output's peak [default: 1e-4 fp32, 1e-2 fp16]. "
                   "Above it nothing is written.")
@click.option("--threads", type=int, default=None,
              help="CPU threads for the parity runs and the latency (both onnxruntime and torch) [default: torch's].")
@click.option("--timing-runs", type=click.IntRange(min=0), default=3, show_default=True,
              help="Timed runs of the 10 s input for the onnxruntime vs torch latency (0 skips timing).")
@click.option("--json", "as_json", is_flag=True, help="Print the model card as JSON instead of a summary.")
def export(model: str, out: str, interface: str, fp16: bool, opset: str, no_simplify: bool, embedder: str | None,
           tolerance: float | None, threads: int | None, timing_runs: int, as_json: bool) -> None:
    """Export MODEL (.pth: teacher, student or pruned) to ONNX for real-time clients.

    The graph is checked against torch on 1 s and 10 s inputs (parity) before anything is
    written; the model card (NAME.json) records the parity, the onnxruntime vs torch CPU
    latency, parameters, file size, opset and interface. See export/README.md for loading
    the file in the w-okada client or with plain onnxruntime.
    """
    from .onnx_export import export_onnx, format_summary

    result = export_onnx(model, out, interface=interface, fp16=fp16, opset=int(opset), simplify_graph=not no_simplify,
                         embedder=embedder, tolerance=tolerance, threads=threads, timing_runs=timing_runs,
                         progress=True)
    click.echo(json.dumps(result.card, indent=2) if as_json else format_summary(result.card, result.onnx_path,
                                                                                result.card_path))


def main() -> None:
    cli(prog_name="distill-rvc")


if __name__ == "__main__":
    main()
