"""CycleGAN (Zhu et al. 2017): two generators and two discriminators trained with cycle consistency."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from translate.models.base import Translation, TranslationModel, set_requires_grad
from translate.models.losses import GANObjective, l1
from translate.models.pool import ImagePool
from translate.networks.layers import init_weights


class CycleGAN(TranslationModel):
    """G_A: A -> B judged by D_A; G_B: B -> A judged by D_B (the reference's naming).

    Reference defaults: ResNet-9 generators with instance norm, LSGAN, lambda_A = lambda_B = 10,
    identity weight 0.5 (relative to the cycle weights), 50-image pools. The reference's order: the generators
    first, scored by the discriminators as they are; then the discriminators, on the fakes made before the
    generators' update (through the pools).
    """

    paired = False
    phases = ("G", "D")

    def __init__(
        self,
        *,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        gan_loss: GANObjective,
        nc_A: int = 3,
        nc_B: int = 3,
        lambda_A: float = 10.0,
        lambda_B: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        seed: int = 0,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ):
        super().__init__(gan_loss)
        if lambda_identity > 0 and nc_A != nc_B:
            raise ValueError(
                f"the identity loss needs as many channels in A as in B (got {nc_A} and {nc_B}); "
                "set model.lambda_identity=0"
            )
        self.G_A = init_weights(generator(in_channels=nc_A, out_channels=nc_B), init_type, init_gain)
        self.G_B = init_weights(generator(in_channels=nc_B, out_channels=nc_A), init_type, init_gain)
        self.D_A = init_weights(discriminator(in_channels=nc_B), init_type, init_gain)
        self.D_B = init_weights(discriminator(in_channels=nc_A), init_type, init_gain)
        self.translations = {"AtoB": Translation("G_A", "A", "B"), "BtoA": Translation("G_B", "B", "A")}
        self.lambda_A, self.lambda_B = float(lambda_A), float(lambda_B)
        self.lambda_identity = float(lambda_identity)
        self.pool_A = ImagePool(pool_size, seed=seed)  # history of fake A images, shown to D_B
        self.pool_B = ImagePool(pool_size, seed=seed + 1)  # history of fake B images, shown to D_A
        # Each val image's cycle error, per domain (``calibrate``): the out-of-domain guard's threshold.
        self.val_cycle_errors = {"A": torch.zeros(0), "B": torch.zeros(0)}

    def generators(self) -> dict[str, nn.Module]:
        return {"G_A": self.G_A, "G_B": self.G_B}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"D_A": self.D_A, "D_B": self.D_B}

    def extra_state(self) -> dict:
        return {"pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict(),
                **{f"val_cycle_errors_{side}": e for side, e in self.val_cycle_errors.items()}}

    def load_extra_state(self, state: dict) -> None:
        device = next(self.parameters()).device
        self.pool_A.load_state_dict(state["pool_A"], device)
        self.pool_B.load_state_dict(state["pool_B"], device)
        self.val_cycle_errors = {side: state.get(f"val_cycle_errors_{side}", torch.zeros(0)) for side in "AB"}

    @torch.no_grad()
    def calibrate(self, batches: Iterable[dict[str, torch.Tensor]], generators: dict[str, nn.Module],
                  device: torch.device) -> None:
        """Keep each val image's cycle error, |G_B(G_A(A)) - A| and |G_A(G_B(B)) - B| per image (under the
        sample generators): the guard (``translate.inference.guard``, ``guard=cycle``) needs no extra model."""

        G_A, G_B = generators["G_A"], generators["G_B"]
        errors = {"A": [], "B": []}
        for batch in batches:
            A, B = batch["A"].to(device), batch["B"].to(device)
            errors["A"].append(l1(G_B(G_A(A)), A).cpu())
            errors["B"].append(l1(G_A(G_B(B)), B).cpu())
        self.val_cycle_errors = {side: torch.cat(e) if e else torch.zeros(0) for side, e in errors.items()}

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        A, B = batch["A"], batch["B"]
        fake_B = self.G_A(A)  # the reference's order of calls (batch-norm statistics, dropout draws)
        rec_A = self.G_B(fake_B)
        fake_A = self.G_B(B)
        return {"fake_B": fake_B, "rec_A": rec_A, "fake_A": fake_A, "rec_B": self.G_A(fake_A)}

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        set_requires_grad([self.D_A, self.D_B], True)
        fake_B = self.pool_B.query(out["fake_B"])
        fake_A = self.pool_A.query(out["fake_A"])
        losses = self.discriminator_loss(self.D_A, batch["B"], fake_B, "D_A")
        losses |= self.discriminator_loss(self.D_B, batch["A"], fake_A, "D_B")
        losses["loss/D"] = losses["loss/D_A"] + losses["loss/D_B"]
        return losses

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        set_requires_grad([self.D_A, self.D_B], False)
        A, B = batch["A"], batch["B"]
        losses = {
            "loss/G/gan_A": self.gan_loss.g_loss(self.judge(self.D_A, out["fake_B"])),
            "loss/G/gan_B": self.gan_loss.g_loss(self.judge(self.D_B, out["fake_A"])),
            "loss/G/cycle_A": F.l1_loss(out["rec_A"].float(), A.float()),
            "loss/G/cycle_B": F.l1_loss(out["rec_B"].float(), B.float()),
        }
        total = (
            losses["loss/G/gan_A"]
            + losses["loss/G/gan_B"]
            + self.lambda_A * losses["loss/G/cycle_A"]
            + self.lambda_B * losses["loss/G/cycle_B"]
        )
        if self.lambda_identity > 0:
            # G_A should leave images that already look like B unchanged, and G_B likewise for A.
            losses["loss/G/idt_A"] = F.l1_loss(self.G_A(B).float(), B.float())
            losses["loss/G/idt_B"] = F.l1_loss(self.G_B(A).float(), A.float())
            total = total + self.lambda_identity * (
                self.lambda_B * losses["loss/G/idt_A"] + self.lambda_A * losses["loss/G/idt_B"]
            )
        losses["loss/G"] = total
        return losses
