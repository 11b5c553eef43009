"""G_ema's decay ramps up with the run (trainer.ema.rampup), so a short run's average is not its random start."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from translate.training.ema import averaged, decay_at


def test_the_decay_is_bounded_by_a_half_life_of_a_share_of_the_steps_so_far():
    assert decay_at(1, 0.999, 0.05) == pytest.approx(0.5 ** 20)  # the second update nearly replaces the copy
    assert decay_at(1000, 0.999, 0.05) == pytest.approx(0.5 ** (1 / 50))  # half-life 50 steps
    assert decay_at(20_000, 0.999, 0.05) == 0.999  # past ln 2 / (0.05 * -ln 0.999) = 13,863 steps: the fixed decay
    assert decay_at(1, 0.999, None) == 0.999


@pytest.mark.parametrize(("rampup", "start_kept"), [(0.05, 0.0), (None, 0.999 ** 999)])
def test_a_short_runs_average_forgets_its_start_only_with_the_rampup(rampup, start_kept):
    G = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(G.weight)
    ema = averaged(G, 0.999, rampup)
    ema.update_parameters(G)  # the first update copies the start (0)
    nn.init.ones_(G.weight)
    for _ in range(999):
        ema.update_parameters(G)
    kept = 1 - ema.module.weight.item()  # the start's share of the average
    assert kept == pytest.approx(start_kept, abs=1e-6)
    assert int(ema.n_averaged) == 1000


def test_integer_buffers_follow_the_model_and_float_buffers_are_averaged():
    G = nn.BatchNorm1d(2)
    ema = averaged(G, 0.5, None)
    ema.update_parameters(G)
    G.num_batches_tracked.fill_(7)
    G.running_mean.fill_(2.0)
    ema.update_parameters(G)
    assert int(ema.module.num_batches_tracked) == 7
    assert torch.allclose(ema.module.running_mean, torch.ones(2))  # halfway from 0 to 2


def test_the_ramp_reaches_the_fixed_decay_where_the_module_says():
    step = math.log(2) / (0.05 * -math.log(0.999))
    assert decay_at(math.floor(step), 0.999, 0.05) < 0.999 <= decay_at(math.ceil(step), 0.999, 0.05) + 1e-12


@pytest.mark.parametrize("saved_before_rampup", [False, True])
def test_the_loop_ramps_its_average_unless_the_config_predates_the_rampup(tiny_cfg, aligned_root, saved_before_rampup):
    """A config stored before ``trainer.ema.rampup`` existed (resumed runs) keeps its fixed decay."""
    from omegaconf import open_dict

    from translate.training.loop import Trainer, prepare_config

    cfg = tiny_cfg("data=aligned", "generator=resnet_6blocks", f"data.root={aligned_root}", "trainer.ema.enabled=true")
    if saved_before_rampup:
        with open_dict(cfg):
            del cfg.trainer.ema.rampup
    trainer = Trainer(prepare_config(cfg))
    G, ema = trainer.nets["G"], trainer.ema["G"]
    with torch.no_grad():
        ema.update_parameters(G)
        before = [p.clone() for p in G.parameters()]
        for p in G.parameters():
            p.add_(1.0)
        ema.update_parameters(G)
    moved = next(iter(ema.module.parameters())) - before[0]  # the share of the step the average took
    expected = 1 - (0.999 if saved_before_rampup else decay_at(2, 0.999, 0.05))
    assert torch.allclose(moved, torch.full_like(moved, expected), atol=1e-5)
