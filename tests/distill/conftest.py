"""Fixtures of the distillation tests: the bundled tiny teacher and a small example cache."""
from __future__ import annotations

from pathlib import Path

import pytest

from distill_rvc import load_model
from distill_rvc.dataset import Dataset

TINY_TEACHER = Path(__file__).resolve().parents[2] / "examples" / "tiny_teacher.pth"


@pytest.fixture(scope="session")
def example_data(tmp_path_factory):
    """8 speech-like utterances of 1.2 s (examples/make_example_dataset.py), v2 features, with F0."""
    from make_example_dataset import make_example_dataset

    return Dataset(make_example_dataset(tmp_path_factory.mktemp("data") / "cache", utterances=8, seconds=1.2))


@pytest.fixture
def teacher():
    return load_model(TINY_TEACHER)
