"""Staged distillation (stages.py): the block-wise pass feeds each block the teacher's input,
the stages follow the recipe, and a run logs them."""
from __future__ import annotations

import copy

import pytest
import torch

from distill_rvc import DistillRVCError
from distill_rvc.distill.batches import Batches, split_eval
from distill_rvc.distill.losses import capture
from distill_rvc.distill.recipes import LossConfig, load_recipe
from distill_rvc.distill.stages import forced_forward, stage_at
from distill_rvc.distill.student import build_student
from distill_rvc.distill.trainer import train
from tests.fixtures.distill_helpers import quick_recipe


def _batch(teacher, data, cfg):
    train_idx, _ = split_eval(data, cfg.eval_items, cfg.seed, cfg.segment_frames)
    return Batches(data, train_idx, cfg, teacher.config.inter_channels, teacher.config.hop_length,
                   teacher.config.f0).draw(1)


def test_forced_pass_of_the_teacher_is_the_teacher(teacher, example_data):
    """Fed its own intermediates, the teacher reproduces its own output: z_p is rebuilt exactly."""
    teacher.eval()
    b = _batch(teacher, example_data, quick_recipe("tiny").train)
    with torch.no_grad():
        out = teacher(b.phone, b.lengths, b.pitch, b.pitchf, b.sid, noise=b.noise, source_noise=False)
        forced = forced_forward(teacher, b, out, b.noise)
    for name in ("audio", "z", "z_p", "m_p", "logs_p"):
        torch.testing.assert_close(getattr(forced, name), getattr(out, name), rtol=1e-5, atol=1e-5, msg=name)


def test_forced_blocks_learn_apart(teacher, example_data):
    """In the block-wise pass the decoder's output does not depend on enc_p or the flow, and the
    waveform's loss reaches the decoder alone; end to end it reaches all three."""
    teacher.eval()
    b = _batch(teacher, example_data, quick_recipe("tiny").train)
    with torch.no_grad():
        t_out = teacher(b.phone, b.lengths, b.pitch, b.pitchf, b.sid, noise=b.noise, source_noise=False)
    student = build_student(teacher, load_recipe("tiny").student)

    def grads(forced: bool) -> dict[str, bool]:
        student.zero_grad(set_to_none=True)
        out = forced_forward(student, b, t_out, b.noise) if forced else \
            student(b.phone, b.lengths, b.pitch, b.pitchf, b.sid, noise=b.noise, source_noise=False)
        (out.audio - t_out.audio).abs().mean().backward()
        return {part: any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(student, part).parameters())
                for part in ("enc_p", "flow", "dec")}

    assert grads(forced=True) == {"enc_p": False, "flow": False, "dec": True}
    assert grads(forced=False) == {"enc_p": True, "flow": True, "dec": True}
    before = forced_forward(student, b, t_out, b.noise).audio.detach()
    with torch.no_grad():
        for p in student.enc_p.parameters():
            p.add_(torch.randn_like(p))
    torch.testing.assert_close(forced_forward(student, b, t_out, b.noise).audio, before)


def test_stages_follow_the_recipe():
    cfg = LossConfig(blockwise_steps=3, adversarial_start=6)
    assert [stage_at(cfg, s) for s in (1, 3, 4, 5, 6, 9)] == \
        ["blockwise", "blockwise", "end-to-end", "end-to-end", "adversarial", "adversarial"]
    assert stage_at(cfg, 9, adversarial=False) == "end-to-end"
    assert stage_at(LossConfig(blockwise_steps=5, adversarial_start=0), 5) == "blockwise"  # block-wise comes first
    assert stage_at(LossConfig(blockwise_steps=5, adversarial_start=0), 6) == "adversarial"
    with pytest.raises(DistillRVCError, match=r"\[loss\] blockwise_steps must not be negative"):
        quick_recipe("tiny").replace(loss={"blockwise_steps": -1})


def test_a_run_logs_its_stages_and_learns_in_the_blockwise_stage(tmp_path, teacher, example_data):
    recipe = quick_recipe("tiny", steps=8, batch_size=2)
    recipe = recipe.replace(loss={"blockwise_steps": 5})
    student = build_student(teacher, recipe.student)
    result = train(student, copy.deepcopy(teacher), example_data, recipe.train, recipe.loss, tmp_path / "run",
                   progress=False)
    assert [h["stage"] for h in result.history] == [0.0] * 5 + [1.0] * 3
    mel = [h["mel"] for h in result.history[:5]]
    assert mel[-1] < mel[0], mel  # the decoder, fed the teacher's latent, gets closer

    narrow = recipe.replace(student={"inter_channels": "0.5x"})
    with pytest.raises(DistillRVCError, match="blockwise_steps = 5 feeds the teacher's latent"):
        train(build_student(teacher, narrow.student), teacher, example_data, narrow.train, narrow.loss,
              tmp_path / "narrow", progress=False)
