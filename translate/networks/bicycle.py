"""Networks for many outputs per input (BicycleGAN, Zhu et al. 2017): a U-Net that takes a style code z beside
the image, and the ResNet style encoder that reads z off a target image.

``LatentUnetGenerator`` is the pix2pix U-Net (the same levels and widths) with the latent injected one of
three ways (``z_inject``):

- ``input``: z tiled over the image and concatenated to it (BicycleGAN's ``G_Unet_add_input``);
- ``all``: z tiled and concatenated to the input of every encoder level (``G_Unet_add_all``);
- ``adain``: a mapping network (StyleGAN's: equalised fully connected layers, LeakyReLU) turns z into w, and
  every decoder level but the last normalises its features and takes a scale and bias from w (AdaIN), as
  StyleGAN's synthesis layers do. One w per decoder level, so coarse levels can take one style and fine
  levels another (style mixing), and the tracked mean of w gives the truncation trick.

Called as ``G(x)`` it uses the mean style (z = 0, or the mean w): deterministic, what evaluation, tiled
inference and export without a latent see; ``G(x, z)`` with z [N, nz]; in ``adain`` mode ``G(x, w,
input_is_w=True)`` with w [N, w_dim] or per-level [N, num_layers, w_dim]. ``truncation`` pulls the style
towards the mean: z' = psi z, or w' = w_avg + psi (w - w_avg) (one psi per level possible in ``adain`` mode).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from translate.core.errors import ConfigError, check_choice
from translate.core.schema import Positive
from translate.networks.generators import UnetDown, UnetUp
from translate.networks.layers import Norm, keeps_arguments, norm_layer
from translate.networks.stylegan import AdaIN, MappingNetwork, StyleCodes, Truncation

ZInject = Literal["input", "all", "adain"]
Z_INJECT = ("input", "all", "adain")


def tile(z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """z [N, nz] repeated over the height and width of ``like`` -> [N, nz, H, W]."""
    return z.view(*z.shape, 1, 1).expand(-1, -1, *like.shape[2:])


class StyleUnetUp(nn.Module):
    """A decoder level of the ``adain`` U-Net: ReLU -> transposed conv -> AdaIN(w) (+ dropout)."""

    def __init__(self, in_ch: int, out_ch: int, *, w_dim: int, dropout: bool):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1)
        self.adain = AdaIN(out_ch, w_dim)
        self.dropout = nn.Dropout(0.5) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.adain(self.conv(F.relu(x)), w))


@keeps_arguments
class LatentUnetGenerator(StyleCodes, nn.Module):
    """The U-Net with a style code; see the module docstring. ``num_downs`` halvings (8 for 256x256, 6 for
    64x64); ``nz`` the latent's size (BicycleGAN: 8); ``w_dim``, ``n_mlp``, ``mapping_lr_mul``, ``w_avg_beta``
    for ``adain`` only."""

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, nz: Positive = 8,
                 z_inject: ZInject = "all", num_downs: Positive = 8, ngf: Positive = 64, norm: Norm = "instance",
                 dropout: bool = False, w_dim: Positive = 64, n_mlp: Positive = 4, mapping_lr_mul: float = 0.01,
                 w_avg_beta: float = 0.995):
        super().__init__()
        check_choice("generator.z_inject", z_inject, Z_INJECT)
        if num_downs < 5:
            raise ConfigError(f"generator.num_downs={num_downs}: the U-Net needs at least 5 levels")
        self.nz, self.z_inject, self.num_downs = int(nz), z_inject, num_downs
        self.in_channels, self.out_channels = in_channels, out_channels
        widths = [ngf * min(2**i, 8) for i in range(num_downs)]
        extra = [nz if z_inject == "all" or (z_inject == "input" and i == 0) else 0 for i in range(num_downs)]
        self.z_channels = extra
        downs = [UnetDown(in_channels + extra[0], widths[0], norm=norm, outermost=True)]
        downs += [UnetDown(widths[i - 1] + extra[i], widths[i], norm=norm, innermost=i == num_downs - 1)
                  for i in range(1, num_downs)]
        self.downs = nn.ModuleList(downs)
        # Decoder, innermost first, as the pix2pix U-Net: dropout in the 8*ngf levels between the innermost
        # and the 4*ngf level.
        shapes = [(widths[-1], widths[-2], False)]
        shapes += [(widths[i] * 2, widths[i - 1], dropout and 4 <= i <= num_downs - 2) for i in range(num_downs - 2, 0, -1)]
        if z_inject == "adain":
            self.ups = nn.ModuleList(StyleUnetUp(i, o, w_dim=w_dim, dropout=d) for i, o, d in shapes)
            self.mapping = MappingNetwork(z_dim=nz, n_mlp=n_mlp, lr_mul=mapping_lr_mul, w_dim=w_dim)
            self.register_buffer("w_avg", torch.zeros(w_dim))
            self.w_dim, self.w_avg_beta = int(w_dim), float(w_avg_beta)
            self.num_layers = self.num_levels = len(shapes)
        else:
            self.ups = nn.ModuleList(UnetUp(i, o, norm=norm, dropout=d) for i, o, d in shapes)
        self.last = UnetUp(widths[0] * 2, out_channels, norm=norm, dropout=False, outermost=True)

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this."""
        return 2**self.num_downs

    @property
    def styled(self) -> bool:
        """Whether the style is a per-level w (``adain``): style mixing and per-level truncation need it."""
        return self.z_inject == "adain"

    def latent(self, z: torch.Tensor | None, x: torch.Tensor, truncation: Truncation) -> torch.Tensor:
        """z (zeros for the mean style), scaled by the truncation (z's mean is 0)."""
        if not isinstance(truncation, (int, float)):
            raise ConfigError(f"truncation per level needs generator.z_inject=adain (this one is {self.z_inject}); "
                              "give one number")
        if z is None:
            return x.new_zeros(len(x), self.nz)
        if z.dim() != 2 or z.shape[1] != self.nz:
            raise ValueError(f"z must be [N, {self.nz}], got {list(z.shape)}")
        return z.to(x.dtype) * float(truncation)

    def styles(self, z: torch.Tensor | None, x: torch.Tensor, truncation: Truncation,
               input_is_w: bool) -> torch.Tensor:
        """Per-level w [N, num_layers, w_dim]: the mean w for ``z=None``, else mapped from z (or given)."""
        if z is None:
            w = self.w_avg.to(x.dtype).expand(len(x), -1)
        else:
            w = z if input_is_w else self.map(z)
        return self.truncate(self.per_layer(w.to(x.dtype)), truncation)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None, *, truncation: Truncation = 1.0,
                input_is_w: bool = False) -> torch.Tensor:
        if self.styled:
            ws, z = self.styles(z, x, truncation, input_is_w), None
        else:
            if input_is_w:
                raise ConfigError("input_is_w needs generator.z_inject=adain (a mapping network)")
            z = self.latent(z, x, truncation)
        skips, h = [], x
        for down, extra in zip(self.downs, self.z_channels):
            channels = h.shape[1]
            skip, h = down(torch.cat([h, tile(z, h)], 1) if extra else h)
            skips.append(skip[:, :channels])  # the level's input (activated), without the tiled z
        for i, (up, skip) in enumerate(zip(self.ups, [None, *reversed(skips[2:])])):
            h = h if skip is None else torch.cat([skip, h], 1)
            h = up(h, ws[:, i]) if self.styled else up(h)
        return self.last(torch.cat([skips[1], h], 1))


