"""pix2pixHD (Wang et al. 2018) as a model family: label maps (with instance boundaries) -> photos, coarse to fine.

The official trainer (NVIDIA/pix2pixHD, ``train.py`` and ``models/pix2pixHD_model.py``) computes G's and D's
losses in one forward pass and steps G first, then D on the fakes made before G's update (our ``("G", "D")``);
G's loss is the LSGAN loss summed over D's scales, discriminator feature matching (weight 10, each layer 4 /
(n_layers + 1), each scale 1 / num_D) and the VGG19 perceptual loss (weight 10, ``translate.models.perceptual``);
D is the multi-scale PatchGAN on (map, image) pairs. ``conf/model/pix2pixhd.yaml`` sets the rest (Adam 2e-4,
betas (0.5, 0.999), no L1).

Coarse to fine, as the paper trains it, in one run (the code needs two: ``label2city_512p`` with the global
generator, then ``label2city_1024p`` with the enhancer, ``--load_pretrain`` and ``--niter_fix_global``):

1. ``global_steps`` steps of the global generator alone, at 1/2^k of the resolution: its input is the map as the
   enhancer will give it (average-pooled), its target the photo average-pooled as much, and D judges those pairs.
   Meanwhile ``G(x)`` is the global output upsampled, so samples and validation show it.
2. ``fix_global_steps`` steps of the local enhancer alone on full-size images, the global generator frozen (the
   code's ``niter_fix_global``).
3. Both together, to the end of the run.

Where we differ on purpose: one run and one learning-rate schedule over all phases (the code restarts its
schedule with the second run); phase 1 feeds the global generator the average-pooled map it sees inside the
enhancer (the code's first run reads maps resized nearest-neighbour); one discriminator throughout (the code's
second run adds a third scale). Not built yet: the instance-wise feature encoder (``--instance_feat``).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from translate.core.errors import ConfigError
from translate.core.schema import Count
from translate.models.base import CountsSteps, plain
from translate.models.pix2pix import Pix2Pix

Stage = Literal["global", "local", "joint"]


class Pix2PixHD(CountsSteps, Pix2Pix):
    """Label map -> photo with ``generator=pix2pixhd``, trained coarse to fine (see the module docstring):
    ``global_steps`` of the global generator at low resolution, ``fix_global_steps`` of the enhancer alone,
    then both. Both 0 (or a generator without an enhancer): every step trains the whole generator."""

    phases = ("G", "D")
    feature_layers_averaged = True
    unused_parameters = True  # the enhancer in the global phase, the global generator in the enhancer's, its head after

    def __init__(self, *, global_steps: Count = 0, fix_global_steps: Count = 0, **kwargs):
        super().__init__(**kwargs)
        enhancers = int(getattr(self.G, "n_local_enhancers", 0))
        if (global_steps or fix_global_steps) and not enhancers:
            raise ConfigError("model.global_steps and model.fix_global_steps train a local enhancer in phases: use "
                              "generator=pix2pixhd with generator.n_local_enhancers >= 1")
        self.global_steps, self.fix_global_steps = int(global_steps), int(fix_global_steps)
        self.scale = 2**enhancers  # how much smaller the global generator's images are
        self.coarsest_scale = self.scale if self.global_steps else 1
        self.g_steps = 0  # steps taken, for the phases; saved with the training state
        self._enter(self.stage())

    def stage(self) -> Stage:
        """The phase of the next step."""
        if self.g_steps < self.global_steps:
            return "global"
        return "local" if self.g_steps < self.global_steps + self.fix_global_steps else "joint"

    def _enter(self, stage: Stage) -> None:
        """Mark the generator as in its global phase or not (``G(x)`` is then the global output)."""
        G = plain(self.G)
        if hasattr(G, "coarse"):
            G.coarse.fill_(int(stage == "global"))

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        stage = self.stage()
        self._enter(stage)
        if stage == "global":  # through forward, so that a DDP wrapper sees the step
            src = batch[self.src]
            return {"fake": self.G(src, global_only=True), "input": plain(self.G).pyramid(src)[-1],
                    "real": F.avg_pool2d(batch[self.tgt], self.scale)}
        if stage == "local":  # the enhancer alone: the global generator runs without gradients
            return {"fake": self.G(batch[self.src], train_global=False)}
        return {"fake": self.G(batch[self.src])}  # any generator: model=pix2pixhd also takes generator=unet_256

    def at_scale(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch the step's losses compare with: in the global phase, the map and photo at its scale."""
        return batch | {self.src: out["input"], self.tgt: out["real"]} if "input" in out else batch

    def d_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return super().d_step(self.at_scale(batch, out), out)

    def g_step(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        losses = super().g_step(self.at_scale(batch, out), out)
        self.g_steps += 1
        return losses

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self._enter(self.stage())
