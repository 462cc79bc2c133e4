"""teach-encoder end to end: the held-out error falls on the shared HuBERT, encoder.pt gives
the trained model's features, a stopped run resumes at its step, caches resume and rebuild,
and bad inputs are one-line errors with exit code 2."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from distill_rvc.cli import cli
from distill_rvc.distill.train_state import Interrupted
from distill_rvc.encoder import StudentEncoder, TeachEncoderSettings, load_encoder, teach_encoder
from distill_rvc.encoder.data import build_cache, find_audio
from distill_rvc.features.audio import condition_audio, load_audio
from distill_rvc.features.content import load_content_encoder
from examples.make_stand_in_hubert import write_hubert
from tests.fixtures import TINY_TEACHER


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))))


def quick_recipe(folder, **train):
    lines = "".join(f"{k} = {v}\n" for k, v in {"steps": 48, "batch_size": 4, "eval_every": 16,
                                                 "checkpoint_every": 16, **train}.items())
    path = folder / "quick.toml"
    path.write_text('base = "test"\n[train]\n' + lines)
    return path


@pytest.fixture(scope="module")
def quick(small_hubert, speech, tmp_path_factory):
    """48 steps of a tiny student on the small stand-in HuBERT, four voices -> two held out."""
    learn, held = speech
    root = tmp_path_factory.mktemp("quick")
    settings = TeachEncoderSettings(recipe=quick_recipe(root), held=held, progress=False, threads=1)
    return teach_encoder(small_hubert, learn, root / "a" / "enc.pt", settings)


def check_falls(result, hubert, held):
    torch.set_num_threads(1)  # two threads on a loaded 2-core machine run many times slower than one
    o = result.outcome
    assert [c["step"] for c in o.curve] == list(range(0, o.steps + 1, o.steps // 3))
    assert o.end.l1 < 0.7 * o.start.l1
    assert o.end.cosine > o.start.cosine + 0.3
    # independently of the training code: whole held-out files through the teacher and the
    # file teach-encoder wrote, against an untrained student of the same shape
    teacher = load_content_encoder(hubert)
    trained = load_encoder(result.out)
    torch.manual_seed(0)
    untrained = StudentEncoder(trained.arch, "v2").eval()
    for wav in sorted(held.glob("*.wav")):
        audio = condition_audio(load_audio(wav, 16000))
        want = teacher.extract(audio, "v2")
        assert cosine(trained.extract(audio, "v2"), want) > cosine(untrained.extract(audio, "v2"), want) + 0.3


def test_held_out_error_falls(quick, small_hubert, speech):
    check_falls(quick, small_hubert, speech[1])


def test_held_out_error_falls_on_the_shared_hubert(shared_run, shared_hubert):
    assert shared_run.outcome.steps == 60 and torch.load(shared_run.out, weights_only=True)["dim"] == 768
    check_falls(shared_run, shared_hubert, shared_run.held_data.folder.parent.parent / "held")


def test_encoder_file_gives_the_trained_models_features(quick):
    raw = torch.load(quick.out, weights_only=True)
    assert raw["teacher"]["layer"] == "12" and raw["trained"]["steps"] == 48 and raw["dim"] == 64
    loaded = load_encoder(quick.out)
    audio = np.random.default_rng(0).standard_normal(7777).astype(np.float32) * 0.1
    np.testing.assert_array_equal(loaded.extract(audio, "v2"), quick.encoder.extract(audio, "v2"))


def test_a_stopped_run_resumes_at_its_step(quick, small_hubert, speech, tmp_path):
    learn, held = speech
    recipe = quick_recipe(tmp_path)
    out = tmp_path / "b" / "enc.pt"
    with pytest.raises(Interrupted) as stopped:
        teach_encoder(small_hubert, learn, out, TeachEncoderSettings(recipe=recipe, held=held, progress=False,
                                                                     threads=1, stop_after=16))
    assert stopped.value.step == 16 and not out.exists()
    resumed = teach_encoder(small_hubert, learn, out,
                            TeachEncoderSettings(recipe=recipe, held=held, progress=False, threads=1))
    assert resumed.outcome.resumed_from == 16 and resumed.outcome.steps == 48
    assert resumed.train_data.extracted == 0  # the features came from the cache
    # the same weights and curve as the run that was never stopped
    for key, value in quick.encoder.state_dict().items():
        torch.testing.assert_close(resumed.encoder.state_dict()[key], value, rtol=1e-4, atol=1e-5)
    assert [c["step"] for c in resumed.outcome.curve] == [c["step"] for c in quick.outcome.curve]
    for a, b in zip(resumed.outcome.curve, quick.outcome.curve):
        assert a["cosine"] == pytest.approx(b["cosine"], abs=1e-4)


class CountingTeacher:
    """Stands in for a ContentEncoder: features = frame means, with a kill after `fail_at` segments."""

    def __init__(self, fail_at: int | None = None):
        self.calls, self.fail_at = 0, fail_at

    def dim(self, version):
        return 4

    def extract(self, audio, version):
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt
        self.calls += 1
        t = (len(audio) - 400) // 320 + 1
        return np.stack([audio[320 * i:320 * i + 400].mean() * np.ones(4) for i in range(t)]).astype(np.float32)


def test_killed_extraction_resumes_and_another_teacher_rebuilds(speech, tmp_path, monkeypatch):
    monkeypatch.setattr("distill_rvc.encoder.data.FLUSH_EVERY", 2)
    learn, _ = speech
    files = find_audio(learn)
    with pytest.raises(KeyboardInterrupt):
        build_cache(files, learn, CountingTeacher(fail_at=5), "sha-a", "v2", 16000, tmp_path / "c")
    teacher = CountingTeacher()
    cache = build_cache(files, learn, teacher, "sha-a", "v2", 16000, tmp_path / "c")
    total = cache.audio.shape[0]
    assert total > 5 and teacher.calls == total - 4  # resumed after the last saved progress (4 of 5)
    reference = np.stack([CountingTeacher().extract(np.array(a), "v2") for a in cache.audio])
    np.testing.assert_allclose(cache.feats, reference, atol=1e-6)
    again = CountingTeacher()
    assert build_cache(files, learn, again, "sha-a", "v2", 16000, tmp_path / "c").extracted == 0
    assert build_cache(files, learn, again, "sha-b", "v2", 16000, tmp_path / "c").extracted == total


def test_short_files_are_padded_and_tails_kept(tmp_path):
    """2 s segments, 1 s crops: 5 s -> 0-2, 2-4 and the end-aligned 3-5; 1.5 s -> padded to 2 s;
    0.5 s (under a crop) -> skipped."""
    rng = np.random.default_rng(0)
    lengths = {"long.wav": 5.0, "short.wav": 1.5, "tiny.wav": 0.5}
    for name, seconds in lengths.items():
        sf.write(tmp_path / name, 0.3 * rng.standard_normal(int(16000 * seconds)).astype(np.float32), 16000)
    files = find_audio(tmp_path)
    cache = build_cache(files, tmp_path, CountingTeacher(), "sha", "v2", 32000, tmp_path / "c", min_samples=16000)
    assert cache.audio.shape == (4, 32000) and cache.files == 2 and cache.padded == 1
    assert cache.skipped == {"files shorter than 1 s": 1}
    long_audio = condition_audio(load_audio(tmp_path / "long.wav", 16000))
    np.testing.assert_array_equal(cache.audio[0], long_audio[:32000])
    np.testing.assert_array_equal(cache.audio[2], long_audio[-32000:])  # overlaps the one before
    short = np.array(cache.audio[3])
    assert np.abs(short[:24000]).max() > 0.1 and not short[24000:].any()  # speech, then silence
    again = build_cache(files, tmp_path, CountingTeacher(), "sha", "v2", 32000, tmp_path / "c", min_samples=16000)
    assert again.extracted == 0 and again.padded == 1  # read back from the manifest
    # min_samples defaults to a segment: the short file is skipped, and a 1 s tail is not worth a segment
    strict = build_cache(files, tmp_path, CountingTeacher(), "sha", "v2", 32000, tmp_path / "c")
    assert strict.audio.shape[0] == 2 and strict.padded == 0 and strict.skipped == {"files shorter than 2 s": 2}


def run_cli(*args):
    result = CliRunner().invoke(cli, ["teach-encoder", "--threads", "1", *map(str, args)])
    text = result.output.strip()
    return result.exit_code, text


def test_bad_inputs_are_one_line_errors(small_hubert, speech, tmp_path):
    learn, held = speech
    empty = tmp_path / "empty"
    empty.mkdir()
    silent = tmp_path / "silent"
    silent.mkdir()
    sf.write(silent / "quiet.wav", np.zeros(16000 * 3, np.float32), 16000)
    bad_recipe = tmp_path / "bad.toml"
    bad_recipe.write_text("[model]\ndim = -3\n")
    cases = [
        ((["--hubert", small_hubert, "--audio", empty, "--held", held]), "no audio files"),
        ((["--hubert", small_hubert, "--audio", silent, "--held", held, "--recipe", "test"]), "1 silent files"),
        ((["--hubert", TINY_TEACHER, "--audio", learn, "--held", held, "--recipe", "test"]), "not a content encoder"),
        ((["--hubert", small_hubert, "--audio", learn, "--held", held, "--recipe", bad_recipe]), "model.dim = -3"),
        ((["--hubert", small_hubert, "--audio", learn, "--recipe", "test", "--out", tmp_path / "x.onnx"]), "ending in .pt"),
    ]
    for args, message in cases:
        if "--out" not in args:
            args = [*args, "--out", tmp_path / "o" / "enc.pt"]
        code, text = run_cli(*args)
        assert code == 2, text
        assert text.startswith("error: ") and "\n" not in text and message in text, text
