"""Benchmarks: ``translate bench infer|train|serve [settings ...]``.

- ``infer``: batch conversion against the reference test script's one-image loop (``translate.apps.bench.infer``).
- ``train``: training-step speed per mode (fp32 eager, channels_last, bf16/fp16, compile, the best
  combination), with FLOPs, achieved TFLOP/s and peak memory (``translate.apps.bench.train``).
- ``serve``: latency (p50/p95, one at a time and in parallel bursts) and peak memory of the page's server
  (``translate.apps.bench.serve``).

Each mode runs in its own process, so peak memory is per mode. Results are printed and written as JSON.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
from typing import Any

import torch


def peak_memory_mib(device: torch.device) -> float:
    """Peak CUDA allocation on GPU; peak resident set size of this process on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def in_subprocess(target, *args: Any) -> dict[str, Any]:
    """Run ``target(*args, queue)`` in a fresh spawned process and return what it puts on the queue."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, results))
    proc.start()
    proc.join()
    if proc.exitcode != 0 or results.empty():
        raise RuntimeError(f"benchmark process {target.__name__}{args[:1]} failed (exit code {proc.exitcode})")
    return results.get()
