"""pix2pix (Isola et al. 2017): a conditional GAN on paired images with an L1 reconstruction term."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from translate.core.errors import check_choice
from translate.models.base import Translation, TranslationModel, set_requires_grad
from translate.models.losses import GANObjective, feature_matching
from translate.networks.layers import init_weights

Direction = Literal["AtoB", "BtoA"]


class Pix2Pix(TranslationModel):
    """G maps the source domain to the target; D judges concat(source, image) pairs.

    ``generator`` and ``discriminator`` are factories (Hydra partials) called with channel counts.
    Reference defaults: U-Net 256 with batch norm and dropout, vanilla GAN, lambda_l1 = 100. The reference's
    order: D (on the fake pair, then the real one), then G against the updated D.
    """

    paired = True
    feature_layers_averaged = True  # feature matching averages D's layers (pix2pixHD); SPADE sums them

    def __init__(
        self,
        *,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        gan_loss: GANObjective,
        nc_A: int = 3,
        nc_B: int = 3,
        direction: Direction = "AtoB",
        lambda_l1: float = 100.0,
        lambda_feat: float = 0.0,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ):
        super().__init__(gan_loss)
        check_choice("direction", direction, ("AtoB", "BtoA"))
        self.src, self.tgt = ("A", "B") if direction == "AtoB" else ("B", "A")
        self.translations = {direction: Translation("G", self.src, self.tgt)}
        nc_src, nc_tgt = (nc_A, nc_B) if direction == "AtoB" else (nc_B, nc_A)
        self.G = init_weights(generator(in_channels=nc_src, out_channels=nc_tgt), init_type, init_gain)
        self.D = init_weights(discriminator(in_channels=nc_src + nc_tgt), init_type, init_gain)
        self.lambda_l1 = float(lambda_l1)
        self.lambda_feat = float(lambda_feat)

    def generators(self) -> dict[str, nn.Module]:
        return {"G": self.G}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"D": self.D}

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"fake": self.G(batch[self.src])}

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        set_requires_grad([self.D], True)
        src, real = batch[self.src], batch[self.tgt]
        # The fake is detached: D's loss must not send gradients into G.
        return self.discriminator_loss(self.D, torch.cat([src, real], 1), torch.cat([src, out["fake"].detach()], 1),
                                       fake_first=True)

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        set_requires_grad([self.D], False)
        src, real, fake = batch[self.src], batch[self.tgt], out["fake"]
        fake_pair = torch.cat([src, fake], 1)
        losses = {}
        if self.lambda_feat:
            fake_feats = self.D.features(fake_pair)
            with torch.no_grad():
                real_feats = self.D.features(torch.cat([src, real], 1))
            logits = [f[-1] for f in fake_feats]
            losses["loss/G/feat"] = feature_matching(real_feats, fake_feats, self.feature_layers_averaged)
        else:
            logits = self.D(fake_pair)
        losses["loss/G/gan"] = self.gan_loss.g_loss(logits)
        losses["loss/G/l1"] = F.l1_loss(fake.float(), real.float())
        total = losses["loss/G/gan"] + self.lambda_l1 * losses["loss/G/l1"]
        if self.lambda_feat:
            total = total + self.lambda_feat * losses["loss/G/feat"]
        losses["loss/G"] = total
        return losses
