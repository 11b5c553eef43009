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
