"""An unconditional GAN: a generator from noise (DCGAN, the anime-face tutorial's, StyleGAN) and a
discriminator of whole images, trained on one folder of images (``data=single`` or the face demo).

Its one translation reads latents under batch key ``z`` and produces the domain of the real images under
``A``: each training step draws fresh latents from the training RNG (so resume stays exact); sample grids
and validation use latents drawn once from a fixed seed (``with_fixed_inputs``), so the same faces are shown
and scored at every step. Validation is FID/KID of generated against real val images, on the Inception
features or ``metrics.features`` (the face demo uses pixel statistics: nothing to download).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from translate.core.errors import ConfigError
from translate.core.schema import Positive
from translate.models.base import Translation, TranslationModel, fixed_latents, set_requires_grad, to_rgb
from translate.models.losses import GANObjective, r1_penalty

LATENT = "z"


def grid_columns(images: torch.Tensor) -> list[torch.Tensor]:
    """Split N images into the columns of a near-square grid (the most columns that divide N and are at most
    its square root's ceiling)."""
    n = len(images)
    k = next(c for c in range(math.ceil(math.sqrt(n)), 0, -1) if n % c == 0)
    rows = n // k
    return [images[c::k][:rows] for c in range(k)]


class NoiseGAN(TranslationModel):
    """G(z) against real images; D judges whole images.

    ``generator`` and ``discriminator`` are factories (Hydra partials) called with the channel count and the
    image side. ``r1_gamma``: weight of the R1 penalty on D's gradient at real images (StyleGAN: 10; 0: off);
    ``r1_every``: compute it on every k-th D step only, weighted by k (StyleGAN 2's lazy regularisation; the
    penalty's double backward is most of a step's cost on a CPU).
    """

    paired = False
    from_noise = True

    def __init__(self, *, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 gan_loss: GANObjective, channels: int = 3, image_size: int = 64, r1_gamma: float = 0.0,
                 r1_every: Positive = 1):
        super().__init__(gan_loss)
        self.translations = {"noise": Translation("G", LATENT, "A")}
        self.G = generator(out_channels=channels, size=image_size)
        try:
            self.D = discriminator(in_channels=channels, size=image_size)
        except TypeError:
            raise ConfigError("model=gan needs a discriminator of whole images: discriminator=dcgan, stylegan or "
                              "tutorial (the patch discriminators judge translations)") from None
        if r1_gamma < 0:
            raise ConfigError(f"model.r1_gamma={r1_gamma} must be >= 0")
        self.z_dim, self.r1_gamma, self.r1_every = int(self.G.z_dim), float(r1_gamma), int(r1_every)
        self.d_steps = 0  # counts D steps for r1_every; saved with the training state

    def generators(self) -> dict[str, nn.Module]:
        return {"G": self.G}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"D": self.D}

    def latents(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=like.device)

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real = batch["A"]
        return {"fake": self.G(self.latents(len(real), real))}

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        set_requires_grad([self.D], True)
        losses = self.discriminator_loss(self.D, batch["A"], out["fake"].detach())
        if self.r1_gamma and self.d_steps % self.r1_every == 0:
            losses["loss/D/r1"] = r1_penalty(lambda x: self.judge(self.D, x), batch["A"])  # on augmented reals, as ADA
            weight = 0.5 * self.r1_gamma * self.r1_every
            losses["loss/D"] = losses["loss/D"] + weight * losses["loss/D/r1"]
        self.d_steps += 1
        return losses

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        set_requires_grad([self.D], False)
        gan = self.gan_loss.g_loss(self.judge(self.D, out["fake"]))
        return {"loss/G/gan": gan, "loss/G": gan}

    def extra_state(self) -> dict:
        return {"d_steps": self.d_steps}

    def load_extra_state(self, state: dict) -> None:
        self.d_steps = int(state.get("d_steps", 0))

    def with_fixed_inputs(self, batch: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
        """The batch with one fixed latent per real image under ``z``."""
        return batch | {LATENT: fixed_latents(len(batch["A"]), self.z_dim, seed)}

    @torch.no_grad()
    def sample_columns(self, batch: dict[str, torch.Tensor],
                       generators: dict[str, nn.Module] | None = None) -> list[torch.Tensor]:
        """The fixed latents' images as a near-square grid."""
        G = (generators or self.generators())["G"]
        return grid_columns(to_rgb(G(batch[LATENT])))

    def sample_labels(self, batch: dict[str, torch.Tensor]) -> list[str]:
        return []  # a near-square grid of images: its columns are not kinds
