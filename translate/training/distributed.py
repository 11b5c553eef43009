"""Multi-process training (``torchrun``): process group set-up and the few collectives the loop needs.

Single-process runs never touch torch.distributed: every helper degrades to the obvious local answer.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def setup(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, device for this process). Under torchrun (WORLD_SIZE > 1) this joins the process
    group: NCCL for CUDA, gloo for the CPU; each process takes the GPU of its LOCAL_RANK."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def mean(tensor: torch.Tensor) -> torch.Tensor:
    """The average of ``tensor`` over all processes."""
    if world_size() > 1:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        tensor /= world_size()
    return tensor


def gather(obj: Any) -> list[Any]:
    """``obj`` from every process, in rank order (picklable objects; ``[obj]`` in a single process)."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def any_true(*flags: bool | torch.Tensor, device: torch.device) -> list[bool]:
    """For each flag, whether it is set on any process (one collective for all of them)."""
    t = torch.tensor([float(bool(f)) for f in flags], device=device)
    if world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def same_everywhere(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` (e.g. a weight checksum) is identical on every process."""
    if world_size() == 1:
        return True
    gathered = [torch.zeros_like(tensor) for _ in range(world_size())]
    dist.all_gather(gathered, tensor)
    return all(torch.equal(g, gathered[0]) for g in gathered)
