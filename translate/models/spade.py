"""SPADE / GauGAN (Park et al. 2019) as a model family: label maps -> photos.

The official trainer (NVlabs/SPADE, ``trainers/pix2pix_trainer.py``) takes the generator's step first, then the
discriminator's, on the same batch; G's loss is the hinge GAN loss, discriminator feature matching (weight 10,
summed over D's layers and averaged over its scales) and the VGG19 perceptual loss (weight 10,
``translate.models.perceptual``); D judges (label map, image) pairs with the hinge loss. This family is pix2pix's
conditional GAN with that order and those losses; ``conf/model/spade.yaml`` sets the rest (``generator=spade``, a
multi-scale spectral-norm D, hinge loss, no L1, Adam with betas (0, 0.9) and the two time-scale learning rates
1e-4 for G and 4e-4 for D).

With ``style_encoder=true`` (the code's ``use_vae``) an encoder E (``translate.networks.ConvEncoder``, an
auxiliary trained with G) reads a Gaussian style code (``z_dim`` 256) off the target photo; G starts from that
code (drawn by the reparameterisation trick) instead of the downsampled map, and a KL term (``lambda_kld`` 0.05)
keeps the codes near N(0, I): one map then has many photos, and a reference photo sets the style. Grids show
the mean style and ``num_styles`` fixed styles; validation adds ``val/diversity`` over them.

The official D step makes its fakes again, without gradients, with G as the G step left it (and, with the style
encoder, with a fresh code); so does this one.

Where it still differs from the official code: the PatchGAN's hidden convolutions keep a bias before their
instance norm (the code drops it: the norm removes it anyway); the KL term is summed over the code and averaged
over the batch (the code sums it over each GPU's share of the batch, so its weight depends on the GPU count).
The VGG loss is off (one line) where no VGG19 weights are at hand, as on a machine that cannot download them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from translate.core.errors import ConfigError
from translate.core.schema import Count, Positive
from translate.models.base import StyleColumns
from translate.models.losses import gaussian_kl, reparameterize
from translate.models.pix2pix import Pix2Pix
from translate.networks.layers import init_weights


class SPADE(StyleColumns, Pix2Pix):
    """Label map (one-hot, ``data=labels``) -> photo: G's step, then D's (the official order); ``lambda_vgg`` and
    ``vgg_weights`` as pix2pix's. ``style_encoder``: the VAE style encoder (``encoder``, a factory), ``z_dim`` its code's
    size, ``lambda_kld`` the KL term's weight, ``num_styles`` the fixed styles of grids and validation."""

    phases = ("G", "D")
    feature_layers_averaged = False

    def __init__(self, *, style_encoder: bool = False, encoder: Callable[..., nn.Module] | None = None,
                 z_dim: Positive = 256, lambda_kld: float = 0.05, num_styles: Count = 4,
                 generator: Callable[..., nn.Module], **kwargs):
        if style_encoder and encoder is None:
            raise ConfigError("model.style_encoder=true needs model.encoder (conf/model/spade.yaml has one)")
        if lambda_kld < 0:
            raise ConfigError(f"model.lambda_kld={lambda_kld} must be >= 0")
        super().__init__(generator=partial(generator, z_dim=z_dim) if style_encoder else generator, **kwargs)
        if style_encoder and getattr(self.G, "nz", 0) != z_dim:
            raise ConfigError("model.style_encoder=true needs a generator that takes a style code: generator=spade")
        self.E = init_weights(encoder(in_channels=self.G.out_channels, nz=z_dim), kwargs.get("init_type", "normal"),
                              kwargs.get("init_gain", 0.02)) if style_encoder else None
        self.lambda_kld, self.num_styles = float(lambda_kld), int(num_styles)

    def auxiliaries(self) -> dict[str, nn.Module]:
        return {"E": self.E} if self.E is not None else {}

    def style_encoder(self) -> nn.Module | None:
        return self.E

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.E is None:
            return super().generate(batch)
        mu, logvar = self.E(batch[self.tgt])
        return {"fake": self.G(batch[self.src], reparameterize(mu, logvar)), "mu": mu, "logvar": logvar}

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():  # the official D step makes its fakes again with the updated G
            fresh = self.generate(batch)
        return super().d_step(batch, fresh)

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        losses = super().g_step(batch, out)
        if self.E is not None:
            losses["loss/G/kld"] = gaussian_kl(out["mu"], out["logvar"]).mean()
            losses["loss/G"] = losses["loss/G"] + self.lambda_kld * losses["loss/G/kld"]
        return losses
