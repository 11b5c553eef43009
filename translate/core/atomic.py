"""Atomic file writes: readers (and a crash) never see a half-written file. Strict JSON text."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from translate.core.errors import DiskFullError, OutputError, first_line

# mkstemp creates files readable by the owner only; give outputs the usual permissions instead.
_UMASK = os.umask(0)
os.umask(_UMASK)
_MODE = 0o666 & ~_UMASK
TEMP_PREFIX = ".tmp-"
_TEMP_NAME = re.compile(r"\.tmp-(?:(?P<pid>\d+)-)?[a-z0-9_]{8}")  # mkstemp's 8 random characters


_REASONS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
            errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
            errno.EPERM: "permission denied", errno.ENOTDIR: "a part of the path is a file, not a folder"}
# torch.save's zip writer reports a failed write (e.g. a full disk) as a RuntimeError with one of these.
_TORCH_WRITE_FAILURES = ("unexpected pos", "PytorchStreamWriter failed", "file write failed")
LOW_SPACE = 64 * 2**20


def _free_bytes(path: Path) -> int | None:
    for folder in (path, *path.parents):
        if folder.exists():
            return shutil.disk_usage(folder).free
    return None


def write_failure(path: str | Path, error: BaseException) -> OutputError:
    """A one-line OutputError saying why ``path`` could not be written (full disk, read-only, permission); a
    DiskFullError when there is no space left (ENOSPC, EDQUOT, or a failure with almost no free space)."""
    path = Path(path)
    if isinstance(error, OSError) and error.errno in _REASONS:
        reason = _REASONS[error.errno]
    else:
        free = _free_bytes(path.parent)
        reason = "the disk is full" if free is not None and free < LOW_SPACE else first_line(error)
    full = reason in (_REASONS[errno.ENOSPC], _REASONS[errno.EDQUOT])
    return (DiskFullError if full else OutputError)(f"{path}: cannot write ({reason})")


def is_write_failure(error: BaseException) -> bool:
    """Whether ``error`` (raised while writing a file) is the file system's refusal, not a program error."""
    return isinstance(error, OSError) or (
        isinstance(error, RuntimeError) and any(s in str(error) for s in _TORCH_WRITE_FAILURES))


def make_folder(path: str | Path) -> Path:
    """``mkdir -p``, with a failure as a one-line OutputError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # mkdir's only complaint when ``path`` itself is a file
        raise OutputError(f"{path}: cannot write (it is a file, not a folder)") from None
    except OSError as e:
        raise write_failure(path, e) from None
    return path


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``. A full
    disk, a read-only folder or a missing permission is a one-line OutputError; ``path`` is then untouched."""
    path = Path(path)
    make_folder(path.parent)
    # A short prefix with the writer's process id (so a later run can tell a dead writer's leftovers from a live
    # one's): the temporary name must fit wherever the final (up to 255-byte) name does.
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{os.getpid()}-")
    except OSError as e:
        raise write_failure(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if is_write_failure(e):
            raise write_failure(path, e) from None
        raise
    return path


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temp_files(folder: str | Path, *, recursive: bool = False) -> int:
    """Delete the temporary files ``atomic_write`` left in ``folder`` when its process was killed mid-write
    (kill -9, power loss): only this project's own (``.tmp-<pid>-XXXXXXXX``, or ``.tmp-XXXXXXXX`` from versions
    before the pid was added) and only those whose writer is no longer running. Returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.rglob(f"{TEMP_PREFIX}*") if recursive else folder.glob(f"{TEMP_PREFIX}*"):
        match = _TEMP_NAME.fullmatch(path.name)
        if not match or not path.is_file() or (match["pid"] and _writer_alive(int(match["pid"]))):
            continue
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def json_text(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` with inf and NaN written as null: strict JSON parsers (and jq, JavaScript) reject the
    bare ``Infinity``/``NaN`` that Python writes by default."""
    return json.dumps(_finite(obj), allow_nan=False, **kwargs)
