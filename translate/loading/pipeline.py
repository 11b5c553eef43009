"""``Pipeline``: what ``translate.load`` gives, one object that converts images, from a model folder, a run, a
checkpoint, reference weights or a pretrained name.

    import translate
    pipe = translate.load("models/sketch2photo")     # a model folder (translate export ... format=folder)
    photo = pipe(Image.open("sketch.png"))           # PIL in, PIL out, at the image's own size
    photos = pipe([a, b], seed=3, truncation=0.7)    # a list; a style code drawn from the seed (model=bicycle)
    y = pipe.tensors(x)                              # [N, C, H, W] in [-1, 1]

A model folder loads without the training stack (no Hydra, no discriminator, loss, model family or training
module: ``translate.loading.folder``); runs, checkpoints and reference weights load through the config stored in
them (``translate.loading.generator``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import nn

from translate.core.errors import ConfigError
from translate.loading.folder import load_model_folder
from translate.networks.layers import generator_channels, generator_stride, pad_to_stride

if TYPE_CHECKING:  # annotations only: neither is imported when a model folder loads
    from omegaconf import DictConfig

    from translate.loading.pretrained import Pretrained
    from translate.models.base import Translation


class Sides(NamedTuple):
    """Which batch key a generator reads and which it writes: the fields of ``translate.models.base.Translation``,
    without importing the model families (a model folder loads without them)."""

    generator: str
    source: str
    target: str


@dataclass(eq=False)
class Pipeline:
    """A generator ready for inference (eval mode) and what converting with it needs: the translation it performs
    and, for our runs, the training config and the model's style encoder (``model=bicycle``'s E, for reference
    styles); for a pretrained name, what the reference model is. ``translate.load`` gives one, and every command
    (``infer.py``, the page, ``generate``, ``evaluate``, ``export``) works on one."""

    module: nn.Module
    translation: Translation | Sides
    config: DictConfig | None = None
    style_encoder: nn.Module | None = None
    pretrained: Pretrained | None = None
    trained_size: int | None = None  # the side a model folder was trained at (runs: their config's crop size)
    name: str = ""  # how people name it: the run's name, the pretrained name, the folder's or file's (source_name)

    def __post_init__(self):
        self.module.eval()

    def __repr__(self) -> str:
        return f"Pipeline({type(self.module).__name__}, {self.direction}, {self.size} px)"

    @property
    def direction(self) -> str:
        """``AtoB`` or ``BtoA`` (``zto...`` for a generator from noise): the translation's sides."""
        return f"{self.translation.source}to{self.translation.target}"

    @property
    def norm_mode(self) -> str:
        """How to run the generator when nobody says: as the reference test script runs a pretrained model
        (pix2pix's U-Net in train mode), else with running statistics (eval)."""
        return self.pretrained.norm_mode if self.pretrained is not None else "eval"

    @property
    def size(self) -> int:
        """The side the generator was trained at (256 when nothing says)."""
        if self.config is not None:
            return int(self.config.data.get("crop_size") or self.config.data.get("size") or 256)
        return int(self.trained_size or 256)

    @property
    def family(self) -> str:
        """The model family that trained it (``Pix2Pix``, ``CycleGAN``, ``BicycleGAN`` ...), or what the weights
        are (``reference weights``, a model folder's generator class)."""
        if self.config is not None:
            return str(self.config.model.get("_target_", "model")).rsplit(".", 1)[-1]
        if self.pretrained is not None:
            return self.pretrained.architecture
        return type(self.module).__name__

    @property
    def nz(self) -> int:
        """The size of the style code the generator takes (0: none)."""
        return int(getattr(self.module, "nz", 0) or 0)

    def __call__(self, images: Image.Image | Sequence[Image.Image], *, seed: int | None = None,
                 truncation: float = 1.0) -> Image.Image | list[Image.Image]:
        """The translation of a PIL image (or of each of a list), at its own size. With a style code
        (``nz``): the mean style, or the code drawn from ``seed``, pulled towards the mean by ``truncation``."""
        single = isinstance(images, Image.Image)
        outputs = [self._one(image, seed, truncation) for image in ([images] if single else images)]
        return outputs[0] if single else outputs

    def _one(self, image: Image.Image, seed: int | None, truncation: float) -> Image.Image:
        x = image_to_tensor(image, generator_channels(self.module)[0])[None]
        return tensor_to_image(self.tensors(x, seed=seed, truncation=truncation)[0])

    @torch.no_grad()
    def tensors(self, x: torch.Tensor, *, seed: int | None = None, truncation: float = 1.0) -> torch.Tensor:
        """Translate a batch [N, C, H, W] in [-1, 1] (padded to the generator's stride and cropped back)."""
        if self.translation.source not in ("A", "B"):
            raise ConfigError("this model generates from noise: use translate generate")
        padded, h, w = pad_to_stride(x, generator_stride(self.module))
        if self.nz:
            z = None if seed is None else style_code(seed, self.nz, len(x))
            y = self.module(padded, z, truncation=truncation)
        else:
            y = self.module(padded)
        return y[..., :h, :w].clamp(-1, 1)


