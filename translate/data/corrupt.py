"""Restoration data from any photo folder (``data=corrupt``): A is a corrupted copy of B, made on the fly.

Each sample's clean photo B goes through the usual resize/crop/flip, then every corruption of
``data.corruptions`` in order, each with a strength drawn uniformly from its range (kornia; the draws come from
the dataset's per-sample seed, so a sample is the same with any number of workers and after a resume, and the
val split is the same at every validation):

- ``gaussian_noise``: additive N(0, sigma^2), sigma in ``noise_sigma`` (in [0, 1] pixel units);
- ``poisson_noise``: shot noise of a sensor collecting ``poisson_peak`` photons at white;
- ``gaussian_blur``: sigma in ``blur_sigma`` pixels;
- ``motion_blur``: a line kernel of ``motion_length`` pixels at a random angle;
- ``jpeg``: JPEG compression at a quality in ``jpeg_quality``;
- ``downscale``: down by a factor in ``downscale`` (antialiased), back up bicubic;
- ``mask``: random rectangles covering a share of the image in ``mask_share``, filled with grey; the mask
  goes to A as an extra channel (1 = missing), so an inpainting model has ``data.output_nc + 1`` input
  channels (``model.nc_A``; the ``inpaint`` experiment sets it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import kornia
import torch
import torch.nn.functional as F

from translate.core.errors import ConfigError
from translate.data.files import load_image
from translate.data.folders import SingleDataset
from translate.data.inpainting import inpainting_input
from translate.data.modules import DataModule

CORRUPTIONS = ("gaussian_noise", "poisson_noise", "gaussian_blur", "motion_blur", "jpeg", "downscale", "mask")
DEFAULT_RANGES = {"noise_sigma": (0.02, 0.12), "poisson_peak": (8.0, 64.0), "blur_sigma": (1.0, 2.5),
                  "motion_length": (5.0, 13.0), "jpeg_quality": (8.0, 30.0), "downscale": (2.0, 4.0),
                  "mask_share": (0.1, 0.3)}


def uniform(low: float, high: float) -> float:
    """A draw from [low, high] with the (per-sample seeded) global torch RNG."""
    return float(low + (high - low) * torch.rand(()))


class Corruptor:
    """Applies ``corruptions`` (names of ``CORRUPTIONS``, in order) to [C, H, W] images in [-1, 1]."""

    def __init__(self, corruptions: Sequence[str], ranges: dict[str, Sequence[float]] | None = None):
        unknown = [c for c in corruptions if c not in CORRUPTIONS]
        if unknown or not corruptions:
            raise ConfigError(f"data.corruptions={list(corruptions)}: choose one or more of {', '.join(CORRUPTIONS)}")
        self.corruptions = list(corruptions)
        self.ranges = {**DEFAULT_RANGES}
        for key, value in (ranges or {}).items():
            if key not in DEFAULT_RANGES:
                raise ConfigError(f"data.{key} is not a corruption strength ({', '.join(DEFAULT_RANGES)})")
            low, high = (float(v) for v in value)
            if not 0 <= low <= high:
                raise ConfigError(f"data.{key}={list(value)}: a range [low, high] with 0 <= low <= high")
            self.ranges[key] = (low, high)
        self.masked = "mask" in self.corruptions

    def draw(self, key: str) -> float:
        return uniform(*self.ranges[key])

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """The corrupted copy (with the mask channel appended when masking)."""
        x = ((image.float() + 1) / 2)[None]  # [1, C, H, W] in [0, 1]
        mask = None
        for name in self.corruptions:
            if name == "mask":
                x, mask = self.mask(x)
            else:
                x = getattr(self, name)(x).clamp(0, 1)
        out = x[0] * 2 - 1
        return inpainting_input(out, mask[0]) if mask is not None else out

    # ------------------------------------------------------------------ the corruptions ([1, C, H, W], [0, 1])
    def gaussian_noise(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.draw("noise_sigma") * torch.randn_like(x)

    def poisson_noise(self, x: torch.Tensor) -> torch.Tensor:
        peak = self.draw("poisson_peak")
        return torch.poisson(x * peak) / peak

    def gaussian_blur(self, x: torch.Tensor) -> torch.Tensor:
        sigma = self.draw("blur_sigma")
        size = 2 * math.ceil(3 * sigma) + 1
        return kornia.filters.gaussian_blur2d(x, (size, size), (sigma, sigma), border_type="reflect")

    def motion_blur(self, x: torch.Tensor) -> torch.Tensor:
        length = 2 * round(self.draw("motion_length") / 2) + 1  # odd
        angle, direction = uniform(0.0, 180.0), uniform(-1.0, 1.0)
        return kornia.filters.motion_blur(x, length, angle, direction, border_type="reflect")

    def jpeg(self, x: torch.Tensor) -> torch.Tensor:
        quality = torch.tensor([self.draw("jpeg_quality")])
        h, w = x.shape[-2:]
        padded = F.pad(x, (0, (-w) % 16, 0, (-h) % 16), mode="replicate")  # whole 16x16 blocks
        rgb = padded if padded.shape[1] == 3 else padded.expand(-1, 3, -1, -1)
        coded = kornia.enhance.jpeg_codec_differentiable(rgb, quality)[..., :h, :w]
        return coded if x.shape[1] == 3 else coded.mean(1, keepdim=True)

    def downscale(self, x: torch.Tensor) -> torch.Tensor:
        factor = self.draw("downscale")
        h, w = x.shape[-2:]
        small = F.interpolate(x, size=(max(1, round(h / factor)), max(1, round(w / factor))), mode="bicubic",
                              antialias=True, align_corners=False)
        return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)

    def mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rectangles (each up to half the image on a side) until their union covers the drawn share."""
        h, w = x.shape[-2:]
        share = self.draw("mask_share")
        mask = torch.zeros(1, 1, h, w)
        while mask.mean() < share:
            mh, mw = (max(1, int(uniform(0.1, 0.5) * side)) for side in (h, w))
            top, left = int(torch.randint(0, h - mh + 1, ())), int(torch.randint(0, w - mw + 1, ()))
            mask[..., top : top + mh, left : left + mw] = 1
        return x * (1 - mask) + 0.5 * mask, mask


class CorruptDataset(SingleDataset):
    """The photos of one folder as (A = corrupted, B = clean) pairs."""

    def __init__(self, root: str | Path, split: str, transform, *, corruptor: Corruptor, channels: int = 3,
                 max_size: int | None = None):
        super().__init__(root, split, transform, input_nc=channels, max_size=max_size)
        self.corruptor = corruptor

    def load(self, index: int, seed: int) -> dict:
        path = self.files[index]
        (B,) = self._transform(path, load_image(path, self.input_nc))
        return {"A": self.corruptor(B), "B": B, "A_path": str(path), "B_path": str(path)}


class CorruptData(DataModule):
    """``data=corrupt``: any photo folder (``root/<split>`` if it exists, else ``root``) as restoration pairs;
    ``output_nc`` is the photos' channels, A has one more with ``mask``."""

    def __init__(self, *, corruptions: Sequence[str] = ("gaussian_blur",), **kwargs):
        ranges = {k: kwargs.pop(k) for k in list(kwargs) if k in DEFAULT_RANGES}
        super().__init__(**kwargs)
        self.corruptor = Corruptor(list(corruptions), ranges)

    def dataset(self, split: str, *, train: bool = True) -> CorruptDataset:
        return CorruptDataset(self.root, split, self.transform(train), corruptor=self.corruptor,
                              channels=self.output_nc, max_size=self.max_size)

    def has_split(self, split: str) -> bool:
        return (self.root / split).is_dir()
