"""pix2pixHD's generator (Wang et al. 2018, "High-Resolution Image Synthesis and Semantic Manipulation with
Conditional GANs"), as the official code (NVIDIA/pix2pixHD, ``models/networks.py``) builds it.

- The global generator (the code's ``GlobalGenerator``): a 7x7 stem (reflection padding), ``n_downsample_global``
  3x3 stride-2 convolutions doubling the width, ``n_blocks_global`` residual blocks, as many 3x3 transposed
  convolutions back, a 7x7 convolution to the image and tanh; instance norm and ReLU after every convolution
  but the last.
- The local enhancer (``LocalEnhancer``, ``n_local_enhancers`` >= 1): the global generator at 1/2^k of the input
  (the input average-pooled, 3x3 stride 2) without its output layers, at width ``ngf * 2^k``; then per enhancer
  a front end (7x7 stem, one stride-2 conv) on the input at its own scale, whose features are *added* to the
  coarser output, ``n_blocks_local`` residual blocks and one transposed convolution up; the outermost ends with
  the 7x7 convolution to the image and tanh.

Training coarse to fine (``models.pix2pixhd``) uses two more ways to call it: ``G(x, global_only=True)`` (the
global generator with its own output layers, on the input average-pooled to 1/2^k) and ``G(x,
train_global=False)`` (the global part without gradients, the code's ``niter_fix_global``). While ``coarse`` is set (the model sets it during its
global phase), ``G(x)`` is the global generator's output upsampled to the input's size, so samples, validation
and inference in that phase show what is being trained.

Where we differ on purpose: the global generator keeps its output layers inside the enhancer (the code drops
them when it builds the enhancer and loads them from a separate run); ``norm`` and ``padding`` take our choices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from translate.core.schema import Count, Positive
from translate.networks.generators import ResnetBlock
from translate.networks.layers import Norm, Padding, keeps_arguments, norm_layer


def _stem(fin: int, fout: int, norm: Norm) -> list[nn.Module]:
    return [nn.ReflectionPad2d(3), nn.Conv2d(fin, fout, 7), norm_layer(norm, fout), nn.ReLU()]


def _down(fin: int, fout: int, norm: Norm) -> list[nn.Module]:
    return [nn.Conv2d(fin, fout, 3, stride=2, padding=1), norm_layer(norm, fout), nn.ReLU()]


def _up(fin: int, fout: int, norm: Norm) -> list[nn.Module]:
    return [nn.ConvTranspose2d(fin, fout, 3, stride=2, padding=1, output_padding=1), norm_layer(norm, fout), nn.ReLU()]


def _to_image(fin: int, fout: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(fin, fout, 7), nn.Tanh())


def _blocks(width: int, n: int, norm: Norm, padding: Padding) -> list[nn.Module]:
    return [ResnetBlock(width, norm=norm, dropout=False, padding=padding) for _ in range(n)]


@keeps_arguments
class Pix2PixHDGenerator(nn.Module):
    """The global generator (``n_local_enhancers=0``, the code's ``netG global``) or the local enhancer around it
    (the code's ``netG local``; ``ngf`` is then the outermost enhancer's width, the global's is ``ngf * 2^k``).
    Input sides must be multiples of ``stride`` = 2^(n_downsample_global + n_local_enhancers)."""

    def __init__(self, *, in_channels: int = 36, out_channels: int = 3, ngf: Positive = 64,
                 n_downsample_global: Positive = 4, n_blocks_global: Count = 9, n_local_enhancers: Count = 1,
                 n_blocks_local: Count = 3, norm: Norm = "instance", padding: Padding = "reflect"):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.n_local_enhancers = k = int(n_local_enhancers)
        self.stride = 2 ** (n_downsample_global + k)
        width = ngf * 2**k
        layers = _stem(in_channels, width, norm)
        for i in range(n_downsample_global):
            layers += _down(width * 2**i, width * 2 ** (i + 1), norm)
        layers += _blocks(width * 2**n_downsample_global, n_blocks_global, norm, padding)
        for i in reversed(range(n_downsample_global)):
            layers += _up(width * 2 ** (i + 1), width * 2**i, norm)
        self.global_body = nn.Sequential(*layers)
        self.global_head = _to_image(width, out_channels)
        self.fronts, self.backs = nn.ModuleList(), nn.ModuleList()
        for n in range(1, k + 1):  # the code's model{n}_1 (front) and model{n}_2 (back), coarse to fine
            width = ngf * 2 ** (k - n)
            self.fronts.append(nn.Sequential(*_stem(in_channels, width, norm), *_down(width, 2 * width, norm)))
            back = [*_blocks(2 * width, n_blocks_local, norm, padding), *_up(2 * width, width, norm)]
            self.backs.append(nn.Sequential(*back, *(_to_image(ngf, out_channels) if n == k else [])))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        # Set by the model during its global phase: G(x) is then the global output, upsampled (a buffer, so
        # checkpoints and the EMA copy carry it).
        self.register_buffer("coarse", torch.zeros((), dtype=torch.long))

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input at its scale and each coarser one (average-pooled), finest first."""
        scales = [x]
        for _ in range(self.n_local_enhancers):
            scales.append(self.downsample(scales[-1]))
        return scales

    def global_output(self, x: torch.Tensor) -> torch.Tensor:
        """The global generator's image for ``x`` (at its own scale: in the enhancer, the coarsest)."""
        return self.global_head(self.global_body(x))

    def forward(self, x: torch.Tensor, *, train_global: bool = True, global_only: bool = False) -> torch.Tensor:
        """The image for ``x``; ``train_global=False``: the global generator without gradients; ``global_only``:
        the global generator's own image, 2^k times smaller (the model's steps call these through ``forward``,
        so a DDP wrapper serves them)."""
        if not self.n_local_enhancers:
            return self.global_output(x)
        scales = self.pyramid(x)
        if global_only:
            return self.global_output(scales[-1])
        if not torch.jit.is_tracing() and self.coarse.item():  # exporters refuse a generator in its global phase
            return F.interpolate(self.global_output(scales[-1]), size=x.shape[-2:], mode="bilinear")
        with torch.set_grad_enabled(train_global and torch.is_grad_enabled()):
            out = self.global_body(scales[-1])
        for n, (front, back) in enumerate(zip(self.fronts, self.backs, strict=True), start=1):
            out = back(front(scales[self.n_local_enhancers - n]) + out)
        return out
