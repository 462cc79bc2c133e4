"""The `distill-rvc` command line: thin click wrappers over the Python API.

Every command is a function of the package you can call from Python; this module only
parses options, formats results and turns `DistillRVCError` into one line on stderr with
exit code 2 (no traceback). The commands' modules are imported here at the top: importing
the package (distill_rvc/__init__.py) imports each of them anyway.
"""
from __future__ import annotations

import errno
import json
import logging
import sys

import click
from tqdm.contrib.logging import logging_redirect_tqdm

from .atomic import write_json
from .bench import BenchSettings, bench as run_bench, format_bench
from .chain import Chain, ChainSettings, bench_chain, format_chain
from .chunking import ChunkSizes
from .cli_export import export, export_encoder_command
from .cli_options import (Amount, device_option, f0_options, hubert_option, quiet_option, student_chain_options,
                          teach_encoder_option, threads_option)
from .compare import CompareSettings, compare as run_compare, format_compare
from .distill.planner import format_plans, format_recipes, plan as run_plan, recipe_table
from .distill.teach import TeachSettings, format_teach, teach as run_teach
from .distill.train_state import Interrupted
from .convert import ConvertSettings, convert as run_convert, format_convert
from .data.prepare import PrepareSettings, format_prepare, prepare as run_prepare
from .data.rvc_logs import ImportRVCLogsSettings, format_import_rvc_logs, import_rvc_logs as run_import
from .errors import DistillRVCError
from .inspect_model import InspectSettings, format_inspect, inspect as run_inspect
from .prune import PruneSettings, format_prune, prune as run_prune
from .prune.widths import PARTS
from .cli_teach_many import teach_many
from .cli_teach_encoder import teach_encoder
from .cli_teach_f0 import teach_f0


