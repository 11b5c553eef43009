"""pix2pix (Isola et al. 2017): a conditional GAN on paired images with an L1 reconstruction term; with
pix2pixHD's discriminator feature matching and VGG19 perceptual loss as options (the label-map families,
``models.spade`` and ``models.pix2pixhd``, build on it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from translate.core.errors import ConfigError, check_choice
from translate.models.base import Translation, TranslationModel, set_requires_grad
from translate.models.losses import GANObjective, feature_matching
from translate.models.perceptual import VGGLoss, load_vgg_loss
from translate.networks.layers import init_weights

Direction = Literal["AtoB", "BtoA"]


class Pix2Pix(TranslationModel):
    """G maps the source domain to the target; D judges concat(source, image) pairs.

    ``generator`` and ``discriminator`` are factories (Hydra partials) called with channel counts.
    Reference defaults: U-Net 256 with batch norm and dropout, vanilla GAN, lambda_l1 = 100. The reference's
    order: D (on the fake pair, then the real one), then G against the updated D. ``lambda_feat``: D's feature
    matching; ``lambda_vgg``: the VGG19 perceptual loss (off, with one line, when no VGG19 weights are at hand;
    ``vgg_weights`` names a file).
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
        lambda_vgg: float = 0.0,
        vgg_weights: str | None = None,
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
        self.lambda_vgg, self.vgg_weights = float(lambda_vgg), vgg_weights
        if self.lambda_vgg and vgg_weights and not Path(vgg_weights).expanduser().is_file():
            raise ConfigError(f"model.vgg_weights={vgg_weights}: no such file")  # before any work
        # Read at the first training step (loading the generator for inference never needs it), and held outside
        # the module tree: frozen ImageNet weights are no part of the model's checkpoint.
        self._vgg: list[VGGLoss | None] = []

    def vgg_loss(self) -> VGGLoss | None:
        """The VGG loss (None when off), loaded on first use."""
        if not self._vgg:
            self._vgg.append(load_vgg_loss(self.vgg_weights) if self.lambda_vgg else None)
        return self._vgg[0]

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
                                       fake_first=True, colour_from=src.shape[1])

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        set_requires_grad([self.D], False)
        src, real, fake = batch[self.src], batch[self.tgt], out["fake"]
        fake_pair = torch.cat([src, fake], 1)
        losses = {}
        if self.lambda_feat:  # on clean pairs: the adversarial term alone sees them augmented
            fake_feats = self.D(fake_pair, features=True)  # through forward: D may be a DDP wrapper
            with torch.no_grad():
                real_feats = self.D(torch.cat([src, real], 1), features=True)
            logits = self.judge(self.D, fake_pair, src.shape[1]) if self.augment.active else [f[-1] for f in fake_feats]
            losses["loss/G/feat"] = feature_matching(real_feats, fake_feats, self.feature_layers_averaged)
        else:
            logits = self.judge(self.D, fake_pair, src.shape[1])
        losses["loss/G/gan"] = self.gan_loss.g_loss(logits)
        losses["loss/G/l1"] = F.l1_loss(fake.float(), real.float())
        total = losses["loss/G/gan"] + self.lambda_l1 * losses["loss/G/l1"]
        if self.lambda_feat:
            total = total + self.lambda_feat * losses["loss/G/feat"]
        vgg = self.vgg_loss()
        if vgg is not None:
            losses["loss/G/vgg"] = vgg.to(fake.device)(fake, real)
            total = total + self.lambda_vgg * losses["loss/G/vgg"]
        losses["loss/G"] = total
        return losses
