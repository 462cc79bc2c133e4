"""Recipes: the shipped files validate, every bad field is refused by name, widths resolve by hand."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distill_rvc import DistillRVCError, Synthesizer, rvc_config
from distill_rvc.distill.recipes import RECIPE_DIR, Recipe, StudentSpec, list_recipes, load_recipe
from distill_rvc.distill.student import resolve_width, student_config

# rvc-format.md §4: a v2 40k f0 inference model, weight-norm g folded (27,537,346 - 22,656).
V2_40K_PARAMS = 27_514_690


def test_shipped_recipes_load_and_use_fractions():
    recipes = {r.name: r for r in list_recipes()}
    assert {"2gb", "4gb", "6gb", "cpu", "tiny"} <= set(recipes)
    assert recipes["cpu"].device == "cpu" and recipes["4gb"].device == "cuda"
    assert [recipes[n].budget_gb for n in ("2gb", "4gb", "6gb")] == [2.0, 4.0, 6.0]
    for r in recipes.values():
        widths = [getattr(r.student, f) for f in ("hidden_channels", "filter_channels", "upsample_initial_channel")]
        assert all(isinstance(w, str) and w.endswith("x") for w in widths), r.name  # work for any teacher


def test_shipped_recipes_are_package_data_found_from_any_folder(tmp_path, monkeypatch):
    import distill_rvc

    monkeypatch.chdir(tmp_path)  # not the checkout: what an installed package sees
    assert Path(str(RECIPE_DIR)) == Path(distill_rvc.__file__).parent / "recipes"
    assert {r.name for r in list_recipes()} >= {"2gb", "4gb", "6gb", "cpu", "tiny"}
    assert Path(load_recipe("tiny").path) == Path(str(RECIPE_DIR)) / "tiny.toml"


def _params(cfg) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in Synthesizer(cfg).parameters())


def test_student_sizes_against_a_v2_40k_teacher():
    teacher = rvc_config("v2", 40000, True)
    assert _params(teacher) == V2_40K_PARAMS
    ratio = {r.name: V2_40K_PARAMS / _params(student_config(teacher, r.student)) for r in list_recipes()}
    # The starting points: 6gb ~ 1/3, 4gb ~ 1/6, 2gb ~ 1/12, tiny at most 1/25.
    assert 2.5 < ratio["6gb"] < 3.6
    assert 5.0 < ratio["4gb"] < 7.2
    assert 10.0 < ratio["2gb"] < 14.4
    assert ratio["tiny"] >= 25
    assert ratio["2gb"] > ratio["4gb"] > ratio["6gb"]


def test_widths_resolve_against_the_teacher():
    assert resolve_width(96, 192) == 96
    assert resolve_width("0.5x", 192, multiple=8) == 96
    assert resolve_width("0.4375x", 512, multiple=16) == 224  # 224 = 0.4375 * 512 exactly
    assert resolve_width("0.3x", 192, multiple=8) == 56  # 57.6 -> nearest multiple of 8
    assert resolve_width("0.1x", 16, multiple=2, minimum=4) == 4

    teacher = rvc_config("v2", 48000, True)
    s = student_config(teacher, load_recipe("4gb").student)
    # Rate, hop, upsampling and the latent width come from the teacher.
    assert (s.sr, s.upsample_rates, s.upsample_kernel_sizes, s.inter_channels) == (48000, (12, 10, 2, 2), (24, 20, 4, 4),
                                                                                   192)
    assert (s.hidden_channels, s.filter_channels, s.gin_channels, s.upsample_initial_channel) == (72, 288, 64, 224)
    assert s.fits_rvc() == (True, "")
    tiny = student_config(teacher, load_recipe("tiny").student)
    assert tiny.resblock == "2" and tiny.n_layers == 4 and tiny.fits_rvc()[0]


def test_the_bundled_tiny_teacher_gets_valid_students():
    from distill_rvc import load_model
    from tests.fixtures import TINY_TEACHER

    teacher = load_model(TINY_TEACHER).config
    for r in list_recipes():
        s = student_config(teacher, r.student)
        assert min(s.stage_channels()) >= 2 and s.hidden_channels % s.n_heads == 0, r.name


def _write(tmp_path, text: str):
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


GOOD = 'budget_gb = 4\ndevice = "cuda"\n'


@pytest.mark.parametrize("text, message", [
    (GOOD + "bugdet = 3\n", r"unknown key 'bugdet' in \[top level\]"),
    (GOOD + "[train]\nbach_size = 8\n", r"unknown key 'bach_size' in \[train\] \(known: .*batch_size"),
    (GOOD + "[student]\nhidden = 8\n", r"unknown key 'hidden' in \[student\]"),
    (GOOD + "[train]\nbatch_size = 8.5\n", r"\[train\] batch_size must be an integer"),
    (GOOD + "[train]\nbatch_size = 0\n", r"\[train\] batch_size must be at least 1"),
    (GOOD + "[train]\nbatch_size = 6\naccumulation = 4\n", r"multiple of accumulation"),
    (GOOD + "[train]\nprecision = \"fp8\"\n", r"precision must be one of bf16, fp16, fp32"),
    (GOOD + "[train]\ngrad_checkpointing = 1\n", r"grad_checkpointing must be true or false"),
    (GOOD + "[student]\nhidden_channels = \"0.25\"\n", r"hidden_channels must be a count .* \"0.25x\""),
    (GOOD + "[student]\nhidden_channels = \"9x\"\n", r"hidden_channels must be a count"),
    (GOOD + "[student]\nresblock = \"3\"\n", r"resblock must be \"1\" or \"2\""),
    (GOOD + "[student]\nresblock_kernel_sizes = [3, 5]\nresblock_dilation_sizes = [[1, 3]]\n",
     r"one list per kernel size"),
    (GOOD + "[loss]\nmel = -1\n", r"\[loss\] mel must not be negative"),
    (GOOD + "[loss]\nmean_path_fraction = 2\n", r"mean_path_fraction must lie in \[0, 1\]"),
    (GOOD + "[loss]\nfeature_maps = \"dec.ups.*\"\n", r"feature_maps must be a list"),
    ('device = "cuda"\n', r"missing `budget_gb`"),
    ('budget_gb = 4\ndevice = "tpu"\n', r"device must be one of cuda, cpu"),
    (GOOD + "[train\n", r"not valid TOML"),
])
def test_bad_recipes_are_refused_by_name(tmp_path, text, message):
    with pytest.raises(DistillRVCError, match=message):
        load_recipe(_write(tmp_path, text))


def test_recipe_lookup_and_round_trip(tmp_path):
    with pytest.raises(DistillRVCError, match=r"no recipe named '3gb' \(shipped: .*4gb"):
        load_recipe("3gb")
    r = load_recipe(RECIPE_DIR / "4gb.toml")
    assert r == load_recipe("4gb")
    again = Recipe.from_dict({"name": r.name, **r.to_dict()})
    assert again.student == r.student and again.train == r.train and again.loss == r.loss
    changed = r.replace(train={"steps": 20})
    assert changed.train.steps == 20 and changed.train.batch_size == r.train.batch_size
    with pytest.raises(DistillRVCError, match="batch_size must be at least 1"):
        r.replace(train={"batch_size": 0, "accumulation": 1})
    assert load_recipe(_write(tmp_path, GOOD)).student == StudentSpec()  # every section optional
