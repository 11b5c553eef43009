"""GAN objectives: signs, gradients, gradient penalty, feature matching, image pool."""

from __future__ import annotations

import pytest
import torch

from translate.models.losses import LSGAN, WGANGP, HingeGAN, VanillaGAN, feature_matching, gradient_penalty
from translate.models.pool import ImagePool
from translate.networks import PatchDiscriminator

OBJECTIVES = [VanillaGAN(), LSGAN(), HingeGAN(), WGANGP()]


@pytest.mark.parametrize("objective", OBJECTIVES, ids=repr)
def test_discriminator_loss_prefers_correct_logits(objective):
    ones, zeros = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    good = objective.d_loss(real=ones, fake=zeros)
    bad = objective.d_loss(real=zeros, fake=ones)
    assert good["real"] < bad["real"] and good["fake"] < bad["fake"]


@pytest.mark.parametrize("objective", OBJECTIVES, ids=repr)
def test_generator_gradient_pushes_fake_logits_up(objective):
    logits = torch.zeros(2, 1, 4, 4, requires_grad=True)
    objective.g_loss(logits).backward()
    assert (logits.grad < 0).all()  # gradient descent raises the fake logits: G tries to look real


@pytest.mark.parametrize("objective", OBJECTIVES, ids=repr)
def test_discriminator_gradient_separates_real_and_fake(objective):
    real = torch.full((1, 1, 2, 2), 0.5, requires_grad=True)
    fake = torch.full((1, 1, 2, 2), 0.5, requires_grad=True)
    terms = objective.d_loss(real, fake)
    (terms["real"] + terms["fake"]).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()


def test_known_values():
    zeros = torch.zeros(1, 1, 2, 2)
    assert VanillaGAN().d_loss(zeros, zeros)["real"].item() == pytest.approx(0.693147, abs=1e-5)
    assert LSGAN().d_loss(zeros, zeros)["real"].item() == pytest.approx(1.0)
    assert HingeGAN().d_loss(zeros, zeros)["fake"].item() == pytest.approx(1.0)


def test_multiscale_logits_are_summed_as_the_references_do():
    a, b = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 2, 2)
    assert LSGAN().g_loss([a, b]).item() == pytest.approx(1.0)  # (0 - 1)^2 at the first scale, 0 at the second


def test_losses_are_float32_under_low_precision_logits():
    logits = torch.zeros(1, 1, 2, 2, dtype=torch.bfloat16)
    assert VanillaGAN().g_loss(logits).dtype == torch.float32


def test_gradient_penalty_is_applied_and_differentiable():
    torch.manual_seed(0)
    D = PatchDiscriminator(in_channels=3, ndf=4, n_layers=2, norm="none")
    real, fake = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    gp = gradient_penalty(D, real, fake)
    assert gp.item() > 0
    gp.backward()
    # Every weight gets a gradient (a bias cannot change D's input gradient, so it gets none).
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters() if p.dim() > 1)
    assert WGANGP(gp_weight=5).gp_weight == 5.0 and VanillaGAN().gp_weight == 0


def test_gradient_penalty_zero_for_unit_gradient_critic():
    """A linear critic whose input gradient has norm exactly 1 incurs no penalty."""

    class Linear(torch.nn.Module):
        def forward(self, x):
            w = torch.ones_like(x[0]) / x[0].numel() ** 0.5
            return (x * w).flatten(1).sum(1)

    assert gradient_penalty(Linear(), torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)).item() < 1e-10


def test_feature_matching():
    r = [[torch.ones(1, 2, 4, 4), torch.ones(1, 1, 2, 2)]]
    f = [[torch.zeros(1, 2, 4, 4, requires_grad=True), torch.zeros(1, 1, 2, 2)]]
    loss = feature_matching(r, f)
    assert loss.item() == pytest.approx(1.0)  # logits excluded, one hidden layer with L1 = 1
    loss.backward()
    assert f[0][0].grad is not None


def test_image_pool_fills_then_mixes_and_round_trips():
    pool = ImagePool(size=3, seed=0)
    first = pool.query(torch.arange(2.0).view(2, 1, 1, 1))
    assert torch.equal(first.flatten(), torch.tensor([0.0, 1.0])) and len(pool) == 2
    state_before = pool.state_dict()
    out = [pool.query(torch.full((1, 1, 1, 1), float(v))).item() for v in range(10, 40)]
    assert len(pool) == 3
    assert any(v < 10 for v in out) and any(v >= 10 for v in out)  # old images come back, new ones pass
    clone = ImagePool(size=0)
    clone.load_state_dict(state_before)
    again = [clone.query(torch.full((1, 1, 1, 1), float(v))).item() for v in range(10, 40)]
    assert again == out  # the pool's draws are part of its state


def test_image_pool_disabled():
    pool = ImagePool(size=0)
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(pool.query(x), x) and len(pool) == 0