def from_model_folder(path: str | Path, direction: str | None = None) -> Pipeline:
    """A model folder (``translate.loading.folder``): the generator and the one translation it was saved for."""
    G, spec = load_model_folder(path)
    if direction not in (None, spec.direction):
        raise ConfigError(f"{path}: this model folder holds the {spec.direction} generator; direction={direction} "
                          "is not available (export the other direction into its own folder)")
    return Pipeline(G, Sides("G", spec.source, spec.target), trained_size=spec.size)


RUN_TIME = re.compile(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}")  # runs/<name>/<date_time>


def source_name(source: str | Path) -> str:
    """How people name what was loaded from ``source``: a pretrained model's name; a run's name (the experiment
    or ``<model>_<data>`` of ``runs/<name>/<date_time>``, for the run folder or a checkpoint in it); else the
    folder's or file's own name."""
    text = str(source)
    if text.startswith("pretrained:"):
        return text.removeprefix("pretrained:")
    path = Path(text)
    run = path.parent.parent if path.parent.name == "checkpoints" else path
    if RUN_TIME.fullmatch(run.name) and run.parent.name not in ("", "."):
        return run.parent.name
    return run.stem if run.is_file() or run.suffix in (".pt", ".pth", ".safetensors") else run.name


def run_folder(source: str | Path) -> Path | None:
    """The run folder of a run (``runs/<name>/<date_time>``) or of a checkpoint in its ``checkpoints/``; None for
    anything else (reference weights, a model folder, a pretrained name)."""
    if str(source).startswith("pretrained:"):
        return None
    path = Path(source)
    run = path.parent.parent if path.parent.name == "checkpoints" else path
    return run if (run / "checkpoints").is_dir() else None


def results_folder(source: str | Path, command: str) -> Path:
    """Where ``command`` (evaluate, export) writes what it finds out about a model, by one rule: inside the run's
    folder (``<run>/<command>``) for our runs, else ``runs/<command>/<name>`` (``source_name``)."""
    run = run_folder(source)
    return run / command if run is not None else Path("runs") / command / source_name(source)


def style_code(seed: int, nz: int, n: int) -> torch.Tensor:
    """``n`` copies of the standard normal code ``seed`` draws (its own generator: the global RNG is untouched)."""
    return torch.randn(1, nz, generator=torch.Generator().manual_seed(int(seed))).expand(n, -1)


def image_to_tensor(image: Image.Image, channels: int) -> torch.Tensor:
    """A PIL image as [C, H, W] in [-1, 1] with the generator's channels (transparency laid on white)."""
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 127.5 - 1
    return torch.from_numpy(pixels).reshape(*pixels.shape[:2], -1).permute(2, 0, 1).contiguous()


def tensor_to_image(x: torch.Tensor) -> Image.Image:
    """[C, H, W] in [-1, 1] as an 8-bit PIL image (gray or RGB)."""
    pixels = ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
