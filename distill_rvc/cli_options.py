"""The click options several commands share, one decorator each, and the CLI's value types.

    hubert_option(help, required)        --hubert / --encoder PATH: the content encoder (any kind)
    f0_options(help, methods, default)   --f0 METHOD (as f0_method), --rmvpe / --fcpe PATH where those are methods
    device_option(default, help)         --device
    threads_option(help, default)        --threads N
    quiet_option(help)                   --quiet: no progress bar
    student_chain_options()              compare's --student-encoder, --student-f0, --no-chain
    teach_encoder_option()               teach's --encoder / --student-encoder PATH: the chain the student is taught in
    Amount                               12000000, 12M or 13.3G -> a float

A command that takes one of these takes it from here, so its name, type and default read the
same everywhere; the help stays the command's own where it says something only that command
means. Checking the values is not done here: options.py does it for the CLI and the Python API alike.
"""
from __future__ import annotations

from typing import Callable, TypeVar

import click

F = TypeVar("F", bound=Callable)

HUBERT_HELP = ("The content encoder (--encoder is the same option): RVC's hubert_base.pt (ContentVec, fairseq "
               "format), an encoder .onnx from `distill-rvc export-encoder`, or a distilled encoder .pt.")
F0_HELP = ("F0 extractor: harvest (accurate, slow), dio (fast, rougher), rmvpe (RVC's default; needs --rmvpe), "
           "fcpe (neural, fast on a CPU; weights from --fcpe or the torchfcpe wheel).")
FCPE_HELP = ("torchfcpe's fcpe_c_v001.pt, for --f0 fcpe [default: $DISTILL_RVC_FCPE, else the installed torchfcpe "
             "wheel's copy: pip install --no-deps torchfcpe==0.0.4].")


def hubert_option(help: str = HUBERT_HELP, required: bool = True) -> Callable[[F], F]:
    return click.option("--hubert", "--encoder", "hubert", required=required, default=None,
                        type=click.Path(dir_okay=False), help=help)


def f0_options(help: str = F0_HELP, methods: tuple[str, ...] = ("harvest", "dio", "rmvpe", "fcpe"),
               default: str = "harvest") -> Callable[[F], F]:
    f0 = click.option("--f0", "f0_method", type=click.Choice(list(methods)), default=default, show_default=True,
                      help=help)
    rmvpe = click.option("--rmvpe", type=click.Path(dir_okay=False), default=None,
                         help="RVC's rmvpe.pt, for --f0 rmvpe.")
    fcpe = click.option("--fcpe", type=click.Path(dir_okay=False), default=None, help=FCPE_HELP)

    def options(command: F) -> F:
        command = fcpe(command) if "fcpe" in methods else command
        return f0(rmvpe(command) if "rmvpe" in methods else command)
    return options


def student_chain_options() -> Callable[[F], F]:
    encoder = click.option("--student-encoder", type=click.Path(dir_okay=False), default=None,
                           help="The content encoder the student converts with (a distilled encoder .pt or an "
                                "encoder .onnx) [default: the teacher's --hubert]. Its features feed the student "
                                "in fidelity and in the whole-chain table.")
    f0 = click.option("--student-f0", default=None, metavar="METHOD[:MODEL]",
                      help="The student's F0, e.g. fcpe or fcpe:f0.pt (a teach-f0 student) [default: --f0].")
    chain = click.option("--no-chain", is_flag=True,
                         help="Skip the whole-chain table (encoder + F0 + synthesizer of each, stage by stage).")
    return lambda command: encoder(f0(chain(command)))


def teach_encoder_option() -> Callable[[F], F]:
    return click.option(
        "--encoder", "--student-encoder", "encoder", type=click.Path(dir_okay=False), default=None,
        help="Distil the chain you will run: the student hears this small content encoder's features (encoder.pt "
             "from `teach-encoder`, or its .onnx) while the teacher hears the cache's HuBERT features, and it is "
             "judged on the audio. They are computed once from the cache's audio (OUT/student_features); the "
             "student file records the encoder, --resume refuses another one. Its version and width must be the "
             "teacher's [default: none: the student hears HuBERT too].")


def device_option(default: str | None = "cpu", help: str = "cpu, cuda, cuda:1 or auto.") -> Callable[[F], F]:
    return click.option("--device", default=default, show_default=default is not None, help=help)


def threads_option(help: str, default: int | None = None) -> Callable[[F], F]:
    return click.option("--threads", type=int, default=default, show_default=default is not None, help=help)


def quiet_option(help: str = "No progress bar.") -> Callable[[F], F]:
    return click.option("--quiet", is_flag=True, help=help)


class Amount(click.ParamType):
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
