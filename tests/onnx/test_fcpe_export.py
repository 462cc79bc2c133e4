"""FCPE's ONNX graph (onnx/fcpe.py) against the torch module, on the real shipped weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from distill_rvc.features.fcpe import FCPE, FCPEConfig, load_fcpe
from distill_rvc.onnx.fcpe import OnnxFCPE, trace_fcpe
from tests.features.test_fcpe import WEIGHTS, needs_weights
from tests.fixtures.audio import speech_like


@pytest.fixture(scope="module")
def shipped():
    torch.set_num_threads(1)
    model = load_fcpe(WEIGHTS)
    return model, OnnxFCPE(trace_fcpe(model), model, threads=1)


@needs_weights
@pytest.mark.parametrize("samples", [1024, 16000, 16123, 48000])
def test_salience_and_f0_match_torch_at_any_length(shipped, samples):
    """One graph for every length: the front end's padding and frame count are not baked in."""
    model, graph = shipped
    audio = speech_like(16000, samples / 16000 + 0.01, seed=samples)[:samples].astype(np.float32)
    want = model.salience(audio).numpy()
    got = graph.salience(audio)
    assert got.shape == want.shape == (samples // 160 + 1, 360)
    assert np.abs(got - want).max() < 1e-4
    f0_torch, f0_onnx = model.infer(audio), graph.infer(audio)
    assert samples < 16000 or (f0_torch > 0).mean() > 0.3
    assert np.array_equal(f0_torch > 0, f0_onnx > 0)
    voiced = f0_torch > 0
    assert np.abs(1200 * np.log2(f0_onnx[voiced] / f0_torch[voiced])).max() < 1.0


def test_a_slim_student_exports_too():
    """teach-f0's students are the same class at other sizes (random weights: parity only)."""
    torch.manual_seed(0)
    model = FCPE(FCPEConfig(hidden=64, layers=2)).eval()
    audio = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    got = OnnxFCPE(trace_fcpe(model), model).salience(audio)
    assert np.abs(got - model.salience(audio).numpy()).max() < 1e-4
