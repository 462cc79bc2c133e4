from __future__ import annotations

import errno
import os
import stat

import pytest

from distill_rvc import DistillRVCError
from distill_rvc.atomic import atomic_write, write_text


def test_written_files_get_the_usual_mode(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "hi")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_full_disk_is_reported_and_keeps_the_old_file(tmp_path):
    target = write_text(tmp_path / "model.pth", "old")

    def writer(tmp):
        tmp.write_text("half of the new")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DistillRVCError, match="disk full while writing .*model.pth"):
        atomic_write(target, writer)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]


def test_interrupted_writer_leaves_nothing(tmp_path):
    def writer(tmp):
        tmp.write_text("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "x.json", writer)
    assert list(tmp_path.iterdir()) == []
