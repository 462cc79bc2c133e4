"""The student encoder: HuBERT's frame count, the default recipe's budget (counted FLOPs
against a hand count), ONNX export with a dynamic length."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from distill_rvc.encoder import RECIPES, EncoderArch, StudentEncoder, count_cost
from distill_rvc.errors import DistillRVCError
from distill_rvc.features.content import load_content_encoder


@pytest.mark.parametrize("samples", [400, 401, 719, 720, 16000, 16321])
def test_student_gives_hubert_frame_count(small_hubert, samples):
    teacher = load_content_encoder(small_hubert)
    student = StudentEncoder(EncoderArch(n_mels=20, dim=16, blocks=1, out_dim=64)).eval()
    audio = np.random.default_rng(samples).standard_normal(samples).astype(np.float32) * 0.1
    expected = teacher.extract(audio, "v2").shape
    assert student.extract(audio, "v2").shape == expected
    assert student.frames(samples) == expected[0] == (samples - 400) // 320 + 1


def test_student_refuses_short_audio_and_other_version():
    student = StudentEncoder(EncoderArch(n_mels=20, dim=16, blocks=1))
    with pytest.raises(DistillRVCError, match="shorter than one content frame"):
        student.extract(np.zeros(399, np.float32), "v2")
    with pytest.raises(DistillRVCError, match="trained for v2"):
        student.dim("v1")
    assert student.frames(399) == 0 and student.min_samples == 400 and student.kind == "student"


def hand_flops_per_second(a: EncoderArch) -> float:
    """2 FLOPs per multiply-add of each conv and matmul, for one second (100 mel, 50 output frames)."""
    mel = 100 * (402 * 400 + a.n_mels * 201)  # STFT basis conv, mel matmul
    conv_in = 50 * a.n_mels * 3 * a.dim
    block = 50 * (a.dim * a.kernel + 2 * a.dim * a.dim * a.expansion)
    head = 50 * a.dim * a.out_dim
    return 2.0 * (mel + conv_in + a.blocks * block + head)


def test_default_recipe_meets_the_budget_by_counted_flops():
    arch = RECIPES["default"].model
    cost = count_cost(StudentEncoder(arch))
    assert cost.params <= 4_000_000
    assert cost.gflops <= 0.5
    # the counter and the hand count agree to the edge frames
    assert cost.flops_per_second == pytest.approx(hand_flops_per_second(arch), rel=0.01)


def test_onnx_export_with_dynamic_length_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = StudentEncoder(EncoderArch(n_mels=20, dim=16, blocks=2, out_dim=32)).eval()
    path = tmp_path / "enc.onnx"
    torch.onnx.export(model, (torch.randn(1, 16000),), str(path), dynamo=False, opset_version=17,
                      input_names=["audio"], output_names=["features"],
                      dynamic_axes={"audio": {0: "batch", 1: "samples"}, "features": {0: "batch", 1: "frames"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (400, 12345):
        audio = torch.randn(1, n) * 0.1
        got = session.run(None, {"audio": audio.numpy()})[0]
        want = model(audio).detach().numpy()
        assert got.shape == want.shape == (1, (n - 400) // 320 + 1, 32)
        np.testing.assert_allclose(got, want, atol=1e-4)
