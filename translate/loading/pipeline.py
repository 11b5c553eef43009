"""``translate.load``: one object that converts images, from a model folder, a run, a checkpoint, reference weights
or a pretrained name.

    import translate
    pipe = translate.load("models/sketch2photo")     # a model folder (python -m translate.inference.export ... format=folder)
    photo = pipe(Image.open("sketch.png"))           # PIL in, PIL out, at the image's own size
    photos = pipe([a, b], seed=3, truncation=0.7)    # a list; a style code drawn from the seed (model=bicycle)
    y = pipe.tensors(x)                              # [N, C, H, W] in [-1, 1]

A model folder loads without the training stack (no Hydra, no discriminator, loss, model family or training
module: ``translate.loading.folder``); runs, checkpoints and reference weights load as
``translate.loading.generator.load_generator`` does, through the config stored in them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from translate.core.errors import ConfigError
from translate.loading.folder import FolderSpec, is_model_folder, load_model_folder, spec_of
from translate.networks.layers import pad_to_stride


class Pipeline:
    """One generator and what it needs to convert an image: its channels, stride and style-code size."""

    def __init__(self, G: nn.Module, spec: FolderSpec):
        self.module, self.spec = G.eval(), spec

    def __repr__(self) -> str:
        return f"Pipeline({self.spec.network.rsplit('.', 1)[-1]}, {self.spec.direction}, {self.spec.size} px)"

    def __call__(self, images: Image.Image | Sequence[Image.Image], *, seed: int | None = None,
                 truncation: float = 1.0) -> Image.Image | list[Image.Image]:
        """The translation of a PIL image (or of each of a list), at its own size. With a style code
        (``spec.nz``): the mean style, or the code drawn from ``seed``, pulled towards the mean by ``truncation``."""
        single = isinstance(images, Image.Image)
        outputs = [self._one(image, seed, truncation) for image in ([images] if single else images)]
        return outputs[0] if single else outputs

    def _one(self, image: Image.Image, seed: int | None, truncation: float) -> Image.Image:
        x = image_to_tensor(image, self.spec.in_channels)[None]
        return tensor_to_image(self.tensors(x, seed=seed, truncation=truncation)[0])

    @torch.no_grad()
    def tensors(self, x: torch.Tensor, *, seed: int | None = None, truncation: float = 1.0) -> torch.Tensor:
        """Translate a batch [N, C, H, W] in [-1, 1] (padded to the generator's stride and cropped back)."""
        if self.spec.source not in ("A", "B"):
            raise ConfigError("this model generates from noise: use python -m translate.latent.generate")
        padded, h, w = pad_to_stride(x, self.spec.stride)
        if self.spec.nz:
            z = None if seed is None else style_code(seed, self.spec.nz, len(x))
            y = self.module(padded, z, truncation=truncation)
        else:
            y = self.module(padded)
        return y[..., :h, :w].clamp(-1, 1)


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


def load(source: str | Path, *, direction: str | None = None, weights: str = "auto", **architecture) -> Pipeline:
    """A ``Pipeline`` from a model folder, a run folder or ``.pt`` checkpoint, reference weights (name the
    architecture: ``generator="resnet_9blocks", norm="instance"``) or ``pretrained:NAME``."""
    if is_model_folder(source):
        return Pipeline(*load_model_folder(source))
    from translate.loading.generator import load_translation  # runs and reference weights need the config machinery

    loaded = load_translation(source, direction=direction, weights=weights, **architecture)
    return Pipeline(loaded.module, spec_of_loaded(loaded))


def spec_of_loaded(loaded) -> FolderSpec:
    """The folder spec of a generator ``translate.loading.generator`` loaded (its direction, training size)."""
    t = loaded.translation
    size = int(loaded.config.data.crop_size) if loaded.config is not None else 256
    direction = f"{t.source}to{t.target}" if t.source in ("A", "B") else "noise"
    return spec_of(loaded.module, direction=direction, source=t.source, target=t.target, size=size)
