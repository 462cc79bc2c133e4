"""Encoder recipes: the shipped table, .toml overrides, and bad values refused in one line."""
from __future__ import annotations

import pytest

from distill_rvc.encoder import RECIPES, load_encoder_recipe
from distill_rvc.encoder.teach import TeachEncoderSettings
from distill_rvc.errors import DistillRVCError


def test_toml_overrides_its_base(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('base = "test"\n[model]\ndim = 24\n[train]\nsteps = 7\n')
    recipe = load_encoder_recipe(path)
    assert recipe.name == "mine" and recipe.model.dim == 24 and recipe.train.steps == 7
    assert recipe.model.blocks == RECIPES["test"].model.blocks  # the rest from the base


@pytest.mark.parametrize("text, message", [
    ("[model]\ndim = 0\n", "model.dim = 0"),
    ("[model]\nkernel = 4\n", "odd number"),
    ("[model]\nwidth = 3\n", "unknown key"),
    ("[train]\nlr = -1\n", "train.lr = -1"),
    ("[train]\ncrop_seconds = 9.0\n", "longer than train.segment_seconds"),
    ("[train]\nl1_weight = 0\ncos_weight = 0\n", "nothing to learn"),
    ('base = "huge"\n', "base = 'huge'"),
    ("[train\n", "not valid TOML"),
])
def test_bad_recipe_values_are_refused(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(DistillRVCError, match=message):
        load_encoder_recipe(path)


def test_unknown_recipe_name_and_settings():
    with pytest.raises(DistillRVCError, match="unknown encoder recipe 'nope'"):
        load_encoder_recipe("nope")
    with pytest.raises(DistillRVCError, match="--version 'v3'"):
        TeachEncoderSettings(version="v3").check()
    assert TeachEncoderSettings(version="v1", steps=5).check().model.out_dim == 256
