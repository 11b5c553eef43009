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

- With a style code (``z_dim`` > 0, the code's ``use_vae``): the start is ``fc(z)``, a linear layer from the
  code to 16 ngf channels on the start grid of a ``crop_size`` x ``crop_size / aspect_ratio`` image, instead of the
  downsampled map; ``ConvEncoder`` reads the code's mean and log-variance off a photo (six 3x3 stride-2 convs with
  spectral and instance norm, 64 -> 512 channels, on the photo resized to 256x256, then two linear layers).

Where we differ on purpose: without a style code the start size follows the input (any sides that are multiples
of the stride, any aspect ratio) instead of being fixed by ``crop_size`` and ``aspect_ratio``; with one, ``fc(z)``
is resized (bilinear) to the start grid of an input of another size, so any size still converts. ``G(x)`` uses
the mean style (z = 0) where the code draws a random one. ``hidden`` (the SPADE MLP's width, 128 in the code) and
the encoder's ``size`` (256 in the code) can be narrowed for a CPU.
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
                 spectral_norm: bool = True, hidden: Positive = HIDDEN, z_dim: int = 0, crop_size: Positive = 256,
                 aspect_ratio: float = 1.0):
        super().__init__()
        if num_upsampling_layers not in UPSAMPLINGS:
            raise ValueError(f"num_upsampling_layers={num_upsampling_layers!r}: one of {', '.join(UPSAMPLINGS)}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_upsampling_layers = num_upsampling_layers
        self.stride = 2 ** UPSAMPLINGS[num_upsampling_layers]
        nf = ngf

        def block(fin: int, fout: int) -> SPADEResnetBlock:
            return SPADEResnetBlock(fin, fout, in_channels, norm=norm, spectral_norm=spectral_norm, hidden=hidden)

        self.nz, self.start_channels = int(z_dim), 16 * nf
        if self.nz:  # the code's use_vae: the start from a style code, on the training crop's start grid
            self.start_size = (max(1, round(crop_size / aspect_ratio) // self.stride), max(1, crop_size // self.stride))
            self.fc: nn.Module = nn.Linear(self.nz, 16 * nf * self.start_size[0] * self.start_size[1])
        else:
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

    def forward(self, seg: torch.Tensor, z: torch.Tensor | None = None, truncation: float = 1.0) -> torch.Tensor:
        """The photo of one-hot map ``seg``; with a style code, of style ``z`` [N, z_dim] (None: the mean style),
        pulled towards the mean by ``truncation``."""
        h, w = seg.shape[-2:]
        if h % self.stride or w % self.stride:
            raise ValueError(f"SPADEGenerator: input sides {h}x{w} must be multiples of {self.stride}")
        x = self.start(seg, (h // self.stride, w // self.stride), z, truncation)
        x = self.G_middle_0(_up(self.head_0(x, seg)), seg)
        if self.num_upsampling_layers in ("more", "most"):
            x = _up(x)
        x = self.G_middle_1(x, seg)
        for block in (self.up_0, self.up_1, self.up_2, self.up_3):
            x = block(_up(x), seg)
        if self.num_upsampling_layers == "most":
            x = self.up_4(_up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))

    def start(self, seg: torch.Tensor, grid: tuple[int, int], z: torch.Tensor | None,
              truncation: float) -> torch.Tensor:
        """The 16 ngf-channel start on ``grid``: from the downsampled map, or from the style code."""
        if not self.nz:
            if z is not None:
                raise ValueError("this SPADE generator takes no style code (generator.z_dim=0)")
            return self.fc(F.interpolate(seg, size=grid))
        if z is None:
            z = seg.new_zeros(len(seg), self.nz)
        if z.dim() != 2 or z.shape[1] != self.nz:
            raise ValueError(f"z must be [N, {self.nz}], got {list(z.shape)}")
        if not isinstance(truncation, (int, float)):
            raise ValueError("SPADE's truncation is one number (the code has no per-level styles)")
        x = self.fc(z.to(seg) * truncation).view(len(z), self.start_channels, *self.start_size)
        return x if tuple(grid) == self.start_size else F.interpolate(x, size=grid, mode="bilinear")


@keeps_arguments
class ConvEncoder(nn.Module):
    """SPADE's style encoder (the code's ``ConvEncoder``): a photo [N, in_channels, H, W] -> the mean and
    log-variance [N, nz] of its style code. The photo is resized (bilinear) to ``size`` x ``size`` (256 in the
    code), halved by 3x3 stride-2 convolutions (spectral norm, instance norm, leaky ReLU 0.2; widths ndf, 2, 4, 8,
    8, 8 ndf) down to 4x4, then read by two linear layers."""

    def __init__(self, *, in_channels: int = 3, nz: Positive = 256, ndf: Positive = 64, size: Positive = 256):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"ConvEncoder: size={size} must be a power of two, at least 8")
        self.in_channels, self.nz, self.size = in_channels, int(nz), int(size)
        widths = [ndf * min(2**i, 8) for i in range(size.bit_length() - 3)]  # one halving per layer, down to 4x4
        layers, fin = [], in_channels
        for fout in widths:
            layers += [_spectral_norm(nn.Conv2d(fin, fout, 3, stride=2, padding=1)),
                       nn.InstanceNorm2d(fout, affine=False), nn.LeakyReLU(0.2)]
            fin = fout
        self.layers = nn.Sequential(*layers)
        self.fc_mu = nn.Linear(fin * 16, self.nz)
        self.fc_var = nn.Linear(fin * 16, self.nz)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear")
        h = self.layers(x).flatten(1)
        return self.fc_mu(h), self.fc_var(h)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")
