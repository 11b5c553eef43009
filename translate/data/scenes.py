"""The semantic demo (no download): procedural street scenes as label maps, instance maps and their "photos".

Seven classes (``PALETTE``): sky, grass, road, building, tree, water, car. A scene has a horizon, a road across
the ground, sometimes a pond, buildings standing on the horizon, trees on the grass and cars on the road;
buildings, trees and cars are instances (their ids in the instance map). The photo paints each class with its
own texture (a sky gradient, grass and road noise, window grids on buildings, leafy crowns, ripples on water,
car bodies with windows and wheels) under light from the left, so the class -> appearance mapping is learnable
from the map alone and the truth of every held-out map is known. Building and car colours are drawn per scene
from a few: what a map does not say, a style can.

Rendered at twice the size and averaged down (the label map takes one sample of each 2 x 2 block), written once
into ``root/{train,val}/{label,image,instance}`` with ``palette.txt`` (the ``data=labels`` layout).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from translate.core.errors import ConfigError
from translate.data.demo import (
    FORMAT,
    Count,
    Seed,
    Side,
    _downsample,
    _root,
    _to_pil,
    _write_atomically,
    renders_into_root,
)
from translate.data.labels import PALETTES
from translate.data.semantic import LabelData

SKY, GRASS, ROAD, BUILDING, TREE, WATER, CAR = range(7)
PALETTE = PALETTES["street_scenes"]
WALLS = np.array([[0.62, 0.32, 0.26], [0.72, 0.71, 0.68], [0.82, 0.72, 0.5]], np.float32)  # brick, concrete, sand
CARS = np.array([[0.8, 0.12, 0.1], [0.1, 0.25, 0.75], [0.9, 0.85, 0.2], [0.95, 0.95, 0.95]], np.float32)


class Scene:
    """One scene at ``size`` px: label and instance maps and the float RGB photo in [0, 1]."""

    def __init__(self, seed: int, size: int):
        self.rng = np.random.default_rng(seed)
        self.size = size
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        self.x, self.y = xs / size, ys / size
        self.labels = np.zeros((size, size), np.uint8)
        self.instances = np.zeros((size, size), np.uint16)
        self.rgb = np.zeros((size, size, 3), np.float32)
        self.next_instance = 1

    def noise(self, amount: float) -> np.ndarray:
        return self.rng.normal(0, amount, (self.size, self.size, 1)).astype(np.float32)

    def paint(self, mask: np.ndarray, cls: int, rgb: np.ndarray, instance: bool = False) -> None:
        self.labels[mask] = cls
        self.instances[mask] = self.next_instance if instance else 0
        self.next_instance += instance
        self.rgb = np.where(mask[..., None], np.clip(np.broadcast_to(rgb, self.rgb.shape), 0, 1), self.rgb)

    def box(self, x0, y0, x1, y1) -> np.ndarray:
        return (self.x >= x0) & (self.x < x1) & (self.y >= y0) & (self.y < y1)

    def ellipse(self, cx, cy, rx, ry) -> np.ndarray:
        return ((self.x - cx) / rx) ** 2 + ((self.y - cy) / ry) ** 2 <= 1


def _ground(s: Scene, horizon: float) -> None:
    sky = np.array([0.45, 0.65, 0.95]) + (s.y[..., None] / horizon) * np.array([0.35, 0.23, 0.03])
    s.paint(s.y < horizon, SKY, sky)
    s.paint(s.y >= horizon, GRASS, np.array([0.25, 0.58, 0.2]) + s.noise(0.05) - 0.1 * s.y[..., None])
    if s.rng.random() < 0.5:  # a pond on the grass
        cx, cy = s.rng.uniform(0.2, 0.8), s.rng.uniform(horizon + 0.08, 0.9)
        ripples = 0.06 * np.sin(s.y * 90)[..., None]
        s.paint(s.ellipse(cx, cy, s.rng.uniform(0.12, 0.22), 0.05), WATER, np.array([0.15, 0.35, 0.7]) + ripples)
    top = s.rng.uniform(horizon + 0.15, 0.7)
    road = s.box(0, top, 1, top + s.rng.uniform(0.12, 0.2))
    lane = road & (np.abs(s.y - (top + 0.06)) < 0.008) & ((s.x * 8) % 1 < 0.5)
    s.paint(road, ROAD, np.array([0.34, 0.34, 0.37]) + s.noise(0.03) + 0.55 * lane[..., None])
    s.road = (top, top + 0.12)


def _buildings(s: Scene, horizon: float) -> None:
    x = s.rng.uniform(-0.1, 0.2)
    while x < 0.95:
        width, height = s.rng.uniform(0.12, 0.25), s.rng.uniform(0.15, horizon - 0.05)
        mask = s.box(x, horizon - height, x + width, horizon + 0.02)
        wall = WALLS[s.rng.integers(len(WALLS))]
        windows = ((s.x - x) * 40 % 1 < 0.45) & ((s.y - horizon) * 30 % 1 < 0.5) & (s.y < horizon - 0.02)
        shade = (1.1 - 0.3 * (s.x - x) / width)[..., None]  # the lit side first
        colour = np.where(windows[..., None], np.array([0.2, 0.3, 0.45]), wall) * shade
        s.paint(mask, BUILDING, colour, instance=True)
        x += width + s.rng.uniform(0.02, 0.15)


def _trees(s: Scene, horizon: float) -> None:
    for _ in range(s.rng.integers(1, 4)):
        cx, base = s.rng.uniform(0.05, 0.95), s.rng.uniform(horizon + 0.05, s.road[0])
        r = s.rng.uniform(0.05, 0.09)
        trunk = s.box(cx - 0.012, base - r, cx + 0.012, base)
        crown = s.ellipse(cx, base - r - r * 0.8, r, r * 1.1)
        leaves = 0.08 * np.sin(s.x * 70) * np.sin(s.y * 70)
        colour = np.where(trunk[..., None], np.array([0.4, 0.26, 0.13]), np.array([0.12, 0.42, 0.14]))
        s.paint(trunk | crown, TREE, colour + leaves[..., None] + s.noise(0.03), instance=True)


def _cars(s: Scene) -> None:
    x = s.rng.uniform(-0.05, 0.3)
    while x < 0.9:
        y = s.road[0] + s.rng.uniform(0.0, 0.05)
        body, cabin = s.box(x, y + 0.03, x + 0.16, y + 0.07), s.box(x + 0.03, y, x + 0.12, y + 0.035)
        wheels = s.ellipse(x + 0.035, y + 0.07, 0.018, 0.018) | s.ellipse(x + 0.125, y + 0.07, 0.018, 0.018)
        paint = CARS[s.rng.integers(len(CARS))]
        colour = np.where(cabin[..., None], np.array([0.55, 0.7, 0.85]), paint)
        colour = np.where(wheels[..., None], np.array([0.08, 0.08, 0.08]), colour)
        s.paint(body | cabin | wheels, CAR, colour, instance=True)
        x += s.rng.uniform(0.25, 0.5)


def render_scene(seed: int, size: int) -> tuple[Image.Image, Image.Image, Image.Image]:
    """(label map, photo, instance map) of scene ``seed`` at ``size`` px (label and instance maps as PNG modes
    ``L`` and ``I;16``)."""
    s = Scene(seed, size * 2)
    horizon = s.rng.uniform(0.35, 0.5)
    _ground(s, horizon)
    _buildings(s, horizon)
    _trees(s, horizon)
    _cars(s)
    s.rgb *= (1.08 - 0.2 * s.x)[..., None]  # light from the left
    labels = Image.fromarray(s.labels[::2, ::2].copy(), "L")
    return labels, _to_pil(_downsample(s.rgb)), Image.fromarray(s.instances[::2, ::2].astype(np.uint16))


def write_street_scenes(root: Path, *, size: int, num_train: int, num_val: int, seed: int) -> Path:
    """Render the semantic demo into ``root/{train,val}/{label,image,instance}`` and ``root/palette.txt``."""

    def build(tmp: Path) -> None:
        for split, n, first in (("train", num_train, 0), ("val", num_val, num_train)):
            for kind in ("label", "image", "instance"):
                (tmp / split / kind).mkdir(parents=True)
            for i in range(n):
                label, photo, instance = render_scene(seed * 1_000_003 + first + i, size)
                label.save(tmp / split / "label" / f"{i:05d}.png")
                photo.save(tmp / split / "image" / f"{i:05d}.png")
                instance.save(tmp / split / "instance" / f"{i:05d}.png")
        lines = [f"{name} {r} {g} {b}" for name, (r, g, b) in zip(PALETTE.names, PALETTE.colours)]
        (tmp / "palette.txt").write_text("# the semantic demo's classes, in class order\n" + "\n".join(lines) + "\n")
        (tmp / "meta.json").write_text(json.dumps({"task": "street_scenes", "format": FORMAT, "size": size}))

    _write_atomically(root, build)
    return root


@renders_into_root
def street_scenes(*, root: str | None = None, size: Side = 64, num_train: Count = 400, num_val: Count = 16,
                  seed: Seed = 0, **kwargs) -> LabelData:
    """The semantic demo as ``LabelData`` (rendered on first use, cached by its settings), its 7 classes named by
    its palette. Other keywords go to LabelData."""
    path = write_street_scenes(_root("street_scenes", root, size, num_train, num_val, seed), size=size,
                               num_train=num_train, num_val=num_val, seed=seed)
    kwargs["label_nc"] = kwargs.get("label_nc") or len(PALETTE)
    if kwargs["label_nc"] != len(PALETTE):
        raise ConfigError(f"data.label_nc={kwargs['label_nc']}: the street scenes have {len(PALETTE)} classes")
    kwargs["palette"] = kwargs.get("palette") or "street_scenes"
    return LabelData(root=path, **kwargs)
