"""`teach --encoder`: the student hears a small content encoder's features, the teacher the cache's HuBERT ones.

The reference features are computed here from the cache's audio files with the encoder
itself (resampled to 16 kHz as `prepare` feeds HuBERT), independently of student_features.py.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from distill_rvc import load_model
from distill_rvc.cli import cli
from distill_rvc.compare import CompareSettings, compare
from distill_rvc.data.dataset import Dataset
from distill_rvc.distill.function_init import calibration_crops
from distill_rvc.distill.refit import refit_embedding
from distill_rvc.distill.student_features import _fit_length, student_features
from distill_rvc.distill.teach import TeachSettings, teach
from distill_rvc.encoder import EncoderArch, StudentEncoder, save_encoder
from distill_rvc.errors import DistillRVCError
from distill_rvc.features.audio import resample
from distill_rvc.models.text_encoder import TextEncoder
from distill_rvc.onnx.encoder import ExportEncoderSettings, export_encoder
from distill_rvc.safe_load import file_sha256
from tests.fixtures import TINY_TEACHER
from tests.fixtures.distill_helpers import quick_recipe
from examples.make_stand_in_hubert import write_hubert


def make_encoder(path, seed: int = 0, version: str = "v2", out_dim: int = 768):
    torch.manual_seed(seed)
    model = StudentEncoder(EncoderArch(n_mels=20, dim=16, blocks=1, out_dim=out_dim), version).eval()
    return model, save_encoder(path, model, {"sha256": "ab" * 32, "layer": "12"}, {"steps": 0})


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return make_encoder(tmp_path_factory.mktemp("enc") / "encoder.pt")


def reference(model: StudentEncoder, data: Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """segment id -> (HuBERT's features, the encoder's) at 100 frames/s, cut to the segment's frames."""
    out = {}
    for i, seg in enumerate(data.segments):
        base = data.root / "segments"
        hubert = np.load(base / f"{seg['id']}.phone.npy")
        own = model.extract(resample(np.load(base / f"{seg['id']}.audio.npy"), 40000, 16000), "v2")
        assert abs(len(own) - len(hubert)) <= 1  # 1.2 s: 59 frames against the cache's 60
        own = np.concatenate([own, own[-1:]])[:len(hubert)]
        t = data.frames(i)
        out[seg["id"]] = (np.repeat(hubert, 2, 0)[:t], np.repeat(own, 2, 0)[:t])
    return out


def crop_of(x: np.ndarray, tables: list[np.ndarray]) -> bool:
    """Whether [T, C] `x` is a contiguous slice of one of `tables` [T_i, C]."""
    for table in tables:
        for s in range(len(table) - len(x) + 1):
            if np.allclose(table[s:s + len(x)], x, atol=1e-5):
                return True
    return False


def test_one_frame_is_trimmed_or_padded_and_more_is_refused(tmp_path):
    feats = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.testing.assert_array_equal(_fit_length(feats, 5, "s", tmp_path / "e.pt"), feats[:5])
    np.testing.assert_array_equal(_fit_length(feats, 7, "s", tmp_path / "e.pt"), np.concatenate([feats, feats[-1:]]))
    with pytest.raises(DistillRVCError, match="gives 6 frames for its audio but the cache holds 8 frames"):
        _fit_length(feats, 8, "s", tmp_path / "e.pt")


@pytest.mark.parametrize("cache", [True, False])
def test_the_student_hears_the_encoder_and_the_teacher_hubert(example_data, encoder, tmp_path, cache):
    model, path = encoder
    ref = reference(model, example_data)
    heard: list[tuple[int, np.ndarray]] = []

    def spy(module, args):
        if isinstance(module, TextEncoder) and type(args[0]) is torch.Tensor:  # not the planner's fake tensors
            heard.extend((module.hidden_channels, x) for x in args[0].detach().float().numpy()
                         if x.any())  # not the loss's zero probes of the feature shapes
    hook = torch.nn.modules.module.register_module_forward_pre_hook(spy)
    try:
        result = teach(TINY_TEACHER, example_data.root, tmp_path / "run",
                       TeachSettings(recipe=quick_recipe(steps=2), encoder=path, teacher_cache=cache, progress=False,
                                     device="cpu", check_budget=False))
    finally:
        hook.remove()
    teacher_width = load_model(TINY_TEACHER).config.hidden_channels
    student = load_model(result.student_path)
    assert student.config.hidden_channels != teacher_width
    hubert, own = [r[0] for r in ref.values()], [r[1] for r in ref.values()]
    by_teacher = [x for w, x in heard if w == teacher_width]
    by_student = [x for w, x in heard if w == student.config.hidden_channels]
    assert by_teacher and by_student
    for x in by_student[:6] + by_student[-2:]:  # training crops first, the held-out evaluation last
        assert crop_of(x, own) and not crop_of(x, hubert)
    for x in by_teacher[:6] + by_teacher[-2:]:
        assert crop_of(x, hubert) and not crop_of(x, own)

    # the stored features are the encoder's, at the cache's 50 Hz frames (one padded here)
    folder = next((tmp_path / "run" / "student_features").iterdir())
    stored = np.load(folder / "0_0.npy")
    np.testing.assert_allclose(np.repeat(stored, 2, 0)[:len(ref["0_0"][1])], ref["0_0"][1], atol=1e-5)
    key = json.loads((folder / "key.json").read_text())
    assert key["encoder"]["file"] == "encoder.pt" and key["encoder"]["dim"] == 768

    # the student file says which encoder it expects
    raw = torch.load(result.student_path, weights_only=True)
    assert raw["distill_rvc"]["student_encoder"]["sha256"] == key["encoder"]["sha256"]
    assert "encoder    the student hears encoder.pt" in result.encoder


