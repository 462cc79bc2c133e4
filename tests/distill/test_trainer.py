"""The training loop: it learns, resumes exactly, backs off on OOM, and logs what it says it logs."""
from __future__ import annotations

import pytest
import torch

from distill_rvc import DistillRVCError, load_model
from distill_rvc.distill.student import build_student
from distill_rvc.distill.teach import TeachSettings, new_student, teach
from distill_rvc.distill.train_state import checkpoints
from distill_rvc.distill.trainer import train
from tests.fixtures.distill_helpers import quick_recipe


def _event_tags(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"audio": 0, "images": 0, "scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_teach_a_few_dozen_steps_brings_the_student_closer(tmp_path, teacher, example_data):
    from tests.fixtures import TINY_TEACHER
    from distill_rvc.inspect_model import inspect_model

    recipe = quick_recipe("tiny", steps=30, batch_size=4, segment_frames=24, eval_frames=80, log_every=5,
                          eval_fidelity=True)
    result = teach(TINY_TEACHER, example_data.root, tmp_path / "run", TeachSettings(recipe=recipe, progress=False))
    fid = result.train.fidelity
    # Held-out log-mel L1 (student vs teacher) at step 30 against step 0: measured 0.55-0.65.
    assert fid["mel_l1"] < 0.8 * fid["mel_l1_init"], fid
    assert result.plan is not None and result.plan.fits

    student = load_model(result.student_path)
    assert student.config.resblock == "2" and student.checkpoint.metadata["recipe"] == "tiny"
    meta = inspect_model(result.student_path, memory=False)["metadata"]
    assert meta["steps"] == 30 and meta["fidelity"]["mel_l1"] == pytest.approx(fid["mel_l1"])
    assert len(meta["teacher_sha256"]) == 64 and meta["recipe_spec"]["train"]["batch_size"] == 4

    events = _event_tags(tmp_path / "run")
    tags = events.Tags()
    assert {"eval/0/teacher", "eval/0/student", "eval/1/teacher", "eval/1/student"} <= set(tags["audio"])
    assert {"eval/0/mel", "eval/1/mel"} <= set(tags["images"])
    for tag in ("loss/mel", "loss/stft", "loss/prior", "loss/latent", "loss/features", "loss/total", "train/lr",
                "train/step_s", "memory/peak_bytes", "eval/mel_l1", "hparams/mel_l1"):
        assert tag in tags["scalars"], tag
    assert [e.step for e in events.Scalars("loss/mel")] == [5, 10, 15, 20, 25, 30]
    assert events.Scalars("eval/mel_l1")[-1].value == pytest.approx(fid["mel_l1"], rel=1e-5)
    for tag in ("fidelity/mcd_db", "fidelity/f0_rmse_cents", "fidelity/vuv_error", "fidelity/f0_gross_error"):
        assert [e.step for e in events.Scalars(tag)] == [0, 30], tag
    assert all(0 <= e.value <= 1 for e in events.Scalars("fidelity/vuv_error"))
    assert all(0 < e.value < 40 for e in events.Scalars("fidelity/mcd_db"))
    audio = events.Audio("eval/0/student")[-1]
    assert audio.sample_rate == 40000 and audio.length_frames == 80 * 400
    image = events.Images("eval/0/mel")[-1]
    assert image.height == 3 * 125 + 4  # teacher, student and difference bands
    from tensorboard.plugins.hparams import plugin_data_pb2

    hparams = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["recipe"].string_value == "tiny" and start.hparams["batch_size"].number_value == 4
    assert "_hparams_/experiment" in hparams


class Killed(Exception):
    pass


def test_resume_continues_exactly(tmp_path, teacher, example_data):
    recipe = quick_recipe("tiny", steps=5, checkpoint_every=2, keep_checkpoints=2, eval_items=1, eval_frames=40)

    def run(out, **kw):
        torch.manual_seed(123)  # the student init is deterministic; this guards against hidden global RNG use
        student = build_student(load_model(teacher.checkpoint.path), recipe.student)
        return student, train(student, load_model(teacher.checkpoint.path), example_data, recipe.train, recipe.loss,
                              out, progress=False, **kw)

    full_student, full = run(tmp_path / "a")
    assert [p.name for p in checkpoints(tmp_path / "a")] == ["step_00000004.pt", "step_00000005.pt"]

    def kill(step, losses):
        if step == 3:
            raise Killed  # as a kill -9 after step 3: step 3 was never checkpointed

    with pytest.raises(Killed):
        run(tmp_path / "b", callback=kill)
    with pytest.raises(DistillRVCError, match="a checkpoint at step 2 exists in .*: add --resume to continue"):
        run(tmp_path / "b")
    torch.manual_seed(999)  # a different global RNG state must not matter either
    resumed_student, resumed = run(tmp_path / "b", resume=True)

    assert [h["total"] for h in resumed.history] == pytest.approx([h["total"] for h in full.history[2:]], abs=1e-6)
    for name in ("mel", "stft", "prior", "latent", "features"):
        assert [h[name] for h in resumed.history] == pytest.approx([h[name] for h in full.history[2:]], abs=1e-6)
    for (k, a), b in zip(full_student.state_dict().items(), resumed_student.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    assert resumed.fidelity["mel_l1"] == pytest.approx(full.fidelity["mel_l1"], abs=1e-6)

    # TensorBoard: one curve, each step once; the dead attempt's step 3 (after its last
    # checkpoint) is purged in favour of the resumed one.
    events = _event_tags(tmp_path / "b")
    assert [e.step for e in events.Scalars("loss/total")] == [1, 2, 3, 4, 5]
    assert [e.value for e in events.Scalars("loss/total")] == pytest.approx([h["total"] for h in full.history],
                                                                           rel=1e-5)


def test_a_fresh_run_sets_a_dead_attempts_logs_aside(tmp_path, teacher, example_data):
    """An attempt killed before its first checkpoint leaves event files; the next run (nothing to
    resume) moves them to abandoned-logs/ instead of drawing its curves over them."""
    recipe = quick_recipe("tiny", steps=3, eval_items=1, eval_frames=40)

    def run(**kw):
        student = build_student(load_model(teacher.checkpoint.path), recipe.student)
        return train(student, load_model(teacher.checkpoint.path), example_data, recipe.train, recipe.loss,
                     tmp_path / "run", progress=False, **kw)

    def kill(step, losses):
        if step == 2:
            raise Killed

    with pytest.raises(Killed):
        run(callback=kill)
    assert not checkpoints(tmp_path / "run")
    second = run()
    events = _event_tags(tmp_path / "run")
    assert [e.step for e in events.Scalars("loss/total")] == [1, 2, 3]
    assert [e.value for e in events.Scalars("loss/total")] == pytest.approx([h["total"] for h in second.history],
                                                                           rel=1e-5)
    assert [e.step for e in events.Scalars("eval/mel_l1")] == [0, 3]
    (aside,) = (tmp_path / "run" / "abandoned-logs").iterdir()
    assert [e.step for e in _event_tags(aside).Scalars("loss/total")] == [1, 2]


def test_sigterm_saves_a_checkpoint_that_resumes_exactly(tmp_path, teacher, example_data):
    """`teach` killed by SIGTERM (in a subprocess, as a job scheduler would) saves the step it
    was on, exits 143 saying how to resume, refuses a rerun without --resume, and the resumed
    run's losses are the uninterrupted run's."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from click.testing import CliRunner

    from tests.fixtures import ROOT, TINY_TEACHER
    from distill_rvc.cli import cli
    from distill_rvc.distill.recipes import load_recipe
    from distill_rvc.safe_load import file_sha256

    out = tmp_path / "run"
    args = ["teach", "--teacher", str(TINY_TEACHER), "--recipe", "tiny", "--data", str(example_data.root),
            "--out", str(out), "--steps", "200", "--batch-size", "2", "--device", "cpu", "--quiet",
            "--no-budget-check"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "distill_rvc", *args, "--checkpoint-every", "0s"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not checkpoints(out) and proc.poll() is None:  # the first time-based checkpoint (after step 1)
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate()
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    last = checkpoints(out)[-1]
    k = int(last.stem.split("_")[1])
    assert 1 <= k < 200
    assert f"after step {k} of 200: saved {last}; run the same command with --resume" in err, err
    assert "Traceback" not in err and not (out / "student.pth").exists()

    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2, again.output
    assert f"a checkpoint at step {k} exists in {out}: add --resume to continue" in again.output
    assert checkpoints(out)[-1] == last

    recipe = load_recipe("tiny").replace(train=dict(steps=200, batch_size=2, accumulation=1))
    sha = {"teacher_sha256": file_sha256(TINY_TEACHER)}

    def run(folder, **kw):
        def stop(step, losses):
            if step == k + 3:
                raise Killed

        student, _ = new_student(load_model(TINY_TEACHER), example_data, recipe)  # as teach builds it
        history = []
        with pytest.raises(Killed):
            train(student, load_model(TINY_TEACHER), example_data, recipe.train, recipe.loss, folder, device="cpu",
                  progress=False, fingerprint=sha, callback=lambda s, h: (history.append(h), stop(s, h)), **kw)
        return history

    full = run(tmp_path / "full")
    resumed = run(out, resume=True)
    assert len(resumed) == 3
    for name in ("total", "mel", "stft", "prior", "latent", "features"):
        assert [h[name] for h in resumed] == pytest.approx([h[name] for h in full[k:]], abs=1e-6), name


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_batch(tmp_path, teacher, example_data):
    recipe = quick_recipe("tiny", steps=3, batch_size=4, eval_items=1, eval_frames=40)
    student = build_student(teacher, recipe.student)
    forward = student.forward
    calls = []

    def small_card(phone, *args, **kwargs):
        calls.append(phone.shape[0])
        if phone.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(phone, *args, **kwargs)

    student.forward = small_card
    result = train(student, teacher, example_data, recipe.train, recipe.loss, tmp_path / "oom", progress=False)
    assert result.micro_batch == 2 and [n for n in calls if n > 1][:3] == [4, 2, 2]  # (1: shape probes, eval)

    torch.manual_seed(0)
    reference = build_student(load_model(teacher.checkpoint.path), recipe.student)
    planned = quick_recipe("tiny", steps=3, batch_size=4, accumulation=2, eval_items=1, eval_frames=40)
    expected = train(reference, load_model(teacher.checkpoint.path), example_data, planned.train, planned.loss,
                     tmp_path / "acc", progress=False)
    assert [h["total"] for h in result.history] == pytest.approx([h["total"] for h in expected.history], abs=1e-5)


@pytest.mark.gpu
def test_cuda_step_logs_real_peak_memory(tmp_path, teacher, example_data):
    from distill_rvc.distill.planner import plan_training

    for precision in ("bf16", "fp16"):
        recipe = quick_recipe("tiny", steps=3, batch_size=8, segment_frames=32, precision=precision)
        student = build_student(teacher, recipe.student)
        result = train(student, load_model(teacher.checkpoint.path), example_data, recipe.train, recipe.loss,
                       tmp_path / precision, device="cuda", progress=False)
        plan = plan_training(teacher.config, recipe)
        assert 0 < result.peak_memory_bytes < plan.total
        assert all(torch.isfinite(torch.tensor(h["total"])) for h in result.history)


def test_cards_where_rvc_forces_fp32():
    from distill_rvc.distill.trainer import half_precision_broken

    for name in ("NVIDIA GeForce GTX 1650", "NVIDIA GeForce GTX 1660 SUPER", "Tesla P40", "Tesla P100-PCIE-16GB",
                 "NVIDIA GeForce GTX 1060 6GB", "NVIDIA GeForce GTX 1080 Ti"):
        assert half_precision_broken(name), name
    for name in ("NVIDIA GeForce RTX 3060", "Tesla V100-SXM2-16GB", "NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4060 Ti 16GB"):
        assert not half_precision_broken(name), name
