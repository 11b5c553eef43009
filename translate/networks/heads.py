"""Projection heads: small networks trained beside a generator that map its features into the space a loss
compares them in (CUT's PatchNCE)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from translate.core.schema import Positive


class PatchProjection(nn.Module):
    """CUT's ``PatchSampleF``: one 2-layer MLP (C -> width -> width, ReLU between) per feature layer, applied to
    the feature vectors at chosen locations and L2-normalised.

    ``channels`` are the feature layers' channel counts, so the MLPs exist from construction (the official code
    builds them lazily on the first batch, which breaks optimizer state and resume).
    """

    def __init__(self, *, channels: Sequence[int], width: Positive = 256):
        super().__init__()
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(c, width), nn.ReLU(), nn.Linear(width, width)) for c in channels
        )

    def forward(self, features: Sequence[torch.Tensor], locations: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """For each layer's ``[B, C, H, W]`` features and its flat ``locations`` (indices into H*W, the same for
        every image), the ``[B * len(locations), width]`` unit vectors, image by image."""
        if len(features) != len(self.mlps):
            raise ValueError(f"{len(features)} feature layers for a head of {len(self.mlps)}")
        out = []
        for mlp, feat, where in zip(self.mlps, features, locations):
            patches = feat.flatten(2).transpose(1, 2)[:, where].flatten(0, 1)  # [B * P, C]
            out.append(l2_normalized(mlp(patches)))
        return out


def l2_normalized(x: torch.Tensor) -> torch.Tensor:
    """Rows divided by their L2 norm plus 1e-7, as CUT's reference ``Normalize`` does (``F.normalize`` divides by
    max(norm, eps) instead, which differs while the head's outputs are small, as at the start of training)."""
    return x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-7)


def sample_locations(features: Sequence[torch.Tensor], num_patches: int,
                     generator: torch.Generator) -> list[torch.Tensor]:
    """Per layer, ``min(num_patches, H * W)`` distinct flat locations drawn from ``generator`` (on the CPU, so its
    state can be saved), on the features' device."""
    return [torch.randperm(f.shape[2] * f.shape[3], generator=generator)[:num_patches].to(f.device)
            for f in features]
