"""Autoencoders on one domain (``model=autoencoder``, ``model=vae``): reconstruction, restoration, anomaly
scores and, for the VAE, samples.

G reconstructs its input (``data=single``: A -> A) or restores a corrupted copy (``data=corrupt`` or any paired
data: A -> B) through a bottleneck (``networks.autoencoder``). Losses, all per pixel value so their weights
compare across image sizes:

- ``loss/G/rec``: L1 (or MSE) of the output against the target, weight ``lambda_rec``;
- ``loss/G/kl`` (VAE): KL(N(mean, var) || N(0, I)) of the encoder's codes, summed over the code and divided by
  the number of pixel values of the target, weight ``beta`` (the beta-VAE's); the decoder reconstructs from a
  reparameterised sample z = mean + sigma * eps;
- ``loss/G/gan`` (``lambda_gan`` > 0): a PatchGAN on the outputs alone, for sharper samples.

After each validation the model keeps every val image's reconstruction error and fine detail
(``image_detail``) and, when G has an encoder, the per-value mean and spread of the val images' codes and each
one's distance from them (``calibrate``): the out-of-domain guard (``translate.inference.guard``) scores inputs by
them and sets its threshold at a percentile of the val images' scores, read from the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import kornia
import torch
import torch.nn.functional as F
from torch import nn

from translate.core.errors import ConfigError, check_choice
from translate.models.base import Translation, TranslationModel, set_requires_grad
from translate.models.losses import GANObjective, gaussian_kl, l1, reparameterize
from translate.networks.layers import init_weights

Side = Literal["A", "B"]


def reconstruction_error(G: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Per image, the mean absolute difference between G's output for ``x`` and ``target`` (``x`` itself
    by default), in [0, 2] pixel units: the anomaly score."""

    return l1(G(x), x if target is None else target)


CODE_STATS = ("code_mean", "code_spread", "val_code_distances")  # what calibrate keeps of the val codes
DETAIL_SIGMA = 1.5  # px: image_detail's blur


def image_detail(x: torch.Tensor) -> torch.Tensor:
    """Per image, how much fine detail it holds: the mean absolute difference from its Gaussian blur (sigma
    ``DETAIL_SIGMA`` px), in pixel units: [N]. An autoencoder's reconstruction error on its own domain grows
    with it (the guard's ``detail`` score)."""

    x = x.float()
    blurred = kornia.filters.gaussian_blur2d(x, (7, 7), (DETAIL_SIGMA, DETAIL_SIGMA), border_type="reflect")
    return (x - blurred).abs().flatten(1).mean(1)