class _Group(click.Group):
    """Runs a command; user errors become `error: ...` and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DistillRVCError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except Interrupted as e:  # a training loop saved a checkpoint first (prune's recovery; teach says more)
            click.echo(f"interrupted: {e}", err=True)
            sys.exit(e.exit_code)
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
    info = run_inspect(model, InspectSettings(memory=not no_memory))
    click.echo(json.dumps(info, indent=2) if as_json else format_inspect(info))


# --------------------------------------------------------------------------- prepare, import-rvc-logs
@cli.command()
@click.argument("audio_dir", type=click.Path())
@hubert_option()
@click.option("--version", type=click.Choice(["v1", "v2"]), default="v2", show_default=True,
              help="The teacher's RVC version: v1 = 256-d features (layer 9), v2 = 768-d (layer 12).")
@f0_options("F0 extractor: harvest (accurate, slow), dio (fast), rmvpe (needs --rmvpe), fcpe (see --fcpe).")
@click.option("--sr", type=click.Choice(["32000", "40000", "48000"]), default="40000", show_default=True,
              help="The teacher's sample rate; target audio is stored at this rate.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Cache folder to create or resume (memory-mapped .npy segments + manifest.json).")
@device_option("auto", "Where the content encoder and RMVPE run: auto, cpu, cuda, cuda:1, ...")
@click.option("--window", type=float, default=3.7, show_default=True,
              help="Segment length in seconds (RVC: 3.7; 3.0 for GPUs of 4 GB or less).")
@quiet_option()
def prepare(audio_dir: str, hubert: str, version: str, f0_method: str, rmvpe: str | None, fcpe: str | None, sr: str,
            out: str, device: str, window: float, quiet: bool) -> None:
    """Prepare the recordings in AUDIO_DIR (WAV, FLAC, OGG, MP3; any rate, mono or stereo) into a
    training cache, as RVC's preprocess and feature extraction do: slice at silences, 3.7 s
    windows, content features, F0 and coarse pitch.

    Re-running resumes: finished files are skipped. Unusable files are reported by name and skipped.
    """
    settings = PrepareSettings(version=version, f0_method=f0_method, sr=int(sr), rmvpe=rmvpe, fcpe=fcpe,
                               device=device, window_s=window)
    click.echo(format_prepare(run_prepare(audio_dir, out, hubert, settings, progress=not quiet)))


@cli.command("import-rvc-logs")
@click.argument("exp_dir", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Cache folder to create or resume (the same format `prepare` writes).")
@click.option("--version", type=click.Choice(["v1", "v2"]), default=None,
              help="Only if the folder has both 3_feature256/ and 3_feature768/ and no filelist.txt.")
@quiet_option()
def import_rvc_logs(exp_dir: str, out: str, version: str | None, quiet: bool) -> None:
    """Import an RVC experiment folder EXP_DIR (logs/<exp>: 0_gt_wavs, 2a_f0, 2b-f0nsf,
    3_feature256|768, filelist.txt) into a training cache without recomputing anything.
    """
    result = run_import(exp_dir, out, ImportRVCLogsSettings(version=version), progress=not quiet)
    click.echo(format_import_rvc_logs(result))


cli.add_command(export)  # export and export-encoder: cli_export.py (cli.py is at the layout's 450 lines)
cli.add_command(export_encoder_command)


# ---------------------------------------------------------------------------- teach, plan, recipes
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
              help="Override the recipe's batch size (no accumulation); the global batch: under torchrun each of N "
                   "processes takes batch/N items (the first batch%N one more), so a step is the same whatever N.")
@click.option("--key", type=float, default=None,
              help="Shift the data's F0 by this many semitones, to move a source voice into the teacher's range "
                   "(as RVC's transpose; overrides the recipe's [train] key).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its newest checkpoint.")
@click.option("--checkpoint-every", default=None, metavar="N|TIME",
              help="Checkpoint every N steps (e.g. 500), or at least every TIME of wall clock (90s, 10m, 1h); "
                   "the other interval stays. Checkpoints are written every 10 minutes and every recipe "
                   "checkpoint_every steps, whichever comes first, at the end, and on Ctrl-C or SIGTERM.")
@click.option("--teacher-cache/--no-teacher-cache", default=None,
              help="Compute the teacher's outputs once per crop and noise seed (in OUT/teacher_cache), so a step "
                   "runs only the student [default: the recipe's teacher_cache, \"auto\"].")
@teach_encoder_option()
@device_option(None, "cuda, cuda:1 or cpu [default: cuda if available].")
@click.option("--no-budget-check", is_flag=True,
              help="Start even if the memory plan exceeds the recipe's budget (an OOM halves the micro-batch).")
@threads_option("CPU threads [default: torch's; under torchrun, the cores divided among the processes].")
@quiet_option()
def teach(teacher: str, recipe: str, data: str, out: str | None, steps: int | None, batch_size: int | None,
          key: float | None, resume: bool, checkpoint_every: str | None, teacher_cache: bool | None,
          encoder: str | None, device: str | None, no_budget_check: bool, threads: int | None, quiet: bool) -> None:
    """Distil TEACHER into a slim student with a recipe; writes OUT/<teacher>_<recipe>.pth.

    The name starts with the teacher's, so RVC still pairs the student with the voice's index
    (myvoice.pth -> myvoice_4gb.pth). A student RVC cannot build is written as .drvc.pt.

    The student is initialised from the teacher's most important channels, trained to match
    its waveform, mel, prior, latent and decoder features, logged to TensorBoard
    (`tensorboard --logdir runs`) and checkpointed; --resume continues exactly.
    Ctrl-C or SIGTERM finishes the current step, saves a checkpoint and exits (130 or 143).
    Several GPUs: `torchrun --nproc-per-node N -m distill_rvc teach ...` (gloo on CPUs); rank 0
    alone writes and prints, and --resume works with any N.
    """
    settings = TeachSettings(recipe=recipe, steps=steps, batch_size=batch_size, key=key, resume=resume, device=device,
                             check_budget=not no_budget_check, progress=not quiet, checkpoint_every=checkpoint_every,
                             teacher_cache=teacher_cache, threads=threads, encoder=encoder)
    try:
        result = run_teach(teacher, data, out, settings)
    except Interrupted as e:
        click.echo(f"interrupted: {e}; run the same command with --resume to continue", err=True)
        sys.exit(e.exit_code)
    if result.main:  # under torchrun, rank 0 speaks for all
        click.echo(format_teach(result))


cli.add_command(teach_many)  # in cli_teach_many.py: cli.py is at the layout's 450 lines
cli.add_command(teach_encoder)  # in cli_teach_encoder.py: cli.py is at the layout's 450 lines
cli.add_command(teach_f0)  # in cli_teach_f0.py, likewise


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
    result = run_plan(teacher, recipe_names)
    click.echo(json.dumps(result.to_json(), indent=2) if as_json else format_plans(result))


@cli.command()
@click.option("--teacher", default=None, type=click.Path(dir_okay=False),
              help="Size the students for this teacher [default: RVC's v2 40k architecture].")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def recipes(teacher: str | None, as_json: bool) -> None:
    """List the shipped recipes with their student's size and cost for a teacher."""
    rows = recipe_table(teacher)
    click.echo(json.dumps(rows, indent=2) if as_json else format_recipes(rows))


