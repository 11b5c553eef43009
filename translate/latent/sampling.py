"""Images from a trained noise generator: truncation, noise, latent edits, style-mixing grids and latent walks.

``Sampler`` wraps a generator of ``translate.models.gan`` (DCGAN, the tutorial's, StyleGAN) with the choices
``translate generate`` exposes; tests and notebooks call it directly.

- Truncation: StyleGAN's w' = w_avg + psi (w - w_avg) (psi per level possible); for a generator without a
  mapping network, z' = psi z (z's mean is 0), the same pull towards the average image.
- Edits move each latent along unit axes (``translate.latent.axes``) in z, or in w for StyleGAN, before truncation.
- Noise (StyleGAN): ``random`` draws it from the sampler's seed (the same command gives the same images),
  ``fixed`` uses the noise images stored with the weights, ``none`` leaves it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from translate.core.errors import ConfigError
from translate.models.base import fixed_latents
from translate.networks.stylegan import NOISE_MODES, StyleGenerator, Truncation


@dataclass(frozen=True)
class LatentEdit:
    """Move latents by ``amount`` along unit vector ``axis`` of ``space`` (``z``, or ``w`` for StyleGAN)."""

    axis: torch.Tensor
    amount: float
    space: str = "z"


def edited(x: torch.Tensor, edits: Sequence[LatentEdit], space: str) -> torch.Tensor:
    """``x`` moved along every edit of ``space`` (z or w)."""
    for edit in edits:
        if edit.space == space:
            x = x + edit.amount * edit.axis.to(x)
    return x


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` (Gaussian latents keep their typical norm)."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@dataclass
class Sampler:
    """``images(z)`` with the truncation, noise and edits chosen; ``G`` in eval mode."""

    G: nn.Module
    truncation: Truncation = 1.0
    noise: str = "random"
    edits: list[LatentEdit] = field(default_factory=list)
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        self.G = self.G.eval().to(self.device)
        self.styled = isinstance(self.G, StyleGenerator)
        if self.noise not in NOISE_MODES:
            raise ConfigError(f"noise={self.noise!r} is not one of {', '.join(NOISE_MODES)}")
        if not isinstance(self.truncation, (int, float)):
            if not self.styled:
                raise ConfigError("truncation: one value per level needs generator=stylegan; give one number")
            self.G.truncate(self.G.per_layer(torch.zeros(1, self.z_dim)), self.truncation)  # checks the length
        for edit in self.edits:
            if edit.space == "w" and not self.styled:
                raise ConfigError("an edit axis in w needs a StyleGAN generator")

    @property
    def z_dim(self) -> int:
        return int(self.G.z_dim)

    def with_edits(self, edits: list[LatentEdit]) -> Sampler:
        """The same sampler with ``edits`` instead of its own."""
        return replace(self, edits=list(edits))

    def latents(self, n: int, seed: int | None = None) -> torch.Tensor:
        return fixed_latents(n, self.z_dim, self.seed if seed is None else seed).to(self.device)

    def w(self, z: torch.Tensor) -> torch.Tensor:
        """StyleGAN: the edited w of ``z`` [N, w_dim] (before truncation)."""
        return edited(self.G.map(edited(z, self.edits, "z")), self.edits, "w")

    @torch.no_grad()
    def images(self, z: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] in [-1, 1] for latents ``z`` [N, z_dim]."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)  # random noise: the same images for the same command
            if not self.styled:
                return self.G(self.truncation * edited(z.to(self.device), self.edits, "z")).float()
            return self.synthesize(self.G.per_layer(self.w(z.to(self.device))))

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        return self.G.synthesis(self.G.truncate(ws, self.truncation), self.noise).float()

    def check_mixing(self, crossover: int) -> None:
        """A ConfigError unless the generator mixes styles and ``crossover`` is one of its inner levels."""
        if not self.styled:
            raise ConfigError("mix needs a StyleGAN generator (generator=stylegan): it mixes per-level styles")
        if not 0 < crossover < self.G.num_levels:
            raise ConfigError(f"mix_level={crossover}: a level between 1 and {self.G.num_levels - 1} "
                              f"(levels 4x4 .. {self.G.size}x{self.G.size})")

    @torch.no_grad()
    def mixing_grid(self, rows: torch.Tensor, columns: torch.Tensor, crossover: int) -> torch.Tensor:
        """StyleGAN's style-mixing figure as images [(R + 1) * (C + 1), C, H, W], row by row: the first row shows
        the column latents, the first column the row latents (corner blank); cell (r, c) takes levels below
        ``crossover`` (coarse: pose, head size, hair shape) from row latent r and the rest from column latent c."""
        self.check_mixing(crossover)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            w_rows, w_cols = self.G.per_layer(self.w(rows)), self.G.per_layer(self.w(columns))
            top = self.synthesize(w_cols)
            tiles = [torch.full_like(top[:1], 1.0), top]
            cut = 2 * crossover  # two layers per level
            for r in range(len(rows)):
                mixed = torch.cat([w_rows[r : r + 1, :cut].expand(len(columns), -1, -1), w_cols[:, cut:]], 1)
                tiles += [self.synthesize(w_rows[r : r + 1]), self.synthesize(mixed)]
        return torch.cat(tiles)

    @torch.no_grad()
    def walk(self, keys: torch.Tensor, steps: int) -> list[torch.Tensor]:
        """Frames of closed latent walks: ``keys`` [W, K, z_dim] (W walks through K latents each, back to the
        first), ``steps`` frames per segment, slerp in z; each frame [W, C, H, W]."""
        frames = []
        for k in range(keys.shape[1]):
            a, b = keys[:, k], keys[:, (k + 1) % keys.shape[1]]
            frames += [self.images(slerp(a, b, s / steps)) for s in range(steps)]
        return frames


def per_level(truncation: float | Sequence[float]) -> Truncation:
    """A truncation from the config (a number or a list)."""
    if isinstance(truncation, (int, float)):
        return float(truncation)
    return [float(t) for t in truncation]
