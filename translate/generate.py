"""Images from a trained noise generator: ``python -m translate.generate checkpoint=RUN n=64 seed=0 output=DIR``.

Writes ``seed<S>_<i>.png`` for the n latents of the seed and ``grid.png``; ``mix=K`` also a K x K style-mixing
grid (``mix.png``), ``interpolate=F`` a latent walk of F frames per segment (``interpolate.gif``);
``truncation=0.7`` (or one value per level), ``noise=fixed|random|none`` and ``edit.NAME=+1.5`` (axes from
``python -m translate.axes``, in standard deviations of the latent along the axis) shape them. Files are written
atomically and existing images are skipped unless ``overwrite=true`` (the same seed gives the same images), so
an interrupted command resumes. Bad input is one line and exit code 2.
"""

from __future__ import annotations

import io
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torchvision.utils import make_grid

from translate.data.io import save_image, to_uint8
from translate.errors import ConfigError
from translate.fsutil import atomic_write_bytes, make_folder
from translate.generator_io import load_translation
from translate.models.gan import LATENT
from translate.networks.autoencoder import Decoder
from translate.runtime import resolve_device
from translate.sampling import LatentEdit, Sampler, per_level


@dataclass
class GenerateSummary:
    written: int = 0
    skipped: int = 0
    extras: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 0

    def __str__(self) -> str:
        rate = self.written / self.seconds if self.seconds > 0 else 0.0
        extra = f"; also {', '.join(self.extras)}" if self.extras else ""
        return (f"generated {self.written}, skipped {self.skipped} existing ({self.seconds:.1f} s, "
                f"{rate:.1f} images/s){extra}")


def load_noise_generator(checkpoint: str | Path, weights: str = "auto"):
    """The generator of a ``model=gan`` checkpoint (G_ema when kept), a ``model=vae``'s decoder (codes drawn
    from its prior, N(0, I)), or a ConfigError for any other model."""
    loaded = load_translation(checkpoint, weights=weights)
    if getattr(loaded.module, "variational", False):
        return Decoder(loaded.module).eval()
    if loaded.translation.source != LATENT:
        raise ConfigError(f"{checkpoint}: this model translates images ({loaded.translation.source} -> "
                          f"{loaded.translation.target}); use infer.py for it")
    return loaded.module


def save_grid(images: torch.Tensor, path: Path, columns: int) -> Path:
    return save_image(make_grid(images.cpu(), nrow=columns, padding=2, pad_value=1.0), path)


def save_animation(frames: list[torch.Tensor], path: Path, *, frame_ms: int = 60) -> Path:
    """An endlessly looping GIF of frames (each a batch shown side by side), written atomically."""
    pictures = [Image.fromarray(to_uint8(make_grid(f.cpu(), nrow=len(f), padding=0)).permute(1, 2, 0).numpy())
                for f in frames]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0)
    return atomic_write_bytes(path, buffer.getvalue())


def write_images(sampler: Sampler, n: int, output: Path, *, batch_size: int, overwrite: bool,
                 summary: GenerateSummary) -> torch.Tensor:
    """The n images of the sampler's seed, one file each (existing ones skipped unless ``overwrite``);
    returns all n images for the grid."""
    z = sampler.latents(n)
    images = []
    for start in range(0, n, batch_size):
        batch = sampler.images(z[start : start + batch_size])
        for i, image in enumerate(batch, start):
            path = output / f"seed{sampler.seed}_{i:05d}.png"
            if path.exists() and not overwrite:
                summary.skipped += 1
            else:
                save_image(image, path)
                summary.written += 1
        images.append(batch)
    return torch.cat(images)


def edits_from_config(edit: dict[str, Any] | None, checkpoint: str | Path, G) -> list[LatentEdit]:
    """``edit.NAME=k`` -> latent edits along the axes saved beside the checkpoint (``translate.axes``)."""
    if not edit:
        return []
    from translate.axes import load_axes

    axes = load_axes(checkpoint)
    return axes.edits({str(k): v for k, v in edit.items()}, G)


def run(cfg) -> GenerateSummary:
    """The ``python -m translate.generate`` app."""
    if cfg.n < 1 or cfg.batch_size < 1:
        raise ConfigError(f"n={cfg.n}, batch_size={cfg.batch_size}: both must be >= 1")
    G = load_noise_generator(cfg.checkpoint, cfg.weights)
    sampler = Sampler(G, truncation=per_level(cfg.truncation), noise=cfg.noise, seed=int(cfg.seed),
                      edits=edits_from_config(cfg.get("edit"), cfg.checkpoint, G),
                      device=resolve_device(cfg.device, "device"))
    if cfg.mix < 0 or cfg.interpolate < 0:
        raise ConfigError(f"mix={cfg.mix}, interpolate={cfg.interpolate}: counts, >= 0")
    if cfg.mix:
        sampler.check_mixing(int(cfg.mix_level))  # before anything is written
    output = make_folder(cfg.output)
    summary, start = GenerateSummary(), time.perf_counter()
    images = write_images(sampler, int(cfg.n), output, batch_size=int(cfg.batch_size), overwrite=cfg.overwrite,
                          summary=summary)
    columns = int(cfg.columns or math.ceil(len(images) ** 0.5))
    summary.extras.append(str(save_grid(images, output / "grid.png", columns)))
    if cfg.mix:
        rows, cols = sampler.latents(cfg.mix, seed=cfg.seed + 1), sampler.latents(cfg.mix, seed=cfg.seed + 2)
        grid = sampler.mixing_grid(rows, cols, int(cfg.mix_level))
        summary.extras.append(str(save_grid(grid, output / "mix.png", cfg.mix + 1)))
    if cfg.interpolate:
        walks = min(int(cfg.n), 8)
        keys = sampler.latents(walks * 4, seed=cfg.seed + 3).reshape(walks, 4, -1)
        frames = sampler.walk(keys, int(cfg.interpolate))
        summary.extras.append(str(save_animation(frames, output / "interpolate.gif")))
    summary.seconds = time.perf_counter() - start
    print(summary, file=sys.stderr)
    return summary


if __name__ == "__main__":
    import hydra

    from translate.config import CONF_DIR, run_cli

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="generate")
    def main(cfg) -> None:
        sys.exit(run_cli(run, cfg).exit_code)

    # edit.NAME=k names axes the config cannot list in advance: add them as Hydra's +key=value does.
    sys.argv = [f"+{a}" if a.startswith("edit.") else a for a in sys.argv]
    main()
