import pytest
import torch


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
