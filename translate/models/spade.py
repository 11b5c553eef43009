"""SPADE / GauGAN (Park et al. 2019) as a model family: label maps -> photos.

The official trainer (NVlabs/SPADE, ``trainers/pix2pix_trainer.py``) takes the generator's step first, then the
discriminator's, on the same batch; G's loss is the hinge GAN loss, discriminator feature matching (weight 10,
summed over D's layers and averaged over its scales) and the VGG19 perceptual loss (weight 10,
``translate.models.perceptual``); D judges (label map, image) pairs with the hinge loss. This family is pix2pix's
conditional GAN with that order and those losses; ``conf/model/spade.yaml`` sets the rest (``generator=spade``, a
multi-scale spectral-norm D, hinge loss, no L1, Adam with betas (0, 0.9) and the two time-scale learning rates
1e-4 for G and 4e-4 for D).

Where it still differs from the official code (issue 31 goes on): no VAE style encoder (``use_vae``) yet; the
PatchGAN's hidden convolutions keep a bias before their instance norm (the code drops it: the norm removes it
anyway). The VGG loss is off (one line) where no VGG19 weights are at
hand, as on a machine that cannot download them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from translate.core.errors import ConfigError
from translate.models.perceptual import VGGLoss, load_vgg_loss
from translate.models.pix2pix import Pix2Pix


class SPADE(Pix2Pix):
    """Label map (one-hot, ``data=labels``) -> photo: G's step, then D's (the official order). ``lambda_vgg``: the
    VGG19 perceptual loss's weight (off, with one line, when no VGG19 weights are at hand; ``vgg_weights``
    names a file)."""

    phases = ("G", "D")
    feature_layers_averaged = False

    def __init__(self, *, lambda_vgg: float = 10.0, vgg_weights: str | None = None, **kwargs):
        super().__init__(**kwargs)
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

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        losses = super().g_step(batch, out)
        vgg = self.vgg_loss()
        if vgg is not None:
            fake, real = out["fake"], batch[self.tgt]
            losses["loss/G/vgg"] = vgg.to(fake.device)(fake, real)
            losses["loss/G"] = losses["loss/G"] + self.lambda_vgg * losses["loss/G/vgg"]
        return losses
