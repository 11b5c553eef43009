"""Images from a trained noise generator: ``translate generate checkpoint=RUN n=64 seed=0 output=DIR``.

Writes ``seed<S>_<i>.png`` for the n latents of the seed and ``grid.png`` (the first 64); ``mix=K`` also a K x K
style-mixing grid (``mix.png``), ``interpolate=F`` a latent walk of F frames per segment (``interpolate.gif``);
``truncation=0.7`` (or one value per level, each between -2 and 2), ``noise=fixed|random|none`` and
``edit.NAME=+1.5`` (axes from ``translate axes``, in standard deviations of the latent along the axis)
shape them. Images are made and written ``batch_size`` at a time, so memory stays flat however large n is. Files
are written atomically and existing images are skipped unless ``overwrite=true`` (the same seed gives the same
images, in any batch size), so an interrupted command resumes. Bad input is one line and exit code 2.
"""

from __future__ import annotations

import io
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import torch
from omegaconf import ListConfig
from PIL import Image
from torchvision.utils import make_grid

from translate.config.compose import exit_with_code, hydra_command
from translate.core.atomic import atomic_write_bytes, make_folder
from translate.core.errors import ConfigError
from translate.core.runtime import resolve_device
from translate.core.schema import Count, Positive, Range, check_dataclass, check_value
from translate.data.files import save_image, to_uint8
from translate.latent.axes import load_axes
from translate.latent.sampling import LatentEdit, Sampler, per_level
from translate.loading.load import load
from translate.models.gan import LATENT
from translate.networks.autoencoder import Decoder

GRID_IMAGES = 64  # grid.png shows the first 64 images (8 x 8), however many are generated
LATENT_BLOCK = 16  # latents are drawn 16 rows at a time: the same values as one draw of all n, in any batch size
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes up to 2**64 - 1; seed + 1 .. + 3 are used too
# psi: 1 untruncated, 0 the average image, below 0 its opposite; NaN or a huge psi would make black images.
Psi = Annotated[float, Range(-2, 2)]


@dataclass
class GenerateSettings:
    """The numbers of ``conf/generate.yaml``: each type and range checked before any work."""

    n: Positive = 64
    seed: Count = 0
    batch_size: Positive = 64
    mix: Count = 0
    mix_level: Count = 2
    interpolate: Count = 0
    columns: Positive | None = None


def check_settings(cfg) -> None:
    """A one-line ConfigError naming the first setting of the wrong type or out of range."""
    check_dataclass(cfg, GenerateSettings, "")
    if cfg.seed > MAX_SEED:
        raise ConfigError(f"seed={cfg.seed} is out of range: expected an integer from 0 to 2**63 - 1")


def truncation_of(value: Any):
    """``truncation`` from the config (a number, or one per level), each value a finite number in [-2, 2]."""
    if isinstance(value, (list, tuple, ListConfig)):
        for i, v in enumerate(value):
            check_value(f"truncation[{i}]", v, Psi)
    else:
        check_value("truncation", value, Psi)
    return per_level(value)


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
    loaded = load(checkpoint, weights=weights)
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


def latent_batches(n: int, z_dim: int, seed: int, batch_size: int) -> Iterator[torch.Tensor]:
    """The ``n`` latents of ``seed`` (``fixed_latents(n, z_dim, seed)``), ``batch_size`` rows at a time, never
    more than ``batch_size + LATENT_BLOCK`` rows held."""
    generator = torch.Generator().manual_seed(int(seed))
    pending = torch.empty(0, z_dim)
    for start in range(0, n, LATENT_BLOCK):
        pending = torch.cat([pending, torch.randn(min(LATENT_BLOCK, n - start), z_dim, generator=generator)])
        while len(pending) >= batch_size:
            yield pending[:batch_size]
            pending = pending[batch_size:]
    if len(pending):
        yield pending


def write_images(sampler: Sampler, n: int, output: Path, *, batch_size: int, overwrite: bool,
                 summary: GenerateSummary) -> torch.Tensor:
    """The n images of the sampler's seed, one file each (existing ones skipped unless ``overwrite``), made and
    written a batch at a time; returns the first ``GRID_IMAGES`` for the grid. A batch whose files all exist is
    only made again when the grid shows it."""
    shown = []
    for start, z in zip(range(0, n, batch_size), latent_batches(n, sampler.z_dim, sampler.seed, batch_size)):
        paths = [output / f"seed{sampler.seed}_{i:05d}.png" for i in range(start, start + len(z))]
        todo = [overwrite or not path.exists() for path in paths]
        summary.skipped += todo.count(False)
        if not any(todo) and start >= GRID_IMAGES:
            continue
        batch = sampler.images(z)
        for image, path in ((image, path) for image, path, due in zip(batch, paths, todo) if due):
            save_image(image, path)
            summary.written += 1
        shown.append(batch[: max(0, GRID_IMAGES - start)].cpu())
    return torch.cat(shown)


def edits_from_config(edit: dict[str, Any] | None, checkpoint: str | Path, G) -> list[LatentEdit]:
    """``edit.NAME=k`` -> latent edits along the axes saved beside the checkpoint (``translate.latent.axes``)."""
    if not edit:
        return []

    axes = load_axes(checkpoint)
    return axes.edits({str(k): v for k, v in edit.items()}, G)


def run(cfg) -> GenerateSummary:
    """The ``translate generate`` app."""
    check_settings(cfg)
    truncation = truncation_of(cfg.truncation)
    G = load_noise_generator(cfg.checkpoint, cfg.weights)
    sampler = Sampler(G, truncation=truncation, noise=cfg.noise, seed=int(cfg.seed),
                      edits=edits_from_config(cfg.get("edit"), cfg.checkpoint, G),
                      device=resolve_device(cfg.device, "device"))
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
    print(f"{summary}\n  output: {output.resolve()}", file=sys.stderr)
    return summary


def main() -> None:
    """``translate generate``: Hydra reads the ``key=value`` overrides from ``sys.argv``."""
    hydra_command("generate", run, exit_with_code)


if __name__ == "__main__":  # python -m translate.latent.generate is translate generate
    from translate.apps.cli import main as translate_command

    sys.exit(translate_command(["generate", *sys.argv[1:]]))
