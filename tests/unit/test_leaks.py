"""The augmentation leak check (issue 32): against each output's true photo (paired) and, for generators from
noise and unpaired translations, against real images of the target domain with held-out reals as chance."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from translate.evaluation.leaks import DistributionLeakScore, LeakScore, _OwnDraws
from translate.evaluation.validation import Validator
from translate.models.base import Translation


def _upright(n: int, seed: int) -> torch.Tensor:
    """Scenes with an orientation and a colour cast: a bright top third, reddish, with noise."""
    x = torch.rand(n, 3, 48, 48, generator=torch.Generator().manual_seed(seed)) * 0.4 - 0.6
    x[:, :, :16] += 0.8
    x[:, 0] += 0.3
    return x


def _turn(x: torch.Tensor, share: float) -> torch.Tensor:
    k = int(len(x) * share)
    return torch.cat([torch.rot90(x[:k], 1, (-2, -1)), x[k:]])


@pytest.mark.parametrize("share", [0.0, 0.25, 1.0])
def test_the_distribution_check_counts_turned_outputs_against_held_out_reals(share):
    score = DistributionLeakScore()
    outputs, reals = _turn(_upright(40, 1), share), _upright(80, 2)
    for i in range(0, 40, 10):  # batches, as a validation feeds them
        score(None, outputs[i:i + 10], reals[2 * i:2 * i + 20])
    result = score.result()
    assert result["leak_orientation"] == pytest.approx(share)
    assert result["leak_orientation_real"] == 0.0 and result["leak_colour_real"] == 0.0  # chance, these scenes


def test_the_distribution_check_counts_recoloured_outputs_and_ignores_the_mirror_image():
    outputs, reals = _upright(40, 1), _upright(80, 2)
    recoloured, mirrored = DistributionLeakScore(), DistributionLeakScore()
    recoloured(None, _OwnDraws(5).recoloured(outputs), reals)
    mirrored(None, torch.flip(outputs, (-1,)), reals)  # most datasets take a mirror image as natural
    assert recoloured.result()["leak_colour"] > 0.9
    assert mirrored.result()["leak_orientation"] == 0.0
    state = torch.random.get_rng_state()
    assert DistributionLeakScore().result() == {}  # nothing seen: nothing to say
    assert torch.equal(torch.random.get_rng_state(), state)


class _Turning(nn.Module):
    """A 'generator' whose outputs are its inputs, the first half of each batch turned by 90 degrees."""

    def forward(self, x):
        return _turn(x, 0.5)


@pytest.mark.parametrize("paired", [True, False])
def test_the_validator_runs_the_check_when_asked(paired):
    images = _upright(40, 3)
    batches = [{"A": images[i:i + 10], "B": images[i:i + 10] if paired else _upright(10, 10 + i)}
               for i in range(0, 40, 10)]
    validator = Validator({"AtoB": Translation("G", "A", "B")}, paired=paired, device=torch.device("cpu"),
                          metrics={"fid": False, "lpips": None, "leaks": True})
    assert validator.active
    result = validator({"G": _Turning()}, batches)
    assert result["val/leak_orientation"] == pytest.approx(0.5)
    assert ("val/leak_orientation_real" in result) == (not paired)
    off = Validator({"AtoB": Translation("G", "A", "B")}, paired=paired, device=torch.device("cpu"),
                    metrics={"fid": False, "lpips": None})
    assert not any("leak" in k for k in off({"G": _Turning()}, batches))
    few = Validator({"AtoB": Translation("G", "A", "B")}, paired=False, device=torch.device("cpu"),
                    metrics={"fid": False, "lpips": None, "leaks": True})
    assert not few({"G": _Turning()}, [{"A": images[:2], "B": images[2:4]}]) and "leaks" in few.skipped


def test_the_paired_check_still_counts_against_each_true_photo():
    photos = _upright(8, 4)
    score = LeakScore()
    score(None, _turn(photos, 0.5), photos)
    assert score.result()["leak_orientation"] == 0.5
