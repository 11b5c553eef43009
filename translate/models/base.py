"""What the training loop needs from a model: its networks grouped per optimizer, and d_step / g_step."""

from __future__ import annotations

import torch
from torch import nn


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    """Freeze or unfreeze networks; freezing D during the G step saves computing D's weight gradients."""
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Repeat a 1-channel batch to 3 channels so mixed grayscale/colour rows fit one grid."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class TranslationModel(nn.Module):
    """Base of Pix2Pix and CycleGAN.

    Subclasses define ``generators`` / ``discriminators`` (name -> module), ``generate(batch)`` (the fakes of
    one step), ``d_step`` and ``g_step`` (named loss tensors, the total under ``loss/D`` or ``loss/G``), and
    ``sample_rows`` for image grids. The training loop owns optimizers, precision and backward passes.
    """

    def generators(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def discriminators(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        """One optimizer per group, as the reference: all generators together, all discriminators together."""
        return {"G": list(self.generators().values()), "D": list(self.discriminators().values())}

    def extra_state(self) -> dict:
        """Training state that is not a parameter or buffer (e.g. image pools)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass
