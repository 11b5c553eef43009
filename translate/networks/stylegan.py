"""A small, faithful StyleGAN 1 (Karras et al. 2019) and a discriminator suited to it.

Generator: a mapping network of ``n_mlp`` equalised fully connected layers turns the pixel-normalised z into
w of the same width; the synthesis network starts from a learned constant 4x4 input and, per resolution
level, runs two 3x3 convolutions (the first level's first "convolution" is the constant itself), each followed
by per-channel scaled noise, a bias, LeakyReLU 0.2 and AdaIN with the scale and bias of a learned affine map of
that layer's w. Levels are joined by bilinear up-sampling. Every weight uses the equalised learning rate (drawn
N(0, 1), scaled by He's constant at run time, with gain sqrt(2) before a LeakyReLU); the mapping network's
learning rate is scaled by 0.01.

Control: each layer can take its own w (``[N, num_layers, w_dim]``), which is what style mixing and the
mixing grids use; a running mean of w (``w_avg``, tracked in training) gives the truncation trick
w' = w_avg + psi (w - w_avg), with psi one number or one per level; ``noise`` is ``random`` (fresh per call),
``fixed`` (per-layer noise images drawn once and stored) or ``none``. In training, ``style_mixing`` is the
probability that a second latent takes over from a random crossover layer on.

Not included: progressive growing (we train at the final size from the start), the blur after up-sampling and
before down-sampling, and the output skip connections of StyleGAN 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from translate.core.errors import ConfigError
from translate.core.schema import Positive
from translate.networks.latent import MinibatchStdDev, doublings
from translate.networks.layers import keeps_arguments

NoiseMode = Literal["random", "fixed", "none"]
NOISE_MODES = ("random", "fixed", "none")
Truncation = float | Sequence[float]


LRELU_GAIN = math.sqrt(2.0)  # He's gain for the layers that feed a LeakyReLU (the official code's gain=sqrt(2))


class EqualLinear(nn.Module):
    """A fully connected layer with the equalised learning rate: weights stored N(0, 1/lr_mul), multiplied by
    gain * lr_mul / sqrt(fan_in) when used (so Adam's step size is the same for every layer). ``gain`` is
    sqrt(2) before a LeakyReLU (variance kept through the layer), 1 before none (styles, logits)."""

    def __init__(self, in_features: int, out_features: int, *, bias_init: float = 0.0, lr_mul: float = 1.0,
                 gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul = gain * lr_mul / math.sqrt(in_features), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
    """A same-padded convolution with the equalised learning rate (``gain`` as for EqualLinear); without a
    bias unless asked (the generator's layers add theirs after the noise)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = False,
                 gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale, self.padding = gain / math.sqrt(in_channels * kernel_size**2), kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each vector scaled to unit root-mean-square (the mapping network's input normalisation)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class MappingNetwork(nn.Module):
    """z -> w: pixel norm, then ``n_mlp`` equalised fully connected layers with LeakyReLU 0.2; w has ``w_dim``
    features (by default z's width, as StyleGAN)."""

    def __init__(self, *, z_dim: int, n_mlp: int, lr_mul: float = 0.01, w_dim: int | None = None):
        super().__init__()
        w_dim = w_dim or z_dim
        layers: list[nn.Module] = []
        for i in range(n_mlp):
            layers += [EqualLinear(z_dim if i == 0 else w_dim, w_dim, lr_mul=lr_mul, gain=LRELU_GAIN),
                       nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_norm(z))


class AdaIN(nn.Module):
    """Adaptive instance normalisation: each channel normalised to zero mean and unit variance, then scaled and
    shifted by a style computed from w by a learned affine map (scale biased to 1 at the start)."""

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, 2 * channels, bias_init=0.0)
        with torch.no_grad():
            self.affine.bias[:channels] = 1.0  # the style's scale starts at 1, its bias at 0

    def style(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-channel (scale, bias) of ``w``, each [N, C, 1, 1]."""
        scale, bias = self.affine(w).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return scale, bias

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        scale, bias = self.style(w)
        # Instance normalisation written out (F.instance_norm does not export to ONNX with a dynamic batch).
        # Statistics in float32 under autocast, as instance norm's are.
        xf = x.float()
        mean, var = xf.mean((2, 3), keepdim=True), xf.var((2, 3), keepdim=True, unbiased=False)
        return scale * ((xf - mean) * torch.rsqrt(var + 1e-8)).to(x.dtype) + bias


class NoiseInput(nn.Module):
    """Adds per-pixel Gaussian noise scaled by a learned per-channel weight (zero at the start). ``fixed`` uses
    one noise image drawn at construction and stored with the weights."""

    def __init__(self, channels: int, side: int, generator: torch.Generator):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("fixed", torch.randn(1, 1, side, side, generator=generator))

    def forward(self, x: torch.Tensor, mode: NoiseMode) -> torch.Tensor:
        if mode == "none":
            return x
        if mode == "fixed":
            noise = self.fixed.to(x.dtype)
        else:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + self.weight.to(x.dtype) * noise


class StyleLayer(nn.Module):
    """(3x3 convolution,) noise, bias, LeakyReLU 0.2, AdaIN: one layer of the synthesis network, one w."""

    def __init__(self, in_channels: int, channels: int, *, side: int, w_dim: int, conv: bool,
                 generator: torch.Generator):
        super().__init__()
        self.conv = EqualConv2d(in_channels, channels, 3, gain=LRELU_GAIN) if conv else None
        self.noise = NoiseInput(channels, side, generator)
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.adain = AdaIN(channels, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: NoiseMode) -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)
        x = F.leaky_relu(self.noise(x, noise) + self.bias, 0.2)
        return self.adain(x, w)


def level_channels(side: int, size: int, width: int, max_channels: int) -> int:
    """Channels at ``side``: ``width`` at the image's ``size``, doubled per level towards 4x4, at most
    ``max_channels`` (the paper's min(512, 8192 / side) is width=8192/size, max_channels=512)."""
    return min(max_channels, width * (size // side))


class StyleCodes:
    """The latent controls of a generator with a mapping network (StyleGAN's, the style U-Net's): w from z,
    per-layer w, the tracked mean of w and truncation. The class using it sets ``mapping``, the buffer
    ``w_avg``, ``w_avg_beta``, ``w_dim``, ``num_layers`` and ``num_levels`` (layers per level: their ratio)."""

    mapping: nn.Module
    w_avg: torch.Tensor
    w_avg_beta: float
    w_dim: int
    num_layers: int
    num_levels: int
    training: bool

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """w = mapping(z); in training also moves ``w_avg`` towards the batch mean of w."""
        w = self.mapping(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        return w

    def per_layer(self, w: torch.Tensor) -> torch.Tensor:
        """w [N, w_dim] repeated for every layer -> [N, num_layers, w_dim]; per-layer w is returned as is."""
        if w.dim() == 2:
            return w.unsqueeze(1).expand(-1, self.num_layers, -1)
        if w.dim() != 3 or w.shape[1] != self.num_layers:
            raise ValueError(f"per-layer w must be [N, {self.num_layers}, {self.w_dim}], got {list(w.shape)}")
        return w

    def truncate(self, w: torch.Tensor, psi: Truncation) -> torch.Tensor:
        """w_avg + psi (w - w_avg) on per-layer w; ``psi`` one number or one per level (coarse to fine; every
        layer of a level)."""
        if isinstance(psi, (int, float)):
            if psi == 1:
                return w
            factor = torch.full((self.num_layers,), float(psi))
        else:
            if len(psi) != self.num_levels:
                raise ConfigError(f"truncation: {len(psi)} values for {self.num_levels} levels (coarse to fine); "
                                  "give one number or one per level")
            factor = torch.tensor([float(p) for p in psi]).repeat_interleave(self.num_layers // self.num_levels)
        factor = factor.to(w.device, w.dtype).view(1, -1, 1)
        return self.w_avg.to(w.dtype) + factor * (w - self.w_avg.to(w.dtype))


@keeps_arguments
class StyleGenerator(StyleCodes, nn.Module):
    """StyleGAN 1's generator; see the module docstring. ``forward(z)`` takes latents [N, z_dim] (or, with
    ``input_is_w``, w [N, w_dim] or per-layer w [N, num_layers, w_dim])."""

    def __init__(self, *, out_channels: Positive = 3, size: int = 64, z_dim: Positive = 128, n_mlp: Positive = 8,
                 ngf: Positive = 32, max_channels: Positive = 256, style_mixing: float = 0.9,
                 w_avg_beta: float = 0.995, mapping_lr_mul: float = 0.01):
        super().__init__()
        n_up = doublings(size, 4, "generator=stylegan")
        if not 0 <= style_mixing <= 1:
            raise ConfigError(f"generator.style_mixing={style_mixing}: a probability, 0 <= p <= 1")
        self.z_dim = self.w_dim = z_dim
        self.size, self.num_levels, self.num_layers = size, n_up + 1, 2 * (n_up + 1)
        self.style_mixing, self.w_avg_beta = float(style_mixing), float(w_avg_beta)
        self.mapping = MappingNetwork(z_dim=z_dim, n_mlp=n_mlp, lr_mul=mapping_lr_mul)
        self.register_buffer("w_avg", torch.zeros(z_dim))
        widths = [level_channels(4 * 2**i, size, ngf, max_channels) for i in range(self.num_levels)]
        self.const = nn.Parameter(torch.ones(1, widths[0], 4, 4))
        noise_rng = torch.Generator().manual_seed(0)  # the fixed noise images; not the training RNG
        self.layers = nn.ModuleList()
        for i, width in enumerate(widths):
            before = widths[max(i - 1, 0)]
            side = 4 * 2**i
            self.layers.append(StyleLayer(before, width, side=side, w_dim=z_dim, conv=i > 0, generator=noise_rng))
            self.layers.append(StyleLayer(width, width, side=side, w_dim=z_dim, conv=True, generator=noise_rng))
        self.to_rgb = EqualConv2d(widths[-1], out_channels, 1)
        self.rgb_bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def mixed(self, w: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Style-mixing regularisation: with probability ``style_mixing`` the w of a second latent takes over
        from a random crossover layer (1 .. num_layers - 1) on, for the whole batch."""
        w = self.per_layer(w)
        if self.style_mixing and float(torch.rand(())) < self.style_mixing:
            other = self.per_layer(self.map(torch.randn_like(z)))
            crossover = int(torch.randint(1, self.num_layers, ()))
            w = torch.cat([w[:, :crossover], other[:, crossover:]], dim=1)
        return w

    # ------------------------------------------------------------------ images
    def synthesis(self, ws: torch.Tensor, noise: NoiseMode = "random") -> torch.Tensor:
        """Images from per-layer w [N, num_layers, w_dim]."""
        if noise not in NOISE_MODES:
            raise ConfigError(f"noise={noise!r} is not one of {', '.join(NOISE_MODES)}")
        # Broadcast, not expand(len(ws)): traced exports keep a dynamic batch and ONNX a known channel count.
        x = self.const.to(ws.dtype) * ws.new_ones(ws.shape[0], 1, 1, 1)
        for i, layer in enumerate(self.layers):
            if i and i % 2 == 0:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = layer(x, ws[:, i], noise)
        return self.to_rgb(x) + self.rgb_bias

    def forward(self, z: torch.Tensor, *, truncation: Truncation = 1.0, noise: NoiseMode = "random",
                input_is_w: bool = False) -> torch.Tensor:
        w = z if input_is_w else self.map(z)
        ws = self.mixed(w, z) if self.training and not input_is_w else self.per_layer(w)
        return self.synthesis(self.truncate(ws, truncation), noise)


class StyleDiscriminator(nn.Module):
    """StyleGAN 1's discriminator (ProGAN's, at a fixed size): a 1x1 from-RGB convolution, per level two 3x3
    convolutions with LeakyReLU 0.2 and 2x average-pool down-sampling, then at 4x4 the minibatch standard
    deviation, a 3x3 convolution and two fully connected layers to one logit. Equalised learning rate."""

    def __init__(self, *, in_channels: Positive = 3, size: int = 64, ndf: Positive = 32,
                 max_channels: Positive = 256, mbstd_group: Positive = 4):
        super().__init__()
        n_down = doublings(size, 4, "discriminator=stylegan")
        self.size = size
        sides = [size // 2**i for i in range(n_down + 1)]  # size ... 4
        widths = [level_channels(s, size, ndf, max_channels) for s in sides]
        conv = partial(EqualConv2d, bias=True, gain=LRELU_GAIN)  # every one feeds a LeakyReLU
        self.from_rgb = conv(in_channels, widths[0], 1)
        self.blocks = nn.ModuleList(
            nn.ModuleList([conv(widths[i], widths[i], 3), conv(widths[i], widths[i + 1], 3)])
            for i in range(n_down)
        )
        self.mbstd = MinibatchStdDev(mbstd_group)
        self.final_conv = conv(widths[-1] + 1, widths[-1], 3)
        self.fc = EqualLinear(widths[-1] * 16, widths[-1], gain=LRELU_GAIN)
        self.out = EqualLinear(widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.from_rgb(x), 0.2)
        for conv1, conv2 in self.blocks:
            x = F.leaky_relu(conv1(x), 0.2)
            x = F.avg_pool2d(F.leaky_relu(conv2(x), 0.2), 2)
        x = F.leaky_relu(self.final_conv(self.mbstd(x)), 0.2)
        return self.out(F.leaky_relu(self.fc(x.flatten(1)), 0.2))
