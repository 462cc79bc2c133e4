"""A planted payload for the "refused and never runs" tests, and the unsafe reader that proves
it is live (so those tests can fail).

`run_pickle(path)` unpickles a torch.save zip's `data.pkl` with plain `pickle`, as an unsafe
loader would; tensors come back as None. Nothing in this repository calls torch's loader
unrestricted, not even the tests.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any


class Planted:
    """Pickles as a call to os.system: loading it unsafely creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def run_pickle(path: str | Path) -> Any:
    """Unpickle `path` (torch's zip format) with no restriction at all, running what it holds."""
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        data = z.read(name)

    class Unsafe(pickle._Unpickler):
        def persistent_load(self, pid):  # tensor storages: not needed to run the payload
            return None

        def find_class(self, module, name):  # torch's tensor rebuilders: stubs; anything else, for real
            if module.split(".")[0] == "torch":
                return lambda *args, **kwargs: None
            return super().find_class(module, name)

    return Unsafe(io.BytesIO(data)).load()
