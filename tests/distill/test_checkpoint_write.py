"""issue 11.8: a checkpoint that cannot be written (full disk during torch.save) is one line; the
previous checkpoint stays."""
from __future__ import annotations

import pytest
import torch

from distill_rvc import DistillRVCError
from distill_rvc.distill import train_state


class _Session:
    def state_dict(self):
        return {"w": torch.zeros(3)}


def test_full_disk_during_torch_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    (tmp_path / "checkpoints").mkdir()
    previous = train_state.save_state(tmp_path, _Session(), 1, 0, (1.0, 1.0), {}, torch.device("cpu"), keep=5)
    before = previous.read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *a, **k):
        real_save(obj, f)  # the bytes land, then the zip writer's final write fails as on a full disk
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 2432 vs 2326")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(DistillRVCError, match=r"(cannot write|disk full while writing) .*step_00000002\.pt"):
        train_state.save_state(tmp_path, _Session(), 2, 0, (1.0, 1.0), {}, torch.device("cpu"), keep=5)
    assert previous.read_bytes() == before
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [previous.name]