def run_cli(*args):
    return CliRunner().invoke(cli, ["teach", "--teacher", str(TINY_TEACHER), "--recipe", "tiny", "--device", "cpu",
                                    "--quiet", *map(str, args)])


def test_an_encoder_of_another_version_or_width_is_refused(example_data, tmp_path):
    _, v1 = make_encoder(tmp_path / "v1.pt", version="v1", out_dim=256)
    _, narrow = make_encoder(tmp_path / "narrow.pt", out_dim=32)
    for path, message in ((v1, "trained for v1 (256-d) features, not v2"),
                          (narrow, "the encoder gives 32-d features but the teacher (v2) takes 768-d")):
        result = run_cli("--data", example_data.root, "--out", tmp_path / path.stem, "--encoder", path, "--steps", 1)
        assert result.exit_code == 2 and message in result.output, result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_cache_without_audio_is_refused(example_data, encoder, tmp_path):
    data = tmp_path / "no_audio"
    shutil.copytree(example_data.root, data)
    manifest = json.loads((data / "manifest.json").read_text())
    for seg in manifest["segments"]:
        seg["samples"] = 0
        (data / "segments" / f"{seg['id']}.audio.npy").unlink()
    (data / "manifest.json").write_text(json.dumps(manifest))
    result = run_cli("--data", data, "--out", tmp_path / "o", "--encoder", encoder[1], "--steps", 1)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "runs the encoder on each segment's audio, and this cache holds none" in result.output
    assert "distill-rvc prepare" in result.output


def test_resume_needs_the_same_encoder(example_data, encoder, tmp_path):
    out = tmp_path / "run"
    _, other = make_encoder(tmp_path / "other.pt", seed=1)

    def run(steps, path, resume=True):
        return teach(TINY_TEACHER, example_data.root, out, TeachSettings(
            recipe=quick_recipe(steps=steps, eval_items=1, eval_frames=30).replace(student={"init": "magnitude"}),
            encoder=path, resume=resume,
            teacher_cache=False, progress=False, device="cpu", check_budget=False))  # the plan is not tested here
    run(1, encoder[1], resume=False)
    with pytest.raises(DistillRVCError, match=r"the run was started with the encoder encoder.pt \(sha256 \w+\), "
                                              r"not other.pt"):
        run(2, other)
    with pytest.raises(DistillRVCError, match="started with another student_encoder_sha256"):
        run(2, None)
    assert run(2, encoder[1]).train.steps == 2


def test_features_are_computed_once_and_again_for_another_encoder(example_data, encoder, tmp_path):
    teacher = load_model(TINY_TEACHER)
    first = student_features(encoder[1], example_data, tmp_path, teacher, progress=False)
    assert first.computed == len(example_data)
    (first.folder / "3_0.npy").unlink()  # a killed run: only that segment is computed again
    again = student_features(encoder[1], example_data, tmp_path, teacher, progress=False)
    assert again.folder == first.folder and again.computed == 1
    _, other = make_encoder(tmp_path / "other.pt", seed=1)
    third = student_features(other, example_data, tmp_path, teacher, progress=False)
    assert third.folder != first.folder and not first.folder.exists() and third.computed == len(example_data)
    seg = third[0]
    assert seg.student_phone.shape == seg.phone.shape and not torch.allclose(seg.student_phone, seg.phone)


