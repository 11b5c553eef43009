"""Preprocessing: resize / crop / flip, applied identically to every image of a sample (A and B, and a sample's
label and instance maps, which are resampled nearest-neighbour only)."""

from __future__ import annotations

import typing

import kornia.augmentation as K
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from translate.core.errors import ConfigError, DataError, check_choice
from translate.core.schema import Preprocess
from translate.data.files import to_float

PREPROCESS = typing.get_args(Preprocess)


class PairedTransform:
    """Turns uint8 images [C, H, W] of one sample into float [-1, 1] tensors with the same geometry.

    - ``resize_and_crop``: resize to load_size x load_size, then crop crop_size (the reference default).
    - ``crop``: crop crop_size from the image as it is.
    - ``scale_width``: resize the width to load_size keeping the aspect ratio (no crop).
    - ``scale_width_and_crop``: that, then crop crop_size.
    - ``none``: keep the size.
    Sides are then rounded to a multiple of ``size_multiple`` (the generator's stride) by resizing.
    Training crops are random and images may be flipped; evaluation crops are centred and never flipped.
    Randomness comes from the global torch RNG, which the dataset seeds per sample. The last ``labels`` images of
    a call are index maps ([H, W] integers: classes, instance ids): resized nearest-neighbour, returned as int64.
    """

    def __init__(
        self,
        *,
        preprocess: Preprocess = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        train: bool = True,
        size_multiple: int = 4,
    ):
        try:
            check_choice("data.preprocess", preprocess, PREPROCESS)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if "crop" in preprocess and "resize" in preprocess and crop_size > load_size:
            raise ConfigError(f"data.crop_size={crop_size} is larger than data.load_size={load_size}")
        self.preprocess = preprocess
        self.load_size, self.crop_size = int(load_size), int(crop_size)
        self.flip, self.train = bool(flip), bool(train)
        self.size_multiple = int(size_multiple)
        ops = []
        if preprocess.endswith("crop"):
            size = (self.crop_size, self.crop_size)
            ops.append(K.RandomCrop(size) if train else K.CenterCrop(size))
        if flip and train:
            ops.append(K.RandomHorizontalFlip())
        self._ops = ops

    def _resize(self, image: torch.Tensor, nearest: bool = False) -> torch.Tensor:
        h, w = image.shape[-2:]
        if self.preprocess == "resize_and_crop":
            size = [self.load_size, self.load_size]
        elif self.preprocess.startswith("scale_width"):
            target = self.load_size
            # Never scale below the crop, so the crop always fits.
            new_h = max(round(target * h / w), self.crop_size if self.preprocess.endswith("crop") else 1)
            size = [new_h, target]
        else:
            size = [h, w]
        return _resized(image, size, nearest)

    def _round(self, image: torch.Tensor, nearest: bool = False) -> torch.Tensor:
        m = self.size_multiple
        h, w = image.shape[-2:]
        return _resized(image, [max(m, round(h / m) * m), max(m, round(w / m) * m)], nearest)

    def __call__(self, *images: torch.Tensor, labels: int = 0) -> list[torch.Tensor]:
        n = len(images) - labels
        out = [self._resize(to_float(im)).clamp_(-1, 1) for im in images[:n]]
        out += [self._resize(im.reshape(1, *im.shape[-2:]).float(), nearest=True) for im in images[n:]]
        if self.preprocess == "crop" or self.preprocess.endswith("crop"):
            for im, src in zip(out, images):
                if min(im.shape[-2:]) < self.crop_size:
                    raise DataError(
                        f"size {tuple(src.shape[-2:])} is smaller than data.crop_size={self.crop_size}"
                    )
        if self._ops:
            if len({tuple(im.shape[-2:]) for im in out}) > 1:
                raise DataError(f"paired images differ in size: {[tuple(im.shape[-2:]) for im in out]}")
            for op in self._ops:
                # One draw of parameters for the whole sample: the same crop/flip for A and B.
                params = op.forward_parameters(out[0].unsqueeze(0).shape)
                out = [op(im.unsqueeze(0), params=params).squeeze(0) for im in out]
        out = [self._round(im, nearest=i >= n) for i, im in enumerate(out)]
        return [*out[:n], *(im[0].round().long() for im in out[n:])]


def _resized(image: torch.Tensor, size: list[int], nearest: bool) -> torch.Tensor:
    """``image`` at ``size``: bicubic (antialiased) for pictures, nearest-neighbour for index maps."""
    if list(size) == list(image.shape[-2:]):
        return image
    if nearest:
        return TF.resize(image, size, interpolation=InterpolationMode.NEAREST_EXACT, antialias=False)
    return TF.resize(image, size, interpolation=InterpolationMode.BICUBIC, antialias=True)
