"""Attributes of images that need no download: what TL-GAN's extractor step can use without a labelled set,
and the features the face demo's validation measures distributions on.

``pixel_attributes`` gives per-image brightness, colour temperature, saturation, contrast and edge density;
``PixelFeatures`` is a feature extractor for FID/KID (``metrics.features``): colour on a 4x4 grid, global
hue/saturation/value statistics and edge density on a 4x4 grid. Neither learns anything, so they score colour
and layout, not identity; on the face demo they tell hair colours, skin tones, backgrounds, head sizes and
positions apart.
"""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F
from torch import nn

PIXEL_ATTRIBUTES = ("brightness", "colour_temperature", "saturation", "contrast", "edge_density")


def _unit_rgb(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (float) or uint8 images -> float RGB in [0, 1]."""
    x = images.float() / 255 if images.dtype == torch.uint8 else (images.float() + 1) / 2
    return x.clamp(0, 1).expand(-1, 3, -1, -1)


def edges(rgb: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of the grey image, [N, 1, H, W] (about 0 on flat colour, up to ~1 on edges)."""
    return kornia.filters.sobel(kornia.color.rgb_to_grayscale(rgb))


def pixel_attributes(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image [N]: ``brightness`` (mean luma), ``colour_temperature`` (mean red minus blue: warm > 0),
    ``saturation`` (mean HSV saturation), ``contrast`` (the standard deviation of luma) and ``edge_density``
    (the share of pixels on an edge)."""
    rgb = _unit_rgb(images)
    hsv = kornia.color.rgb_to_hsv(rgb)
    luma = kornia.color.rgb_to_grayscale(rgb)
    return {
        "brightness": luma.mean((1, 2, 3)),
        "contrast": luma.flatten(1).std(1),
        "colour_temperature": (rgb[:, 0] - rgb[:, 2]).mean((1, 2)),
        "saturation": hsv[:, 1].mean((1, 2)),
        "edge_density": (edges(rgb) > 0.1).float().mean((1, 2, 3)),
    }


class PixelFeatures(nn.Module):
    """uint8 [N, 3, H, W] -> [N, 71] features: mean RGB on a 4x4 grid (48), hue (as a saturation-weighted
    direction), saturation and value means and spreads (6), mean red minus blue (1), edge density on a 4x4 grid
    (16). Any image size; nothing to download."""

    grid = 4

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rgb = _unit_rgb(images)
        hsv = kornia.color.rgb_to_hsv(rgb)
        hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
        colour = F.adaptive_avg_pool2d(rgb, self.grid).flatten(1)
        tone = torch.stack([(sat * hue.cos()).mean((1, 2)), (sat * hue.sin()).mean((1, 2)),
                            sat.mean((1, 2)), sat.std((1, 2)), val.mean((1, 2)), val.std((1, 2)),
                            (rgb[:, 0] - rgb[:, 2]).mean((1, 2))], 1)
        edge = F.adaptive_avg_pool2d((edges(rgb) > 0.1).float(), self.grid).flatten(1)
        return torch.cat([colour, tone, edge], 1)
