"""Self-describing checkpoints: one file holding the resolved config and every piece of training state.

Files are written atomically (temporary file + rename) and read with ``torch.load(weights_only=True)``: a
checkpoint is untrusted input, and nothing in it is executed. ``Checkpointer`` is the run's writer: last.pt,
best.pt and numbered snapshots, never a state with non-finite weights.

A checkpoint holds: ``format_version``, ``config`` (the resolved run config), the counters ``step``,
``total_steps``, ``epoch``, ``batch_in_epoch``, ``networks`` and ``ema`` (state dicts by network name),
``optimizers``, ``schedulers``, ``scalers``, ``model_state`` (the model's extra state, e.g. image pools),
``rng``, ``wandb_run_id``, ``metrics`` (the last logged) and ``best`` (the best validation value and its step).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from translate.errors import CheckpointError, NonFiniteLossError, first_line
from translate.fsutil import atomic_write

FORMAT_VERSION = 1
LAST = "last.pt"
BEST = "best.pt"  # kept by the validation metric named in checkpoint.monitor


def rng_state() -> dict[str, Any]:
    """Every global RNG's state, in types that ``weights_only`` loading accepts."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` atomically (temporary file + rename)."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or a run folder (its ``checkpoints/last.pt``)."""
    path = Path(path).expanduser()
    if path.is_dir():
        for candidate in (path / "checkpoints" / LAST, path / LAST):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{path}: no checkpoints/{LAST} in this run folder")
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or run folder")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate one of our checkpoints (weights_only: no code is run)."""
    path = resolve_checkpoint_path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt, truncated or hostile files all end here
        raise CheckpointError(f"{path}: not a readable checkpoint ({first_line(e)})") from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise CheckpointError(f"{path}: not a translate training checkpoint (no format_version)")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format_version']} is newer than this version of translate "
            f"reads ({FORMAT_VERSION}); upgrade translate"
        )
    return ckpt


def weights_finite(networks: dict[str, dict[str, torch.Tensor]]) -> bool:
    """Whether every floating-point tensor of the state dicts in ``networks`` is finite."""
    return all(bool(torch.isfinite(t).all()) for state in networks.values() for t in state.values()
               if t.is_floating_point())


class Checkpointer:
    """The checkpoints of one run, in ``folder``: ``last.pt`` (every save), ``best.pt`` and, when ``keep`` > 0,
    the ``keep`` newest numbered ``step_XXXXXXX.pt``. Only the writing process (``enabled``) writes."""

    def __init__(self, folder: str | Path, *, keep: int = 0, enabled: bool = True):
        self.folder = Path(folder)
        self.keep = int(keep)
        self.enabled = enabled

    @property
    def last(self) -> Path:
        return self.folder / LAST

    def save(self, state: dict[str, Any], *, numbered: bool = False, name: str = LAST) -> Path:
        """Write ``state`` as ``name`` (and as a numbered snapshot); refused when its weights are not finite,
        so a good checkpoint is never replaced by a broken one."""
        path = self.folder / name
        if not self.enabled:
            return path
        if not weights_finite(state["networks"]):
            raise NonFiniteLossError(f"the weights became NaN or infinite by step {state['step']}")
        atomic_save(state, path)
        if numbered and self.keep > 0:
            atomic_save(state, self.folder / f"step_{state['step']:07d}.pt")
            for old in sorted(self.folder.glob("step_*.pt"))[: -self.keep]:
                old.unlink(missing_ok=True)
        return path
