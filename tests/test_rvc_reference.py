"""Teachers read by distill-rvc synthesize what RVC synthesizes (issue 11, item 1).

Real-config teachers (v2 40k f0, v2 32k f0, v1 48k no-f0) are written as RVC writes them
(fp16 `weight`, legacy weight_g/weight_v) and loaded with `load_model`; with the prior noise
given and the NSF noise off, `model.infer` must match tests/fixtures/rvc_reference.py (an independent
functional fp32 RVC, from rvc-format.md §1) to 1e-5 on the audio.

The teachers' weight-norm magnitudes g (each filter's norm) are drawn in [0.5, 1.5], about
a trained model's scale (RVC's trained files have ~0.5-0.6 per filter) or a little above.
At the init scale (Normal(0, 0.01) weights) the convs are so weak that rounding the folded
weights to fp16 moves the audio by only ~4e-6, and the parity check could not tell the
fp16 fold from the fp32 one; at g ~ 0.55 it moves it by ~3e-5, at [0.5, 1.5] by ~1e-4.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from distill_rvc import load_model, read_checkpoint, rvc_config
from tests.fixtures.rvc_files import rvc_state_dict, write_inference
from tests.fixtures.rvc_reference import coarse_pitch, fold_weight_norm, rvc_infer

TOL = 1e-5
CONFIGS = {
    "v2-40k-f0": (("v2", 40000, True), 2, 48),  # batch 2 (second item shorter: masks), 48 frames
    "v2-32k-f0": (("v2", 32000, True), 1, 48),
    "v1-48k-nof0": (("v1", 48000, False), 1, 40),
}


def _teacher(path: Path, config, seed: int) -> Path:
    sd = rvc_state_dict(config, with_posterior=False, seed=seed)
    gen = torch.Generator().manual_seed(seed + 100)
    for key in sd:
        if key.endswith(".weight_g"):
            sd[key] = 0.5 + torch.rand(sd[key].shape, generator=gen)
    return write_inference(path, config, sd=sd)


def _inputs(config, batch: int, frames: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    phone = torch.randn(batch, frames, config.phone_dim, generator=gen)
    f0 = torch.linspace(90.0, 420.0, frames).repeat(batch, 1) * (1 + 0.05 * torch.rand(batch, frames, generator=gen))
    f0[:, 9:14] = 0.0  # an unvoiced stretch
    lengths = torch.tensor([frames - 8 * i for i in range(batch)])
    noise = torch.randn(batch, config.inter_channels, frames, generator=gen)
    sid = torch.zeros(batch, dtype=torch.long)
    return phone, lengths, coarse_pitch(f0), f0, sid, noise


@pytest.fixture(scope="module", params=list(CONFIGS))
def case(request, tmp_path_factory):
    (version, sr, f0), batch, frames = CONFIGS[request.param]
    config = rvc_config(version, sr, f0)
    path = _teacher(tmp_path_factory.mktemp(request.param) / "teacher.pth", config, seed=len(request.param))
    file = torch.load(path, weights_only=True)
    inputs = _inputs(config, batch, frames, seed=7)
    return request.param, config, path, file, inputs, rvc_infer(file, *inputs)


def _ours(model, config, inputs):
    phone, lengths, pitch, pitchf, sid, noise = inputs
    with torch.no_grad():
        return model.infer(phone, lengths, pitch if config.f0 else None, pitchf if config.f0 else None, sid,
                           noise=noise, source_noise=False)


def test_teacher_audio_matches_rvc_reference(case):
    name, config, path, file, inputs, ref = case
    assert file["weight"]["emb_g.weight"].dtype == torch.float16  # as RVC writes it
    model = load_model(path)
    audio = _ours(model, config, inputs)
    assert audio.shape == ref.shape == (inputs[0].shape[0], 1, inputs[0].shape[1] * model.hop_length)
    assert ref.abs().max() > 0.1  # a real signal, not near-silence
    assert (audio - ref).abs().max().item() <= TOL


def test_fp16_rounded_fold_is_not_rvc(case):
    """What distill-rvc did before: folded weights rounded to the file's fp16. The parity test
    above must be able to see that."""
    name, config, path, file, inputs, ref = case
    if name != "v2-40k-f0":
        pytest.skip("one config is enough to show the check discriminates")
    model = load_model(path)
    weight_normed = {k[: -len("_g")] for k in file["weight"] if k.endswith(".weight_g")}
    with torch.no_grad():
        for key, param in model.state_dict().items():
            if key in weight_normed:
                param.copy_(param.half().float())
    old = _ours(model, config, inputs)
    assert (old - ref).abs().max().item() > 5 * TOL


def test_fold_is_fp32_formula(case):
    name, config, path, file, inputs, ref = case
    weights = read_checkpoint(path).weights
    stored = file["weight"]
    pairs = [k[: -len(".weight_g")] for k in stored if k.endswith(".weight_g")]
    assert pairs and all(stored[p + ".weight_v"].dtype == torch.float16 for p in pairs)
    for prefix in pairs:
        folded = weights[prefix + ".weight"]
        assert folded.dtype == torch.float32
        want = fold_weight_norm(stored[prefix + ".weight_g"], stored[prefix + ".weight_v"])
        assert torch.allclose(folded, want, rtol=1e-6, atol=1e-9)
        # and it is not representable in fp16: the fold kept its fp32 precision
        assert not torch.equal(folded, folded.half().float())
    for key, value in stored.items():  # everything else is the file's tensor, untouched
        if not key.endswith((".weight_g", ".weight_v")):
            assert torch.equal(weights[key], value)


def test_fold_of_fp32_file_stays_fp32(tmp_path):
    """A training checkpoint (fp32) folds the same way: float32 out, equal to the formula."""
    from tests.fixtures.rvc_files import write_training
    config = rvc_config("v2", 40000, True)
    path = write_training(tmp_path / "G_100.pth", config)
    stored = torch.load(path, weights_only=True)["model"]
    weights = read_checkpoint(path).weights
    for prefix in ("dec.ups.0", "flow.flows.0.enc.in_layers.0", "enc_q.enc.cond_layer"):
        assert weights[prefix + ".weight"].dtype == torch.float32
        want = fold_weight_norm(stored[prefix + ".weight_g"], stored[prefix + ".weight_v"])
        assert torch.allclose(weights[prefix + ".weight"], want, rtol=1e-6, atol=1e-9)


def test_reference_is_independent():
    """The reference must not share code with what it checks."""
    lines = (Path(__file__).parent / "fixtures" / "rvc_reference.py").read_text().splitlines()
    imports = [ln for ln in lines if ln.startswith(("import ", "from "))]
    assert imports and not any("distill_rvc" in ln or "rvc_files" in ln for ln in imports)


def _shared_teacher() -> Path:
    root = Path(os.environ.get("DISTILL_RVC_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    return root / "teachers" / "ref_v2_40k.pth"


@pytest.mark.slow
@pytest.mark.skipif(not _shared_teacher().is_file(), reason="no ../shared/teachers/ref_v2_40k.pth "
                    "(set DISTILL_RVC_SHARED to the shared folder)")
def test_trained_teacher_matches_rvc_reference():
    """The shared *trained* RVC teacher (RVC's own training code wrote it)."""
    path = _shared_teacher()
    file = torch.load(path, weights_only=True)
    config = read_checkpoint(path).config
    inputs = _inputs(config, 1, 48, seed=3)
    ref = rvc_infer(file, *inputs)
    assert (_ours(load_model(path), config, inputs) - ref).abs().max().item() <= TOL
