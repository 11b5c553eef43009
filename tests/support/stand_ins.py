"""Small stand-ins for pretrained networks the tests cannot download."""

from __future__ import annotations

import torch
from torch import nn


class TinyFeatures(nn.Module):
    """A fixed random conv net mapping uint8 images [N, 3, H, W] to 16 features, in place of Inception, so the
    FID/KID code path runs in tests without weights."""

    def __init__(self, dim: int = 16, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2)
        self.conv2 = nn.Conv2d(8, dim, 3, stride=2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 127.5 - 1
        return torch.relu(self.conv2(torch.relu(self.conv1(x)))).mean((2, 3))
