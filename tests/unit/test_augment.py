"""Differentiable augmentation (issue 32): DiffAugment's ops, ADA's pipeline and its adaptive probability."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from translate.core.errors import ConfigError
from translate.models.augment import ADA, DiffAugment, colour_matrix, cutout, geometric, recolour, shift, warp


def _image(n: int = 2, c: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), ratio=st.floats(0, 0.9))
def test_translation_shifts_whole_pixels_and_shifts_in_zeros(h, w, ratio):
    x = torch.arange(1, h * w + 1, dtype=torch.float32).view(1, 1, h, w).expand(3, 2, h, w)
    out = shift(x, ratio)
    assert out.shape == x.shape
    for img, src in zip(out, x, strict=True):  # each image is its input shifted by one integer offset
        kept = img[0][img[0] > 0]
        if len(kept):
            (y0, x0) = ((src[0] == kept[0]).nonzero()[0]).tolist()
            (y1, x1) = ((img[0] == kept[0]).nonzero()[0]).tolist()
            dy, dx = y0 - y1, x0 - x1
            assert abs(dy) <= int(h * ratio + 0.5) and abs(dx) <= int(w * ratio + 0.5)
            for y in range(h):
                for xx in range(w):
                    sy, sx = y + dy, xx + dx
                    expected = src[0, sy, sx] if 0 <= sy < h and 0 <= sx < w else 0.0
                    assert img[0, y, xx] == expected
        assert torch.equal(img[0], img[1])  # every channel alike


def test_cutout_zeroes_one_square_per_image_and_passes_gradients():
    x = torch.ones(64, 3, 16, 16, requires_grad=True)
    out = cutout(x, 0.5)
    zeroed = out[:, 0] == 0
    assert zeroed.flatten(1).sum(1).max() == 64 and zeroed.flatten(1).sum(1).min() >= 16  # 8x8, maybe clipped
    for mask in zeroed:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert mask.sum() == len(rows) * len(cols)  # a rectangle (a square clipped by the edges)
    out.sum().backward()
    assert torch.equal(x.grad, (~zeroed).float().unsqueeze(1).expand(-1, 3, -1, -1))


def test_diffaugment_runs_its_policy_in_order_and_recolours_only_the_output_of_a_pair():
    with pytest.raises(ConfigError, match="'colour' is not one of color, translation, cutout"):
        DiffAugment(policy="colour")
    assert DiffAugment(policy="cutout, color").policy == ["color", "cutout"]
    a = _image()
    pair = torch.cat([a, a], 1)
    torch.manual_seed(0)
    out = DiffAugment(policy="color")(pair, colour_from=3)
    assert torch.equal(out[:, :3], a) and not torch.allclose(out[:, 3:], a)
    out = DiffAugment(policy="translation,cutout")(pair, colour_from=3)
    assert torch.equal(out[:, :3], out[:, 3:])  # one geometric draw for both halves: the pair stays aligned


def test_ada_at_p_zero_is_the_identity_and_its_transforms_are_identities_when_not_chosen():
    x = _image()
    assert torch.equal(ADA()(x), x)
    assert torch.allclose(warp(x, geometric(x, 0.0)), x, atol=1e-5)
    assert torch.allclose(recolour(x, colour_matrix(x, 0.0)), x, atol=1e-6)
    assert torch.allclose(recolour(x[:, :1], colour_matrix(x, 0.0)), x[:, :1], atol=1e-6)


def test_ada_at_p_one_transforms_every_image_differentiably_and_keeps_pairs_aligned():
    torch.manual_seed(0)
    ada = ADA(initial_p=1.0)
    a = _image(8).requires_grad_(True)
    out = ada(torch.cat([a, a], 1), colour_from=3)
    assert out.shape == (8, 6, 16, 16)
    assert all(not torch.allclose(o, i, atol=1e-3) for o, i in zip(out[:, :3], a, strict=True))
    out.sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    m = colour_matrix(_image(4), 1.0)  # affine on RGB: the homogeneous row stays
    assert m.shape == (4, 4, 4) and torch.allclose(m[:, 3], torch.tensor([0.0, 0, 0, 1]).expand(4, 4))


def test_ada_translates_an_image_with_probability_p_one_draw_for_both_axes():
    """As the official pipeline: x and y shifts chosen together, so "no change" stays likely at p = 0.8."""
    from translate.models.augment import _chosen

    torch.manual_seed(0)
    x = _image(20000, 1, 1, 1)
    shifts = _chosen(x, 0.3, torch.full((20000, 2), 5.0), 0)
    moved_x, moved_y = shifts[:, 0] != 0, shifts[:, 1] != 0
    assert torch.equal(moved_x, moved_y)  # one draw: never x alone
    assert moved_x.float().mean().item() == pytest.approx(0.3, abs=0.015)  # not 1 - 0.7 ** 2 = 0.51


def test_ada_warps_bf16_images_on_an_fp32_grid():
    """A fake from a bf16 generator is shifted as exactly as an fp32 real (a bf16 grid is off by up to 0.6 px)."""
    x = _image(1, 3, 256, 256)
    m = torch.tensor([[[1.0, 0, 3], [0, 1, 5], [0, 0, 1]]])  # whole pixels: out[y, x] = in[y + 5, x + 3]
    want = x[..., 5:, 3:]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for image in (x, x.bfloat16()):
            out = warp(image, m)[..., :-5, :-3].float()
            assert (out - want).abs().max().item() < 0.01  # bf16's rounding of values in [-1, 1]


def _real_sign(logits, gan_loss=None) -> torch.Tensor:
    """D's real_sign for ``logits`` on reals, as a model's D step computes it for ADA."""
    from translate.models.base import TranslationModel
    from translate.models.losses import VanillaGAN

    class Judge(TranslationModel):
        paired = True

    return Judge(gan_loss or VanillaGAN()).verdicts("D", logits, logits)["D_out/D/real_sign"]


def test_ada_moves_p_by_the_sign_heuristic_every_interval():
    from translate.models.losses import LSGAN

    ada = ADA(target=0.6, speed_kimg=0.1, interval=2)  # each adjustment: 4 images * 2 steps / 100
    confident = [torch.full((4, 1, 3, 3), 2.0), torch.full((4, 1, 2, 2), 1.0)]  # two scales, all "real"
    ada.observe(_real_sign(confident), 4)
    assert ada.probability == 0.0  # not yet: one step of two
    ada.observe(_real_sign(confident), 4)
    assert ada.probability == pytest.approx(0.08)
    for _ in range(4):  # r = 0.5 < 0.6: back down, and never below 0
        ada.observe(_real_sign(torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])), 4)
    assert ada.probability == 0.0
    lsgan = ADA(speed_kimg=0.1, interval=1)
    lsgan.observe(_real_sign(torch.full((4, 1), 0.4), LSGAN()), 4)  # below LSGAN's decision: fake, p stays at 0
    assert lsgan.probability == 0.0 and lsgan.state_dict()["p"].dtype == torch.float64
    with pytest.raises(ConfigError, match="target must be in"):
        ADA(target=1.5)


def test_ada_resumes_its_p_and_its_count_from_a_state_dict():
    ada = ADA(speed_kimg=0.1, interval=2, initial_p=0.3)
    ada.observe(torch.tensor(1.0), 4)  # one D step of two counted
    fresh = ADA(speed_kimg=0.1, interval=2)
    fresh.load_state_dict(ada.state_dict())
    assert fresh.probability == 0.3 and fresh.active
    shared = ADA.shared_state(ada.state_dict())  # for another process: p and the step count, not the sums
    assert shared["p"] == ada.p and shared["tally"].tolist() == [0.0, 0.0, 1.0] and ada.tally[0] == 1.0
    fresh.observe(torch.tensor(1.0), 4)  # the second step: both adjust now
    ada.observe(torch.tensor(1.0), 4)
    assert fresh.probability == ada.probability == pytest.approx(0.38)


def test_the_leak_check_spots_rotated_and_recoloured_outputs():
    from translate.evaluation.leaks import LeakScore

    photos = _image(16, seed=3)
    photos[:, :, :8] += 0.5  # an upright scene: bright sky above
    same, turned, recoloured = LeakScore(), LeakScore(), LeakScore()
    same(None, photos, photos)
    turned(None, torch.rot90(photos, 1, (-2, -1)), photos)
    recoloured(None, recolour(photos, colour_matrix(photos, 1.0)), photos)
    assert same.result() == {"leak_orientation": 0.0, "leak_colour": 0.0}
    assert turned.result()["leak_orientation"] == 1.0
    assert recoloured.result()["leak_colour"] > 0.5
    state = torch.random.get_rng_state()
    LeakScore()(None, photos, photos)
    assert torch.equal(torch.random.get_rng_state(), state)  # its draws never move the caller's RNG


@pytest.mark.parametrize("augment", [DiffAugment(), ADA(initial_p=1.0)], ids=["diffaugment", "ada"])
def test_augmentations_run_in_the_steps_bf16_precision(augment):
    x = _image(2, 6).to(torch.bfloat16).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = augment(x, colour_from=3)
    assert out.shape == x.shape and out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    out.float().sum().backward()
    assert x.grad is not None


def test_ada_is_refused_for_a_wgan_critic_which_has_no_decision():
    from translate.models.base import TranslationModel
    from translate.models.losses import WGANGP

    class Critic(TranslationModel):
        paired = True

    model = Critic(WGANGP())
    with pytest.raises(ConfigError, match=r"augment=ada: WGANGP\(gp_weight=10.0\) has no decision"):
        model.set_augment(ADA())
    model.set_augment(DiffAugment())  # a fixed policy needs none
    assert "D_out/D/real_sign" not in model.verdicts("D", torch.ones(2, 1), torch.zeros(2, 1))
