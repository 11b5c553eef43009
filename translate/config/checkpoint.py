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

from translate.core.atomic import atomic_write
from translate.core.errors import CheckpointError, NonFiniteLossError, OutputError, first_line

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
    if not isinstance(ckpt["format_version"], int) or isinstance(ckpt["format_version"], bool):
        raise CheckpointError(f"{path}: format_version is {ckpt['format_version']!r}, not a whole number")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format_version']} is newer than this version of translate "
            f"reads ({FORMAT_VERSION}); upgrade translate"
        )
    check_structure(ckpt, path, REQUIRED)
    return ckpt


# What each field of a checkpoint must be; a file is untrusted, so a field of another type is refused by name.
FIELDS: dict[str, tuple[type, ...]] = {
    "config": (dict,), "step": (int,), "total_steps": (int,), "epoch": (int,), "batch_in_epoch": (int,),
    "networks": (dict,), "ema": (dict,), "optimizers": (dict,), "schedulers": (dict,), "scalers": (dict,),
    "model_state": (dict,), "rng": (dict,), "wandb_run_id": (str, type(None)), "metrics": (dict,),
    "best": (dict,), "augment": (dict,), "replicas": (list,),
}
REQUIRED = ("config", "networks")  # enough to rebuild a generator (infer, evaluate, export)
TRAINING_STATE = ("step", "epoch", "batch_in_epoch", "ema", "optimizers", "schedulers", "scalers", "model_state",
                  "rng")  # also needed to resume
RNG_FIELDS = {"python": (tuple, list), "numpy": (dict,), "torch": (torch.Tensor,)}


def check_structure(ckpt: dict[str, Any], path: str | Path, required: tuple[str, ...]) -> None:
    """Refuse, in one line naming the field, a checkpoint that lacks a ``required`` field or has one of the wrong
    type (``step="abc"``, networks that are not state dicts, an incomplete RNG state)."""
    for key in required:
        if key not in ckpt:
            raise CheckpointError(f"{path}: the checkpoint has no {key!r} (it is incomplete or not a training run's)")
    for key, types in FIELDS.items():
        if key in ckpt and (not isinstance(ckpt[key], types) or isinstance(ckpt[key], bool)):
            raise CheckpointError(f"{path}: {key} is {type(ckpt[key]).__name__} {_short(ckpt[key])}, expected "
                                  f"{' or '.join(t.__name__ for t in types)}")
    for key in ("step", "epoch", "batch_in_epoch", "total_steps"):
        if key in ckpt and ckpt[key] < 0:
            raise CheckpointError(f"{path}: {key} is {ckpt[key]}, expected a count >= 0")
    for name, state in ckpt.get("networks", {}).items():
        if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
            raise CheckpointError(f"{path}: networks.{name} is not a state dict of tensors")
    if "rng" in ckpt:
        _check_rng(ckpt["rng"], path, "rng")
    for i, replica in enumerate(ckpt.get("replicas", [])):  # each process's own state (torchrun)
        if not isinstance(replica, dict) or not isinstance(replica.get("rng"), dict) \
                or not isinstance(replica.get("augment", {}), dict):
            raise CheckpointError(f"{path}: replicas[{i}] is not a process's saved state")
        _check_rng(replica["rng"], path, f"replicas[{i}].rng")


def _check_rng(rng: dict[str, Any], path: str | Path, where: str) -> None:
    for key, types in RNG_FIELDS.items():
        if not isinstance(rng.get(key), types):
            raise CheckpointError(f"{path}: {where}.{key} is missing or not a saved random state")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def load_network_state(net: torch.nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """``net.load_state_dict(state)``, with a mismatch said in one line naming the keys and both shapes."""
    own = net.state_dict()
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    if missing or unexpected:
        parts = [f"missing {_few(missing)}" if missing else "", f"unexpected {_few(unexpected)}" if unexpected else ""]
        raise ValueError(f"{name}: {'; '.join(p for p in parts if p)}")
    for key, tensor in own.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ValueError(f"{name}.{key} has shape {list(state[key].shape)} in the checkpoint and "
                             f"{list(tensor.shape)} in this model")
    net.load_state_dict(state)


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" (and {len(keys) - 3} more)" if len(keys) > 3 else "")


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
        try:
            atomic_save(state, path)
            if numbered and self.keep > 0:
                atomic_save(state, self.folder / f"step_{state['step']:07d}.pt")
                for old in sorted(self.folder.glob("step_*.pt"))[: -self.keep]:
                    old.unlink(missing_ok=True)
        except OutputError as e:
            kept = f"the last good checkpoint {self.last} is intact" if self.last.exists() else "no checkpoint was kept"
            raise OutputError(f"{e}; {kept}") from None
        return path
