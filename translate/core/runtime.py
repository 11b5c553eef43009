"""Where and how networks run: device choice, numeric precision and autocast, seeding, and the process-level
settings that make CPU runs faster. Training, inference, evaluation and the benchmarks all use these."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import random
import sys
from collections.abc import Iterable

import numpy as np
import torch

from translate.core.errors import ConfigError

# trainer.precision / precision=: the autocast dtype of each choice (None: plain fp32).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str, key: str = "device") -> torch.device:
    """``auto`` (CUDA when there is one, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; a CUDA device that this
    machine lacks is a one-line ConfigError naming the setting ``key``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{key}={name!r} is not a device (auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}={name} but no CUDA device is available (use {key}=auto or cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"{key}={name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def precision_dtype(precision: str, device: torch.device, key: str = "precision") -> torch.dtype | None:
    """The autocast dtype of ``precision`` (None for fp32); fp16 needs CUDA."""
    if precision not in PRECISIONS:
        raise ConfigError(f"{key}={precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"{key}=fp16 needs a CUDA device (on CPU use fp32 or bf16)")
    return PRECISIONS[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision for the networks' forward passes; a no-op for fp32 (``dtype`` None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def training_mode(modules: Iterable[torch.nn.Module], training: bool):
    """Put ``modules`` in training (or eval) mode for the block, then back in the mode each was in."""
    modules = list(modules)
    modes = [m.training for m in modules]
    for m in modules:
        m.train(training)
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


def eval_mode(*modules: torch.nn.Module):
    """Put ``modules`` in eval mode for the block, then back in the mode each was in."""
    return training_mode(modules, False)


def configure_backends(device: torch.device, *, deterministic: bool, reuse_cpu_memory: bool) -> None:
    """cuDNN autotuning on CUDA unless ``deterministic`` (which also asks torch for deterministic kernels);
    glibc memory reuse for long CPU jobs (``reuse_freed_memory``)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cpu" and reuse_cpu_memory:
        reuse_freed_memory()


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

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
