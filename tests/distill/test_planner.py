"""The memory plan against a real step, its stated overheads, the budget refusal, and MACs by hand."""
from __future__ import annotations

import dataclasses

import pytest

from distill_rvc import DistillRVCError, rvc_config
from distill_rvc.distill.planner import macs_per_second, measure_step_memory, plan_training
from distill_rvc.distill.student import build_student
from distill_rvc.distill.teach import TeachSettings, teach
from distill_rvc.memory import ALLOCATOR_SLACK, CUDA_OVERHEAD_BYTES, GB
from tests.fixtures.distill_helpers import quick_recipe


@pytest.mark.parametrize("name, checkpointing", [("tiny", False), ("4gb", True)])
def test_plan_agrees_with_a_real_step(teacher, name, checkpointing):
    """Predicted on fake tensors vs counted in one real CPU step: weights + gradients + optimiser
    state + activations saved for backward (saved_tensors_hooks), within 20 %."""
    recipe = dataclasses.replace(quick_recipe(name, batch_size=4, segment_frames=32, grad_checkpointing=checkpointing),
                                 device="cpu")
    plan = plan_training(teacher.config, recipe)
    measured = measure_step_memory(teacher, build_student(teacher, recipe.student), recipe)
    p = plan.parts
    predicted = {"weights": p["student_weights"] + p["teacher_weights"] + p["helper_weights"],
                 "gradients": p["gradients"], "optimizer_state": p["optimizer_state"], "activations": p["activations"]}
    assert predicted["weights"] == measured["weights"]
    assert predicted["optimizer_state"] == pytest.approx(measured["optimizer_state"], rel=0.01)  # + step counters
    assert predicted["activations"] == pytest.approx(measured["activations"], rel=0.2)
    assert sum(predicted.values()) == pytest.approx(sum(measured.values()), rel=0.2)
    assert plan.overheads == {"python_process": plan.total - plan.tracked_peak}


def test_precision_checkpointing_and_cuda_overheads_show_in_the_plan(teacher):
    base = quick_recipe("4gb", batch_size=4, segment_frames=32, grad_checkpointing=False)
    fp32 = plan_training(teacher.config, base.replace(train={"precision": "fp32"}))
    bf16 = plan_training(teacher.config, base)
    ckpt = plan_training(teacher.config, base.replace(train={"grad_checkpointing": True}))
    assert 0.4 < bf16.parts["activations"] / fp32.parts["activations"] < 0.75
    # The resblocks' share (on the tiny teacher the loss and discriminator hold the rest).
    assert ckpt.parts["activations"] < 0.85 * bf16.parts["activations"]
    assert bf16.parts["teacher_weights"] == 2 * sum(p.numel() for p in teacher.parameters())  # fp16 on the GPU
    assert bf16.total == bf16.tracked_peak + CUDA_OVERHEAD_BYTES + int(bf16.tracked_peak * (ALLOCATOR_SLACK - 1))
    assert bf16.budget_bytes == 4 * GB


def test_teach_refuses_a_plan_over_budget(tmp_path, example_data):
    from tests.fixtures import TINY_TEACHER

    recipe = dataclasses.replace(quick_recipe("tiny", batch_size=8, segment_frames=32), budget_gb=0.55)
    with pytest.raises(DistillRVCError, match=r"needs about .* GB \(cuda\) but its budget is 0.55 GB: set \[train\] "
                                              r"accumulation = \d+ .*grad_checkpointing = true"):
        teach(TINY_TEACHER, example_data.root, tmp_path / "run", TeachSettings(recipe=recipe, progress=False))
    assert not (tmp_path / "run").exists()


def _teacher_macs_by_hand(cfg, t: int) -> int:
    """rvc-format.md §1.3 layer by layer, for `t` frames (multiply-accumulates of the matmuls and convs)."""
    h, f, inter, gin, w = cfg.hidden_channels, cfg.filter_channels, cfg.inter_channels, cfg.gin_channels, cfg.window_size
    enc = cfg.phone_dim * h * t
    enc += cfg.n_layers * (4 * h * h * t + 2 * h * t * t + 2 * h * t * (2 * w + 1) + 2 * h * f * cfg.kernel_size * t)
    enc += h * 2 * inter * t
    half = inter // 2
    flow = cfg.n_flows * (half * h * t + gin * 2 * h * cfg.flow_wn_layers + cfg.flow_wn_layers * h * 2 * h * 5 * t
                          + (cfg.flow_wn_layers - 1) * h * 2 * h * t + h * h * t + h * half * t)
    dec = inter * cfg.upsample_initial_channel * 7 * t + gin * cfg.upsample_initial_channel
    length, c_in = t, cfg.upsample_initial_channel
    total_len = t * cfg.hop_length
    for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
        c = c_in // 2
        dec += c_in * c * k * length  # transposed conv: every input sample meets k taps
        length *= u
        stride = total_len // length
        dec += c * (2 * stride if i + 1 < len(cfg.upsample_rates) else 1) * length  # noise conv
        dec += sum(6 * c * c * rk * length for rk in cfg.resblock_kernel_sizes)  # ResBlock1: 6 convs each
        c_in = c
    dec += c_in * 7 * total_len + total_len  # conv_post, and the source's Linear(1, 1)
    return enc + flow + dec


def test_macs_per_second_match_a_hand_count():
    cfg = rvc_config("v2", 40000, True)
    assert macs_per_second(cfg) == _teacher_macs_by_hand(cfg, 100)
    assert 46e9 < macs_per_second(cfg) < 48e9  # the decoder's 44.3 G of resblocks dominate
