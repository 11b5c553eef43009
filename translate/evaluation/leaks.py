"""Do augmentations leak into what a generator makes? (``translate evaluate metrics.leaks=true``, paired data.)

A discriminator shown flipped, rotated or recoloured reals could teach its generator that such images are real;
the generator's outputs would then come out rotated or recoloured. With the true photo of each output at hand
this is measured directly:

- ``leak_orientation``: the share of outputs nearer (L1) to a flipped or rotated copy of their true photo (the
  seven other symmetries of the square; flips and the half turn for other shapes) than to the photo as it is;
- ``leak_colour``: the share of outputs whose colour statistics (per-channel mean and spread) are nearer to one
  of ``draws`` recolourings of their true photo by ADA's colour transforms than to the photo itself.

Both have a chance level above 0 (a blurry output can be as near to a flipped photo; a mild random recolouring
can land nearer than the photo): compare a run against the same measure of one trained without augmentation.
"""

from __future__ import annotations

import torch

from translate.models.augment import colour_matrix, recolour


def _symmetries(y: torch.Tensor) -> list[torch.Tensor]:
    """The flips and rotations of ``y`` [N, C, H, W] other than itself (all seven when square)."""
    square = y.shape[-1] == y.shape[-2]
    turns = (1, 2, 3) if square else (2,)
    out = [torch.rot90(y, k, (-2, -1)) for k in turns]
    flipped = torch.flip(y, (-1,))
    out += [flipped] + [torch.rot90(flipped, k, (-2, -1)) for k in turns]
    return out


def _stats(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x.mean((-2, -1)), x.std((-2, -1))], 1)


class LeakScore:
    """Accumulates ``leak_orientation`` and ``leak_colour`` over batches of (input, output, true photo)."""

    def __init__(self, draws: int = 16, seed: int = 0):
        self.draws = int(draws)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.oriented = self.coloured = self.count = 0

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        out, y = out.float().cpu(), y.float().cpu()
        clean = (out - y).abs().flatten(1).mean(1)
        turned = torch.stack([(out - s).abs().flatten(1).mean(1) for s in _symmetries(y)]).min(0).values
        self.oriented += int((turned < clean).sum())
        self.coloured += int((self._recoloured_distance(out, y) < (_stats(out) - _stats(y)).abs().sum(1)).sum())
        self.count += len(out)

    def _recoloured_distance(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The nearest of ``draws`` ADA recolourings of each photo to its output, in colour statistics."""
        state = torch.random.get_rng_state()
        torch.random.set_rng_state(self.generator.get_state())  # its own draws: never the caller's RNG
        try:
            distances = [(_stats(out) - _stats(recolour(y, colour_matrix(y, 1.0)))).abs().sum(1)
                         for _ in range(self.draws)]
            self.generator.set_state(torch.random.get_rng_state())
        finally:
            torch.random.set_rng_state(state)
        return torch.stack(distances).min(0).values

    def result(self) -> dict[str, float]:
        n = max(self.count, 1)
        return {"leak_orientation": self.oriented / n, "leak_colour": self.coloured / n}
