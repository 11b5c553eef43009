"""The VGG19 perceptual loss of pix2pixHD and SPADE (their ``VGGLoss``): L1 between VGG19 activations of the
output and the target at relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1, weighted 1/32, 1/16, 1/8, 1/4 and 1, on
images in [-1, 1] as the codes feed them (no ImageNet normalisation).

The ImageNet weights come from torchvision's cache (``torch.hub`` checkpoints, where ``torchvision.models.vgg19``
puts them) or from ``model.vgg_weights=PATH`` (a torchvision ``vgg19`` state dict, or its ``features`` alone),
read with ``weights_only=True``; nothing is downloaded. Without weights the loss is off with one line; a
``vgg_weights`` file that does not hold VGG19 weights is refused in one line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import VGG19_Weights
from torchvision.models.vgg import cfgs, make_layers

from translate.core.errors import ConfigError, first_line

SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))  # up to relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


def cached_vgg19() -> Path:
    """Where torchvision keeps the ImageNet VGG19 weights once downloaded."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]


class VGGLoss(nn.Module):
    """The perceptual loss over a frozen VGG19's ``features`` (see the module docstring)."""

    def __init__(self, features: nn.Sequential):
        super().__init__()
        self.slices = nn.ModuleList(features[a:b] for a, b in SLICES).eval().requires_grad_(False)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        x, y, loss = fake, real.detach(), fake.new_zeros((), dtype=torch.float32)
        for weight, part in zip(WEIGHTS, self.slices):
            x, y = part(x), part(y)
            loss = loss + weight * F.l1_loss(x.float(), y.detach().float())
        return loss


def load_vgg_loss(path: str | Path | None) -> VGGLoss | None:
    """The VGG loss with weights from ``path`` or torchvision's cache; None (said in one line) without weights."""
    source = Path(path).expanduser() if path else cached_vgg19()
    if not source.is_file():
        if path:
            raise ConfigError(f"model.vgg_weights={path}: no such file")
        print(f"VGG loss is off: no VGG19 weights in {source} (model.vgg_weights=PATH gives a copy)", file=sys.stderr)
        return None
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
        features = vgg19_features()
        features.load_state_dict({str(k).removeprefix("features."): v for k, v in state.items()
                                  if not str(k).startswith("classifier.")})
    except Exception as e:  # noqa: BLE001 - any unreadable or different file is one line
        raise ConfigError(f"model.vgg_weights={source}: not VGG19 weights ({first_line(e)})") from None
    return VGGLoss(features)


def vgg19_features() -> nn.Sequential:
    """torchvision's VGG19 convolutional part (``vgg19().features``), without building its 100M-parameter head."""
    return make_layers(cfgs["E"], batch_norm=False)
