"""Generators: the reference U-Net and ResNet encoder-decoder, layer for layer.

Both are plain modules with typed keyword arguments. Parameter counts equal the reference
pix2pix/CycleGAN networks for every preset and norm (checked against ``shared/reference/official_arch.json``).

Both also expose their encoder's activations, ``features(x, layers)`` (what CUT's PatchNCE compares), with
numbered layers and a ``default_feature_layers`` set; this adds no parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from translate.core.schema import Count, Positive
from translate.networks.layers import (
    Norm,
    Padding,
    Upsample,
    conv_bias,
    keeps_arguments,
    norm_layer,
    padding_layer,
    upsampling_conv,
)


def with_input_added(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Residual restoration output: the input's first channels plus the network's correction, clamped to the
    image range (the network learns what to change, and starts close to the identity)."""
    return (x[:, : out.shape[1]] + out).clamp(-1.0, 1.0)


def check_residual(residual: bool, in_channels: int, out_channels: int) -> None:
    """ValueError when a residual output cannot add the input to the output (fewer input channels)."""
    if residual and in_channels < out_channels:
        raise ValueError(f"residual=true needs at least as many input channels as output channels "
                         f"(got {in_channels} in, {out_channels} out)")


class UnetDown(nn.Module):
    """One encoder level: LeakyReLU -> strided conv -> norm (the outermost level is the bare conv)."""

    def __init__(self, in_ch: int, out_ch: int, *, norm: Norm, outermost: bool = False, innermost: bool = False):
        super().__init__()
        bias = conv_bias(norm)
        self.act = nn.Identity() if outermost else nn.LeakyReLU(0.2)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, bias=bias)
        self.norm = nn.Identity() if (outermost or innermost) else norm_layer(norm, out_ch)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (skip, output). The skip is the activated input: the reference's in-place LeakyReLU
        overwrites the tensor it keeps for the skip connection, and we reproduce that explicitly."""
        a = self.act(x)
        return a, self.norm(self.conv(a))


class UnetUp(nn.Module):
    """One decoder level: ReLU -> transposed conv (or ``upsample="resize"``) -> norm (+ dropout); the outermost
    ends in tanh."""

    def __init__(
        self, in_ch: int, out_ch: int, *, norm: Norm, dropout: bool, outermost: bool = False,
        upsample: Upsample = "transposed",
    ):
        super().__init__()
        self.act = nn.ReLU()
        # The outermost transposed conv always has a bias (nothing normalises after it).
        bias = True if outermost else conv_bias(norm)
        self.conv = upsampling_conv(in_ch, out_ch, upsample=upsample, bias=bias, kernel_size=4, padding=1)
        self.norm = nn.Identity() if outermost else norm_layer(norm, out_ch)
        self.dropout = nn.Dropout(0.5) if dropout else nn.Identity()
        self.out = nn.Tanh() if outermost else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.norm(self.conv(self.act(x)))))


@keeps_arguments
class UnetGenerator(nn.Module):
    """U-Net generator (pix2pix). ``num_downs`` halvings: 8 for 256x256 inputs, 7 for 128x128.

    Inputs must have sides divisible by ``2 ** num_downs``. ``residual=True`` adds the input to the output
    (``with_input_added``): for restoration, where the output differs little from the input.
    ``upsample="resize"`` replaces the decoder's transposed convolutions (``upsampling_conv``).
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: Positive = 8,
        ngf: Positive = 64,
        norm: Norm = "batch",
        dropout: bool = True,
        residual: bool = False,
        upsample: Upsample = "transposed",
    ):
        super().__init__()
        check_residual(residual, in_channels, out_channels)
        self.residual = residual
        if num_downs < 5:
            raise ValueError(f"num_downs={num_downs}: the U-Net needs at least 5 levels")
        self.num_downs = num_downs
        # Channel widths level by level, outermost first: ngf, 2ngf, 4ngf, 8ngf, 8ngf, ...
        widths = [ngf * min(2**i, 8) for i in range(num_downs)]
        downs = [UnetDown(in_channels, widths[0], norm=norm, outermost=True)]
        for i in range(1, num_downs):
            downs.append(UnetDown(widths[i - 1], widths[i], norm=norm, innermost=i == num_downs - 1))
        self.downs = nn.ModuleList(downs)
        # Decoder, innermost first. Dropout sits in the 8*ngf blocks between the innermost and the 4ngf level,
        # exactly as the reference places it (num_downs - 5 of them).
        ups = [UnetUp(widths[-1], widths[-2], norm=norm, dropout=False, upsample=upsample)]
        for i in range(num_downs - 2, 0, -1):
            use_dropout = dropout and 4 <= i <= num_downs - 2
            ups.append(UnetUp(widths[i] * 2, widths[i - 1], norm=norm, dropout=use_dropout, upsample=upsample))
        ups.append(UnetUp(widths[0] * 2, out_channels, norm=norm, dropout=False, outermost=True, upsample=upsample))
        self.ups = nn.ModuleList(ups)

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this."""
        return 2**self.num_downs

    @property
    def default_feature_layers(self) -> list[int]:
        """The input and the first four encoder levels (256x256 input: 256, 128, 64, 32, 16 pixels a side),
        like CUT's five layers of its ResNet: raw pixels, then ever coarser and more abstract patches."""
        return list(range(min(5, self.num_downs + 1)))

    def features(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """Encoder activations: layer 0 is the input, layer i (1..num_downs) the output of encoder level i.
        Stops after the deepest layer asked for."""
        wanted = check_layers(layers, self.num_downs + 1)
        found = {0: x} if 0 in wanted else {}
        h = x
        for i, down in enumerate(self.downs[: max(wanted)], start=1):
            h = down(h)[1]
            if i in wanted:
                found[i] = h
        return [found[i] for i in layers]

    def forward(self, x: torch.Tensor, *, feature_layers: Sequence[int] | None = None):
        """The translation of ``x``; with ``feature_layers``, ``features(x, feature_layers)`` instead (so a
        distributed wrapper, which only forwards ``forward``, can reach them)."""
        if feature_layers is not None:
            return self.features(x, feature_layers)
        skips = []
        h = x
        for down in self.downs:
            skip, h = down(h)
            skips.append(skip)
        # skips[0] is the raw input of the outermost level, which has no skip connection.
        h = self.ups[0](h)
        for up, skip in zip(self.ups[1:], reversed(skips[1:])):
            h = up(torch.cat([skip, h], dim=1))
        return with_input_added(x, h) if self.residual else h


class ResnetBlock(nn.Module):
    """Two 3x3 convs with a residual connection (dropout between them when enabled)."""

    def __init__(self, dim: int, *, norm: Norm, dropout: bool, padding: Padding):
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = []
        for i in range(2):
            pads, conv_pad = padding_layer(padding, 1)
            layers += pads
            layers += [nn.Conv2d(dim, dim, kernel_size=3, padding=conv_pad, bias=bias), norm_layer(norm, dim)]
            if i == 0:
                layers.append(nn.ReLU())
                if dropout:
                    layers.append(nn.Dropout(0.5))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


@keeps_arguments
class ResnetGenerator(nn.Module):
    """ResNet encoder-decoder generator (CycleGAN): two stride-2 downsamplings, ``n_blocks`` residual blocks,
    two upsamplings. Input sides must be multiples of 4. ``residual=True`` and ``upsample`` as for the U-Net."""

    stride = 4

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        n_blocks: Count = 9,
        ngf: Positive = 64,
        norm: Norm = "instance",
        dropout: bool = False,
        padding: Padding = "reflect",
        residual: bool = False,
        upsample: Upsample = "transposed",
    ):
        super().__init__()
        check_residual(residual, in_channels, out_channels)
        self.residual = residual
        if n_blocks < 0:
            raise ValueError(f"n_blocks={n_blocks} must be >= 0")
        bias = conv_bias(norm)
        pads, conv_pad = padding_layer("reflect", 3)  # the 7x7 stem always reflects, as in the reference
        layers: list[nn.Module] = [
            *pads,
            nn.Conv2d(in_channels, ngf, kernel_size=7, padding=conv_pad, bias=bias),
            norm_layer(norm, ngf),
            nn.ReLU(),
        ]
        for i in range(2):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                norm_layer(norm, ngf * mult * 2),
                nn.ReLU(),
            ]
        layers += [ResnetBlock(ngf * 4, norm=norm, dropout=dropout, padding=padding) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [
                upsampling_conv(ngf * mult, ngf * mult // 2, upsample=upsample, bias=bias, kernel_size=3, padding=1,
                                output_padding=1),
                norm_layer(norm, ngf * mult // 2),
                nn.ReLU(),
            ]
        pads, conv_pad = padding_layer("reflect", 3)
        layers += [*pads, nn.Conv2d(ngf, out_channels, kernel_size=7, padding=conv_pad), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.n_blocks = n_blocks

    @property
    def default_feature_layers(self) -> list[int]:
        """The official CUT layers 0, 4, 8, 12, 16 of its resnet_9blocks, recounted for this network (which,
        like CycleGAN's and CUT's ``--no_antialias``, downsamples with strided convolutions): the padded input
        (0), the two downsampling convolutions (4, 7) and residual blocks 1 and 5 (10, 14); fewer blocks: the
        last one."""
        blocks = [10 + b for b in sorted({0, min(4, self.n_blocks - 1)}) if self.n_blocks]
        return [0, 4, 7, *blocks]

    def features(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """The outputs of the numbered children of ``model`` (0 the stem's padding, 1 its convolution, ...,
        10 the first residual block), as CUT numbers them. Stops after the deepest layer asked for."""
        wanted = check_layers(layers, len(self.model))
        found = {}
        h = x
        for i, layer in enumerate(self.model[: max(wanted) + 1]):
            h = layer(h)
            if i in wanted:
                found[i] = h
        return [found[i] for i in layers]

    def forward(self, x: torch.Tensor, *, feature_layers: Sequence[int] | None = None):
        """The translation of ``x``; with ``feature_layers``, ``features(x, feature_layers)`` instead."""
        if feature_layers is not None:
            return self.features(x, feature_layers)
        out = self.model(x)
        return with_input_added(x, out) if self.residual else out


def check_layers(layers: Sequence[int], count: int) -> set[int]:
    """The set of ``layers``; ValueError unless they are distinct layer numbers in ``range(count)``."""
    wanted = set(layers)
    if not layers or len(wanted) != len(layers) or not all(isinstance(i, int) and 0 <= i < count for i in layers):
        raise ValueError(f"feature layers {list(layers)}: give distinct layer numbers from 0 to {count - 1}")
    return wanted
