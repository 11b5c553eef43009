"""CUT and FastCUT (Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation", ECCV 2020):
one generator A -> B, a discriminator, and PatchNCE between the generator's encoder features of the input and of
the output, in place of CycleGAN's second generator and cycle loss.

Following the official code (taesungp/contrastive-unpaired-translation): features at five encoder layers,
256 locations sampled per layer (the same for input and output), a 2-layer MLP head per layer, L2-normalised,
temperature 0.07, negatives from the same image, the input side detached, the layers averaged. CUT adds the
same loss between B and G(B) (``nce_idt``); FastCUT drops it, weighs PatchNCE 10 and asks for flip
equivariance. Unlike the official code, the head is built at construction and the patch locations and flips
come from a seeded generator whose state is checkpointed, so optimizer state and resume are exact. The official
order: D (on the fake, then the real), then G and the head against the updated D.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from translate.core.errors import ConfigError
from translate.core.runtime import eval_mode
from translate.core.schema import Count, Positive
from translate.models.base import Translation, TranslationModel, set_requires_grad
from translate.models.losses import GANObjective, patch_nce
from translate.networks.generators import check_layers
from translate.networks.heads import PatchProjection, sample_locations
from translate.networks.layers import generator_stride, init_weights


class CUT(TranslationModel):
    """G: A -> B judged by D; ``F`` projects G's encoder features for PatchNCE (an auxiliary network: trained with
    G, saved, never exported). ``nce_layers``: ``auto`` (the generator's ``default_feature_layers``) or layer
    numbers of its ``features``."""

    paired = False

    def __init__(
        self,
        *,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        gan_loss: GANObjective,
        nc_A: int = 3,
        nc_B: int = 3,
        lambda_gan: float = 1.0,
        lambda_nce: float = 1.0,
        nce_idt: bool = True,
        nce_layers: Literal["auto"] | list[int] = "auto",
        nce_T: float = 0.07,
        num_patches: Positive = 256,
        head_width: Positive = 256,
        flip_equivariance: bool = False,
        seed: Count = 0,
        init_type: str = "xavier",
        init_gain: float = 0.02,
    ):
        super().__init__(gan_loss)
        if nce_idt and nc_A != nc_B:
            raise ConfigError(f"model.nce_idt=true runs G on B images, which needs as many channels in A as in B "
                              f"(got {nc_A} and {nc_B}); set model.nce_idt=false")
        self.G = init_weights(generator(in_channels=nc_A, out_channels=nc_B), init_type, init_gain)
        self.D = init_weights(discriminator(in_channels=nc_B), init_type, init_gain)
        self.nce_layers = self._layers(nce_layers)
        self.F = init_weights(PatchProjection(channels=self._feature_channels(nc_A), width=head_width),
                              init_type, init_gain)
        self.translations = {"AtoB": Translation("G", "A", "B")}
        self.lambda_gan, self.lambda_nce, self.nce_idt = float(lambda_gan), float(lambda_nce), bool(nce_idt)
        self.nce_T, self.num_patches, self.flip_equivariance = float(nce_T), int(num_patches), bool(flip_equivariance)
        # Patch locations and flips: their own stream, saved in checkpoints (``extra_state``).
        self.draws = torch.Generator().manual_seed(int(seed))

    def _layers(self, nce_layers: str | Sequence[int]) -> list[int]:
        if not hasattr(self.G, "features"):
            raise ConfigError(f"model=cut needs a generator with features(x, layers); {type(self.G).__name__} has "
                              "none (use generator=resnet_9blocks, resnet_6blocks or a U-Net)")
        if nce_layers == "auto":
            return list(self.G.default_feature_layers)
        layers = [int(i) for i in nce_layers]
        try:
            check_layers(layers, 10_000)
        except ValueError as err:
            raise ConfigError(f"model.nce_layers={layers}: {err}") from None
        return layers

    @torch.no_grad()
    def _feature_channels(self, nc_A: int) -> list[int]:
        """The channel counts of the NCE layers, from one forward pass of a small dummy image."""
        side = max(generator_stride(self.G), 16)
        try:
            with eval_mode(self.G):
                feats = self.G.features(torch.zeros(1, nc_A, side, side), self.nce_layers)
        except ValueError as err:
            raise ConfigError(f"model.nce_layers={self.nce_layers}: {err}") from None
        return [f.shape[1] for f in feats]

    def generators(self) -> dict[str, nn.Module]:
        return {"G": self.G}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"D": self.D}

    def auxiliaries(self) -> dict[str, nn.Module]:
        return {"F": self.F}

    def extra_state(self) -> dict:
        return {"draws": self.draws.get_state()}

    def load_extra_state(self, state: dict) -> None:
        self.draws.set_state(state["draws"])

    # ------------------------------------------------------------------ steps
    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """G on A (and on B for the identity NCE) in one pass, as the official code; for FastCUT, half of the
        steps flip the inputs left-right (the NCE compares the flipped-back output features with the input's)."""
        A = batch["A"]
        real = torch.cat([A, batch["B"]]) if self.nce_idt else A
        flipped = self.flip_equivariance and bool(torch.rand((), generator=self.draws) < 0.5)
        fake = self.G(real.flip(3) if flipped else real)
        out = {"fake_B": fake[: len(A)], "flipped": torch.tensor(flipped)}
        if self.nce_idt:
            out["idt_B"] = fake[len(A):]
        return out

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        set_requires_grad([self.D], True)
        return self.discriminator_loss(self.D, batch["B"], out["fake_B"].detach(), fake_first=True)

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        set_requires_grad([self.D], False)
        flipped = bool(out["flipped"])
        losses = {"loss/G/gan": self.gan_loss.g_loss(self.judge(self.D, out["fake_B"]))}
        losses["loss/G/nce"] = self.nce_loss(batch["A"], out["fake_B"], flipped)
        nce = losses["loss/G/nce"]
        if self.nce_idt:
            losses["loss/G/nce_idt"] = self.nce_loss(batch["B"], out["idt_B"], flipped)
            nce = 0.5 * (nce + losses["loss/G/nce_idt"])
        losses["loss/G"] = self.lambda_gan * losses["loss/G/gan"] + self.lambda_nce * nce
        return losses

    def nce_loss(self, source: torch.Tensor, output: torch.Tensor, flipped: bool = False) -> torch.Tensor:
        """PatchNCE between G's features of ``source`` (the fixed side) and of ``output`` (G's translation of
        ``source``, flipped left-right when ``flipped``), averaged over the NCE layers."""
        output_feats = self.G(output, feature_layers=self.nce_layers)  # first, as the official code
        if flipped:
            output_feats = [f.flip(3) for f in output_feats]
        with torch.no_grad():  # the key side is detached: no gradient would reach G or F through it
            source_feats = self.G(source, feature_layers=self.nce_layers)
            where = sample_locations(source_feats, self.num_patches, self.draws)
            keys = self.F(source_feats, where)
        queries = self.F(output_feats, where)
        terms = [patch_nce(q, k, num_images=len(source), temperature=self.nce_T) for q, k in zip(queries, keys)]
        return torch.stack(terms).mean()
