"""Do augmentations leak into what a generator makes? (``metrics.leaks=true``: ``translate evaluate`` and training's
validation.)

A discriminator shown flipped, rotated or recoloured reals could teach its generator that such images are real;
the generator's outputs would then come out rotated or recoloured. "Recoloured" here means plainly wrong
colours, by ADA's own transforms: the luma flipped (an inverted image), the hue rotated by 90 to 180 degrees, or
both. ADA's milder brightness, contrast and saturation draws are left out, since a generator's ordinary colour
errors lie nearer to them than to the true colours. With the true photo of each output at hand (``LeakScore``,
paired data):

- ``leak_orientation``: the share of outputs nearer (L1) to a flipped or rotated copy of their true photo (the
  seven other symmetries of the square; flips and the half turn for other shapes) than to the photo as it is;
- ``leak_colour``: the share of outputs whose colour statistics (per-channel mean and spread) are nearer to one
  of ``draws`` recolourings of their true photo than to the photo itself.

Without a true photo per output (a generator from noise, an unpaired translation), ``DistributionLeakScore``
asks the same of the outputs against real images of the target domain: half of them are the reference, each also
turned once (at random, by one of the symmetries other than the mirror image, which most datasets treat as
natural) and recoloured once; the other half are scored like the outputs, as the chance level (``leak_*_real``):

- ``leak_orientation``: the share of outputs whose nearest reference image (L1 at 32x32) is a turned one;
- ``leak_colour``: the share whose nearest reference image in colour statistics is a recoloured one.

All have a chance level above 0 (a blurry output can be as near to a flipped photo), and an output unlike any
real image can land on either side: compare a run with one trained without augmentation too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from translate.models.augment import hue_rotation, luma_flip, recolour


def _symmetries(y: torch.Tensor, mirror: bool = True) -> list[torch.Tensor]:
    """The flips and rotations of ``y`` [N, C, H, W] other than itself (all seven when square; without the
    left-right mirror image unless ``mirror``)."""
    square = y.shape[-1] == y.shape[-2]
    turns = (1, 2, 3) if square else (2,)
    out = [torch.rot90(y, k, (-2, -1)) for k in turns]
    flipped = torch.flip(y, (-1,))
    out += ([flipped] if mirror else []) + [torch.rot90(flipped, k, (-2, -1)) for k in turns]
    return out


def _stats(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x.mean((-2, -1)), x.std((-2, -1))], 1)


class _OwnDraws:
    """Random draws from a generator of the score's own (never the caller's global RNG)."""

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(int(seed))

    def recoloured(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` [N, C, H, W] with its colours plainly wrong, by ADA's own transforms: each image luma-flipped,
        hue-rotated by 90 to 180 degrees either way, or both (a third each). ADA's milder brightness, contrast and
        saturation draws are left out: a generator's ordinary colour errors lie nearer to them than to the
        clean images, so they would count an imperfect generator as a leaking one."""
        n, g = len(y), self.generator
        kind = torch.randint(3, (n,), generator=g)  # 0: flip, 1: hue, 2: both
        side = torch.randint(2, (n,), generator=g).float() * 2 - 1
        angle = (torch.rand(n, generator=g) * 0.5 + 0.5) * math.pi * side * (kind > 0)
        m = hue_rotation(angle) @ luma_flip((kind != 1).float())
        return recolour(y, m.to(y.device))


class LeakScore(_OwnDraws):
    """Accumulates ``leak_orientation`` and ``leak_colour`` over batches of (input, output, true photo)."""

    def __init__(self, draws: int = 16, seed: int = 0):
        super().__init__(seed)
        self.draws = int(draws)
        self.oriented = self.coloured = self.count = 0

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        out, y = out.float().cpu(), y.float().cpu()
        clean = (out - y).abs().flatten(1).mean(1)
        turned = torch.stack([(out - s).abs().flatten(1).mean(1) for s in _symmetries(y)]).min(0).values
        self.oriented += int((turned < clean).sum())
        stats = _stats(out)
        self.coloured += int((self._recoloured_distance(stats, y) < (stats - _stats(y)).abs().sum(1)).sum())
        self.count += len(out)

    def _recoloured_distance(self, stats: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The nearest of ``draws`` recolourings of each photo to its output's colour statistics ``stats``."""
        distances = [(stats - _stats(self.recoloured(y))).abs().sum(1) for _ in range(self.draws)]
        return torch.stack(distances).min(0).values

    def result(self) -> dict[str, float]:
        n = max(self.count, 1)
        return {"leak_orientation": self.oriented / n, "leak_colour": self.coloured / n}


class DistributionLeakScore(_OwnDraws):
    """Accumulates outputs and real target images over batches of (input, output, real images), without pairing
    them; ``result()`` scores the outputs and held-out reals against the other reals (see the module docstring)."""

    def __init__(self, size: int = 32, seed: int = 0):
        super().__init__(seed)
        self.size = int(size)
        self.outputs: list[torch.Tensor] = []
        self.reals: list[torch.Tensor] = []

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        self.outputs.append(self._small(out))
        if len(y):
            self.reals.append(self._small(y))

    def _small(self, images: torch.Tensor) -> torch.Tensor:
        images = images.detach().float().cpu()
        too_big = max(images.shape[-2:]) > self.size
        return F.interpolate(images, size=(self.size, self.size), mode="area") if too_big else images

    def result(self) -> dict[str, float]:
        reals = torch.cat(self.reals) if self.reals else torch.empty(0)
        if len(reals) < 4 or not self.outputs:
            return {}
        reference, held_out = reals[0::2], reals[1::2]
        # One transform of each reference image: as many changed as clean images, so neither set wins by its size.
        options = torch.stack(_symmetries(reference, mirror=False))
        pick = torch.randint(len(options), (len(reference),), generator=self.generator)
        turned = options[pick, torch.arange(len(reference))]
        recoloured = self.recoloured(reference)
        result = {}
        for name, queries in (("", torch.cat(self.outputs)), ("_real", held_out)):
            result[f"leak_orientation{name}"] = _nearer_share(queries.flatten(1), reference.flatten(1),
                                                              turned.flatten(1))
            result[f"leak_colour{name}"] = _nearer_share(_stats(queries), _stats(reference), _stats(recoloured))
        return result


def _nearer_share(queries: torch.Tensor, clean: torch.Tensor, changed: torch.Tensor) -> float:
    """The share of ``queries`` (rows of features) whose nearest row (L1) is in ``changed`` rather than ``clean``."""
    def nearest(rows: torch.Tensor) -> torch.Tensor:
        return torch.cdist(queries, rows, p=1).min(1).values

    return float((nearest(changed) < nearest(clean)).float().mean())
