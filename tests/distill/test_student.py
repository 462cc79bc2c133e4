"""Student initialisation: exact where the teacher holds a smaller network, closer than random otherwise."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from distill_rvc import Synthesizer
from distill_rvc.distill.recipes import StudentSpec, load_recipe
from distill_rvc.distill.spectral import MelSpectrogram
from distill_rvc.distill.student import build_student, student_config
from examples.make_tiny_teacher import TINY_CONFIG


def _inputs(cfg, frames=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    f0 = 120 + 80 * torch.rand(1, frames, generator=g)
    return dict(phone=torch.randn(1, frames, cfg.phone_dim, generator=g), phone_lengths=torch.tensor([frames]),
                pitch=torch.randint(1, 256, (1, frames), generator=g), pitchf=f0, sid=torch.tensor([0]),
                noise=torch.randn(1, cfg.inter_channels, frames, generator=g), source_noise=False)


def _audio(model, inputs):
    return model.infer(**{**inputs, "noise": inputs["noise"][:, :model.config.inter_channels]})


def test_full_width_student_is_the_teacher(teacher):
    student = build_student(teacher, StudentSpec())
    assert student.config == teacher.config
    for (k, a), b in zip(teacher.state_dict().items(), student.state_dict().values()):
        assert torch.equal(a, b), k
    x = _inputs(teacher.config)
    assert torch.equal(_audio(student, x), _audio(teacher, x))


def _loud_random_model(cfg, seed):
    """Random weights, with the decoder scaled up as the bundled teacher's (a signal worth comparing)."""
    torch.manual_seed(seed)
    model = Synthesizer(cfg).eval()
    with torch.no_grad():
        for layer in model.flow.flows[::2]:
            layer.post.weight.normal_(0.0, 0.05)
        for conv in model.dec.modules():
            if isinstance(conv, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                conv.weight.mul_(8.0)
    return model


def test_a_smaller_network_hidden_in_the_teacher_is_recovered_exactly():
    """Zero a random half of the FFN channels and of every decoder stage's channels, in every
    tensor that writes or reads them (rvc-format.md §1.3). The teacher then *is* a half-width
    network, and a half-width student must pick exactly the live channels of every coupled layer."""
    cfg = TINY_CONFIG.replace(upsample_initial_channel=64)
    teacher = _loud_random_model(cfg, seed=3)
    rng = np.random.default_rng(0)

    def dead(n):
        return torch.from_numpy(np.sort(rng.permutation(n)[: n // 2]))

    sd = teacher.state_dict()
    with torch.no_grad():
        def zero(key, dim, idx):
            sd[key].index_fill_(dim, idx, 0.0)

        for i in range(cfg.n_layers):
            z = dead(cfg.filter_channels)
            zero(f"enc_p.encoder.ffn_layers.{i}.conv_1.weight", 0, z)
            zero(f"enc_p.encoder.ffn_layers.{i}.conv_1.bias", 0, z)
            zero(f"enc_p.encoder.ffn_layers.{i}.conv_2.weight", 1, z)
        z = dead(cfg.upsample_initial_channel)
        for key in ("dec.conv_pre.weight", "dec.conv_pre.bias", "dec.cond.weight", "dec.cond.bias", "dec.ups.0.weight"):
            zero(key, 0, z)
        stages = len(cfg.upsample_rates)
        for i, ch in enumerate(cfg.stage_channels()):
            z = dead(ch)
            zero(f"dec.ups.{i}.weight", 1, z)  # ConvTranspose1d weight: [in, out, k]
            zero(f"dec.ups.{i}.bias", 0, z)
            zero(f"dec.noise_convs.{i}.weight", 0, z)
            zero(f"dec.noise_convs.{i}.bias", 0, z)
            for j in range(3):
                for conv in ("convs1", "convs2"):
                    for m in range(3):
                        key = f"dec.resblocks.{3 * i + j}.{conv}.{m}"
                        zero(f"{key}.weight", 0, z)
                        zero(f"{key}.weight", 1, z)
                        zero(f"{key}.bias", 0, z)
            zero(f"dec.ups.{i + 1}.weight" if i + 1 < stages else "dec.conv_post.weight", 0 if i + 1 < stages else 1, z)

    spec = StudentSpec(filter_channels="0.5x", upsample_initial_channel="0.5x")
    student = build_student(teacher, spec)
    assert student.config.filter_channels == 16 and student.config.stage_channels() == [16, 8, 4, 2]
    x = _inputs(cfg)
    t_out = teacher(**x)
    s_out = student(**x)
    assert torch.allclose(s_out.m_p, t_out.m_p, atol=1e-5)
    assert t_out.audio.abs().max() > 0.01
    assert torch.allclose(s_out.audio, t_out.audio, atol=1e-5)

    # A plain cut to the first half of every layer does not get there.
    naive = Synthesizer(student_config(cfg, spec)).eval()
    with torch.no_grad():
        for key, value in naive.state_dict().items():
            value.copy_(sd[key][tuple(slice(0, n) for n in value.shape)])
    assert not torch.allclose(naive(**x).audio, t_out.audio, atol=1e-3)


def test_phone_projection_is_the_best_low_rank_fit(teacher):
    hidden = teacher.config.hidden_channels
    exact = build_student(teacher, StudentSpec(phone_proj_dim=hidden))
    x = _inputs(teacher.config)
    assert torch.allclose(_audio(exact, x), _audio(teacher, x), atol=1e-5)  # rank H reproduces emb_phone exactly

    low = build_student(teacher, StudentSpec(phone_proj_dim=4))
    folded = (low.enc_p.emb_phone.weight @ low.enc_p.phone_proj.weight).detach().double().numpy()
    w = teacher.enc_p.emb_phone.weight.detach().double().numpy()
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    best = (u[:, :4] * s[:4]) @ vt[:4]  # Eckart-Young: the best rank-4 approximation
    assert np.allclose(folded, best, atol=1e-5)

    fixed = build_student(teacher, StudentSpec(phone_proj_dim=4, phone_proj="fixed"))
    assert not any(p.requires_grad for p in fixed.enc_p.phone_proj.parameters())


@pytest.mark.parametrize("recipe", ["tiny", "2gb"])
def test_init_from_teacher_starts_closer_than_random(teacher, example_data, recipe):
    spec = load_recipe(recipe).student
    seg = example_data[0]
    t = 100
    x = dict(phone=seg.phone[None, :t], phone_lengths=torch.tensor([t]), pitch=seg.pitch[None, :t],
             pitchf=seg.pitchf[None, :t], sid=torch.tensor([0]), noise=torch.randn(1, 192, t), source_noise=False)
    mel = MelSpectrogram.for_model(teacher.config)
    target = mel(_audio(teacher, x))

    def distance(model):
        return float(torch.mean(torch.abs(mel(_audio(model, x)) - target)))

    torch.manual_seed(0)
    from_teacher = distance(build_student(teacher, spec).eval())
    random = [distance(build_student(teacher, spec, init=False).eval()) for _ in range(3)]
    assert from_teacher < 0.75 * min(random), (from_teacher, random)


@pytest.mark.parametrize("spec, fmt", [
    (StudentSpec(hidden_channels="0.5x", phone_proj_dim=4), "distill-rvc model in RVC format"),
    (StudentSpec(n_flows="0.5x", flow_wn_layers="0.67x"), "distill-rvc model (project format, not loadable by RVC)"),
])
def test_students_round_trip_through_their_file_format(tmp_path, teacher, spec, fmt):
    from distill_rvc import load_model, save_model

    student = build_student(teacher, spec).eval()
    saved = save_model(student, tmp_path / "student.pth", metadata={"recipe": "test"}, half=False)
    assert saved.format == fmt
    again = load_model(saved.path)
    assert again.checkpoint.format == fmt and again.checkpoint.metadata["recipe"] == "test"
    x = _inputs(teacher.config)
    assert torch.allclose(_audio(again, x), _audio(student, x), atol=1e-5)  # a phone_proj is folded exactly
