"""Built-in procedural demo data: no download, deterministic by seed.

- ``sketch2photo`` (paired): line drawings of simple scenes -> shaded colour renderings. Shape kinds have
  fixed colours (discs red, boxes blue, triangles gold) and light comes from the upper left, so the mapping
  is learnable from the outlines alone. With ``random_colours`` every scene paints all its shapes in one of
  four colours instead (``labels.csv`` says which): the sketch no longer decides the colour, so a
  multimodal model (BicycleGAN) has a style to learn and a pix2pix one can only average.
- ``day2night`` (unpaired): houses, trees and street lamps under a day palette (trainA) and a night palette
  with a starry sky, a moon, lit windows and glowing lamps (trainB), from different scenes. Because the scenes
  are rendered, each validation day scene is also rendered by night (``truth/{A,B}/val``): the true translation
  that unpaired models are scored against as ``val/paired_*`` (a yardstick only a rendered demo can have).

Images are rendered at twice the size and averaged down (anti-aliasing), then written once into a cache
folder in the standard layouts, so the regular datasets read them and users can look at them.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
from PIL import Image

from translate.core.schema import Range
from translate.data.modules import AlignedData, UnalignedData

FORMAT = 2  # bump when the rendering changes, so old caches are regenerated
# Bounds of the rendering settings (a config stored in a checkpoint is checked against them before anything is
# rendered): at most 100,000 images a split, sides of 8 to 512 pixels.
Side = Annotated[int, Range(8, 512)]
Count = Annotated[int, Range(1, 100_000)]
Seed = Annotated[int, Range(0, 2**31 - 1)]


def cache_dir() -> Path:
    """``$TRANSLATE_CACHE`` or ``~/.cache/translate``."""
    return Path(os.environ.get("TRANSLATE_CACHE", Path.home() / ".cache" / "translate")).expanduser()


class Canvas:
    """A float RGB image in [0, 1] with label-map bookkeeping (for outlines) and shape rasterisers."""

    def __init__(self, size: int):
        self.size = size
        self.rgb = np.zeros((size, size, 3), np.float32)
        self.labels = np.zeros((size, size), np.int32)
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        self.x, self.y = xs / size, ys / size  # coordinates in [0, 1]
        self.next_label = 1

    def paint(self, mask: np.ndarray, colour: np.ndarray, shade: np.ndarray | float = 1.0) -> None:
        colour = np.asarray(colour, np.float32)
        if np.ndim(shade):
            shade = shade[..., None]
        self.rgb = np.where(mask[..., None], np.clip(colour * shade, 0, 1), self.rgb)
        self.labels[mask] = self.next_label
        self.next_label += 1

    def disc(self, cx, cy, r):
        return (self.x - cx) ** 2 + (self.y - cy) ** 2 <= r * r

    def box(self, x0, y0, x1, y1):
        return (self.x >= x0) & (self.x <= x1) & (self.y >= y0) & (self.y <= y1)

    def triangle(self, p0, p1, p2):
        def side(a, b):
            return (b[0] - a[0]) * (self.y - a[1]) - (b[1] - a[1]) * (self.x - a[0])

        s0, s1, s2 = side(p0, p1), side(p1, p2), side(p2, p0)
        return ((s0 >= 0) & (s1 >= 0) & (s2 >= 0)) | ((s0 <= 0) & (s1 <= 0) & (s2 <= 0))

    def outlines(self, thickness: int = 1) -> np.ndarray:
        """Boundaries between differently labelled regions: a binary line drawing."""
        lab = self.labels
        edge = np.zeros_like(lab, bool)
        edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
        edge[1:, :] |= lab[1:, :] != lab[:-1, :]
        for _ in range(thickness - 1):
            grown = edge.copy()
            grown[1:, :] |= edge[:-1, :]
            grown[:, 1:] |= edge[:, :-1]
            edge = grown
        return edge


def _downsample(rgb: np.ndarray) -> np.ndarray:
    h, w, c = rgb.shape
    return rgb.reshape(h // 2, 2, w // 2, 2, c).mean((1, 3))


def _to_pil(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8))


SHAPE_COLOURS = {"disc": [0.85, 0.2, 0.15], "box": [0.2, 0.35, 0.85], "triangle": [0.95, 0.75, 0.15]}
#: The colours of ``random_colours`` scenes: every shape of a scene takes one of these, drawn per scene.
RANDOM_COLOURS = {"red": [0.85, 0.2, 0.15], "blue": [0.2, 0.35, 0.85], "gold": [0.95, 0.75, 0.15],
                  "purple": [0.6, 0.25, 0.75]}


def scene_colour(seed: int) -> str:
    """The colour a ``random_colours`` scene of ``seed`` paints its shapes (its own draw: the layout of the
    scene is the same as without random colours)."""
    return list(RANDOM_COLOURS)[np.random.default_rng([seed, 7]).integers(len(RANDOM_COLOURS))]


def _draw_sketch2photo(seed: int, size: int, random_colours: bool) -> tuple[Canvas, np.ndarray]:
    """The scene of ``seed`` painted at twice ``size`` and where its shapes are (a boolean mask)."""
    rng = np.random.default_rng(seed)
    c = Canvas(size * 2)
    horizon = rng.uniform(0.5, 0.72)
    sky = c.y < horizon
    c.paint(sky, [0.45, 0.7, 0.95], 0.75 + 0.35 * (c.y / horizon))
    c.paint(~sky, [0.3, 0.62, 0.25], 1.1 - 0.5 * (c.y - horizon))
    colours = {kind: RANDOM_COLOURS[scene_colour(seed)] for kind in SHAPE_COLOURS} if random_colours else SHAPE_COLOURS
    shapes = np.zeros(c.y.shape, bool)
    for _ in range(rng.integers(1, 4)):
        kind = rng.choice(list(SHAPE_COLOURS))
        cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.8), rng.uniform(0.1, 0.2)
        if kind == "disc":
            mask = c.disc(cx, cy, r)
        elif kind == "box":
            mask = c.box(cx - r, cy - r * rng.uniform(0.6, 1.2), cx + r, cy + r)
        else:
            mask = c.triangle((cx - r, cy + r), (cx + r, cy + r), (cx, cy - r))
        # Light from the upper left: brighter towards (cx - r, cy - r).
        d = np.sqrt((c.x - (cx - 0.6 * r)) ** 2 + (c.y - (cy - 0.6 * r)) ** 2) / (2.2 * r)
        c.paint(mask, colours[kind], 1.15 - 0.7 * np.clip(d, 0, 1))
        shapes |= mask
    return c, shapes


def render_sketch2photo(seed: int, size: int, random_colours: bool = False) -> tuple[Image.Image, Image.Image]:
    """One (sketch, photo) pair. Shapes have their kind's colour, or with ``random_colours`` all shapes of the
    scene one colour of ``RANDOM_COLOURS`` (nothing in the sketch tells which: a style for BicycleGAN)."""
    c, _ = _draw_sketch2photo(seed, size, random_colours)
    lines = c.outlines(thickness=2)
    sketch = np.where(lines[..., None], 0.0, 1.0).repeat(3, -1).astype(np.float32)
    return _to_pil(_downsample(sketch)), _to_pil(_downsample(c.rgb))


def shape_mask(seed: int, size: int) -> np.ndarray:
    """Where the shapes of scene ``seed`` are at ``size`` (pixels fully inside a shape), [size, size] bool: what
    an output's shape colour is read from."""
    _, shapes = _draw_sketch2photo(seed, size, random_colours=False)
    return _downsample(shapes[..., None].astype(np.float32))[..., 0] > 0.99


