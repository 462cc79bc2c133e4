"""The `distill-rvc export` and `export-encoder` commands: thin click wrappers over
`onnx.export.export_onnx` (a synthesizer) and `onnx.encoder.export_encoder` (a content encoder).

They live beside cli.py (which adds them to the group, so their errors print as one line with
exit code 2 like every command's) only because cli.py is at the package's module-size limit.
Not for: anything but mapping options and printing.
"""
from __future__ import annotations

import json
from dataclasses import asdict

import click

from .cli_options import hubert_option, threads_option
from .onnx.encoder import ExportEncoderSettings, export_encoder, format_export_encoder
from .onnx.export import ExportSettings, export_onnx, format_export
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


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False),
              help="The .onnx file to write, e.g. export/NAME.onnx; its model card goes beside it as NAME.json.")
@click.option("--interface", type=click.Choice(["wokada", "rvc"]), default="wokada", show_default=True,
              help="Input signature. wokada: w-okada VC Client and forks (feats, p_len, pitch, pitchf, sid; "
                   "noise drawn inside; audio clipped, 1-D). rvc: RVC/MoeSS/ailia runners (phone, phone_lengths, "
                   "pitch, pitchf, ds, rnd; audio [1, 1, N]; fp32 and f0 models only; no w-okada metadata).")
@click.option("--fp16", is_flag=True,
              help="Half-precision weights and feats (wokada only; pitchf, the sine phase and the audio stay "
                   "float32). "
                   "Halves the file; for GPU/DirectML clients (on a CPU it runs slower than fp32).")
@click.option("--opset", type=click.Choice(["17", "18"]), default="17", show_default=True,
              help="ONNX opset: 17 is what the w-okada client writes and older onnxruntime reads; "
                   "18 is what RVC's newest exporter writes.")
@click.option("--no-simplify", is_flag=True, help="Do not simplify the graph with onnxslim (used only when installed).")
@click.option("--embedder", default=None,
              help="Content encoder named in the metadata for the w-okada client (hubert_base, contentvec, "
                   "hubert-base-japanese, whisper). Default: the model file's embedder_model in the client's "
                   "naming, else hubert_base; required when the model's encoder has no w-okada equivalent.")
@click.option("--tolerance", type=float, default=None,
              help="Largest parity error accepted, relative to the output's peak [default: 1e-4 fp32, 1e-2 fp16]. "
                   "Above it nothing is written.")
@threads_option("CPU threads for the parity runs and the latency (both onnxruntime and torch) [default: torch's].")
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
    settings = ExportSettings(interface=interface, fp16=fp16, opset=int(opset), simplify=not no_simplify,
                              embedder=embedder, tolerance=tolerance, threads=threads, timing_runs=timing_runs)
    settings.check()
    refuse_overwrite(out, [model], "--out")
    result = export_onnx(model, out, settings, progress=True)
    click.echo(json.dumps(result.card, indent=2) if as_json else format_export(result))
