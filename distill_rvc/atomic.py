"""Atomic writes: every file distill-rvc produces appears whole or not at all.

Data goes to a temporary file beside the target, is flushed to disk, then moved into place
with `os.replace`. A crash, a kill or a full disk leaves the previous file untouched.
"""
from __future__ import annotations

import contextlib
import errno
import json
import glob
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .errors import DistillRVCError


_START = time.time()  # stale temporaries are those left before this process began


def _temp_pattern(path: Path) -> str:
    return f".{glob.escape(path.name)}.*.tmp"


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove temporaries of `path` (our naming: `.NAME.<pid>-XXXX.tmp`) that a killed process left.

    A temporary is stale when the process that made it is gone, or (for names without a pid,
    from older versions) when it was last written before this process started. Temporaries
    of live writers are kept. Returns the files removed.
    """
    path = Path(path)
    removed = []
    try:
        candidates = list(path.parent.glob(_temp_pattern(path)))
    except OSError:
        return removed
    for tmp in candidates:
        middle = tmp.name[len(path.name) + 2: -len(".tmp")]
        pid_text = middle.split("-", 1)[0]
        try:
            if pid_text.isdigit() and "-" in middle:
                if int(pid_text) == os.getpid() or _alive(int(pid_text)):
                    continue
            elif tmp.stat().st_mtime >= _START:
                continue
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return False
    return True


_WRITE_FAILURE = re.compile(r"enforce fail|inline_container|write fail|failed writing|No space|System error|Input/output error", re.I)


def _is_write_failure(e: BaseException) -> bool:
    """True for the errors a serializer raises when the file cannot be written.

    OSError always; soundfile's LibsndfileError (a RuntimeError; libsndfile reports a full disk
    as "System error"); torch.save's RuntimeErrors from its zip writer ("[enforce fail at
    inline_container.cc]", "file write failed"). Other RuntimeErrors (a CUDA fault, a bug) are
    not write failures and keep their traceback.
    """
    if isinstance(e, OSError):
        return True
    if any(c.__name__ in ("LibsndfileError", "SoundFileRuntimeError") for c in type(e).__mro__):
        return True
    return isinstance(e, RuntimeError) and bool(_WRITE_FAILURE.search(str(e)))


def _disk_full(e: BaseException, folder: Path) -> bool:
    if getattr(e, "errno", None) == errno.ENOSPC or "No space" in str(e):
        return True
    if isinstance(e, OSError):
        return False
    try:  # torch and libsndfile lose the errno: ask the file system
        st = os.statvfs(folder)
        return st.f_bavail * st.f_frsize < 1 << 20
    except OSError:
        return False


def write_failure(path: Path, e: BaseException) -> DistillRVCError:
    """The one-line error for a failed write of `path`."""
    if _disk_full(e, path.parent):
        return DistillRVCError(f"disk full while writing {path}; the previous file (if any) is untouched")
    text = str(e).strip()
    detail = getattr(e, "strerror", None) or (text.splitlines()[0][:160] if text else type(e).__name__)
    return DistillRVCError(f"cannot write {path}: {detail}; the previous file (if any) is untouched")


def make_folder(folder: str | Path) -> Path:
    """`mkdir -p folder`, a failure (read-only, a file in the way) as one line."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DistillRVCError(f"cannot create folder {folder}: a file of that name is in the way") from None
    except OSError as e:
        raise DistillRVCError(f"cannot create folder {folder}: {e.strerror or e}") from None
    return folder


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path in the target's folder; on success it replaces `path`.

    A failure to write (read-only folder, full disk, any OSError; soundfile's and torch.save's
    write errors) removes the temporary file and raises DistillRVCError naming `path`; the
    previous file stays as it was. Other errors from the body pass through unchanged.
    """
    path = Path(path)
    make_folder(path.parent)
    remove_stale_temporaries(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise write_failure(path, e) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        # mkstemp makes the file owner-only (0600); give it the mode a plain open() would,
        # so a client running as another user (or in a container) can read the result.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except DistillRVCError:
        tmp.unlink(missing_ok=True)
        raise
    except BaseException as e:
        # judged before the temporary goes: removing it frees the space that shows a full disk
        failure = write_failure(path, e) if isinstance(e, Exception) and _is_write_failure(e) else None
        tmp.unlink(missing_ok=True)
        if failure is not None:
            raise failure from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, writer: Callable[[Path], Any]) -> Path:
    """Call `writer(tmp_path)` and move the result to `path`."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def finite(x: Any) -> Any:
    """`x` ready for strict JSON: NaN and infinities become None (null), numpy scalars plain
    numbers, through dicts, lists and tuples."""
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