def test_the_function_init_calibrates_emb_phone_on_the_students_features(example_data, encoder, tmp_path):
    """emb_phone refitted so that on the student's features it gives what it gave on HuBERT's:
    exact here, where the student's features are a known invertible linear map of HuBERT's."""
    teacher = load_model(TINY_TEACHER)
    crops = calibration_crops(student_features(encoder[1], example_data, tmp_path, teacher, progress=False), 8)
    assert crops and all(c.student_phone.shape == c.phone.shape for c in crops)
    mix = torch.linalg.qr(torch.randn(768, 768, generator=torch.Generator().manual_seed(0)))[0] * 2
    for c in crops:
        c.student_phone = c.phone @ mix + 0.5
    student = load_model(TINY_TEACHER)
    with torch.no_grad():
        before = student.enc_p.emb_phone(crops[0].phone)
        assert refit_embedding(student, crops, lam=1e-6)
        after = student.enc_p.emb_phone(crops[0].student_phone)
    assert torch.allclose(after, before, atol=1e-3 * float(before.abs().max()))
    assert not refit_embedding(student, calibration_crops(example_data, 8))  # no features of its own: unchanged


def test_only_the_encoder_it_was_trained_on_converts_it(example_data, encoder, tmp_path):
    """RVC, Applio and w-okada would feed such a student HuBERT's features: the file is one they
    refuse (project format, no `config`, not *.pth), and our convert, export and compare refuse
    any encoder but its own, its ONNX export included."""
    result = teach(TINY_TEACHER, example_data.root, tmp_path / "run",
                   TeachSettings(recipe=quick_recipe(steps=1), encoder=encoder[1], teacher_cache=False,
                                 progress=False, device="cpu", check_budget=False))
    path = result.student_path
    assert path.name.endswith(".drvc.pt") and not path.with_name(path.name.replace(".drvc.pt", ".pth")).exists()
    raw = torch.load(path, weights_only=True)
    assert "config" not in raw  # RVC's and Applio's loaders raise KeyError: 'config'; w-okada's too
    assert "distilled content encoder encoder.pt" in raw["distill_rvc"]["not_rvc_because"]

    _, other = make_encoder(tmp_path / "other.pt", seed=1)
    hubert = write_hubert(tmp_path / "hubert_base.pt", embed_dim=768, layers=1)
    own_onnx, other_onnx = tmp_path / "own.onnx", tmp_path / "other.onnx"
    export_encoder(encoder[1], own_onnx, ExportEncoderSettings(version="v2"))
    export_encoder(other, other_onnx, ExportEncoderSettings(version="v2"))
    wav = tmp_path / "speech.wav"
    audio = np.load(example_data.root / "segments" / f"{example_data.segments[0]['id']}.audio.npy")
    sf.write(wav, resample(audio, 40000, 16000), 16000)

    def convert(model, enc, out):
        return CliRunner().invoke(cli, ["convert", "--model", str(model), "--hubert", str(enc), "--f0", "dio",
                                        "--input", str(wav), "--output", str(tmp_path / out), "--quiet"])

    for enc in (other, hubert, other_onnx):
        r = convert(path, enc, f"x_{enc.stem}.wav")
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert f"trained on the content encoder encoder.pt (sha256 {file_sha256(encoder[1])[:12]}), not {enc.name}: " \
               "pass that encoder as --hubert" in r.output
    for enc in (encoder[1], own_onnx):
        r = convert(path, enc, f"ok_{enc.stem}.wav")
        assert r.exit_code == 0, r.output

    wokada = CliRunner().invoke(cli, ["export", str(path), "--out", str(tmp_path / "w.onnx")])
    assert wokada.exit_code == 2 and "which the w-okada client does not have" in wokada.output, wokada.output
    rvc = CliRunner().invoke(cli, ["export", str(path), "--out", str(tmp_path / "r.onnx"), "--interface", "rvc"])
    assert rvc.exit_code == 0, rvc.output
    assert "not other.pt" in convert(tmp_path / "r.onnx", other, "onnx_other.wav").output
    assert convert(tmp_path / "r.onnx", own_onnx, "onnx_own.wav").exit_code == 0

    for given in (None, other):  # None: the student would hear the teacher's HuBERT
        with pytest.raises(DistillRVCError, match=r"not (hubert_base|other)\.pt: pass that encoder as --student-enc"):
            compare(TINY_TEACHER, path, wav, hubert, tmp_path / "cmp", CompareSettings(
                f0_method="dio", threads=1, runs=1, ort=False, peak_rss=False, extras=False, student_encoder=given))
