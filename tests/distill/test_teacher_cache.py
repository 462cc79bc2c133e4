"""The teacher-output cache: its targets are the teacher's, training on them learns, it is rebuilt
for another teacher or recipe, a killed build and a killed run resume, bad settings are refused."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from distill_rvc import DistillRVCError, load_model
from distill_rvc.distill import teacher_cache as tc
from distill_rvc.distill.batches import Batches, split_eval
from distill_rvc.distill.losses import capture
from distill_rvc.distill.recipes import load_recipe
from distill_rvc.distill.student import build_student
from distill_rvc.distill.teach import TeachSettings, teach
from distill_rvc.distill.trainer import Precision, Session, train
from distill_rvc.safe_load import file_sha256
from tests.fixtures.distill_helpers import quick_recipe

CPU = torch.device("cpu")


def _session(teacher, recipe):
    student = build_student(teacher, recipe.student, init=False)
    return Session(student, teacher, recipe.train, recipe.loss, CPU, Precision(None, torch.float32, False))


def _cached(folder, teacher, data, recipe, teacher_id="a"):
    session = _session(teacher, recipe)
    idx, _ = split_eval(data, recipe.train.eval_items, recipe.train.seed, recipe.train.segment_frames)
    return session, tc.teacher_batches(folder, session, data, idx, recipe.train, recipe.loss, teacher_id,
                                       progress=False)


def test_cached_targets_equal_a_fresh_teacher_forward(tmp_path, teacher, example_data):
    recipe = quick_recipe("tiny", batch_size=4, teacher_cache=True, key=2.0)
    session, batches = _cached(tmp_path / "c", teacher, example_data, recipe)
    assert isinstance(batches, tc.CachedBatches)
    names = session.loss.feature_names
    assert names  # the tiny recipe compares decoder feature maps
    for step in (1, 7):
        batch = batches.draw(step)
        with torch.no_grad(), capture(teacher, names) as feats:  # the reference: the teacher run now
            fresh = teacher(batch.phone, batch.lengths, batch.pitch, batch.pitchf, batch.sid, noise=batch.noise,
                            source_noise=False)
        cached, cached_feats = batch.teacher.outputs(CPU, torch.float32)
        for name in ("audio", "m_p", "logs_p", "z"):
            a, b = getattr(fresh, name), getattr(cached, name)
            assert a.shape == b.shape, name
            # float16 storage: relative error below 2^-10 of each value plus a floor for near-zeros
            assert torch.allclose(b, a, rtol=2e-3, atol=1e-3 * a.abs().max().item()), name
            assert not torch.equal(a, torch.zeros_like(a)), name
        for name in names:
            assert torch.allclose(cached_feats[name], feats[name], rtol=2e-3, atol=1e-3 * feats[name].abs().max())
    # the inputs are those of the dataset at the crop: the real audio lines up with the content
    seg_audio = [example_data[i].audio for i in range(len(example_data))]
    hop = teacher.config.hop_length
    crop = batch.audio[0, 0]
    assert any(torch.equal(crop, a[s:s + len(crop)]) for a in seg_audio for s in range(0, len(a) - len(crop) + 1, hop))


def test_batches_are_a_function_of_the_step(tmp_path, teacher, example_data):
    recipe = quick_recipe("tiny", teacher_cache=True)
    _, a = _cached(tmp_path / "c", teacher, example_data, recipe)
    b1, b2, b3 = a.draw(5), a.draw(5), a.draw(6)
    assert torch.equal(b1.phone, b2.phone) and torch.equal(b1.teacher.audio, b2.teacher.audio)
    assert not torch.equal(b1.teacher.audio, b3.teacher.audio)


def test_training_on_the_cache_brings_the_student_closer(tmp_path, example_data):
    from tests.fixtures import TINY_TEACHER

    recipe = quick_recipe("tiny", steps=30, batch_size=4, segment_frames=24, eval_frames=80, teacher_cache=True)
    result = teach(TINY_TEACHER, example_data.root, tmp_path / "run", TeachSettings(recipe=recipe, progress=False))
    assert (tmp_path / "run" / "teacher_cache" / "key.json").is_file()
    fid = result.train.fidelity  # held out, against the real teacher (evaluate.py runs it)
    assert fid["mel_l1"] < 0.8 * fid["mel_l1_init"], fid
    first = np.mean([h["total"] for h in result.train.history[:5]])
    last = np.mean([h["total"] for h in result.train.history[-5:]])
    assert last < 0.8 * first, (first, last)


def test_rebuilt_for_another_teacher_file_or_recipe(tmp_path, teacher, example_data, caplog):
    from tests.fixtures import TINY_TEACHER

    recipe = quick_recipe("tiny", teacher_cache=True)
    folder = tmp_path / "c"
    _cached(folder, teacher, example_data, recipe, file_sha256(TINY_TEACHER))
    first = json.loads((folder / "key.json").read_text())
    audio = sorted(folder.glob("*.audio.npy"))[0]
    before = np.load(audio).copy()

    other = load_model(TINY_TEACHER)
    with torch.no_grad():
        for p in other.dec.parameters():
            p.mul_(1.1)
    path = tmp_path / "changed.pth"
    from distill_rvc.checkpoint import save_model
    save_model(other, path)
    with caplog.at_level(logging.WARNING):
        _cached(folder, other, example_data, recipe, file_sha256(path))
    assert "made for another teacher: rebuilding it" in caplog.text
    assert json.loads((folder / "key.json").read_text())["teacher"] == file_sha256(path) != first["teacher"]
    assert not np.allclose(np.load(audio), before)

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _cached(folder, other, example_data, quick_recipe("tiny", teacher_cache=True, segment_frames=20),
                file_sha256(path))
    assert "made for another segment_frames: rebuilding it" in caplog.text
    assert np.load(audio).shape[-1] == 20 * teacher.config.hop_length


def test_a_killed_build_resumes_where_it_stopped(tmp_path, teacher, example_data, monkeypatch):
    recipe = quick_recipe("tiny", teacher_cache=True)
    real_save, saved = tc._save, []

    def dying_save(path, array):
        if len(saved) == 20:
            raise KeyboardInterrupt  # as a kill mid-build
        saved.append(path.name)
        real_save(path, array)

    monkeypatch.setattr(tc, "_save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        _cached(tmp_path / "c", teacher, example_data, recipe)
    monkeypatch.setattr(tc, "_save", real_save)
    done = {p.name for p in (tmp_path / "c").glob("*.starts.npy")}
    assert done and len(done) < 12  # some (segment, seed) pairs were finished

    crops = []  # crops the teacher ran on (not the probes of 8 frames that size the projections)
    t = recipe.train.segment_frames
    teacher.register_forward_hook(lambda _m, inputs, _o: crops.append(len(inputs[0]) * (inputs[0].shape[1] == t)))
    _, batches = _cached(tmp_path / "c", teacher, example_data, recipe)
    cache = batches.cache
    pairs = [(n, k) for n in range(len(cache.ids)) for k in range(cache.seeds)]
    assert all(cache.complete(n, k) for n, k in pairs)
    missing = [len(np.load(cache.path(n, k, "starts"))) for n, k in pairs if cache.path(n, k, "starts").name not in done]
    assert sum(crops) == sum(missing)  # the finished pairs were not run again


def test_resume_with_the_cache_continues_exactly(tmp_path, teacher, example_data):
    recipe = quick_recipe("tiny", steps=5, checkpoint_every=2, keep_checkpoints=2, eval_items=1, eval_frames=40,
                          teacher_cache=True)

    def run(out, **kw):
        torch.manual_seed(123)
        student = build_student(load_model(teacher.checkpoint.path), recipe.student)
        return train(student, load_model(teacher.checkpoint.path), example_data, recipe.train, recipe.loss, out,
                     progress=False, **kw)

    full = run(tmp_path / "a")
    assert (tmp_path / "a" / "teacher_cache" / "key.json").is_file()

    class Killed(Exception):
        pass

    def kill(step, losses):
        if step == 3:
            raise Killed

    with pytest.raises(Killed):
        run(tmp_path / "b", callback=kill)
    resumed = run(tmp_path / "b", resume=True)
    for name in ("total", "mel", "stft", "prior", "latent", "features"):
        assert [h[name] for h in resumed.history] == pytest.approx([h[name] for h in full.history[2:]], abs=1e-6)


def test_auto_skips_short_runs_and_false_never_builds(tmp_path, teacher, example_data):
    _, batches = _cached(tmp_path / "a", teacher, example_data, quick_recipe("tiny"))  # 6 steps: not worth it
    assert batches is None and not (tmp_path / "a").exists()
    _, batches = _cached(tmp_path / "b", teacher, example_data, quick_recipe("tiny", teacher_cache=False, steps=10**6))
    assert batches is None and not (tmp_path / "b").exists()
    _, batches = _cached(tmp_path / "c", teacher, example_data, quick_recipe("tiny", steps=10**5))
    assert isinstance(batches, tc.CachedBatches)


def test_refused_where_the_teacher_output_is_not_fixed(tmp_path, teacher, example_data):
    with pytest.raises(DistillRVCError, match=r"teacher_cache = true cannot be used: \[train\] key_jitter"):
        _cached(tmp_path / "c", teacher, example_data, quick_recipe("tiny", teacher_cache=True, key_jitter=1.0))


def test_refused_when_the_disk_is_too_small(tmp_path, teacher, example_data, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(DistillRVCError, match=r"the teacher cache needs [\d.]+ GB in .* but 0.0 GB are free: .*"
                                              r"--no-teacher-cache"):
        _cached(tmp_path / "c", teacher, example_data, quick_recipe("tiny", teacher_cache=True))


@pytest.mark.parametrize("line, message", [
    ('teacher_cache = "yes"', r'\[train\] teacher_cache must be true, false or "auto", got \'yes\''),
    ("teacher_cache = 1", r'\[train\] teacher_cache must be true, false or "auto", got 1'),
    ("teacher_cache_seeds = 0", r"\[train\] teacher_cache_seeds must lie in 1..64, got 0"),
])
def test_a_bad_recipe_value_is_one_line(tmp_path, line, message):
    path = tmp_path / "r.toml"
    path.write_text(f'budget_gb = 2.0\ndevice = "cpu"\n[train]\n{line}\n')
    with pytest.raises(DistillRVCError, match=message) as e:
        load_recipe(path)
    assert "\n" not in str(e.value)


def test_cli_flag_reaches_the_recipe(tmp_path, example_data, monkeypatch):
    from click.testing import CliRunner
    from distill_rvc import cli
    from tests.fixtures import TINY_TEACHER

    seen = {}

    def fake(teacher, data, out, settings):
        seen["cache"] = settings.teacher_cache
        raise DistillRVCError("stop here")

    monkeypatch.setattr(cli, "run_teach", fake)
    for flag, value in (("--no-teacher-cache", False), ("--teacher-cache", True), (None, None)):
        args = ["teach", "--teacher", str(TINY_TEACHER), "--data", str(example_data.root), "--recipe", "tiny"]
        result = CliRunner().invoke(cli.cli, args + ([flag] if flag else []))
        assert result.exit_code == 2 and "stop here" in result.output
        assert seen["cache"] is value
