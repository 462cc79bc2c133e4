"""The `distill-rvc export-encoder` command: a thin click wrapper over `onnx.encoder.export_encoder`.

It lives beside cli.py (which adds it to the group, so its errors print as one line with exit
code 2 like every command's) only because cli.py is at the package's module-size limit.
Not for: anything but mapping options and printing.
"""
from __future__ import annotations

import json
from dataclasses import asdict

import click

from .cli_options import hubert_option, threads_option
from .onnx.encoder import ExportEncoderSettings, export_encoder, format_export_encoder
from .options import refuse_overwrite


@click.command("export-encoder")
@hubert_option("The content encoder to export: RVC's hubert_base.pt (ContentVec, fairseq format) or a distilled "
               "encoder .pt (--encoder is the same option).")
@click.option("--version", type=click.Choice(["v1", "v2"]), default="v2", show_default=True,
              help="The features exported: v1 (layer 9 + final_proj, 256-d) or v2 (layer 12, 768-d).")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="The .onnx file to write.")
@click.option("--int8", is_flag=True,
              help="Quantise the MatMul weights to int8 (onnxruntime's dynamic quantisation; bench/"
                   "bench_encoder_onnx.py measures size, speed and error); its feature cosine similarity to torch "
                   "is printed.")
@threads_option("CPU threads for the parity check (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written and measured as JSON.")
def export_encoder_command(hubert: str, version: str, out: str, int8: bool, threads: int | None,
                           as_json: bool) -> None:
    """Export a content encoder to ONNX (audio [1, N] at 16 kHz -> features [1, T, C]), for
    `convert`, `compare`, `bench` and `prepare --encoder FILE.onnx`. The fp32 graph is checked
    against torch at two lengths before anything is written."""
    refuse_overwrite(out, [hubert], "--out")
    result = export_encoder(hubert, out, ExportEncoderSettings(version=version, int8=int8, threads=threads))
    if as_json:
        click.echo(json.dumps({**asdict(result), "out": str(result.out)}, indent=2))
    else:
        click.echo(format_export_encoder(result))
