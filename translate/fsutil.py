"""Atomic file writes: readers (and a crash) never see a half-written file. Strict JSON text."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

# mkstemp creates files readable by the owner only; give outputs the usual permissions instead.
_UMASK = os.umask(0)
os.umask(_UMASK)
_MODE = 0o666 & ~_UMASK
TEMP_PREFIX = ".tmp-"
_TEMP_NAME = re.compile(r"\.tmp-(?:(?P<pid>\d+)-)?[a-z0-9_]{8}")  # mkstemp's 8 random characters


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A short prefix with the writer's process id (so a later run can tell a dead writer's leftovers from a live
    # one's): the temporary name must fit wherever the final (up to 255-byte) name does.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{os.getpid()}-")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