# ---------------------------------------------------------------------------- convert, compare, bench
@cli.command()
@click.option("--model", required=True, type=click.Path(dir_okay=False),
              help="The voice model: RVC .pth, a distill-rvc student, or an exported .onnx (either interface).")
@hubert_option()
@click.option("--input", "src", required=True, type=click.Path(),
              help="An audio file (WAV, FLAC, OGG, MP3; any rate, mono or stereo) or a folder of them.")
@click.option("--output", "dst", required=True, type=click.Path(),
              help="The output .wav, or a folder (mirrors the input folder's tree, one .wav per file).")
@f0_options(default="fcpe")  # 7.8x faster than harvest at 1 thread, 1 c median error on a sweep: bench_f0.py
@click.option("--transpose", type=float, default=0.0, show_default=True,
              help="Pitch shift in semitones (12 = an octave up, e.g. a male voice into a female model).")
@click.option("--sid", type=int, default=0, show_default=True, help="Speaker id (0 for single-speaker models).")
@click.option("--index", type=click.Path(dir_okay=False), default=None,
              help="The voice's faiss .index (RVC's added_IVF*.index); needs the faiss extra.")
@click.option("--index-rate", type=float, default=0.75, show_default=True,
              help="How much of the retrieved training features to blend in (0 = none, 1 = all).")
@click.option("--protect", type=float, default=0.33, show_default=True,
              help="Keep this much retrieval on unvoiced consonants and breaths (0.5 = no protection).")
@device_option()
@threads_option("CPU threads for torch and onnxruntime [default: all].")
@click.option("--memory-gb", type=float, default=4.0, show_default=True,
              help="Memory budget that sets the chunk length (model and content encoder, measured per model).")
@click.option("--chunk-seconds", type=float, default=None,
              help="Cut long inputs into chunks of about this many seconds instead (1 s of context each side).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the prior noise, so a conversion can be repeated exactly; -1 = fresh noise.")
@quiet_option()
def convert(model: str, hubert: str, src: str, dst: str, f0_method: str, rmvpe: str | None, fcpe: str | None,
            transpose: float, sid: int, index: str | None, index_rate: float, protect: float, device: str,
            threads: int | None, memory_gb: float, chunk_seconds: float | None, seed: int, quiet: bool) -> None:
    """Convert speech in --input into the voice of --model, as RVC does: content features and
    F0 of the input, optional retrieval from the voice's index, then the synthesizer.

    Long inputs are cut at quiet moments into chunks sized for --memory-gb, with context on
    both sides and short cross-fades, so memory stays bounded on any length. The output is a
    16-bit WAV at the model's sample rate with exactly the input's duration.
    """
    settings = ConvertSettings(f0_method=f0_method, rmvpe=rmvpe, fcpe=fcpe, transpose=transpose, sid=sid,
                               index=index, index_rate=index_rate, protect=protect, memory_gb=memory_gb,
                               chunks=ChunkSizes.from_option(chunk_seconds), seed=None if seed < 0 else seed)
    result = run_convert(model, hubert, src, dst, settings, device=device, threads=threads, progress=not quiet)
    click.echo(format_convert(result))


