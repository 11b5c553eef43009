"""Optimizers, learning-rate schedules and gradient scalers of a run, built in one place from the config.

One optimizer (``cfg.optim.<group>``) and one schedule (``cfg.scheduler``) per optimizer group of the model;
one gradient scaler per phase (``D``, ``G``): the phase's loss is scaled once, backpropagated once, and every
optimizer of the phase steps on it. Scalers only scale under fp16; otherwise they pass through.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from translate.config.compose import build
from translate.core.errors import ConfigError
from translate.models.base import Phase, TranslationModel


@dataclass
class Optimization:
    optimizers: dict[str, Optimizer]
    schedulers: dict[str, LRScheduler]
    scalers: dict[Phase, torch.amp.GradScaler]
    groups_of_phase: dict[Phase, list[str]]
    make_scheduler: Callable[[Optimizer], LRScheduler]

    def step(self, phase: Phase, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` and step the optimizers of ``phase``."""
        scaler = self.scalers[phase]
        optimizers = [self.optimizers[name] for name in self.groups_of_phase[phase]]
        if not optimizers:  # a model without discriminators: nothing to step in the D phase
            return
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        for opt in optimizers:
            scaler.step(opt)
        scaler.update()

    def advance_schedules(self) -> None:
        for scheduler in self.schedulers.values():
            scheduler.step()

    def learning_rates(self) -> dict[str, float]:
        return {f"lr/{name}": s.get_last_lr()[0] for name, s in self.schedulers.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "scalers": {name: s.state_dict() for name, s in self.scalers.items()},
        }

    def load_state_dict(self, state: dict[str, Any], *, step: int, same_length: bool) -> None:
        """Restore optimizers and scalers. The schedules are replayed to ``step`` (along the new length when the
        run's changed); when the run keeps its length, the stored schedules must be exactly that replay: one
        tampered with, or another run's, is refused (ValueError naming it), never silently taken or dropped."""
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for phase, scaler in self.scalers.items():
            scaler.load_state_dict(state["scalers"][phase])
        self.replay_schedules(step)
        if same_length:
            for name, scheduler in self.schedulers.items():
                if not _same_state(state["schedulers"].get(name), scheduler.state_dict()):
                    raise ValueError(f"schedulers.{name} is not the schedule of this run at step {step} (tampered "
                                     "with, or another run's)")

    def replay_schedules(self, steps: int) -> None:
        """Put freshly built schedules (for the run's current length) at ``steps``, from the base rates."""
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"]
            fresh = self.make_scheduler(opt)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": intended here
                for _ in range(steps):
                    fresh.step()
            self.schedulers[name] = fresh


def _same_state(stored: Any, replayed: Any) -> bool:
    """Whether a stored scheduler state equals the replayed one, value for value (numbers exactly)."""
    if isinstance(replayed, dict):
        return isinstance(stored, dict) and stored.keys() == replayed.keys() and all(
            _same_state(stored[k], replayed[k]) for k in replayed)
    if isinstance(replayed, (list, tuple)):
        return isinstance(stored, (list, tuple)) and len(stored) == len(replayed) and all(
            _same_state(a, b) for a, b in zip(stored, replayed))
    if isinstance(replayed, torch.Tensor):
        return isinstance(stored, torch.Tensor) and torch.equal(stored, replayed)
    return type(stored) is type(replayed) and stored == replayed


def build_optimization(cfg: DictConfig, model: TranslationModel, *, total_steps: int,
                       device: torch.device) -> Optimization:
    """``cfg.optim.<group>`` for each of the model's optimizer groups, ``cfg.scheduler`` over ``total_steps``,
    and a gradient scaler per phase (active under ``trainer.precision=fp16`` only)."""
    def make_scheduler(opt: Optimizer) -> LRScheduler:
        return build(cfg.scheduler)(opt, total_steps=total_steps)

    optimizers, schedulers = {}, {}
    groups_of_phase: dict[Phase, list[str]] = {"D": [], "G": []}
    for name, nets in model.optimizer_groups().items():
        if name not in cfg.optim:
            raise ConfigError(f"optim.{name}: the model has an optimizer group {name!r} but the config has no "
                              f"optimizer for it (add optim.{name}, e.g. copied from optim.G)")
        params = [p for net in nets for p in net.parameters()]
        optimizers[name] = build(cfg.optim[name])(params)
        schedulers[name] = make_scheduler(optimizers[name])
        groups_of_phase[model.phase_of(name)].append(name)
    fp16 = cfg.trainer.precision == "fp16"
    scalers = {phase: torch.amp.GradScaler(device.type, enabled=fp16) for phase in groups_of_phase}
    return Optimization(optimizers, schedulers, scalers, groups_of_phase, make_scheduler)

