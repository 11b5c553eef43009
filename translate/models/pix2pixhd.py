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

With ``instance_feat=true`` (the code's ``--instance_feat``, or ``--label_feat`` without instance maps): a
feature encoder E (``translate.networks.FeatureEncoder``, an auxiliary trained with G, as the code adds it to G's
optimizer) reads ``feat_num`` channels off the photo, averaged over each object (a class region, or one instance
of it with ``data.instances=true``), and G takes them beside the map; D judges the map and image alone. Every
step folds the objects' features into the generator's per-class statistics, so that without a photo ``G(x)``
uses each class's mean feature and a style code draws one per class (``style.samples``, grids of
``num_styles`` fixed styles, ``val/diversity``).

Where we differ on purpose: one run and one learning-rate schedule over all phases (the code restarts its
schedule with the second run); phase 1 feeds the global generator the average-pooled map it sees inside the
enhancer (the code's first run reads maps resized nearest-neighbour); one discriminator throughout (the code's
second run adds a third scale); features without a photo from running per-class statistics (the code clusters
them after training, ``networks.pix2pixhd``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from translate.core.errors import ConfigError
from translate.core.schema import Count, Positive
from translate.models.base import CountsSteps, StyleColumns, plain
from translate.models.pix2pix import Pix2Pix
from translate.networks.layers import init_weights
from translate.networks.pix2pixhd import region_means

Stage = Literal["global", "local", "joint"]


class Pix2PixHD(CountsSteps, StyleColumns, Pix2Pix):
    """Label map -> photo with ``generator=pix2pixhd``, trained coarse to fine (see the module docstring):
    ``global_steps`` of the global generator at low resolution, ``fix_global_steps`` of the enhancer alone,
    then both. Both 0 (or a generator without an enhancer): every step trains the whole generator.
    ``instance_feat``: instance-wise features of ``feat_num`` channels from ``feature_encoder`` (a factory), for
    maps of ``label_nc`` classes (plus one for ``dont_care``)."""

    phases = ("G", "D")
    feature_layers_averaged = True
    unused_parameters = True  # the enhancer in the global phase, the global generator in the enhancer's, its head after

    def __init__(self, *, global_steps: Count = 0, fix_global_steps: Count = 0, instance_feat: bool = False,
                 feat_num: Positive = 3, feature_encoder: Callable[..., nn.Module] | None = None,
                 label_nc: int | None = None, dont_care: int | None = None, num_styles: Count = 4,
                 generator: Callable[..., nn.Module], **kwargs):
        if instance_feat:
            if label_nc is None or feature_encoder is None:
                raise ConfigError("model.instance_feat=true needs label maps (data=labels) and model.feature_encoder")
            if "feat_nc" not in inspect.signature(generator).parameters:
                raise ConfigError("model.instance_feat=true needs a generator that takes features: generator=pix2pixhd")
            classes = int(label_nc) + (dont_care is not None)
            generator = partial(generator, feat_nc=feat_num, feat_classes=classes)
        super().__init__(generator=generator, **kwargs)
        self.E = init_weights(feature_encoder(in_channels=self.G.out_channels, feat_nc=feat_num),
                              kwargs.get("init_type", "normal"), kwargs.get("init_gain", 0.02)) if instance_feat else None
        self.num_styles = int(num_styles)
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

    def auxiliaries(self) -> dict[str, nn.Module]:
        return {"E": self.E} if self.E is not None else {}

    def features(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """With instance-wise features: E's features of the photo, averaged over each object, as G's keyword."""
        if self.E is None:
            return {}
        labels = batch["labels"].long()
        regions = labels * (int(batch["instances"].max()) + 1) + batch["instances"] if "instances" in batch else labels
        pooled, means, pixel_region = region_means(self.E(batch[self.tgt]), regions)
        classes = labels.new_zeros(len(means)).scatter_(0, pixel_region, labels.flatten())
        plain(self.G).observe(means.detach().float(), classes)  # each training step teaches the class statistics
        return {"feats": pooled}

    def generate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        stage = self.stage()
        self._enter(stage)
        feats = self.features(batch)
        if stage == "global":  # through forward, so that a DDP wrapper sees the step
            src = batch[self.src]
            return {"fake": self.G(src, global_only=True, **feats), "input": plain(self.G).pyramid(src)[-1],
                    "real": F.avg_pool2d(batch[self.tgt], self.scale)}
        if stage == "local":  # the enhancer alone: the global generator runs without gradients
            return {"fake": self.G(batch[self.src], train_global=False, **feats)}
        return {"fake": self.G(batch[self.src], **feats)}  # any generator: model=pix2pixhd also takes generator=unet_256

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
