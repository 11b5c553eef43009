"""A reproducible busy machine for benchmarks: ``background_load(n)`` keeps ``n`` single-threaded processes
spinning on integer arithmetic for as long as the block runs (no memory traffic, no I/O: each takes one core's worth
of time slices when it gets it). ``n`` = 2 x the cores is a load average of about that on an idle machine, what a
shared box or a laptop with a browser and a build running gives a training job.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from collections.abc import Iterator


def _spin() -> None:
    """Busy forever (until terminated): one runnable thread."""
    x = 1
    while True:
        for i in range(100_000):
            x = (x * 1103515245 + i) & 0xFFFFFFFF


@contextlib.contextmanager
def background_load(n: int) -> Iterator[None]:
    """``n`` spinning processes during the block (none for 0), stopped when it ends, whatever happens in it."""
    if n < 0:
        raise ValueError(f"load={n}: a number of busy processes, 0 or more")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_spin, daemon=True, name=f"busy-{i}") for i in range(n)]
    for proc in procs:
        proc.start()
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(timeout=10)