def sketch2photo_seed(index: int, split: str, *, num_train: int = 400, seed: int = 0) -> int:
    """The scene seed of image ``index`` of a split, as ``write_sketch2photo`` numbers them."""
    return seed * 1_000_003 + (num_train if split == "val" else 0) + index


def render_day_night(seed: int, size: int, night: bool) -> Image.Image:
    """A street scene under the day or the night palette. The scene (``seed``) is the same by day and by night:
    what only the night has (stars, which windows are lit) is drawn from a second stream."""
    rng = np.random.default_rng(seed)
    night_rng = np.random.default_rng([seed, 1])
    c = Canvas(size * 2)
    horizon = rng.uniform(0.6, 0.75)
    sky = c.y < horizon
    if night:
        c.paint(sky, [0.05, 0.07, 0.22], 0.6 + 0.8 * c.y / horizon)
        stars = sky & (night_rng.random(sky.shape) < 0.004)
        c.rgb[stars] = [0.95, 0.95, 0.85]
        c.paint(~sky, [0.06, 0.14, 0.08], 1.0)
    else:
        c.paint(sky, [0.5, 0.75, 1.0], 0.8 + 0.3 * c.y / horizon)
        c.paint(~sky, [0.35, 0.68, 0.28], 1.0)
    # Sun by day, moon by night, in the same place.
    ox, oy = rng.uniform(0.1, 0.9), rng.uniform(0.08, 0.25)
    c.paint(c.disc(ox, oy, 0.06), [0.92, 0.92, 0.8] if night else [1.0, 0.9, 0.3])
    glow = np.zeros(c.labels.shape, np.float32)
    x = rng.uniform(-0.05, 0.1)
    while x < 0.95:
        w, h = rng.uniform(0.15, 0.3), rng.uniform(0.2, 0.4)
        top = horizon - h
        if rng.random() < 0.25:  # a tree: trunk and crown
            c.paint(c.box(x + w / 2 - 0.015, horizon - 0.12, x + w / 2 + 0.015, horizon + 0.02), [0.4, 0.25, 0.1],
                    0.35 if night else 1.0)
            c.paint(c.disc(x + w / 2, horizon - 0.15, 0.07), [0.15, 0.5, 0.15], 0.3 if night else 1.0)
        else:
            wall = np.array([[0.85, 0.75, 0.6], [0.75, 0.35, 0.25], [0.8, 0.8, 0.8]][rng.integers(3)], np.float32)
            c.paint(c.box(x, top, x + w, horizon + 0.02), wall * ([0.35, 0.38, 0.55] if night else 1.0))
            c.paint(c.triangle((x - 0.02, top), (x + w + 0.02, top), (x + w / 2, top - 0.1)),
                    [0.45, 0.15, 0.1] if not night else [0.12, 0.06, 0.08])
            for wx in np.arange(x + 0.03, x + w - 0.05, 0.07):
                for wy in np.arange(top + 0.04, horizon - 0.06, 0.09):
                    lit = night and night_rng.random() < 0.7
                    colour = [1.0, 0.85, 0.35] if lit else ([0.1, 0.12, 0.2] if night else [0.6, 0.75, 0.9])
                    c.paint(c.box(wx, wy, wx + 0.04, wy + 0.05), colour)
        x += w + rng.uniform(0.02, 0.08)
    for lx in rng.uniform(0.05, 0.95, size=rng.integers(1, 3)):  # street lamps
        c.paint(c.box(lx - 0.006, horizon - 0.2, lx + 0.006, horizon + 0.1), [0.25, 0.25, 0.28])
        c.paint(c.disc(lx, horizon - 0.21, 0.02), [1.0, 0.9, 0.5] if night else [0.6, 0.6, 0.6])
        if night:
            glow += np.exp(-((c.x - lx) ** 2 + (c.y - horizon + 0.21) ** 2) / 0.004)
    if night:
        c.rgb = np.clip(c.rgb + glow[..., None] * np.array([0.5, 0.4, 0.15], np.float32), 0, 1)
    return _to_pil(_downsample(c.rgb))


