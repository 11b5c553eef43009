"""Discriminators: PatchGAN (70x70 with n_layers=3), 1x1 pixel GAN, and a pix2pixHD multi-scale wrapper.

Every discriminator has ``forward(x) -> logits`` (a list of logit maps, one per scale, for the multi-scale
one) and ``features(x) -> list[list[Tensor]]``: per scale, the intermediate activations ending with the
logits, for feature matching.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from translate.core.schema import Positive
from translate.networks.layers import Norm, conv_bias, norm_layer


def _sn(layer: nn.Module, enabled: bool) -> nn.Module:
    return _spectral_norm(layer) if enabled else layer


def patch_min_size(n_layers: int, padding: int) -> int:
    """The smallest input side a PatchGAN takes: its 4x4 convolutions (the first and the hidden ones of stride 2,
    the last hidden one and the logits' of stride 1) leave every normalised activation at least 2x2 and the
    logits at least 1x1 (3 * 2^n_layers with padding 1)."""
    side = 1
    while True:
        s = side
        for n in range(n_layers + 2):
            s = (s + 2 * padding - 4) // (2 if n < n_layers else 1) + 1
            if s < (2 if 1 <= n <= n_layers else 1):
                break
        else:
            return side
        side += 1


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` strided 4x4 convs; n_layers=3 is the 70x70 PatchGAN (256x256 -> 30x30 logits)."""

    def __init__(
        self,
        *,
        in_channels: int = 6,
        ndf: Positive = 64,
        n_layers: Positive = 3,
        norm: Norm = "batch",
        spectral_norm: bool = False,
        spectral_outer: bool = True,
        padding: int = 1,
    ):
        """``spectral_outer=False``: spectral norm on the hidden convolutions only (SPADE's D); ``padding``: of the
        4x4 convolutions, 1 as pix2pix's PatchGAN, 2 as pix2pixHD's and SPADE's (ceil((4 - 1) / 2))."""
        super().__init__()
        bias = conv_bias(norm)
        outer = spectral_norm and spectral_outer
        # Each stage is one Sequential so that features() can return the activation after each.
        stages: list[nn.Module] = [
            nn.Sequential(_sn(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=padding), outer), nn.LeakyReLU(0.2))
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            stages.append(
                nn.Sequential(
                    _sn(nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=padding, bias=bias), spectral_norm),
                    norm_layer(norm, ndf * mult),
                    nn.LeakyReLU(0.2),
                )
            )
        stages.append(_sn(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=padding), outer))
        self.stages = nn.ModuleList(stages)
        self.min_size = patch_min_size(n_layers, padding)

    def features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """The activation after each stage (the logits last), as one scale's list."""
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return [feats]

    def forward(self, x: torch.Tensor, *, features: bool = False) -> torch.Tensor | list[list[torch.Tensor]]:
        """The logits; ``features=True``: ``features(x)`` (through ``forward``, so a DDP wrapper serves it too)."""
        if features:
            return self.features(x)
        for stage in self.stages:
            x = stage(x)
        return x


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: classifies each pixel independently (a colour critic)."""

    def __init__(
        self, *, in_channels: int = 6, ndf: Positive = 64, norm: Norm = "batch", spectral_norm: bool = False
    ):
        super().__init__()
        bias = conv_bias(norm)
        self.stages = nn.ModuleList(
            [
                nn.Sequential(_sn(nn.Conv2d(in_channels, ndf, 1), spectral_norm), nn.LeakyReLU(0.2)),
                nn.Sequential(
                    _sn(nn.Conv2d(ndf, ndf * 2, 1, bias=bias), spectral_norm),
                    norm_layer(norm, ndf * 2),
                    nn.LeakyReLU(0.2),
                ),
                _sn(nn.Conv2d(ndf * 2, 1, 1, bias=bias), spectral_norm),
            ]
        )

    min_size = 1
    features = PatchDiscriminator.features
    forward = PatchDiscriminator.forward


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` PatchGANs on the input downsampled by 1, 2, 4, ... (pix2pixHD). Returns one logit map per scale."""

    def __init__(
        self,
        *,
        in_channels: int = 6,
        ndf: Positive = 64,
        n_layers: Positive = 3,
        norm: Norm = "instance",
        num_D: Positive = 3,
        spectral_norm: bool = False,
        spectral_outer: bool = True,
        padding: int = 1,
    ):
        super().__init__()
        if num_D < 1:
            raise ValueError(f"num_D={num_D} must be >= 1")
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(
                in_channels=in_channels, ndf=ndf, n_layers=n_layers, norm=norm, spectral_norm=spectral_norm,
                spectral_outer=spectral_outer, padding=padding,
            )
            for _ in range(num_D)
        )
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        # The coarsest scale sees the input halved num_D - 1 times.
        self.min_size = self.discriminators[0].min_size * 2 ** (num_D - 1)

    def _scales(self, x: torch.Tensor):
        for i, d in enumerate(self.discriminators):
            if i > 0:
                x = self.downsample(x)
            yield d, x

    def features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        return [d.features(xs)[0] for d, xs in self._scales(x)]

    def forward(self, x: torch.Tensor, *, features: bool = False) -> list[torch.Tensor] | list[list[torch.Tensor]]:
        """One logit map per scale; ``features=True``: ``features(x)`` (so a DDP wrapper serves it too)."""
        if features:
            return self.features(x)
        return [d(xs) for d, xs in self._scales(x)]
