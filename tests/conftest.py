import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))  # make_tiny_teacher & co.
sys.path.insert(0, str(Path(__file__).resolve().parent))  # rvc_files

TINY_TEACHER = ROOT / "examples" / "tiny_teacher.pth"


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
