"""Every file we write loads right in RVC, Applio and w-okada, or is refused loudly by each
(docs/consumers.md); what the voice needs (embedder_model, vocoder, speakers_id) travels."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

from tests.fixtures import TINY_TEACHER
from tests.fixtures.consumer_loaders import LOADERS
from distill_rvc import load_model, read_checkpoint, save_model
from distill_rvc.checkpoint import APPLIO_GUARD_KEYS, FORMAT_PROJECT, FORMAT_STUDENT_RVC
from distill_rvc.cli import cli
from distill_rvc.consumers import where_it_loads
from distill_rvc.distill.recipes import list_recipes, load_recipe
from distill_rvc.distill.student import build_student

RECIPES = [r.name for r in list_recipes()]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # tiny models; see tests/distill/conftest.py


def _inputs(cfg, t: int = 24):
    g = torch.Generator().manual_seed(7)
    pitchf = 100 + 150 * torch.rand(1, t, generator=g)
    return dict(phone=torch.randn(1, t, cfg.phone_dim, generator=g), phone_lengths=torch.tensor([t]),
                pitch=torch.randint(1, 255, (1, t), generator=g) if cfg.f0 else None,
                pitchf=pitchf if cfg.f0 else None, sid=torch.tensor([0]),
                noise=torch.randn(1, cfg.inter_channels, t, generator=g), source_noise=False)


def _consumers(path):
    """consumer -> ("loads", max abs diff against load_model(path).infer) or ("refuses", error)."""
    ours = load_model(path)
    x = _inputs(ours.config)
    want = ours.infer(**x)
    seen = {}
    for name, loader in LOADERS.items():
        try:
            net = loader(path)
        except (KeyError, RuntimeError) as e:
            seen[name] = ("refuses", repr(e))
            continue
        seen[name] = ("loads", (net.infer(**x) - want).abs().max().item())
    return seen, want


@pytest.fixture(scope="module")
def teacher():
    return load_model(TINY_TEACHER)


@pytest.mark.parametrize("name", RECIPES)
def test_each_recipes_student_file_computes_what_rvc_computes(tmp_path, teacher, name):
    """The file, read by an independent fp32 implementation of RVC's formulas that builds the
    decoder config[9] names (ResBlock1 or RVC's two-conv ResBlock2), gives our audio."""
    from tests.fixtures.rvc_reference import rvc_infer

    saved = save_model(build_student(teacher, load_recipe(name).student).eval(), tmp_path / "s.pth")
    ours = load_model(saved.path)
    x = _inputs(ours.config)
    want = ours.infer(**x)
    got = rvc_infer(torch.load(saved.path, weights_only=True), x["phone"], x["phone_lengths"], x["pitch"],
                    x["pitchf"], x["sid"], x["noise"])
    assert want.abs().max() > 1e-3 and (got - want).abs().max() <= 1e-5


@pytest.mark.parametrize("name", RECIPES)
def test_each_recipes_student_loads_right_or_is_refused_by_each_consumer(tmp_path, teacher, name):
    student = build_student(teacher, load_recipe(name).student).eval()
    # fp16 weights, as every file we ship: RVC folds weight norm in fp32, and so does our reader
    saved = save_model(student, tmp_path / "s.pth")
    seen, want = _consumers(saved.path)
    assert want.abs().max() > 1e-3  # a real signal to compare
    loads = where_it_loads(saved.format, student.config, getattr(student, "arch", None))
    for consumer, (what, detail) in seen.items():
        if what == "loads":
            assert detail <= 1e-4, (consumer, detail)  # never "loads and sounds wrong"
    assert {c for c, (what, _) in seen.items() if what == "loads"} == set(loads.loads)
    assert {c for c, (what, _) in seen.items() if what == "refuses"} == set(loads.refuses)
    if student.config.resblock == "2":
        assert saved.format == FORMAT_STUDENT_RVC
        assert seen["Applio"][0] == "refuses" and "size mismatch" in seen["Applio"][1]
        assert seen["RVC"][0] == seen["w-okada"][0] == "loads"
        assert loads.line() == "RVC, w-okada; Applio refuses it (ResBlock2 decoder)"
    elif saved.format == FORMAT_STUDENT_RVC:
        assert loads.line() == "RVC, Applio, w-okada"


def test_the_tiny_recipe_is_resblock2_and_others_resblock1(teacher):
    """The test above covers both decoder kinds only while the recipes ship both."""
    kinds = {name: build_student(teacher, load_recipe(name).student).config.resblock for name in RECIPES}
    assert kinds["tiny"] == "2" and "1" in kinds.values()


def test_without_the_guard_applio_loads_a_resblock2_student_wrong(tmp_path, teacher):
    """The guard is what stands between Applio and garbage audio: strip it and Applio loads the
    file without a word (ResBlock1 decoder, random resblocks), as consumers.md measured."""
    saved = save_model(build_student(teacher, load_recipe("tiny").student).eval(), tmp_path / "s.pth", half=False)
    raw = torch.load(saved.path, weights_only=True)
    assert all(raw["weight"][k].shape == (1,) for k in APPLIO_GUARD_KEYS)
    for k in APPLIO_GUARD_KEYS:
        del raw["weight"][k]
    torch.save(raw, tmp_path / "unguarded.pth")
    seen, want = _consumers(tmp_path / "unguarded.pth")
    assert seen["Applio"][0] == "loads" and seen["Applio"][1] > 0.1 * want.abs().max()
    assert seen["RVC"][0] == "loads" and seen["RVC"][1] <= 1e-4
    ckpt = read_checkpoint(tmp_path / "unguarded.pth")
    assert not ckpt.applio_guard
    assert "Applio loads it WRONG" in where_it_loads(ckpt.format, ckpt.config, applio_guard=False).line()
    # Our reader drops the guard: the guarded file reads as the same model, guard not counted.
    guarded = read_checkpoint(saved.path)
    assert guarded.applio_guard and not any(k.startswith("dec.resblocks.0.convs1") for k in guarded.weights)
    assert guarded.stored_params == ckpt.stored_params


def test_project_format_goes_to_its_own_suffix_and_loads_nowhere(tmp_path, teacher, caplog):
    student = build_student(teacher, dataclasses.replace(load_recipe("tiny").student, n_flows="0.5x")).eval()
    with caplog.at_level("WARNING", logger="distill_rvc.checkpoint"):
        saved = save_model(student, tmp_path / "voice.pth")
    assert saved.format == FORMAT_PROJECT and saved.path == tmp_path / "voice.drvc.pt"
    assert not list(tmp_path.glob("*.pth")) and "instead of voice.pth" in caplog.text
    seen, _ = _consumers(saved.path)
    assert all(what == "refuses" and "config" in detail for what, detail in seen.values()), seen
    loads = where_it_loads(saved.format, student.config)
    assert loads.loads == () and set(loads.refuses) == set(LOADERS)
    result = CliRunner().invoke(cli, ["inspect", str(saved.path), "--no-memory"])
    assert result.exit_code == 0, result.output
    assert ("loads in   none; RVC, Applio, w-okada refuse it (distill-rvc project format, no RVC config)"
            in result.output)


def test_a_student_of_a_distilled_encoder_is_refused_by_every_consumer(tmp_path, teacher):
    """RVC, Applio and w-okada feed a voice HuBERT's features: a student that hears a distilled
    encoder (`teach --encoder`) would build there and sound wrong, so they must refuse it; its
    pruned or re-saved copies too (the metadata travels)."""
    student = build_student(teacher, load_recipe("4gb").student).eval()  # RVC-buildable as such
    encoder = {"file": "encoder_v2.pt", "sha256": "ab" * 32, "kind": "student", "version": "v2", "dim": 768}
    saved = save_model(student, tmp_path / "voice.pth", metadata={"student_encoder": encoder})
    assert saved.format == FORMAT_PROJECT and saved.path.name == "voice.drvc.pt"
    seen, _ = _consumers(saved.path)
    assert all(what == "refuses" and "config" in detail for what, detail in seen.values()), seen
    again = save_model(load_model(saved.path), tmp_path / "copy.pth")  # metadata from the loaded file
    assert again.format == FORMAT_PROJECT and read_checkpoint(again.path).metadata["student_encoder"] == encoder
    assert save_model(student, tmp_path / "plain.pth").format == FORMAT_STUDENT_RVC  # the control


def test_inspect_says_where_a_file_loads(tmp_path, teacher):
    tiny = save_model(build_student(teacher, load_recipe("tiny").student).eval(), tmp_path / "t.pth").path
    for path, line in ((TINY_TEACHER, "loads in   RVC, Applio, w-okada"),
                       (tiny, "loads in   RVC, w-okada; Applio refuses it (ResBlock2 decoder)")):
        result = CliRunner().invoke(cli, ["inspect", str(path), "--no-memory"])
        assert result.exit_code == 0 and line in result.output, result.output


def test_what_the_voice_needs_survives_save_and_load(tmp_path):
    from examples.make_tiny_teacher import TINY_CONFIG
    from tests.fixtures.rvc_files import write_applio

    teacher = load_model(write_applio(tmp_path / "jp.pth", TINY_CONFIG, embedder_model="japanese-hubert-base"))
    assert teacher.checkpoint.metadata["embedder_model"] == "japanese-hubert-base"
    for name in ("tiny", "4gb"):  # ResBlock2 and ResBlock1 students
        student = build_student(teacher, load_recipe(name).student).eval()
        student.checkpoint = teacher.checkpoint  # what prune does: save a loaded model again
        saved = save_model(student, tmp_path / f"{name}.pth", metadata={"recipe": name})
        raw = torch.load(saved.path, weights_only=True)
        assert raw["embedder_model"] == "japanese-hubert-base" and raw["vocoder"] == "HiFi-GAN"
        assert raw["speakers_id"] == 1 and "embedder_model" not in raw["distill_rvc"]
        again = load_model(saved.path)
        assert again.checkpoint.metadata["embedder_model"] == "japanese-hubert-base"
        assert again.checkpoint.metadata["recipe"] == name
        if name == "4gb":  # Applio reads it where it looks
            assert LOADERS["Applio"](saved.path).embedder_model == "japanese-hubert-base"
        # ... and a second save of the loaded file keeps it (prune's path).
        resaved = save_model(again, tmp_path / f"{name}-again.pth")
        assert read_checkpoint(resaved.path).metadata["embedder_model"] == "japanese-hubert-base"
    # The project format carries it too (at the top level as well).
    student = build_student(teacher, dataclasses.replace(load_recipe("tiny").student, n_flows="0.5x")).eval()
    saved = save_model(student, tmp_path / "p.pth", metadata={"embedder_model": "japanese-hubert-base"})
    assert saved.format == FORMAT_PROJECT
    assert torch.load(saved.path, weights_only=True)["embedder_model"] == "japanese-hubert-base"
    again = load_model(saved.path)
    assert again.checkpoint.metadata["embedder_model"] == "japanese-hubert-base"
    assert read_checkpoint(save_model(again, tmp_path / "p2.pth").path).metadata["embedder_model"] == \
        "japanese-hubert-base"
    # An explicit value wins over the loaded one.
    saved = save_model(teacher, tmp_path / "x.pth", metadata={"embedder_model": "spin"})
    assert read_checkpoint(saved.path).metadata["embedder_model"] == "spin"


def test_embedder_model_survives_teach_prune_and_export(tmp_path):
    from examples.make_example_dataset import make_example_dataset
    from examples.make_tiny_teacher import TINY_CONFIG
    from tests.fixtures.distill_helpers import quick_recipe
    from distill_rvc.data.dataset import Dataset
    from distill_rvc.distill.teach import TeachSettings, teach
    from tests.fixtures.rvc_files import write_applio

    data = Dataset(make_example_dataset(tmp_path / "cache", utterances=4, seconds=1.2))
    teacher = write_applio(tmp_path / "myvoice.pth", TINY_CONFIG, embedder_model="japanese-hubert-base")
    result = teach(teacher, data.root, tmp_path / "run",
                   TeachSettings(recipe=quick_recipe("tiny", steps=2), progress=False, check_budget=False))
    assert result.student_path == tmp_path / "run" / "myvoice_tiny.pth"  # RVC's index pairing by prefix
    assert result.loads.line() == "RVC, w-okada; Applio refuses it (ResBlock2 decoder)"
    raw = torch.load(result.student_path, weights_only=True)
    assert raw["embedder_model"] == "japanese-hubert-base" and raw["speakers_id"] == 1
    student = load_model(result.student_path)
    assert student.checkpoint.metadata["embedder_model"] == "japanese-hubert-base"
    assert student.checkpoint.metadata["vocoder"] == "HiFi-GAN"

    # ... and prune, and the w-okada export, which names w-okada's own word for that encoder
    import onnx

    from distill_rvc.onnx.export import ExportSettings, export_onnx
    from distill_rvc.prune import PruneSettings, prune

    pruned = prune(result.student_path, tmp_path / "myvoice_tiny_p.pth",
                   PruneSettings(ratio=0.3, round_to=1, latency_seconds=0), progress=False)
    assert torch.load(pruned.written, weights_only=True)["embedder_model"] == "japanese-hubert-base"
    exported = export_onnx(pruned.written, tmp_path / "myvoice.onnx", ExportSettings(lengths_s=(1.0,), timing_runs=0))
    props = {p.key: p.value for p in onnx.load(str(exported.onnx_path)).metadata_props}
    assert json.loads(props["metadata"])["embedder"] == "hubert-base-japanese"