def rendered(root: str | Path) -> bool:
    """Whether ``root`` holds a finished rendering (its ``meta.json`` is written last)."""
    return (Path(root).expanduser() / "meta.json").is_file()


def renders_into_root(data_function):
    """Mark a data function that renders its images into its ``root`` on first use: a ``root`` read from a
    checkpoint's config is written to only when it is already rendered (``translate.config.stored``)."""
    data_function.rendered_at = rendered
    return data_function


def _write_atomically(root: Path, build) -> None:
    """Build a dataset folder in a temporary sibling and rename it into place (safe under concurrency)."""
    if rendered(root):
        return
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        build(tmp)
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / "meta.json").exists():  # someone else finished first: fine; otherwise a real error
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_sketch2photo(root: Path, *, size: int, num_train: int, num_val: int, seed: int,
                       random_colours: bool = False) -> Path:
    """Render the paired demo into ``root/{train,val}/{A,B}`` (A = sketch, B = photo); with ``random_colours``
    also ``labels.csv`` (file, split, colour of each scene)."""

    def build(tmp: Path) -> None:
        labels = []
        for split, n in (("train", num_train), ("val", num_val)):
            (tmp / split / "A").mkdir(parents=True)
            (tmp / split / "B").mkdir(parents=True)
            for i in range(n):
                scene = sketch2photo_seed(i, split, num_train=num_train, seed=seed)
                sketch, photo = render_sketch2photo(scene, size, random_colours)
                sketch.save(tmp / split / "A" / f"{i:05d}.png")
                photo.save(tmp / split / "B" / f"{i:05d}.png")
                labels.append(f"{split}/B/{i:05d}.png,{split},{scene_colour(scene)}")
        if random_colours:
            (tmp / "labels.csv").write_text("\n".join(["file,split,colour", *labels]) + "\n")
        meta = {"task": "sketch2photo", "format": FORMAT, "size": size, "random_colours": random_colours}
        (tmp / "meta.json").write_text(json.dumps(meta))

    _write_atomically(root, build)
    return root


