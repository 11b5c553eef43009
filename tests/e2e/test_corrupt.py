"""Restoration data (``data=corrupt``): each corruption's effect, determinism per seed, and training on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import write_image
from PIL import Image

from translate.core.errors import ConfigError
from translate.data.corrupt import CORRUPTIONS, CorruptData, Corruptor
from translate.training.loop import fit


def photo(size: int = 64) -> torch.Tensor:
    """A smooth image with edges (a photo stand-in) in [-1, 1]."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    image = torch.stack([x, y, ((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.1).float()])
    image[:, size // 4 : size // 2, size // 4 : 3 * size // 4] = 0.9
    return image * 2 - 1


def high_frequency_energy(x: torch.Tensor) -> float:
    return float((x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., 1:] - x[..., :-1]).pow(2).mean())


def corrupted(name: str, seed: int = 0, image: torch.Tensor | None = None, **ranges) -> torch.Tensor:
    torch.manual_seed(seed)
    return Corruptor([name], ranges)(photo() if image is None else image)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_corruption_is_deterministic_per_seed_and_changes_the_image(name):
    a, b, c = corrupted(name, 0), corrupted(name, 0), corrupted(name, 1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1
    assert (a[:3] - photo()).abs().mean() > 0.005


def test_blur_lowers_the_high_frequency_energy():
    clean = high_frequency_energy(photo())
    for name in ("gaussian_blur", "motion_blur", "downscale"):
        assert high_frequency_energy(corrupted(name)) < 0.7 * clean, name
    assert high_frequency_energy(corrupted("gaussian_noise")) > 1.5 * clean  # noise adds it


def test_lower_jpeg_quality_means_a_larger_error():
    errors = [float((corrupted("jpeg", jpeg_quality=[q, q]) - photo()).abs().mean()) for q in (90, 40, 10)]
    assert errors[0] < errors[1] < errors[2]


def test_masks_cover_the_requested_share_and_travel_as_a_channel():
    for share in (0.1, 0.3, 0.5):
        for seed in range(5):
            out = corrupted("mask", seed, mask_share=[share, share])
            assert out.shape[0] == 4
            mask = (out[3] + 1) / 2
            assert share <= mask.mean() < share + 0.25
            holes = mask.bool()
            assert torch.allclose(out[:3][:, holes], torch.zeros(())) and torch.equal(out[:3][:, ~holes],
                                                                                      photo()[:, ~holes])


def test_bad_settings_are_one_line():
    with pytest.raises(ConfigError, match="data.corruptions=\\['fog'\\]: choose one or more of"):
        Corruptor(["fog"])
    with pytest.raises(ConfigError, match="data.blur_sigma=\\[3, 1\\]: a range"):
        Corruptor(["gaussian_blur"], {"blur_sigma": [3, 1]})


def test_the_dataset_gives_the_same_pairs_for_the_same_sample(tmp_path):
    for i in range(3):
        write_image(tmp_path / "photos" / "train" / f"{i}.png", (48, 48), seed=i)
    data = CorruptData(root=tmp_path / "photos", corruptions=["gaussian_noise", "jpeg"], load_size=32, crop_size=32)
    train = data.dataset("train")
    first, again = train[(1, 77)], train[(1, 77)]
    assert torch.equal(first["A"], again["A"]) and torch.equal(first["B"], again["B"])
    assert first["A"].shape == first["B"].shape == (3, 32, 32) and not torch.equal(first["A"], first["B"])
    assert not torch.equal(train[(1, 78)]["A"], first["A"])


@pytest.mark.slow
@pytest.mark.parametrize("corruptions,extra", [("[gaussian_blur,jpeg]", []), ("[mask]", ["model.nc_A=4"])],
                         ids=["deblur", "inpaint"])
def test_pix2pix_trains_on_it(tmp_path, tiny_cfg, corruptions, extra):
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for i in range(n):
            (tmp_path / "photos" / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "photos" / split /
                                                                                   f"{i}.png")
    cfg = tiny_cfg("data=corrupt", f"data.root={tmp_path / 'photos'}", f"data.corruptions={corruptions}",
                   "generator=unet_64", "data.load_size=64", "data.crop_size=64", "trainer.max_steps=2",
                   "trainer.val_every=2", *extra)
    metrics = fit(cfg)
    assert "val/psnr" in metrics and np.isfinite(metrics["val/psnr"])
