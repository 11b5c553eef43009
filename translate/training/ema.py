"""The exponential moving average of the generators (``trainer.ema``): ``G_ema``, used for samples, validation
and export.

A fixed decay of 0.999 keeps 0.999^t of the first weights after t steps: 37 % of a random network after 1,000
steps, 61 % after 500, which is most of a short run's samples. ``rampup`` (StyleGAN2-ADA's ``ema_rampup``) bounds
the average's half-life by that share of the steps so far: at step t the decay is
``min(decay, 0.5 ** (1 / (rampup * t)))``, so the average always covers the last few per cent of the run and
reaches the fixed decay only once the run is long enough (t = ln 2 / (rampup * -ln decay): 13,863 steps for
0.999 and 0.05). ``None`` keeps the decay fixed from the first step (runs saved before ``rampup`` existed).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def decay_at(step: int, decay: float, rampup: float | None) -> float:
    """The decay of the update at ``step`` (1 for the first update, which copies the weights)."""
    if rampup is None:
        return decay
    return min(decay, 0.5 ** (1 / (rampup * step)))


def averaged(G: nn.Module, decay: float, rampup: float | None) -> AveragedModel:
    """``G``'s moving average, its buffers (StyleGAN's noise strengths, norms' statistics) averaged too
    (AveragedModel calls ``update`` once per dtype). The count of updates is part of its state dict, so a
    resumed run goes on with the same decays."""

    @torch.no_grad()
    def update(average: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        if not average[0].is_floating_point():  # one dtype per call: counts (num_batches_tracked) follow G
            torch._foreach_copy_(average, current)
            return
        torch._foreach_lerp_(average, current, 1 - decay_at(int(n_averaged) + 1, decay, rampup))

    return AveragedModel(G, multi_avg_fn=update, use_buffers=True)
