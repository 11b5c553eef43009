"""Figures of a face-demo GAN run for the docs.

    python examples/faces_figures.py RUN PREFIX [AXIS ...]

Writes PREFIX_truncation.png (rows: psi = 1, 0.7, 0.4, 0; the same 8 latents in every row; psi 0 is the
average face) and, when the run has axes (translate axes), PREFIX_edits.png: one row per AXIS, the
same latent moved -2, -1, 0, +1, +2 standard deviations along it.
"""

from __future__ import annotations

import sys

import torch
from torchvision.utils import make_grid

from translate.data.files import save_image
from translate.latent.axes import load_axes
from translate.latent.generate import load_noise_generator
from translate.latent.sampling import Sampler

TRUNCATIONS = (1.0, 0.7, 0.4, 0.0)
STEPS = (-2, -1, 0, 1, 2)


def main(run: str, prefix: str, axes: list[str]) -> None:
    G = load_noise_generator(run)
    z = Sampler(G).latents(8, seed=3)
    rows = [Sampler(G, truncation=psi, noise="fixed").images(z) for psi in TRUNCATIONS]
    save_image(make_grid(torch.cat(rows), nrow=8, padding=2, pad_value=1.0), f"{prefix}_truncation.png")
    if axes:
        saved, tiles = load_axes(run), []
        start = Sampler(G).latents(1, seed=4)
        for name in axes:
            for k in STEPS:
                tiles.append(Sampler(G, noise="fixed", edits=saved.edits({name: k}, G)).images(start))
        save_image(make_grid(torch.cat(tiles), nrow=len(STEPS), padding=2, pad_value=1.0), f"{prefix}_edits.png")
    print(f"wrote {prefix}_truncation.png" + (f" and {prefix}_edits.png" if axes else ""))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
