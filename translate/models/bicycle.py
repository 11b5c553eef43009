"""BicycleGAN (Zhu et al., "Toward Multimodal Image-to-Image Translation", NeurIPS 2017): paired translation
with a style code, so one input has many outputs.

Each batch is split in two halves, as the official code (junyanz/BicycleGAN) does:

- **cVAE-GAN** (first half): E encodes the target B into q(z | B) = N(mu, sigma^2); G(A, z) with z drawn from it
  must reproduce B (``lambda_l1`` L1) and fool ``D`` ; a KL term (``lambda_kl``) keeps q near N(0, I).
- **cLR-GAN** (second half's targets, first half's inputs): G(A, z) with z ~ N(0, I) must fool ``D2`` (judged
  against the second half's real B), and E must read z back off that image (``lambda_z`` L1 on E's mean). That
  term trains G only: E sees the image through a copy of its weights that gradients do not reach.
- The official order: G and E first (against the discriminators as they are), then D and D2 on the fakes made
  before that update, each on the fake, then the real, their loss the sum of the two terms (not its half).
- Optionally StarGAN v2's diversity-sensitive term (``lambda_ds``): - |G(A, z1) - G(A, z2)|_1, its weight
  decaying linearly to 0 over ``ds_decay_steps`` steps (0: no decay).

The generator takes ``G(x, z)`` (``translate.networks.bicycle``); ``G(x)`` is the mean style. E is an auxiliary
network (trained with G, saved, not exported). Grids show input | mean style | ``num_styles`` fixed styles |
target; validation adds ``val/diversity`` and ``val/random_l1`` over the same fixed styles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from translate.core.errors import ConfigError, check_choice
from translate.core.schema import Count, Positive
from translate.models.base import (
    CountsSteps,
    StyleColumns,
    Translation,
    TranslationModel,
    plain,
    set_requires_grad,
)
from translate.models.losses import GANObjective, gaussian_kl, reparameterize
from translate.networks.layers import init_weights

Direction = Literal["AtoB", "BtoA"]


class BicycleGAN(CountsSteps, StyleColumns, TranslationModel):
    """G: A x z -> B, E: B -> q(z | B), D judges cVAE-GAN outputs, D2 cLR-GAN outputs. ``generator``,
    ``discriminator`` and ``encoder`` are factories (Hydra partials). ``conditional_D``: the discriminators see
    (A, B) pairs as pix2pix's; the reference default judges B alone."""

    paired = True
    phases = ("G", "D")

    def __init__(self, *, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 encoder: Callable[..., nn.Module], gan_loss: GANObjective, nc_A: int = 3, nc_B: int = 3,
                 direction: Direction = "AtoB", nz: Positive = 8, lambda_l1: float = 10.0,
                 lambda_kl: float = 0.01, lambda_z: float = 0.5, lambda_gan: float = 1.0, lambda_gan2: float = 1.0,
                 lambda_ds: float = 0.0, ds_decay_steps: Count = 0, conditional_D: bool = False,
                 num_styles: Count = 4, init_type: str = "xavier",
                 init_gain: float = 0.02):
        super().__init__(gan_loss)
        check_choice("direction", direction, ("AtoB", "BtoA"))
        for key, value in {"lambda_l1": lambda_l1, "lambda_kl": lambda_kl, "lambda_z": lambda_z,
                           "lambda_ds": lambda_ds}.items():
            if value < 0:
                raise ConfigError(f"model.{key}={value} must be >= 0")
        self.src, self.tgt = ("A", "B") if direction == "AtoB" else ("B", "A")
        self.translations = {direction: Translation("G", self.src, self.tgt)}
        nc_src, nc_tgt = (nc_A, nc_B) if direction == "AtoB" else (nc_B, nc_A)
        self.nz = int(nz)
        try:
            G = generator(in_channels=nc_src, out_channels=nc_tgt, nz=nz)
        except TypeError:
            G = None
        if getattr(G, "nz", None) != self.nz:
            raise ConfigError("model=bicycle needs a generator that takes a style code: generator=bicycle_unet")
        self.G = init_weights(G, init_type, init_gain)
        self.E = init_weights(encoder(in_channels=nc_tgt, nz=nz), init_type, init_gain)
        d_channels = nc_src + nc_tgt if conditional_D else nc_tgt
        self.D = init_weights(discriminator(in_channels=d_channels), init_type, init_gain)
        self.D2 = init_weights(discriminator(in_channels=d_channels), init_type, init_gain)
        self.lambda_l1, self.lambda_kl, self.lambda_z = float(lambda_l1), float(lambda_kl), float(lambda_z)
        self.lambda_gan, self.lambda_gan2 = float(lambda_gan), float(lambda_gan2)
        self.lambda_ds, self.ds_decay_steps = float(lambda_ds), int(ds_decay_steps)
        self.conditional_D = bool(conditional_D)
        self.num_styles = int(num_styles)
        self.g_steps = 0  # for the diversity term's decay; saved with the training state

    # ------------------------------------------------------------------ networks
    def generators(self) -> dict[str, nn.Module]:
        return {"G": self.G}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"D": self.D, "D2": self.D2}

    def auxiliaries(self) -> dict[str, nn.Module]:
        return {"E": self.E}

    def style_encoder(self) -> nn.Module:
        return self.E

    # ------------------------------------------------------------------ steps
    def halves(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """(A, B) of the cVAE half, then (A, B) of the cLR half."""
        n = len(batch[self.src])
        if n < 2 or n % 2:
            raise ConfigError(f"model=bicycle needs an even data.batch_size of at least 2 (one half per branch); "
                              f"got batches of {n}")
        h = n // 2
        return batch[self.src][:h], batch[self.tgt][:h], batch[self.src][h:], batch[self.tgt][h:]

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        A, B, _, _ = self.halves(batch)
        mu, logvar = self.E(B)
        z_encoded = reparameterize(mu, logvar)
        z_random = torch.randn(len(A), self.nz, device=A.device, dtype=mu.dtype)
        return {"mu": mu, "logvar": logvar, "z_random": z_random,
                "fake_encoded": self.G(A, z_encoded), "fake_random": self.G(A, z_random)}

    def judged(self, A: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """What the discriminators see: the image, or (A, image) with ``conditional_D``."""
        return torch.cat([A, image], 1) if self.conditional_D else image

    def colour_from(self, A: torch.Tensor) -> int:
        """Where the image starts in what the discriminators see (augmentation recolours the image alone)."""
        return A.shape[1] if self.conditional_D else 0

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        set_requires_grad([self.D, self.D2], True)
        A, B, A_other, B_other = self.halves(batch)
        pair = {"fake_first": True, "average": False, "colour_from": self.colour_from(A)}
        losses = self.discriminator_loss(self.D, self.judged(A, B), self.judged(A, out["fake_encoded"].detach()),
                                         name="D_encoded", **pair)
        losses |= self.discriminator_loss(self.D2, self.judged(A_other, B_other),
                                          self.judged(A, out["fake_random"].detach()), name="D_random", **pair)
        losses["loss/D"] = losses["loss/D_encoded"] + losses["loss/D_random"]
        return losses

    def encode_without_training_E(self, image: torch.Tensor) -> torch.Tensor:
        """E's mean for ``image`` through detached copies of E's weights: gradients reach ``image`` (so G), never
        E (the reference's latent regression updates G alone)."""
        E = plain(self.E)
        weights = {name: p.detach() for name, p in E.named_parameters()}
        return functional_call(E, weights, (image,))[0]

    def ds_weight(self) -> float:
        """The diversity-sensitive term's weight at this step (linear decay to 0 over ``ds_decay_steps``)."""
        if not self.ds_decay_steps:
            return self.lambda_ds
        return self.lambda_ds * max(0.0, 1.0 - self.g_steps / self.ds_decay_steps)

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        set_requires_grad([self.D, self.D2], False)
        A, B, _, _ = self.halves(batch)
        losses = {
            "loss/G/gan": self.gan_loss.g_loss(self.judge(self.D, self.judged(A, out["fake_encoded"]),
                                                          self.colour_from(A))),
            "loss/G/gan2": self.gan_loss.g_loss(self.judge(self.D2, self.judged(A, out["fake_random"]),
                                                           self.colour_from(A))),
            "loss/G/l1": F.l1_loss(out["fake_encoded"].float(), B.float()),
            "loss/G/kl": gaussian_kl(out["mu"], out["logvar"]).mean(),
        }
        total = (self.lambda_gan * losses["loss/G/gan"] + self.lambda_gan2 * losses["loss/G/gan2"]
                 + self.lambda_l1 * losses["loss/G/l1"] + self.lambda_kl * losses["loss/G/kl"])
        if self.lambda_z:
            z_read = self.encode_without_training_E(out["fake_random"])
            losses["loss/G/z"] = F.l1_loss(z_read.float(), out["z_random"].float())
            total = total + self.lambda_z * losses["loss/G/z"]
        weight = self.ds_weight()
        if weight:
            other = self.G(A, torch.randn_like(out["z_random"]))
            losses["loss/G/ds"] = F.l1_loss(out["fake_random"].float(), other.float())
            total = total - weight * losses["loss/G/ds"]
        losses["loss/G"] = total
        self.g_steps += 1
        return losses