class EncoderBlock(nn.Module):
    """BicycleGAN's residual encoder block: norm, LeakyReLU, 3x3 conv, norm, LeakyReLU, 3x3 conv and 2x average
    pooling, plus a shortcut of 2x average pooling and a 1x1 conv."""

    def __init__(self, in_ch: int, out_ch: int, *, norm: Norm):
        super().__init__()
        self.conv = nn.Sequential(
            norm_layer(norm, in_ch), nn.LeakyReLU(0.2), nn.Conv2d(in_ch, in_ch, 3, padding=1),
            norm_layer(norm, in_ch), nn.LeakyReLU(0.2), nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.AvgPool2d(2),
        )
        self.shortcut = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(in_ch, out_ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.shortcut(x)


class StyleEncoder(nn.Module):
    """BicycleGAN's ResNet encoder E: a stride-2 4x4 conv, ``n_blocks - 1`` residual blocks (each halves the
    side; widths nef, 2nef, 3nef, then 4nef), LeakyReLU, average pooling, and two linear heads giving the mean
    and log-variance of q(z | image). ``resnet_256`` is n_blocks=5, ``resnet_128`` 4; 64x64 images take 3 (the
    features are 8x8 before the pooling, as in the reference; other sizes are pooled to 1x1 all the same)."""

    def __init__(self, *, in_channels: int = 3, nz: Positive = 8, nef: Positive = 64, n_blocks: Positive = 5,
                 norm: Norm = "instance"):
        super().__init__()
        if n_blocks < 2:
            raise ConfigError(f"encoder.n_blocks={n_blocks} must be at least 2")
        widths = [nef * min(4, n) for n in range(1, n_blocks + 1)]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, nef, 4, stride=2, padding=1)]
        layers += [EncoderBlock(widths[n - 1], widths[n], norm=norm) for n in range(1, n_blocks)]
        layers += [nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.mean = nn.Linear(widths[-1], nz)
        self.logvar = nn.Linear(widths[-1], nz)
        self.nz = int(nz)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of the style code of ``x``, each [N, nz]."""
        h = self.features(x)
        return self.mean(h), self.logvar(h)
