"""Process-level settings that make CPU runs faster."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_applied = False


def reuse_freed_memory() -> bool:
    """Keep freed activation buffers in the process instead of returning them to the OS (glibc only).

    By default glibc serves large blocks with mmap and unmaps them on free, so every training step on the
    CPU page-faults its activations and optimizer temporaries back in; measured on the 2-core CPU this cost
    15-20% of a pix2pix step. Raising the mmap threshold to its maximum (32 MiB) and the trim threshold to
    1 GiB makes the allocator reuse that memory (the resident size stays at the run's peak instead of
    breathing). Returns whether the settings were applied; process-wide and one-way, so call it only for
    long CPU jobs.
    """
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (e.g. musl): nothing to tune
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**30))
    return _applied
