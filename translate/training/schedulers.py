"""Learning-rate schedules over training steps, built from ``torch.optim.lr_scheduler``.

Each factory takes the optimizer and the run's ``total_steps`` (the loop passes them), so configs give
fractions of the run and schedules follow ``trainer.max_steps`` / ``max_epochs`` automatically.
"""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import ConstantLR, CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR, StepLR

from translate.core.errors import ConfigError


def _fraction_to_steps(value: float, total_steps: int, name: str) -> int:
    if not 0 <= value <= 1:
        raise ConfigError(f"scheduler.{name}={value} must be a fraction of the run between 0 and 1")
    return round(value * total_steps)


def constant(optimizer: Optimizer, *, total_steps: int) -> LRScheduler:
    """The learning rate never changes."""
    return ConstantLR(optimizer, factor=1.0, total_iters=0)


def linear_decay(optimizer: Optimizer, *, total_steps: int, decay_start: float = 0.5) -> LRScheduler:
    """The reference schedule: constant, then linear decay to zero over the rest of the run.

    ``decay_start=0.5`` is the reference's n_epochs = n_epochs_decay.
    """
    start = _fraction_to_steps(decay_start, total_steps, "decay_start")
    decay = max(total_steps - start, 1)
    hold = ConstantLR(optimizer, factor=1.0, total_iters=0)
    fall = LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=decay)
    if start == 0:
        return fall
    return SequentialLR(optimizer, [hold, fall], milestones=[start])


def step(optimizer: Optimizer, *, total_steps: int, every: float = 0.5, gamma: float = 0.1) -> LRScheduler:
    """Multiply the learning rate by ``gamma`` every ``every`` fraction of the run."""
    return StepLR(optimizer, step_size=max(_fraction_to_steps(every, total_steps, "every"), 1), gamma=gamma)


def cosine(optimizer: Optimizer, *, total_steps: int, eta_min: float = 0.0) -> LRScheduler:
    """Cosine annealing from the base learning rate to ``eta_min`` over the run."""
    return CosineAnnealingLR(optimizer, T_max=max(total_steps, 1), eta_min=eta_min)
