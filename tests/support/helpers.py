"""Helpers the tests import: random images, the overrides of a seconds-long CPU run, a run killed mid-step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, size: tuple[int, int] = (40, 36), seed: int = 0, mode: str = "RGB") -> Path:
    """A random image of (width, height)."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1}[mode]
    data = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.squeeze(-1) if channels == 1 else data, mode).save(path)
    return path


TINY = [
    "debug=fast",
    "logger=none",
    "trainer.progress_bar=false",
    "data.load_size=36",
    "data.crop_size=32",
]


def tiny_overrides(*extra: str) -> list[str]:
    """Overrides for a seconds-long CPU run: tiny networks and 32x32 crops."""
    return [*TINY, *extra]


def fit_killed_at_step(cfg, step: int) -> None:
    """Run ``fit(cfg)`` as if the process were killed during training step ``step`` (1-based): what the last
    checkpoint before it holds is all that survives."""
    from translate.training.loop import Trainer, fit

    original, calls = Trainer.train_step, []

    def crash(self, batch):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return original(self, batch)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "train_step", crash)
        with pytest.raises(KeyboardInterrupt):
            fit(cfg)


# ----------------------------------------------------------------------------------------------- HTTP


def label_dataset(root: Path, layout: str = "folders", *, n: int = 2, size: tuple[int, int] = (48, 40),
                  label_nc: int = 4, dont_care: int | None = None) -> Path:
    """A tiny label map -> photo dataset in ``layout`` (folders, cityscapes, ade20k): train and val, each map of
    ``label_nc`` classes in vertical stripes (and ``dont_care`` in a corner), a photo coloured by class, an
    instance map splitting each stripe in two."""
    w, h = size
    classes = (np.arange(w)[None, :].repeat(h, 0) * label_nc // w).astype(np.uint8)
    if dont_care is not None:
        classes[:4, :4] = dont_care
    instances = (classes.astype(np.int32) * 1000 + (np.arange(h)[:, None] >= h // 2)).astype(np.uint16)
    for split in ("train", "val"):
        for i in range(n):
            name = f"{split}{i}"
            c = classes.astype(np.int32)
            shade = 128 if split == "train" else 90  # no photo is in both splits
            photo = np.stack([(c * 60 + 10 * i) % 256, (255 - c * 50) % 256, np.full_like(c, shade)], -1)
            label_value = classes + 1 if layout == "ade20k" else classes  # ade20k: 0 is "other"
            if layout == "folders":
                paths = (root / split / "label" / f"{name}.png", root / split / "image" / f"{name}.png",
                         root / split / "instance" / f"{name}.png")
            elif layout == "cityscapes":
                city = root / "gtFine" / split / "aachen"
                paths = (city / f"{name}_gtFine_labelIds.png", root / "leftImg8bit" / split / "aachen" /
                         f"{name}_leftImg8bit.png", city / f"{name}_gtFine_instanceIds.png")
            else:
                ade = {"train": "training", "val": "validation"}[split]
                paths = (root / "annotations" / ade / f"{name}.png", root / "images" / ade / f"{name}.jpg", None)
            for path in paths:
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(label_value.astype(np.uint8), "L").save(paths[0])
            Image.fromarray(photo.astype(np.uint8)).save(paths[1], quality=95)
            if paths[2] is not None:
                Image.fromarray(instances).save(paths[2])
    return root