def write_day2night(root: Path, *, size: int, num_train: int, num_val: int, seed: int) -> Path:
    """Render the unpaired demo into ``root/{train,val}{A,B}`` (A = day, B = night; unrelated scenes), and the
    val day scenes by day and by night into ``root/truth/{A,B}/val`` (aligned pairs: the true translations)."""

    def build(tmp: Path) -> None:
        offset = 0
        for split, n in (("train", num_train), ("val", num_val)):
            for domain, night in (("A", False), ("B", True)):
                folder = tmp / f"{split}{domain}"
                folder.mkdir(parents=True)
                base = seed * 1_000_003 + offset + (500_000 if night else 0)
                for i in range(n):
                    render_day_night(base + i, size, night).save(folder / f"{i:05d}.png")
            if split == "val":
                for domain, night in (("A", False), ("B", True)):
                    folder = tmp / "truth" / domain / "val"
                    folder.mkdir(parents=True)
                    for i in range(n):
                        render_day_night(seed * 1_000_003 + offset + i, size, night).save(folder / f"{i:05d}.png")
            offset += n
        (tmp / "meta.json").write_text(json.dumps({"task": "day2night", "format": FORMAT, "size": size}))

    _write_atomically(root, build)
    return root


def _root(task: str, root: str | Path | None, size: int, num_train: int, num_val: int, seed: int) -> Path:
    if root:
        return Path(root).expanduser()
    return cache_dir() / "demo" / f"{task}-v{FORMAT}-s{size}-n{num_train}-{num_val}-seed{seed}"


def _demo(task: str, write, data_class, *, root, size: int, num_train: int, num_val: int, seed: int, kwargs):
    """Render the demo's images on first use (cached by its settings) and return ``data_class`` over them."""
    path = write(_root(task, root, size, num_train, num_val, seed), size=size, num_train=num_train,
                 num_val=num_val, seed=seed)
    return data_class(root=path, **kwargs)


@renders_into_root
def sketch2photo(
    *, root: str | None = None, size: Side = 64, num_train: Count = 400, num_val: Count = 8, seed: Seed = 0,
    random_colours: bool = False, **kwargs
) -> AlignedData:
    """The paired demo as ``AlignedData`` (generated on first use); ``random_colours``: each scene's shapes in one
    colour drawn from four (the BicycleGAN demo). Other keywords go to AlignedData."""
    write = functools.partial(write_sketch2photo, random_colours=random_colours)
    task = "sketch2photo-random-colours" if random_colours else "sketch2photo"
    return _demo(task, write, AlignedData, root=root, size=size, num_train=num_train, num_val=num_val, seed=seed,
                 kwargs=kwargs)


@renders_into_root
def day2night(
    *, root: str | None = None, size: Side = 64, num_train: Count = 400, num_val: Count = 32, seed: Seed = 0,
    **kwargs
) -> UnalignedData:
    """The unpaired demo as ``UnalignedData`` (generated on first use), with its true night renderings of the
    val scenes as ``truth``. Other keywords go to UnalignedData."""
    kwargs.setdefault("truth", "truth")
    return _demo("day2night", write_day2night, UnalignedData, root=root, size=size, num_train=num_train,
                 num_val=num_val, seed=seed, kwargs=kwargs)
