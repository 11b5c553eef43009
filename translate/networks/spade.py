"""SPADE (Park et al. 2019, "Semantic Image Synthesis with Spatially-Adaptive Normalization"), as the official
code (NVlabs/SPADE, ``models/networks/{normalization,architecture,generator}.py``) builds it.

- ``SPADENorm`` (the code's ``SPADE``): a parameter-free norm of the activations (batch or instance), then a per-pixel scale and shift
  predicted from the label map (resized nearest-neighbour to the activations): a shared 3x3 conv with 128 channels
  and ReLU, then a 3x3 conv each for gamma and beta; ``norm(x) * (1 + gamma) + beta``.
- ``SPADEResnetBlock``: SPADE, leaky ReLU (0.2), 3x3 conv, twice, with a learned 1x1 shortcut (SPADE, no
  activation) when the width changes; spectral norm on the convolutions (the code's ``spectral`` in norm_G).
- ``SPADEGenerator``: the label map, downsampled to 1/2^n of the output, through a 3x3 conv to 16 ngf channels,
  then ``head_0``, up, ``G_middle_0``, (up for ``more``/``most``), ``G_middle_1``, then up-blocks 16 -> 8 -> 4
  -> 2 -> 1 ngf (and 1 -> 1/2 ngf for ``most``), leaky ReLU, a 3x3 conv to the image and tanh; nearest 2x
  upsampling between blocks. ``num_upsampling_layers`` normal = 5, more = 6, most = 7 halvings of the map.

Where we differ on purpose: the start size follows the input (any sides that are multiples of the stride, any
aspect ratio) instead of being fixed by ``crop_size`` and ``aspect_ratio``; ``hidden`` (the SPADE MLP's width,
128 in the code) can be narrowed for a CPU; the VAE style input (``use_vae``) is added with the SPADE model family.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from translate.core.schema import Positive
from translate.networks.layers import keeps_arguments

SpadeNorm = Literal["batch", "syncbatch", "instance", "none"]
UPSAMPLINGS = {"normal": 5, "more": 6, "most": 7}
HIDDEN = 128  # the SPADE MLP's width in the official code (nhidden)


def _sn(layer: nn.Module, enabled: bool) -> nn.Module:
    return _spectral_norm(layer) if enabled else layer


class SPADENorm(nn.Module):
    """SPADE, the spatially-adaptive normalisation of ``channels`` activations by a ``label_nc``-channel map."""

    def __init__(self, channels: int, label_nc: int, norm: SpadeNorm = "batch", hidden: int = HIDDEN):
        super().__init__()
        if norm == "instance":
            self.param_free_norm: nn.Module = nn.InstanceNorm2d(channels, affine=False)
        elif norm == "none":
            self.param_free_norm = nn.Identity()
        else:  # syncbatch: BatchNorm2d here, SyncBatchNorm under DDP on GPUs (the training loop converts it)
            self.param_free_norm = nn.BatchNorm2d(channels, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.shape[-2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """Two SPADE -> leaky ReLU -> 3x3 conv stages and a shortcut (learned, through SPADE, when fin != fout)."""

    def __init__(self, fin: int, fout: int, label_nc: int, *, norm: SpadeNorm = "batch", spectral_norm: bool = True,
                 hidden: int = HIDDEN):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = _sn(nn.Conv2d(fin, fmiddle, 3, padding=1), spectral_norm)
        self.conv_1 = _sn(nn.Conv2d(fmiddle, fout, 3, padding=1), spectral_norm)
        self.norm_0 = SPADENorm(fin, label_nc, norm, hidden)
        self.norm_1 = SPADENorm(fmiddle, label_nc, norm, hidden)
        if self.learned_shortcut:
            self.conv_s = _sn(nn.Conv2d(fin, fout, 1, bias=False), spectral_norm)
            self.norm_s = SPADENorm(fin, label_nc, norm, hidden)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx


@keeps_arguments
class SPADEGenerator(nn.Module):
    """SPADE's generator (see the module docstring): a one-hot label map [N, in_channels, H, W] -> an image.
    Sides must be multiples of ``stride`` (2^5 = 32 for ``normal``)."""

    def __init__(self, *, in_channels: int = 36, out_channels: int = 3, ngf: Positive = 64,
                 num_upsampling_layers: Literal["normal", "more", "most"] = "normal", norm: SpadeNorm = "batch",
                 spectral_norm: bool = True, hidden: Positive = HIDDEN):
        super().__init__()
        if num_upsampling_layers not in UPSAMPLINGS:
            raise ValueError(f"num_upsampling_layers={num_upsampling_layers!r}: one of {', '.join(UPSAMPLINGS)}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_upsampling_layers = num_upsampling_layers
        self.stride = 2 ** UPSAMPLINGS[num_upsampling_layers]
        nf = ngf

        def block(fin: int, fout: int) -> SPADEResnetBlock:
            return SPADEResnetBlock(fin, fout, in_channels, norm=norm, spectral_norm=spectral_norm, hidden=hidden)

        self.fc = nn.Conv2d(in_channels, 16 * nf, 3, padding=1)
        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0, self.up_1 = block(16 * nf, 8 * nf), block(8 * nf, 4 * nf)
        self.up_2, self.up_3 = block(4 * nf, 2 * nf), block(2 * nf, nf)
        final = nf
        if num_upsampling_layers == "most":
            self.up_4 = block(nf, nf // 2)
            final = nf // 2
        self.conv_img = nn.Conv2d(final, out_channels, 3, padding=1)

    def forward(self, seg: torch.Tensor) -> torch.Tensor:
        h, w = seg.shape[-2:]
        if h % self.stride or w % self.stride:
            raise ValueError(f"SPADEGenerator: input sides {h}x{w} must be multiples of {self.stride}")
        x = self.fc(F.interpolate(seg, size=(h // self.stride, w // self.stride)))
        x = self.G_middle_0(_up(self.head_0(x, seg)), seg)
        if self.num_upsampling_layers in ("more", "most"):
            x = _up(x)
        x = self.G_middle_1(x, seg)
        for block in (self.up_0, self.up_1, self.up_2, self.up_3):
            x = block(_up(x), seg)
        if self.num_upsampling_layers == "most":
            x = self.up_4(_up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")
