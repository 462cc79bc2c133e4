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


# ---- issue 11.8: every write failure is one line naming the file; the previous file stays
@pytest.mark.parametrize("where, code, message", [
    ("tempfile.mkstemp", errno.EACCES, "Permission denied"),  # a read-only output folder
    ("os.replace", errno.EROFS, "Read-only file system"),  # the move into place fails
])
def test_a_refused_write_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch, where, code, message):
    target = write_text(tmp_path / "a.txt", "old")

    def refuse(*a, **k):
        raise PermissionError(code, message)

    monkeypatch.setattr(where, refuse)
    with pytest.raises(DistillRVCError, match=rf"cannot write .*a\.txt: {message}"):
        write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_folder_that_cannot_be_created_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DistillRVCError, match="cannot create folder .*file: a file of that name is in the way"):
        write_text(tmp_path / "file" / "a.txt", "new")


def test_torch_save_enforce_fail_is_a_write_failure(tmp_path):
    target = write_text(tmp_path / "ckpt.pth", "old")

    def writer(tmp):
        tmp.write_text("half")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    with pytest.raises(DistillRVCError, match=r"(cannot write|disk full while writing) .*ckpt\.pth"):
        atomic_write(target, writer)
    assert target.read_text() == "old"


def test_libsndfile_system_error_is_a_write_failure(tmp_path):
    import soundfile as sf

    target = write_text(tmp_path / "out.wav", "old")

    def writer(tmp):
        raise sf.LibsndfileError(2, "Error writing ")  # libsndfile's SFE_SYSTEM

    with pytest.raises(DistillRVCError, match=r"out\.wav"):
        atomic_write(target, writer)
    assert target.read_text() == "old"


def test_unrelated_runtime_error_keeps_its_traceback(tmp_path):
    def writer(tmp):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    with pytest.raises(RuntimeError, match="CUDA error"):
        atomic_write(tmp_path / "x.pth", writer)
    assert list(tmp_path.iterdir()) == []


# ---- issue 16.6a: stale temporaries of a killed process are removed
def test_stale_temporaries_are_removed(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".model.pth.{dead_pid}-abc123.tmp"
    stale.write_text("half")
    legacy = tmp_path / ".model.pth.k2j4h5g6.tmp"  # the naming before the pid was in it
    legacy.write_text("half")
    os.utime(legacy, (0, 0))
    live = tmp_path / f".model.pth.{os.getppid()}-xyz.tmp"  # a live writer's file is kept
    live.write_text("busy")
    other = tmp_path / f".other.pth.{dead_pid}-abc.tmp"  # another target's: not ours to judge here
    other.write_text("x")
    write_text(tmp_path / "model.pth", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.pth", live.name, other.name])


def test_torch_enforce_fail_on_a_full_disk_says_disk_full(tmp_path, monkeypatch):
    from types import SimpleNamespace

    target = write_text(tmp_path / "ckpt.pth", "old")
    monkeypatch.setattr(os, "statvfs", lambda p: SimpleNamespace(f_bavail=3, f_frsize=4096))

    def writer(tmp):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    with pytest.raises(DistillRVCError, match=r"disk full while writing .*ckpt\.pth; the previous file"):
        atomic_write(target, writer)
    assert target.read_text() == "old"
