import os

import pytest
import torch

# Two torch threads per test; under pytest-xdist (`make test` runs `-n 2` on the 2-core CI box)
# each of the two workers gets one, so the cores are shared, not oversubscribed.
THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(THREADS)


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
