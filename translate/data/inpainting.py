"""Inpainting inputs: what a model trained with ``data.corruptions=[mask]`` takes, at training and inference.

Such a model reads the image with its holes filled grey plus the hole mask as one more channel (+1 = hole,
-1 = kept). ``infer.py`` builds that input from each image and its mask: a file of the same name in
``mask=DIR`` (white = hole, any image format), or else the image's own transparency (pixels under half
opacity are holes: erase what is to be filled in any paint program). The output keeps every pixel outside
the holes as it was (``composited``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from translate.core.errors import DataError
from translate.data.files import IMAGE_EXTENSIONS
from translate.data.images import Picture, read_picture


def inpainting_input(x: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """``x`` [C, H, W] in [-1, 1] with its ``holes`` [1, H, W] (1 = hole) filled grey, and the mask appended
    as the last channel in [-1, 1]."""
    return torch.cat([x * (1 - holes), holes * 2 - 1])


def remasked(x: torch.Tensor) -> torch.Tensor:
    """An inpainting input [..., C + 1, H, W] after resampling, its mask channel back to exactly -1 / +1."""
    x[..., -1, :, :] = torch.where(x[..., -1, :, :] > 0, 1.0, -1.0)
    return x


def composited(output: torch.Tensor, model_input: torch.Tensor) -> torch.Tensor:
    """The model's ``output`` inside the holes, the input's pixels elsewhere (``model_input`` as
    ``inpainting_input`` made it, at the output's size)."""
    holes = model_input[-1:] > 0
    return torch.where(holes, output, model_input[: output.shape[0]])


def mask_file(folder: Path, rel: Path) -> Path | None:
    """The mask for the input at ``rel`` (relative path): ``folder/rel`` with any image suffix."""
    stem = folder / rel.with_suffix("")
    for suffix in sorted(IMAGE_EXTENSIONS):
        for candidate in (stem.with_name(stem.name + suffix), stem.with_name(stem.name + suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def hole_mask(picture: Picture, source: Path, mask: Path | None) -> tuple[torch.Tensor, bool]:
    """The holes [1, H, W] (1 = hole) of the image read from ``source``: ``mask``'s white pixels, else its
    transparent ones. The flag says whether the transparency was used (the output is then opaque)."""
    if mask is not None:
        drawn = read_picture(mask)
        plane = drawn.pixels.float().mean(0, keepdim=True) / (65535.0 if drawn.bits == 16 else 255.0)
        if tuple(plane.shape[-2:]) != picture.size:
            raise DataError(f"{mask}: the mask is {plane.shape[-1]}x{plane.shape[-2]}, its image {source} is "
                            f"{picture.size[1]}x{picture.size[0]}")
        return (plane > 0.5).float(), False
    if picture.alpha is None:
        raise DataError(f"{source}: this inpainting model needs the holes: give mask=DIR (white = hole, the "
                        "image's name) or make the holes transparent")
    alpha = picture.alpha.float() / (65535.0 if picture.alpha.dtype == torch.uint16 else 255.0)
    return (alpha < 0.5).float(), True
