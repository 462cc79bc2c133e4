"""Fixtures of the distillation tests: the bundled tiny teacher and a small example cache."""
from __future__ import annotations

import pytest
import torch

from tests.fixtures import TINY_TEACHER
from distill_rvc import load_model
from distill_rvc.data.dataset import Dataset


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny: their ops gain nothing from a second thread, and two threads on
    cores shared with other jobs spin-wait each other into a 10-30x slowdown (measured here)."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def example_data(tmp_path_factory):
    """8 speech-like utterances of 1.2 s (examples/make_example_dataset.py), v2 features, with F0."""
    from examples.make_example_dataset import make_example_dataset

    return Dataset(make_example_dataset(tmp_path_factory.mktemp("data") / "cache", utterances=8, seconds=1.2))


@pytest.fixture
def teacher():
    return load_model(TINY_TEACHER)
