"""How long PyTorch's OpenMP threads spin before they sleep, set before torch is imported (OpenMP reads it once,
when it loads).

An OpenMP thread that reaches the end of its share of an operation spins, waiting for the others; GNU OpenMP's
default spin lasts hundreds of thousands of iterations. On a quiet machine that saves waking it for the next
operation. On a busy one (more runnable threads than cores) it burns the time slices the other thread needs to
finish, and each of the thousands of parallel operations of a training step waits for a descheduled thread.
Measured on 2 cores, pix2pix at 256², with 4 busy processes beside it (``examples/busy_cpu.py``, docs
"Training on a busy CPU"): the default spin ran 10x slower than on the quiet machine, sleeping at once
(``OMP_WAIT_POLICY=PASSIVE``) 3.8x but 16 % slower when quiet, a short spin (``GOMP_SPINCOUNT=20000``) 3.9x and
as fast as the default when quiet. So ``import translate`` sets that short spin first thing.

``TRANSLATE_OMP_WAIT=short|active|passive`` (default short) chooses: the short spin, OpenMP's default, or no
spin. An ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` you set yourself is never changed, nor anything once torch is
imported. (Intel's OpenMP, in some builds, reads ``KMP_BLOCKTIME`` instead.) Imports only the standard library.
"""

from __future__ import annotations

import os
import sys

SHORT_SPIN = "20000"  # GNU OpenMP spin iterations before a waiting thread sleeps
CHOICES = {"short": {"GOMP_SPINCOUNT": SHORT_SPIN}, "active": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}}
THEIRS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def wait_settings(env=os.environ, modules=sys.modules) -> dict[str, str]:
    """The OpenMP variables to set (none when the user set their own or torch is already loaded); ``env``: the
    environment, ``modules``: those imported."""
    if any(key in env for key in THEIRS) or "torch" in modules:
        return {}
    choice = env.get("TRANSLATE_OMP_WAIT", "short").strip().lower()
    if choice not in CHOICES:
        print(f"TRANSLATE_OMP_WAIT={choice!r} is not one of {', '.join(CHOICES)}; using short", file=sys.stderr)
        choice = "short"
    return CHOICES[choice]


def settle_wait_policy() -> None:
    """Set OpenMP's waiting for the torch this process is about to import (see the module's doc)."""
    os.environ.update(wait_settings())