def codes_of(G: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """G's code for each image, flat: [N, z_dim] (the mean of a variational code); None when G has no
    encoder (any generator can reconstruct)."""
    encode = getattr(G, "encode", None)
    return encode(x)[0].flatten(1).float() if callable(encode) else None


def code_distance(codes: torch.Tensor, mean: torch.Tensor, spread: torch.Tensor) -> torch.Tensor:
    """Per image, the root mean square over code values of (code - mean) / spread: how far a code lies from
    the val images' codes, in their own standard deviations (about 1 for an in-domain input)."""
    return ((codes - mean) / spread).square().mean(1).sqrt()


def spread_floor(spread: torch.Tensor) -> float:
    """The least spread a code value is divided by: a value that (nearly) never varies over the val codes."""
    return 1e-3 * float(spread.mean()) + 1e-8


def held_out_code_distances(codes: torch.Tensor) -> torch.Tensor:
    """Each of n >= 3 codes' ``code_distance`` from the mean and spread of the other n - 1: what a new image of
    the domain gets from statistics it did not shape. In sample, a code that alone moves a value is bounded
    by sqrt(n - 1) standard deviations of it; held out, it is as far as it lies, so a threshold from these
    distances flags about its percentile of new in-domain inputs (docs "The guard, measured")."""
    values = codes.double()
    n, total, squares = len(values), values.sum(0), values.square().sum(0)
    mean = (total - values) / (n - 1)
    variance = (squares - values.square() - (n - 1) * mean.square()) / (n - 2)
    floor = spread_floor(values.std(0))
    spread = variance.clamp_min(0).sqrt().clamp_min(floor)
    return code_distance(values, mean, spread).float()


class Autoencoder(TranslationModel):
    """G: the bottleneck network of ``generator`` (``networks.autoencoder.Autoencoder``; any generator works
    for plain reconstruction, the VAE needs ``variational=true``); D: ``discriminator`` on outputs alone,
    built only when ``lambda_gan`` > 0."""

    paired = True

    def __init__(self, *, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 gan_loss: GANObjective, nc_A: int = 3, nc_B: int = 3, source: Side = "A", target: Side = "A",
                 reconstruction: Literal["l1", "mse"] = "l1", lambda_rec: float = 1.0, beta: float = 0.0,
                 lambda_gan: float = 0.0, init_type: str = "normal", init_gain: float = 0.02):
        super().__init__(gan_loss)
        check_choice("model.source", source, ("A", "B"))
        check_choice("model.target", target, ("A", "B"))
        check_choice("model.reconstruction", reconstruction, ("l1", "mse"))
        if min(lambda_rec, beta, lambda_gan) < 0:
            raise ConfigError("model.lambda_rec, model.beta and model.lambda_gan must be >= 0")
        self.src, self.tgt = source, target
        self.translations = {f"{source}to{target}": Translation("G", source, target)}
        channels = {"A": nc_A, "B": nc_B}
        self.G = init_weights(generator(in_channels=channels[source], out_channels=channels[target]), init_type,
                              init_gain)
        self.variational = bool(getattr(self.G, "variational", False))
        if beta and not self.variational:
            raise ConfigError("model.beta weighs the KL term of a variational encoder: use generator=autoencoder "
                              "generator.variational=true (model=vae)")
        self.D = init_weights(discriminator(in_channels=channels[target]), init_type, init_gain) \
            if lambda_gan else None
        self.reconstruction, self.lambda_rec, self.beta, self.lambda_gan = reconstruction, lambda_rec, beta, lambda_gan
        self.val_errors = self.val_details = torch.zeros(0)
        self.code_stats: dict[str, torch.Tensor] = {}

    def generators(self) -> dict[str, nn.Module]:
        return {"G": self.G}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"D": self.D} if self.D is not None else {}

    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        groups = {"G": [self.G]}
        if self.D is not None:
            groups["D"] = [self.D]
        return groups

    # ------------------------------------------------------------------ steps
    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch[self.src]
        if not self.variational:
            return {"fake": self.G(x)}
        mean, log_var = self.G.encode(x)
        return {"fake": self.G.decode(reparameterize(mean, log_var)), "mean": mean, "log_var": log_var}

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.D is None:
            return {"loss/D": torch.zeros((), device=out["fake"].device)}
        set_requires_grad([self.D], True)
        return self.discriminator_loss(self.D, batch[self.tgt], out["fake"].detach())

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        fake, real = out["fake"].float(), batch[self.tgt].float()
        rec = F.l1_loss(fake, real) if self.reconstruction == "l1" else F.mse_loss(fake, real)
        losses = {"loss/G/rec": rec}
        total = self.lambda_rec * rec
        if self.variational:
            losses["loss/G/kl"] = gaussian_kl(out["mean"], out["log_var"]).mean() / real[0].numel()
            total = total + self.beta * losses["loss/G/kl"]
        if self.D is not None:
            set_requires_grad([self.D], False)
            losses["loss/G/gan"] = self.gan_loss.g_loss(self.judge(self.D, out["fake"]))
            total = total + self.lambda_gan * losses["loss/G/gan"]
        losses["loss/G"] = total
        return losses

    # ------------------------------------------------------------------ the guard's calibration
    @torch.no_grad()
    def calibrate(self, batches: Iterable[dict[str, torch.Tensor]], generators: dict[str, nn.Module],
                  device: torch.device) -> None:
        """Keep each val image's reconstruction error (of ``generators["G"]``, the sample generator) and
        ``image_detail`` and, when G encodes, its codes' per-value mean and spread and each val code's
        distance from those of the others (``held_out_code_distances``)."""
        G = generators["G"]
        errors, details, codes = [], [], []
        for b in batches:
            if len(b.get(self.src, ())):
                x = b[self.src].to(device)
                errors.append(reconstruction_error(G, x, b[self.tgt].to(device)).cpu())
                details.append(image_detail(x).cpu())
                codes.append(codes_of(G, x))
        self.val_errors = torch.cat(errors) if errors else torch.zeros(0)
        self.val_details = torch.cat(details) if details else torch.zeros(0)
        self.code_stats = {}
        if len(codes) and codes[0] is not None and len(self.val_errors) > 1:
            values = torch.cat(codes).cpu()
            mean, spread = values.mean(0), values.std(0)
            spread = spread.clamp_min(spread_floor(spread))
            distances = held_out_code_distances(values) if len(values) > 2 else code_distance(values, mean, spread)
            self.code_stats = {"code_mean": mean, "code_spread": spread, "val_code_distances": distances}

    def extra_state(self) -> dict:
        return {"val_errors": self.val_errors, "val_details": self.val_details, **self.code_stats}

    def load_extra_state(self, state: dict) -> None:
        self.val_errors = state.get("val_errors", torch.zeros(0))
        self.val_details = state.get("val_details", torch.zeros(0))
        self.code_stats = {k: state[k] for k in CODE_STATS if k in state}