@cli.command()
@click.option("--teacher", required=True, type=click.Path(dir_okay=False), help="The teacher, big.pth.")
@click.option("--student", required=True, type=click.Path(dir_okay=False),
              help="The student: a .pth, or an .onnx (an RVC-interface file for fidelity; w-okada: size and speed).")
@click.option("--audio", required=True, type=click.Path(),
              help="A folder of speech clips (or one file) to convert with both models.")
@hubert_option()
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Report folder: report.md, report.json, PNG plots, tensorboard/.")
@f0_options()
@click.option("--transpose", type=float, default=0.0, show_default=True, help="Pitch shift in semitones.")
@click.option("--sid", type=int, default=0, show_default=True, help="Speaker id.")
@click.option("--max-clips", type=int, default=8, show_default=True, help="Use at most this many clips.")
@click.option("--max-clip-seconds", type=float, default=20.0, show_default=True,
              help="Use at most this many seconds of each clip.")
@threads_option("CPU threads for torch and onnxruntime (the reference machine has 2).", default=2)
@click.option("--runs", type=int, default=3, show_default=True, help="Timed runs per speed figure (median kept).")
@click.option("--no-ort", is_flag=True, help="Skip onnxruntime timings (they export each .pth to ONNX first).")
@student_chain_options()
@quiet_option()
def compare(teacher: str, student: str, audio: str, hubert: str, out: str, f0_method: str, rmvpe: str | None,
            fcpe: str | None, transpose: float, sid: int, max_clips: int, max_clip_seconds: float, threads: int,
            runs: int, no_ort: bool, student_encoder: str | None, student_f0: str | None, no_chain: bool,
            quiet: bool) -> None:
    """Put --student beside --teacher on the same clips: size, MACs, CPU/GPU real-time factor
    (torch and onnxruntime), peak memory, and fidelity (log-mel L1, MCD, F0 RMSE, V/UV; SECS
    and DNSMOS when resemblyzer / speechmos are installed), with a one-line verdict against
    the project's targets and the recipe to try next.

    Both models get identical inputs and noise. Anything that cannot be measured here (no
    GPU, a w-okada ONNX student's fidelity, ...) is null in report.json and explained in report.md.
    """
    settings = CompareSettings(f0_method=f0_method, rmvpe=rmvpe, fcpe=fcpe, transpose=transpose, sid=sid,
                               max_clips=max_clips, max_clip_s=max_clip_seconds, threads=threads, runs=runs,
                               ort=not no_ort, student_encoder=student_encoder, student_f0=student_f0,
                               chain=not no_chain)
    click.echo(format_compare(run_compare(teacher, student, audio, hubert, out, settings, progress=not quiet)))


@cli.command()
@click.option("--model", "models", multiple=True, type=click.Path(dir_okay=False),
              help="A .pth (torch) or .onnx (onnxruntime) model; repeat to compare several side by side.")
@click.option("--chain", "chains", multiple=True, metavar="SPEC",
              help="Instead of --model: a whole conversion chain, timed stage by stage (params, MB, GFLOP/s, RTF "
                   "at 1 and 2 threads, total, ratio to the first chain): 'model=big.pth,encoder=hubert_base.pt,"
                   "f0=rmvpe:rmvpe.pt' or 'model=tiny.pth,encoder=encoder.pt,f0=fcpe,runtime=onnxruntime'. Repeat.")
