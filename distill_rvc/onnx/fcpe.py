"""FCPE as an ONNX graph: 16 kHz audio [1, N] -> salience [1, N // 160 + 1, 360], in fp32.

    trace_fcpe(fcpe) -> onnx.ModelProto     the whole network, its log-mel front end included
    OnnxFCPE(graph, fcpe, threads)          runs it in onnxruntime; `.infer(audio)` -> F0 in Hz

The graph holds FCPE's front end (reflect pad, STFT, magnitude, mel filterbank, log), its
conv stack and head: torch's dynamo exporter writes `torch.stft` as ONNX's own STFT op
(opset 17+), which the older TorchScript exporter cannot (complex tensors). Decoding
(local argmax, the 50-1100 Hz range) stays in `features.fcpe.FCPE.decode`: it is a few ops
on [T, 360], and sharing it keeps the ONNX F0 the torch F0.

Any `features.fcpe.FCPE` is traced: the shipped fcpe_c_v001.pt or a `teach-f0` student.
Not for: the content encoder's graph (encoder.py) or the synthesizer's (export.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..features.fcpe import FCPE, N_FFT, SAMPLE_RATE
from .export import _quiet, strip_records
from .runtime import session

if TYPE_CHECKING:
    import onnx

AUDIO, SALIENCE = "audio", "salience"


class _Salience(nn.Module):
    def __init__(self, fcpe: FCPE):
        super().__init__()
        self.fcpe = fcpe

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.fcpe(self.fcpe.log_mel(audio))


def trace_fcpe(fcpe: FCPE) -> "onnx.ModelProto":
    """The fp32 graph of `fcpe` on the CPU, N dynamic from one FFT window (1024 samples) up."""
    samples = torch.export.Dim("samples", min=N_FFT)
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(_Salience(fcpe).eval(), (torch.zeros(1, SAMPLE_RATE),), dynamo=True,
                                    opset_version=18, optimize=True, verbose=False, input_names=[AUDIO],
                                    output_names=[SALIENCE], dynamic_shapes=({1: samples},))
    model = program.model_proto
    strip_records(model)
    return model


class OnnxFCPE:
    """An FCPE graph in onnxruntime on the CPU, decoded by the torch model it was traced from."""

    def __init__(self, graph: "onnx.ModelProto", fcpe: FCPE, threads: int = 1):
        self.fcpe, self.session = fcpe, session(graph.SerializeToString(), threads=threads)

    def salience(self, audio_16k: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(audio_16k, dtype=np.float32)[None]
        return self.session.run(None, {AUDIO: x})[0][0]

    def infer(self, audio_16k: np.ndarray) -> np.ndarray:
        """Mono 16 kHz audio [N >= 1024] -> F0 in Hz [N // 160 + 1] (float32, 0 = unvoiced)."""
        return self.fcpe.decode(torch.from_numpy(self.salience(audio_16k)))
