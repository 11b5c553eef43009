"""A model family defined outside the library, as a user would add one: one file and one config node, and the
loop, checkpoints, validation, inference and export take it without any change.

``OneSided`` is an unpaired, one-directional model (A -> B only): one generator with an optional style input
(``G(x, z=None)``), one discriminator, and an auxiliary projection head trained by its own optimizer group
(``optim.H``) in the G phase, like CUT's head.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from translate.models.base import Translation, TranslationModel, set_requires_grad
from translate.models.losses import GANObjective
from translate.networks.layers import init_weights


class StyleGenerator(nn.Module):
    """Two convolutions; a style code shifts the hidden features (``z=None``: the mean style, zero)."""

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, width: int = 8, style_dim: int = 4):
        super().__init__()
        self.style_dim = style_dim
        self.encode = nn.Conv2d(in_channels, width, 3, padding=1)
        self.style = nn.Linear(style_dim, width)
        self.decode = nn.Conv2d(width, out_channels, 3, padding=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.encode(x))

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        if z is not None:
            h = h + self.style(z)[:, :, None, None]
        return torch.tanh(self.decode(h))


class OneSided(TranslationModel):
    paired = False

    def __init__(self, *, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 gan_loss: GANObjective, nc_A: int = 3, nc_B: int = 3, lambda_feature: float = 1.0):
        super().__init__(gan_loss)
        self.translations = {"AtoB": Translation("G", "A", "B")}
        self.G = init_weights(generator(in_channels=nc_A, out_channels=nc_B))
        self.D = init_weights(discriminator(in_channels=nc_B))
        self.H = nn.Conv2d(self.G.encode.out_channels, 4, 1)  # projection head: trained, saved, never exported
        self.lambda_feature = float(lambda_feature)

    def generators(self) -> dict[str, nn.Module]:
        return {"G": self.G}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"D": self.D}

    def auxiliaries(self) -> dict[str, nn.Module]:
        return {"H": self.H}

    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        return {"G": [self.G], "H": [self.H], "D": [self.D]}

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"fake_B": self.G(batch["A"])}

    def d_step(self, batch, out):
        set_requires_grad([self.D], True)
        return self.discriminator_loss(self.D, batch["B"], out["fake_B"].detach())

    def g_step(self, batch, out):
        set_requires_grad([self.D], False)
        # The head maps input and output features to a space where they should agree (content is kept).
        source = F.normalize(self.H(self.G.features(batch["A"])).detach(), dim=1)
        result = F.normalize(self.H(self.G.features(out["fake_B"])), dim=1)
        losses = {"loss/G/gan": self.gan_loss.g_loss(self.D(out["fake_B"])),
                  "loss/G/feature": (1 - (source * result).sum(1)).mean()}
        losses["loss/G"] = losses["loss/G/gan"] + self.lambda_feature * losses["loss/G/feature"]
        return losses