@device_option()
@threads_option("CPU threads for torch and onnxruntime (0 = all).", default=2)
@click.option("--runs", type=int, default=5, show_default=True, help="Timed runs per figure (the median is kept).")
@click.option("--warmup", type=int, default=1, show_default=True, help="Untimed runs before the timed ones.")
@click.option("--batch", type=int, default=8, show_default=True, help="Items of 1 s in the throughput batch.")
@click.option("--chunk", "chunk_s", type=float, default=0.5, show_default=True,
              help="Streaming chunk length in seconds.")
@click.option("--context", "context_s", type=float, default=1.0, show_default=True,
              help="Seconds of past audio sent along with each streaming chunk after the first.")
@hubert_option("Include content features (this content encoder: hubert_base.pt, an encoder .onnx or a "
               "distilled encoder .pt; --encoder is the same option) and F0 in the streaming figures.", required=False)
@f0_options("F0 extractor for the streaming figures (with --hubert).", ("harvest", "dio", "fcpe"), "dio")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON result instead of the table.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the JSON result here.")
def bench(models: tuple[str, ...], chains: tuple[str, ...], device: str, threads: int, runs: int, warmup: int, batch: int, chunk_s: float,
          context_s: float, hubert: str | None, f0_method: str, fcpe: str | None, as_json: bool,
          out: str | None) -> None:
    """Time models side by side: latency and real-time factor on 1 s and 10 s inputs, batch
    throughput, and streaming (time to first audio and per-chunk time for 0.5 s chunks).

    Medians over --runs after --warmup, the models taking turns. The JSON (--json, --out)
    has the same keys for every model, so results compare across models and machines.
    """
    if chains:
        result = bench_chain([Chain.parse(c) for c in chains], ChainSettings(runs=runs, warmup=warmup))
        if out:
            write_json(out, result)
        return click.echo(json.dumps(result, indent=2) if as_json else format_chain(result))
    settings = BenchSettings(device=device, threads=threads, runs=runs, warmup=warmup, batch=batch, chunk_s=chunk_s,
                             context_s=context_s, hubert=hubert, f0_method=f0_method, fcpe=fcpe)
    result = run_bench(list(models), settings)
    if out:
        write_json(out, result)
    click.echo(json.dumps(result, indent=2) if as_json else format_bench(result))


# ---------------------------------------------------------------------------- prune
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
@click.option("--target-params", type=Amount(), default=None,
              help="Instead of --ratio: the smallest ratio that brings the model to at most this many parameters "
                   "(e.g. 12M).")
@click.option("--target-macs", type=Amount(), default=None,
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
@device_option(None, "Where recovery runs: cuda, cuda:1 or cpu [default: cuda if available].")
@click.option("--run-dir", default=None, type=click.Path(file_okay=False),
              help="Folder for recovery's TensorBoard logs and checkpoints [default: runs/prune-<out>-<time>].")
@click.option("--report", "report_path", default=None, type=click.Path(dir_okay=False),
              help="Also write the before/after report as JSON here.")
@click.option("--latency-seconds", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Seconds of audio for the CPU latency before/after (0 skips the timing).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for the latency timing.")
@quiet_option("No progress bars.")
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
    settings = PruneSettings(ratio=ratio, steps=steps, importance=importance, round_to=round_to,
                             widths_mode=widths_mode, parts=PARTS if parts == "all" else (parts,),
                             target_params=int(target_params) if target_params else None, target_macs=target_macs,
                             recover_steps=recover_steps, recipe=recipe, batch_size=batch_size, device=device,
                             latency_seconds=latency_seconds, threads=threads)
    result = run_prune(model, out, settings, teacher=teacher, data=data, run_dir=run_dir, report=report_path,
                       progress=not quiet)
    click.echo(format_prune(result))
    if report_path:
        click.echo(f"report     {report_path}")


def main() -> None:
    cli(prog_name="distill-rvc")


if __name__ == "__main__":
    main()
