"""An encoder-decoder with a bottleneck (the U-Net's levels without skips), plain or variational.

The encoder halves the image ``n_downs`` times with the U-Net's strided 4x4 convolutions (LeakyReLU 0.2,
norm), the decoder mirrors it with transposed convolutions (ReLU, norm, tanh at the end). Nothing passes
from encoder to decoder but the bottleneck, so the network must keep what matters in it:

- ``dense=True``: a vector of ``latent_dim`` (a linear layer from the last feature map at the training
  ``size``): the code to sample (VAE), to plot, to score inputs by; images of another size are resized to the
  training size on the way in and back on the way out;
- ``dense=False``: ``latent_dim`` channels at 1/2^n of the image (a 1x1 convolution): fully convolutional, so
  any image size works (restoration of whole photos through ``infer.py``'s padding and tiling).

``variational``: the encoder gives a mean and a log-variance per latent value (``encode``); ``forward`` decodes
the mean (deterministic reconstruction), ``decode(z)`` any code, ``z_dim`` its flat size at the training size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from translate.core.schema import Positive
from translate.networks.generators import UnetDown, UnetUp
from translate.networks.layers import Norm, keeps_arguments


@keeps_arguments
class Autoencoder(nn.Module):
    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, size: Positive = 64, ngf: Positive = 32,
                 n_downs: Positive = 4, latent_dim: Positive = 128, dense: bool = True, variational: bool = False,
                 norm: Norm = "batch", max_channels: Positive = 256):
        super().__init__()
        if size % 2**n_downs:
            raise ValueError(f"size={size} is not a multiple of 2**n_downs={2**n_downs}")
        self.in_channels, self.out_channels, self.size = in_channels, out_channels, size
        self.latent_dim, self.dense, self.variational = latent_dim, dense, variational
        self.stride = 2**n_downs
        self.side = size // self.stride
        widths = [min(ngf * 2**i, max_channels) for i in range(n_downs)]
        ins = [in_channels, *widths[:-1]]
        self.downs = nn.ModuleList(UnetDown(i, o, norm=norm, outermost=k == 0, innermost=k == n_downs - 1)
                                   for k, (i, o) in enumerate(zip(ins, widths)))
        top, codes = widths[-1], latent_dim * (2 if variational else 1)
        if dense:
            self.to_latent = nn.Sequential(nn.Flatten(), nn.LeakyReLU(0.2), nn.Linear(top * self.side**2, codes))
            self.from_latent = nn.Sequential(nn.Linear(latent_dim, top * self.side**2),
                                             nn.Unflatten(1, (top, self.side, self.side)))
        else:
            self.to_latent = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(top, codes, 1))
            self.from_latent = nn.Conv2d(latent_dim, top, 1)
        outs = [*reversed(widths[:-1]), out_channels]
        self.ups = nn.ModuleList(UnetUp(i, o, norm=norm, dropout=False, outermost=k == n_downs - 1)
                                 for k, (i, o) in enumerate(zip(reversed(widths), outs)))

    @property
    def z_dim(self) -> int:
        """The flat size of one code at the training size (what ``decode`` takes)."""
        return self.latent_dim * (1 if self.dense else self.side**2)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean, log-variance) of the code: [N, latent_dim] (dense; other image sizes are resized to the
        training size first) or [N, latent_dim, h, w]; the log-variance is None for a plain autoencoder."""
        if self.dense and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        for down in self.downs:
            x = down(x)[1]
        codes = self.to_latent(x)
        if not self.variational:
            return codes, None
        mean, log_var = codes.chunk(2, dim=1)
        return mean, log_var.clamp(-30, 20)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images from codes: [N, latent_dim] (dense), [N, latent_dim, h, w], or flat [N, z_dim] at the
        training size."""
        if not self.dense and z.dim() == 2:
            z = z.view(len(z), self.latent_dim, self.side, self.side)
        x = self.from_latent(z)
        for up in self.ups:
            x = up(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction (of the mean code), at the input's size."""
        out = self.decode(self.encode(x)[0])
        if tuple(out.shape[-2:]) != tuple(x.shape[-2:]):  # a dense code of another size: back to the input's
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
        return out


class Decoder(nn.Module):
    """A variational autoencoder's decoder as a generator from noise: ``G(z)`` with z [N, z_dim] ~ N(0, I)
    (what ``translate generate`` samples)."""

    def __init__(self, autoencoder: Autoencoder):
        super().__init__()
        self.autoencoder = autoencoder
        self.z_dim = autoencoder.z_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.decode(z)
