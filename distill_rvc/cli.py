"""The `distill-rvc` command line: thin click wrappers over the Python API.

Every command is a function of the package you can call from Python; this module only
parses options, formats results and turns `DistillRVCError` into one line on stderr with
exit code 2 (no traceback).
"""
from __future__ import annotations

import errno
import json
import logging
import shlex
import sys

import click
from tqdm.contrib.logging import logging_redirect_tqdm

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

    Typical flow: `inspect` a teacher, `prepare` audio, `teach` a student (`prune` it
    further if you like), `compare` it with the teacher, `convert` speech with it, `export`
    it to ONNX for real-time clients, `bench` the files. Every command explains its options
    with --help.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s: %(message)s",
                        stream=sys.stderr)
    click.get_current_context().with_resource(logging_redirect_tqdm())  # log lines above progress bars


def _echo_skipped(skipped: list[tuple[str, str]], what: str) -> None:
    """The files (or segments) a command passed over, each with its reason."""
    click.echo(f"skipped {len(skipped)} {what}:")
    for name, reason in skipped:
        click.echo(f"  {name}: {reason}")


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
    and distill-rvc students (.pth, or .drvc.pt for the project format); anything else is
    refused with the reason. Says where the file loads: RVC, Applio, w-okada.
    """
    from .inspect_model import format_report, inspect_model

    info = inspect_model(model, memory=not no_memory)
    click.echo(json.dumps(info, indent=2) if as_json else format_report(info))


# --------------------------------------------------------------------------- prepare, import-rvc-logs
@cli.command()
@click.argument("audio_dir", type=click.Path())
@click.option("--hubert", required=True, type=click.Path(dir_okay=False),
              help="RVC's content encoder hubert_base.pt (ContentVec, fairseq format).")
@click.option("--version", type=click.Choice(["v1", "v2"]), default="v2", show_default=True,
              help="The teacher's RVC version: v1 = 256-d features (layer 9), v2 = 768-d (layer 12).")
@click.option("--f0", "f0_method", type=click.Choice(["harvest", "dio", "rmvpe"]), default="harvest",
              show_default=True, help="F0 extractor: harvest (accurate, slow), dio (fast), rmvpe (needs --rmvpe).")
@click.option("--rmvpe", type=click.Path(dir_okay=False), default=None, help="RVC's rmvpe.pt, for --f0 rmvpe.")
@click.option("--sr", type=click.Choice(["32000", "40000", "48000"]), default="40000", show_default=True,
              help="The teacher's sample rate; target audio is stored at this rate.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Cache folder to create or resume (memory-mapped .npy segments + manifest.json).")
@click.option("--device", default="auto", show_default=True,
              help="Where the content encoder and RMVPE run: auto, cpu, cuda, cuda:1, ...")
@click.option("--window", type=float, default=3.7, show_default=True,
              help="Segment length in seconds (RVC: 3.7; 3.0 for GPUs of 4 GB or less).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def prepare(audio_dir: str, hubert: str, version: str, f0_method: str, rmvpe: str | None, sr: str, out: str,
            device: str, window: float, quiet: bool) -> None:
    """Prepare the recordings in AUDIO_DIR (WAV, FLAC, OGG, MP3; any rate, mono or stereo) into a
    training cache, as RVC's preprocess and feature extraction do: slice at silences, 3.7 s
    windows, content features, F0 and coarse pitch.

    Re-running resumes: finished files are skipped. Unusable files are reported by name and skipped.
    """
    from .options import resolve_device
    from .data.prepare import prepare as run_prepare

    resolve_device(device)
    report = run_prepare(audio_dir, out, hubert=hubert, version=version, f0_method=f0_method, sr=int(sr),
                         rmvpe=rmvpe, device=device, window_s=window, progress=not quiet)
    click.echo(f"prepared {report.prepared} file(s): {report.segments} segments, {report.seconds:.1f} s of audio "
               f"-> {report.out}")
    if report.resumed:
        click.echo(f"resumed: {report.resumed} file(s) were already prepared")
    if report.bad:
        _echo_skipped(report.bad, "unusable file(s)")


@cli.command("import-rvc-logs")
@click.argument("exp_dir", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Cache folder to create or resume (the same format `prepare` writes).")
@click.option("--version", type=click.Choice(["v1", "v2"]), default=None,
              help="Only if the folder has both 3_feature256/ and 3_feature768/ and no filelist.txt.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def import_rvc_logs(exp_dir: str, out: str, version: str | None, quiet: bool) -> None:
    """Import an RVC experiment folder EXP_DIR (logs/<exp>: 0_gt_wavs, 2a_f0, 2b-f0nsf,
    3_feature256|768, filelist.txt) into a training cache without recomputing anything.
    """
    from .data.rvc_logs import import_rvc_logs as run_import

    report = run_import(exp_dir, out, version=version, progress=not quiet)
    click.echo(f"imported {report.segments} segments ({report.seconds:.1f} s of audio; {report.version}, "
               f"{report.sample_rate} Hz, {'f0' if report.f0 else 'no f0'}) -> {report.out}")
    if report.resumed:
        click.echo(f"resumed: {report.resumed} source file(s) were already imported")
    if report.skipped:
        _echo_skipped(report.skipped, "segment(s)")


# ---------------------------------------------------------------------------- export
@cli.command()
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
    from .onnx.export import export_onnx, format_summary
    from .options import check_threads, check_tolerance, refuse_overwrite

    tolerance, threads = check_tolerance(tolerance), check_threads(threads)
    refuse_overwrite(out, [model], "--out")
    result = export_onnx(model, out, interface=interface, fp16=fp16, opset=int(opset), simplify_graph=not no_simplify,
                         embedder=embedder, tolerance=tolerance, threads=threads, timing_runs=timing_runs,
                         progress=True)
    click.echo(json.dumps(result.card, indent=2) if as_json else format_summary(result.card, result.onnx_path,
                                                                                result.card_path))
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
              help="Run folder for checkpoints, TensorBoard logs and the student, <teacher>_<recipe>.pth "
                   "[default: runs/<teacher>-<recipe>].")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Override the recipe's number of steps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Override the recipe's batch size (no accumulation).")
@click.option("--key", type=float, default=None,
              help="Shift the data's F0 by this many semitones, to move a source voice into the teacher's range "
                   "(as RVC's transpose; overrides the recipe's [train] key).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its newest checkpoint.")
@click.option("--checkpoint-every", default=None, metavar="N|TIME",
              help="Checkpoint every N steps (e.g. 500), or at least every TIME of wall clock (90s, 10m, 1h); "
                   "the other interval stays. Checkpoints are written every 10 minutes and every recipe "
                   "checkpoint_every steps, whichever comes first, at the end, and on Ctrl-C or SIGTERM.")
@click.option("--device", default=None, help="cuda, cuda:1 or cpu [default: cuda if available].")
@click.option("--no-budget-check", is_flag=True,
              help="Start even if the memory plan exceeds the recipe's budget (an OOM halves the micro-batch).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def teach(teacher: str, recipe: str, data: str, out: str | None, steps: int | None, batch_size: int | None,
          key: float | None, resume: bool, checkpoint_every: str | None, device: str | None, no_budget_check: bool,
          quiet: bool) -> None:
    """Distil TEACHER into a slim student with a recipe; writes OUT/<teacher>_<recipe>.pth.

    The name starts with the teacher's, so RVC still pairs the student with the voice's index
    (myvoice.pth -> myvoice_4gb.pth). A student RVC cannot build is written as .drvc.pt.

    The student is initialised from the teacher's most important channels, trained to match
    its waveform, mel, prior, latent and decoder features, logged to TensorBoard
    (`tensorboard --logdir runs`) and checkpointed; --resume continues exactly.
    Ctrl-C or SIGTERM finishes the current step, saves a checkpoint and exits (130 or 143).
    """
    from pathlib import Path

    from .distill.teach import teach as run_teach
    from .distill.trainer import Interrupted
    from .memory import GB

    if out is None:
        out = str(Path("runs") / f"{Path(teacher).stem}-{Path(recipe).stem}")
    try:
        result = run_teach(teacher, recipe, data, out, steps=steps, batch_size=batch_size, key=key, resume=resume,
                           device=device, check_budget=not no_budget_check, progress=not quiet,
                           checkpoint_every=checkpoint_every)
    except Interrupted as e:
        click.echo(f"interrupted: {e}; run the same command with --resume to continue", err=True)
        sys.exit(e.exit_code)
    t = result.train
    f = t.fidelity
    p = result.params
    click.echo(f"student    {result.student_path} ({result.format})")
    click.echo(f"loads in   {result.loads.line()}")
    click.echo(f"params     teacher {p['teacher']:,} -> student {p['student']:,} ({p['teacher'] / p['student']:.1f}x "
               "smaller; as they run, weight norm folded: `inspect` counts a file's stored g and v)")
    click.echo(f"trained    {t.steps} steps in {t.seconds:.0f} s, micro-batch {t.micro_batch}")
    click.echo(f"fidelity   held-out log-mel L1 vs teacher: {f['mel_l1_init']:.3f} at init -> {f['mel_l1']:.3f} "
               f"({f['mel_l1_ratio']:.2f}x)")
    if result.plan is not None:
        click.echo(f"memory     planned peak {result.plan.total / GB:.2f} GB ({result.plan.device}), "
                   f"budget {result.plan.budget_bytes / GB:g} GB; measured peak {t.peak_memory_bytes / GB:.2f} GB "
                   f"({'CUDA max_memory_allocated' if (device or '').startswith('cuda') or _cuda() else 'process RSS'})")
    click.echo(f"logs       tensorboard --logdir {shlex.quote(str(Path(out).parent))}")


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


# ---------------------------------------------------------------------------- convert, compare, bench
_F0_HELP = "F0 extractor: harvest (accurate, slow), dio (fast, rougher), rmvpe (RVC's default; needs --rmvpe)."


@cli.command()
@click.option("--model", required=True, type=click.Path(dir_okay=False),
              help="The voice model: RVC .pth, a distill-rvc student, or an exported .onnx (either interface).")
@click.option("--hubert", required=True, type=click.Path(dir_okay=False),
              help="RVC's content encoder hubert_base.pt (ContentVec, fairseq format).")
@click.option("--input", "src", required=True, type=click.Path(),
              help="An audio file (WAV, FLAC, OGG, MP3; any rate, mono or stereo) or a folder of them.")
@click.option("--output", "dst", required=True, type=click.Path(),
              help="The output .wav, or a folder (mirrors the input folder's tree, one .wav per file).")
@click.option("--f0", "f0_method", type=click.Choice(["harvest", "dio", "rmvpe"]), default="harvest",
              show_default=True, help=_F0_HELP)
@click.option("--rmvpe", type=click.Path(dir_okay=False), default=None, help="RVC's rmvpe.pt, for --f0 rmvpe.")
@click.option("--transpose", type=float, default=0.0, show_default=True,
              help="Pitch shift in semitones (12 = an octave up, e.g. a male voice into a female model).")
@click.option("--sid", type=int, default=0, show_default=True, help="Speaker id (0 for single-speaker models).")
@click.option("--index", type=click.Path(dir_okay=False), default=None,
              help="The voice's faiss .index (RVC's added_IVF*.index); needs the faiss extra.")
@click.option("--index-rate", type=float, default=0.75, show_default=True,
              help="How much of the retrieved training features to blend in (0 = none, 1 = all).")
@click.option("--protect", type=float, default=0.33, show_default=True,
              help="Keep this much retrieval on unvoiced consonants and breaths (0.5 = no protection).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1 or auto.")
@click.option("--threads", type=int, default=None, help="CPU threads for torch and onnxruntime [default: all].")
@click.option("--memory-gb", type=float, default=4.0, show_default=True,
              help="Memory budget that sets the chunk length (model and content encoder, measured per model).")
@click.option("--chunk-seconds", type=float, default=None,
              help="Cut long inputs into chunks of about this many seconds instead (1 s of context each side).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the prior noise, so a conversion can be repeated exactly; -1 = fresh noise.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def convert(model: str, hubert: str, src: str, dst: str, f0_method: str, rmvpe: str | None, transpose: float,
            sid: int, index: str | None, index_rate: float, protect: float, device: str, threads: int | None,
            memory_gb: float, chunk_seconds: float | None, seed: int, quiet: bool) -> None:
    """Convert speech in --input into the voice of --model, as RVC does: content features and
    F0 of the input, optional retrieval from the voice's index, then the synthesizer.

    Long inputs are cut at quiet moments into chunks sized for --memory-gb, with context on
    both sides and short cross-fades, so memory stays bounded on any length. The output is a
    16-bit WAV at the model's sample rate with exactly the input's duration.
    """
    from .convert import ChunkSizes, ConvertSettings, convert as run_convert
    from .options import check_chunk_seconds, check_threads

    chunk_seconds, threads = check_chunk_seconds(chunk_seconds), check_threads(threads)
    settings = ConvertSettings(f0_method=f0_method, rmvpe=rmvpe, transpose=transpose, sid=sid, index=index,
                               index_rate=index_rate, protect=protect, memory_gb=memory_gb,
                               chunks=ChunkSizes.with_center(chunk_seconds) if chunk_seconds is not None else None,
                               seed=None if seed < 0 else seed)
    report = run_convert(model, hubert, src, dst, settings, device=device, threads=threads, progress=not quiet)
    t = report.timings
    compute = t.f0 + t.content + t.synth
    click.echo(f"converted {len(report.results)} file(s), {t.audio_s:.1f} s of audio in {compute:.1f} s "
               f"(real-time factor {compute / max(t.audio_s, 1e-9):.2f}: F0 {t.f0:.1f} s, content {t.content:.1f} s, "
               f"synthesizer {t.synth:.1f} s on {report.backend}, {t.passes} pass(es))")
    for r in report.results[:1] if len(report.results) == 1 else []:
        click.echo(f"  -> {r.output} ({r.sample_rate} Hz, {r.seconds:.2f} s)")
    if len(report.results) > 1:
        click.echo(f"  -> {dst}")
    if report.bad:
        _echo_skipped(report.bad, "unusable file(s)")


@cli.command()
@click.option("--teacher", required=True, type=click.Path(dir_okay=False), help="The teacher, big.pth.")
@click.option("--student", required=True, type=click.Path(dir_okay=False),
              help="The student: a .pth, or an .onnx (an RVC-interface file for fidelity; w-okada: size and speed).")
@click.option("--audio", required=True, type=click.Path(),
              help="A folder of speech clips (or one file) to convert with both models.")
@click.option("--hubert", required=True, type=click.Path(dir_okay=False),
              help="RVC's content encoder hubert_base.pt (ContentVec, fairseq format).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Report folder: report.md, report.json, PNG plots, tensorboard/.")
@click.option("--f0", "f0_method", type=click.Choice(["harvest", "dio", "rmvpe"]), default="harvest",
              show_default=True, help=_F0_HELP)
@click.option("--rmvpe", type=click.Path(dir_okay=False), default=None, help="RVC's rmvpe.pt, for --f0 rmvpe.")
@click.option("--transpose", type=float, default=0.0, show_default=True, help="Pitch shift in semitones.")
@click.option("--sid", type=int, default=0, show_default=True, help="Speaker id.")
@click.option("--max-clips", type=int, default=8, show_default=True, help="Use at most this many clips.")
@click.option("--max-clip-seconds", type=float, default=20.0, show_default=True,
              help="Use at most this many seconds of each clip.")
@click.option("--threads", type=int, default=2, show_default=True,
              help="CPU threads for torch and onnxruntime (the reference machine has 2).")
@click.option("--runs", type=int, default=3, show_default=True, help="Timed runs per speed figure (median kept).")
@click.option("--no-ort", is_flag=True, help="Skip onnxruntime timings (they export each .pth to ONNX first).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def compare(teacher: str, student: str, audio: str, hubert: str, out: str, f0_method: str, rmvpe: str | None,
            transpose: float, sid: int, max_clips: int, max_clip_seconds: float, threads: int, runs: int,
            no_ort: bool, quiet: bool) -> None:
    """Put --student beside --teacher on the same clips: size, MACs, CPU/GPU real-time factor
    (torch and onnxruntime), peak memory, and fidelity (log-mel L1, MCD, F0 RMSE, V/UV; SECS
    and DNSMOS when resemblyzer / speechmos are installed), with a one-line verdict against
    the project's targets and the recipe to try next.

    Both models get identical inputs and noise. Anything that cannot be measured here (no
    GPU, a w-okada ONNX student's fidelity, ...) is null in report.json and explained in report.md.
    """
    from .compare import CompareSettings, compare as run_compare, format_compare

    settings = CompareSettings(f0_method=f0_method, rmvpe=rmvpe, transpose=transpose, sid=sid, max_clips=max_clips,
                               max_clip_s=max_clip_seconds, threads=threads, runs=runs, ort=not no_ort)
    click.echo(format_compare(run_compare(teacher, student, audio, hubert, out, settings, progress=not quiet)))


@cli.command()
@click.option("--model", "models", required=True, multiple=True, type=click.Path(dir_okay=False),
              help="A .pth (torch) or .onnx (onnxruntime) model; repeat to compare several side by side.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1 or auto.")
@click.option("--threads", type=int, default=2, show_default=True,
              help="CPU threads for torch and onnxruntime (0 = all).")
@click.option("--runs", type=int, default=5, show_default=True, help="Timed runs per figure (the median is kept).")
@click.option("--warmup", type=int, default=1, show_default=True, help="Untimed runs before the timed ones.")
@click.option("--batch", type=int, default=8, show_default=True, help="Items of 1 s in the throughput batch.")
@click.option("--chunk", "chunk_s", type=float, default=0.5, show_default=True,
              help="Streaming chunk length in seconds.")
@click.option("--context", "context_s", type=float, default=1.0, show_default=True,
              help="Seconds of past audio sent along with each streaming chunk after the first.")
@click.option("--hubert", type=click.Path(dir_okay=False), default=None,
              help="Include content features (this hubert_base.pt) and F0 in the streaming figures.")
@click.option("--f0", "f0_method", type=click.Choice(["harvest", "dio"]), default="dio", show_default=True,
              help="F0 extractor for the streaming figures (with --hubert).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON result instead of the table.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the JSON result here.")
def bench(models: tuple[str, ...], device: str, threads: int, runs: int, warmup: int, batch: int, chunk_s: float,
          context_s: float, hubert: str | None, f0_method: str, as_json: bool, out: str | None) -> None:
    """Time models side by side: latency and real-time factor on 1 s and 10 s inputs, batch
    throughput, and streaming (time to first audio and per-chunk time for 0.5 s chunks).

    Medians over --runs after --warmup, the models taking turns. The JSON (--json, --out)
    has the same keys for every model, so results compare across models and machines.
    """
    from .atomic import write_json
    from .bench import bench as run_bench, format_bench
    from .options import check_threads, resolve_device

    threads = check_threads(threads)
    device = str(resolve_device(device))
    result = run_bench(list(models), device=device, threads=threads, runs=runs, warmup=warmup, batch=batch,
                       chunk_s=chunk_s, context_s=context_s, hubert=hubert, f0_method=f0_method)
    if out:
        write_json(out, result)
    click.echo(json.dumps(result, indent=2) if as_json else format_bench(result))


# =========================================================================== pruning
# `prune` (issue 6): a thin wrapper over distill_rvc.prune.
class _Amount(click.ParamType):
    """A positive count with an optional K/M/G suffix: 12000000, 12M, 13.3G."""

    name = "amount"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip().upper()
        scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(text[-1:], 1.0)
        try:
            amount = float(text[:-1] if scale != 1.0 else text) * scale
        except ValueError:
            self.fail(f"{value!r} is not a number like 12000000, 12M or 13.3G", param, ctx)
        if amount <= 0:
            self.fail(f"{value!r} must be positive", param, ctx)
        return amount


@cli.command()
@click.option("--model", required=True, type=click.Path(dir_okay=False),
              help="The model to prune (.pth): a student from `teach`, or a teacher itself.")
@click.option("--teacher", default=None, type=click.Path(dir_okay=False),
              help="What recovery distils toward and fidelity is measured against [default: the unpruned --model].")
@click.option("--data", default=None, type=click.Path(file_okay=False),
              help="A prepared dataset cache; needed for --recover-steps, Taylor importance and the fidelity report.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The pruned model to write (.pth).")
@click.option("--ratio", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Share of the channels removed from every pruned layer [default: 0.3]; the decoder's parameters "
                   "fall by about 1-(1-ratio)^2.")
@click.option("--target-params", type=_Amount(), default=None,
              help="Instead of --ratio: the smallest ratio that brings the model to at most this many parameters "
                   "(e.g. 12M).")
@click.option("--target-macs", type=_Amount(), default=None,
              help="Instead of --ratio: the smallest ratio that brings the model to at most this many multiply-"
                   "accumulates per second of audio (e.g. 15G).")
@click.option("--steps", type=click.IntRange(min=1), default=1, show_default=True,
              help="Reach the ratio in this many equal pruning steps, with recovery after each.")
@click.option("--recover-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="Distillation steps toward the teacher after each pruning step (0: none).")
@click.option("--importance", type=click.Choice(["magnitude", "taylor"]), default="magnitude", show_default=True,
              help="How channels are ranked: weight magnitude, or Taylor |w * grad| from distillation-loss gradients "
                   "on --data.")
@click.option("--widths", "widths_mode", type=click.Choice(["rvc", "free"]), default="rvc", show_default=True,
              help="rvc: one decoder width (stages halving, as RVC builds them) and one FFN width, so RVC, Applio "
                   "and w-okada load the result; free: every layer rounded on its own (usually distill-rvc's "
                   "project format, which only distill-rvc reads).")
@click.option("--round-to", type=click.IntRange(min=1), default=8, show_default=True,
              help="Hardware-friendly widths: with --widths rvc the decoder width moves at most this many channels "
                   "to land on a multiple of it (times powers of two where it can); with free every layer is a "
                   "multiple of it (layers this narrow stay whole).")
@click.option("--parts", type=click.Choice(["all", "dec", "ffn"]), default="all", show_default=True,
              help="What to prune: the decoder and enc_p's FFN widths (all), or only one of them.")
@click.option("--recipe", default=None,
              help="Recipe (name or .toml) whose [train] and [loss] settings recovery uses [default: the one the "
                   "model was taught with, else 4gb].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Override the recovery batch size.")
@click.option("--device", default=None, help="Where recovery runs: cuda, cuda:1 or cpu [default: cuda if available].")
@click.option("--run-dir", default=None, type=click.Path(file_okay=False),
              help="Folder for recovery's TensorBoard logs and checkpoints [default: runs/prune-<out>-<time>].")
@click.option("--report", "report_path", default=None, type=click.Path(dir_okay=False),
              help="Also write the before/after report as JSON here.")
@click.option("--latency-seconds", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Seconds of audio for the CPU latency before/after (0 skips the timing).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for the latency timing.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def prune(model: str, teacher: str | None, data: str | None, out: str, ratio: float | None,
          target_params: float | None, target_macs: float | None, steps: int, recover_steps: int, importance: str,
          round_to: int, widths_mode: str, parts: str, recipe: str | None, batch_size: int | None, device: str | None,
          run_dir: str | None, report_path: str | None, latency_seconds: float, threads: int | None,
          quiet: bool) -> None:
    """Prune MODEL's decoder and prior-encoder FFN channels with Torch-Pruning, optionally with
    recovery distillation toward the teacher between steps, and print a before/after report.

    The latent width, enc_p's hidden width, conv_post, the NSF source and the flow are kept, so
    the ONNX interfaces and real-time clients see the same inputs. With --widths rvc (the
    default) the widths stay ones RVC can build, so the file stays in RVC's format; --widths
    free writes distill-rvc's format (per-layer widths), which only `inspect`, `export` and
    `compare` read: the report then says so.
    """
    from .prune.run import PARTS, format_report
    from .prune.run import prune as run_prune

    result = run_prune(model, out, teacher=teacher, data=data, ratio=ratio, steps=steps, importance=importance,
                       round_to=round_to, widths_mode=widths_mode, parts=PARTS if parts == "all" else (parts,),
                       target_params=int(target_params) if target_params else None, target_macs=target_macs,
                       recover_steps=recover_steps, recipe=recipe, batch_size=batch_size, device=device,
                       run_dir=run_dir, report=report_path, latency_seconds=latency_seconds, threads=threads,
                       progress=not quiet)
    click.echo(format_report(result))
    if report_path:
        click.echo(f"report     {report_path}")


def main() -> None:
    cli(prog_name="distill-rvc")


if __name__ == "__main__":
    main()
