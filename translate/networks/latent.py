"""Generators from a latent vector and the discriminators that judge whole images: DCGAN (Radford et al. 2016)
and the anime-face tutorial's variant of it (the Polish article in ``../shared/seeds``).

A latent generator takes ``z`` of shape [N, z_dim] and returns [N, out_channels, size, size] in [-1, 1]; it
declares ``z_dim`` and ``size``. Its discriminator takes images of that size and returns one logit per image.
The StyleGAN generator and discriminator are in ``translate.networks.stylegan``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from translate.core.errors import ConfigError
from translate.core.schema import Positive
from translate.networks.layers import keeps_arguments

ImageSize = Literal[32, 64, 128]


def doublings(size: int, start: int, name: str) -> int:
    """How many times ``start`` doubles to ``size`` (a power-of-two multiple of it), else a ConfigError."""
    n = round(math.log2(size / start)) if size >= start else -1
    if n < 0 or start * 2**n != size:
        raise ConfigError(f"{name}: size={size} must be {start} times a power of two (e.g. 32, 64, 128)")
    return n


@torch.no_grad()
def init_layers(net: nn.Module, weight_init) -> nn.Module:
    """Every convolution's and linear layer's weight by ``weight_init`` (in place), its bias 0; batch-norm
    scales ~ N(1, 0.02), their biases 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight_init(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return net


def dcgan_init(net: nn.Module) -> nn.Module:
    """Radford et al.: every weight ~ N(0, 0.02); batch-norm scales ~ N(1, 0.02); biases 0."""
    return init_layers(net, lambda weight: nn.init.normal_(weight, 0.0, 0.02))


def glorot_init(net: nn.Module) -> nn.Module:
    """Keras' defaults, as the anime-face tutorial trained with them: weights Glorot-uniform (bounds
    sqrt(6 / (fan_in + fan_out))), biases 0 (the tutorial's networks have no batch norm)."""
    return init_layers(net, nn.init.xavier_uniform_)


TutorialInit = Literal["glorot", "dcgan"]
INITS = {"glorot": glorot_init, "dcgan": dcgan_init}


@keeps_arguments
class DCGANGenerator(nn.Module):
    """z -> 4x4 by a transposed convolution, then stride-2 transposed convolutions (batch norm, ReLU) doubling
    the side and halving the width down to ``ngf``, and a last one to ``out_channels`` with tanh."""

    def __init__(self, *, out_channels: Positive = 3, size: ImageSize = 64, z_dim: Positive = 100,
                 ngf: Positive = 64):
        super().__init__()
        n_up = doublings(size, 8, "generator=dcgan")  # 4 -> size takes n_up + 1 doublings
        self.z_dim, self.size = z_dim, size
        width = ngf * 2**n_up
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(True)]
        for _ in range(n_up):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, out_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = dcgan_init(nn.Sequential(*layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(-1, self.z_dim, 1, 1))  # -1, not len(z): traced exports keep a dynamic batch


class MinibatchStdDev(nn.Module):
    """Appends the mean standard deviation of the features over groups of ``group_size`` images as one more
    channel (ProGAN): a batch of near-identical fakes is easy to tell from real variety."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = min(self.group_size, n)
        while n % group:
            group -= 1
        y = x.float().reshape(group, -1, c, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [n / group]
        y = y.to(x.dtype).reshape(-1, 1, 1, 1).repeat(group, 1, h, w)
        return torch.cat([x, y], dim=1)


class DCGANDiscriminator(nn.Module):
    """Stride-2 convolutions with LeakyReLU 0.2 (batch norm on all but the first) from ``size`` down to 4x4,
    then a 4x4 convolution to one logit per image. ``minibatch_std``: ProGAN's minibatch standard deviation
    as one more channel at 4x4 (not in the paper), so that D sees how alike a batch's images are."""

    def __init__(self, *, in_channels: Positive = 3, size: ImageSize = 64, ndf: Positive = 64,
                 minibatch_std: bool = False):
        super().__init__()
        n_down = doublings(size, 8, "discriminator=dcgan")
        self.size = size
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        width = ndf
        for _ in range(n_down):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2),
                       nn.LeakyReLU(0.2, True)]
            width *= 2
        if minibatch_std:
            layers.append(MinibatchStdDev())
        layers.append(nn.Conv2d(width + int(minibatch_std), 1, 4, 1, 0, bias=False))
        self.net = dcgan_init(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


@keeps_arguments
class TutorialGenerator(nn.Module):
    """The anime-face tutorial's generator: a dense layer to a (size/4)^2 x ``base`` map (16x16x128 at 64),
    a 5x5 convolution, two stride-2 4x4 transposed convolutions, another 5x5 convolution (all ``ngf`` wide,
    LeakyReLU 0.2) and an 8x8 convolution with tanh to the image. ``init``: ``glorot`` (Keras' default, the
    tutorial's) or ``dcgan`` (N(0, 0.02) weights)."""

    def __init__(self, *, out_channels: Positive = 3, size: ImageSize = 64, z_dim: Positive = 100,
                 base: Positive = 128, ngf: Positive = 256, init: TutorialInit = "glorot"):
        super().__init__()
        doublings(size, 32, "generator=tutorial")
        self.z_dim, self.size, self.base = z_dim, size, base
        self.dense = nn.Sequential(nn.Linear(z_dim, base * (size // 4) ** 2), nn.LeakyReLU(0.2, True))
        act, width = nn.LeakyReLU(0.2, True), ngf
        self.net = nn.Sequential(
            nn.Conv2d(base, width, 5, padding=2), act,
            nn.ConvTranspose2d(width, width, 4, 2, 1), act,
            nn.ConvTranspose2d(width, width, 4, 2, 1), act,
            nn.Conv2d(width, width, 5, padding=2), act,
            nn.ZeroPad2d((3, 4, 3, 4)), nn.Conv2d(width, out_channels, 8), nn.Tanh(),  # Keras' "same" for k=8
        )
        INITS[init](self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        side = self.size // 4
        return self.net(self.dense(z.flatten(1)).reshape(-1, self.base, side, side))


class TutorialDiscriminator(nn.Module):
    """The tutorial's discriminator: a 3x3 convolution, three unpadded stride-2 5x5 convolutions (64 -> 30 ->
    13 -> 5), all ``ndf`` wide with LeakyReLU 0.2, then dropout and a dense layer to one logit (the tutorial's
    sigmoid is inside the loss). ``init`` as the tutorial's generator."""

    def __init__(self, *, in_channels: Positive = 3, size: ImageSize = 64, ndf: Positive = 128,
                 dropout: float = 0.4, init: TutorialInit = "glorot"):
        super().__init__()
        doublings(size, 32, "discriminator=tutorial")
        if not 0 <= dropout < 1:
            raise ConfigError(f"discriminator.dropout={dropout}: a probability, 0 <= p < 1")
        self.size = size
        act = nn.LeakyReLU(0.2, True)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 3, padding=1), act,
            nn.Conv2d(ndf, ndf, 5, stride=2), act,
            nn.Conv2d(ndf, ndf, 5, stride=2), act,
            nn.Conv2d(ndf, ndf, 5, stride=2), act,
        )
        side = size
        for _ in range(3):
            side = (side - 5) // 2 + 1
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(ndf * side * side, 1))
        INITS[init](self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
