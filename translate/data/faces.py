"""The built-in demo for noise -> image models: procedurally drawn anime-style faces (no download).

Each face varies in hair colour and length, eye colour, skin tone, mouth (smile, open), glasses, background
hue, head size and position; what was drawn is saved as labels beside the images (``labels.csv``: one row per
image, ``file`` relative to the dataset folder). The GAN never sees the labels; the TL-GAN pipeline
(``translate axes``) trains its attribute extractor on them, as TL-GAN uses CelebA's 40 labels.

Two pairs of attributes are correlated on purpose, as real ones are (TL-GAN's beard and gender): glasses are
more common with short hair, and an open mouth with a smile. So a raw latent axis for one of them also moves
the other, which is what orthogonalising the axes undoes.
"""

from __future__ import annotations

import colorsys
import csv
import io
import json
from pathlib import Path

import numpy as np

from translate.data.demo import (
    FORMAT,
    Canvas,
    Count,
    Seed,
    Side,
    _downsample,
    _root,
    _to_pil,
    _write_atomically,
    renders_into_root,
)
from translate.data.modules import SingleData

LABELS_FILE = "labels.csv"
HAIR_COLOURS = {"black": [0.12, 0.1, 0.14], "brown": [0.45, 0.27, 0.13], "blonde": [0.96, 0.84, 0.45],
                "red": [0.8, 0.18, 0.12], "blue": [0.25, 0.45, 0.9], "pink": [0.97, 0.55, 0.75],
                "silver": [0.8, 0.82, 0.88]}
EYE_COLOURS = {"blue": [0.2, 0.45, 0.95], "green": [0.2, 0.7, 0.35], "brown": [0.5, 0.3, 0.12],
               "red": [0.85, 0.15, 0.15], "purple": [0.6, 0.3, 0.85]}
ATTRIBUTES = ("hair_colour", "hair_length", "eye_colour", "skin_tone", "smile", "mouth_open", "glasses",
              "background", "head_size", "head_x", "head_y")


def draw_attributes(rng: np.random.Generator) -> dict:
    """One face's attributes (categories by name, the rest numbers in [0, 1] or 0/1)."""
    hair_length = float(rng.random())
    smile = int(rng.random() < 0.5)
    return {
        "hair_colour": str(rng.choice(list(HAIR_COLOURS))),
        "hair_length": round(hair_length, 4),
        "eye_colour": str(rng.choice(list(EYE_COLOURS))),
        "skin_tone": round(float(rng.random()), 4),
        "smile": smile,
        "mouth_open": int(rng.random() < (0.65 if smile else 0.2)),
        "glasses": int(rng.random() < 0.55 - 0.45 * hair_length),
        "background": round(float(rng.random()), 4),
        "head_size": round(float(rng.random()), 4),
        "head_x": round(float(rng.random()), 4),
        "head_y": round(float(rng.random()), 4),
    }


class FaceCanvas(Canvas):
    """A canvas with the ellipses and rings a face is made of."""

    def ellipse(self, cx, cy, rx, ry):
        return ((self.x - cx) / rx) ** 2 + ((self.y - cy) / ry) ** 2 <= 1

    def ring(self, cx, cy, rx, ry, thickness):
        return self.ellipse(cx, cy, rx, ry) & ~self.ellipse(cx, cy, rx - thickness, ry - thickness)


def _paint_hair_back(c: FaceCanvas, a: dict, cx: float, cy: float, r: float, hair: np.ndarray) -> None:
    mask = c.disc(cx, cy - 0.1 * r, 1.15 * r)
    if a["hair_length"] > 0.15:
        bottom = min(cy + r * (0.2 + 1.9 * a["hair_length"]), 1.0)
        mask |= c.box(cx - 1.12 * r, cy - 0.1 * r, cx + 1.12 * r, bottom)
    c.paint(mask, hair, 0.75 + 0.15 * (c.x - cx) / r)


def _paint_face(c: FaceCanvas, a: dict, cx: float, cy: float, r: float) -> None:
    tone = a["skin_tone"]
    skin = (1 - tone) * np.array([1.0, 0.88, 0.8]) + tone * np.array([0.7, 0.5, 0.36])
    shirt = np.array(colorsys.hsv_to_rgb((a["background"] + 0.5) % 1.0, 0.55, 0.7))
    c.paint(c.ellipse(cx, cy + 2.15 * r, 1.5 * r, 0.95 * r), shirt)
    c.paint(c.box(cx - 0.22 * r, cy + 0.6 * r, cx + 0.22 * r, cy + 1.4 * r), skin, 0.82)
    narrowing = 1 - 0.4 * np.clip((c.y - cy) / r, 0, 1)  # a pointed anime chin
    face = ((c.x - cx) / (0.9 * r * narrowing)) ** 2 + ((c.y - cy) / (1.02 * r)) ** 2 <= 1
    c.paint(face, skin, 1.02 - 0.1 * np.clip((c.x - cx) / r, -1, 1))


def _paint_eyes(c: FaceCanvas, a: dict, cx: float, cy: float, r: float) -> None:
    iris = np.array(EYE_COLOURS[a["eye_colour"]])
    for side in (-1, 1):
        ex, ey = cx + side * 0.36 * r, cy + 0.08 * r
        c.paint(c.ellipse(ex, ey - 0.02 * r, 0.2 * r, 0.25 * r), [0.1, 0.07, 0.1])  # lashes and rim
        c.paint(c.ellipse(ex, ey + 0.02 * r, 0.17 * r, 0.21 * r), [1.0, 1.0, 1.0])
        c.paint(c.ellipse(ex, ey + 0.04 * r, 0.12 * r, 0.18 * r), iris, 1.15 - 0.5 * (c.y - ey + 0.1 * r) / r)
        c.paint(c.ellipse(ex, ey + 0.06 * r, 0.055 * r, 0.09 * r), [0.05, 0.03, 0.05])
        c.paint(c.disc(ex - 0.05 * r, ey - 0.04 * r, 0.045 * r), [1.0, 1.0, 1.0])
        if a["glasses"]:
            c.paint(c.ring(ex, ey + 0.02 * r, 0.27 * r, 0.27 * r, 0.045 * r), [0.15, 0.15, 0.2])
    if a["glasses"]:
        c.paint(c.box(cx - 0.1 * r, cy + 0.02 * r, cx + 0.1 * r, cy + 0.06 * r), [0.15, 0.15, 0.2])


def _paint_mouth(c: FaceCanvas, a: dict, cx: float, cy: float, r: float) -> None:
    my, dark = cy + 0.58 * r, [0.45, 0.08, 0.1]
    if a["smile"] and a["mouth_open"]:
        c.paint(c.ellipse(cx, my, 0.2 * r, 0.16 * r) & (c.y >= my), dark)
        c.paint(c.ellipse(cx, my + 0.12 * r, 0.11 * r, 0.06 * r) & (c.y >= my), [0.95, 0.45, 0.5])
    elif a["smile"]:
        c.paint(c.ring(cx, my - 0.04 * r, 0.2 * r, 0.12 * r, 0.045 * r) & (c.y >= my), dark)
    elif a["mouth_open"]:
        c.paint(c.ellipse(cx, my, 0.08 * r, 0.1 * r), dark)
    else:
        c.paint(c.box(cx - 0.08 * r, my - 0.015 * r, cx + 0.08 * r, my + 0.03 * r), dark)


def _paint_fringe(c: FaceCanvas, cx: float, cy: float, r: float, hair: np.ndarray) -> None:
    period = 0.28 * r
    teeth = np.abs(((c.x - cx) / period) % 1.0 - 0.5) * 2  # 0 at a tooth's tip, 1 between teeth
    edge = cy - 0.2 * r - 0.3 * r * teeth
    mask = c.disc(cx, cy - 0.1 * r, 1.12 * r) & (c.y < edge)
    c.paint(mask, hair, 0.85 + 0.3 * np.clip((cy - c.y) / r - 0.6, -0.5, 0.5))


def render_face(attributes: dict, size: int) -> np.ndarray:
    """The face with ``attributes`` as float RGB [size, size, 3] (drawn at twice the size, averaged down)."""
    a = attributes
    c = FaceCanvas(size * 2)
    c.paint(np.ones_like(c.labels, bool), np.array(colorsys.hsv_to_rgb(a["background"], 0.35, 0.95)),
            1.05 - 0.25 * c.y)
    r = 0.22 + 0.1 * a["head_size"]
    cx, cy = 0.42 + 0.16 * a["head_x"], 0.4 + 0.12 * a["head_y"]
    hair = np.array(HAIR_COLOURS[a["hair_colour"]])
    _paint_hair_back(c, a, cx, cy, r, hair)
    _paint_face(c, a, cx, cy, r)
    _paint_eyes(c, a, cx, cy, r)
    _paint_mouth(c, a, cx, cy, r)
    _paint_fringe(c, cx, cy, r, hair)
    return _downsample(c.rgb)


def labels_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["file", *ATTRIBUTES], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_faces(root: Path, *, size: int, num_train: int, num_val: int, seed: int) -> Path:
    """Render the faces into ``root/{train,val}/NNNNN.png`` with their attributes in ``root/labels.csv``."""

    def build(tmp: Path) -> None:
        rng = np.random.default_rng([seed, 14])
        rows = []
        for split, n in (("train", num_train), ("val", num_val)):
            (tmp / split).mkdir(parents=True)
            for i in range(n):
                attributes = draw_attributes(rng)
                _to_pil(render_face(attributes, size)).save(tmp / split / f"{i:05d}.png")
                rows.append({"file": f"{split}/{i:05d}.png", **attributes})
        (tmp / LABELS_FILE).write_text(labels_csv(rows))
        (tmp / "meta.json").write_text(json.dumps({"task": "faces", "format": FORMAT, "size": size}))

    _write_atomically(root, build)
    return root


@renders_into_root
def faces(*, root: str | None = None, size: Side = 64, num_train: Count = 6000, num_val: Count = 500, seed: Seed = 0,
          **kwargs) -> SingleData:
    """The face demo as ``SingleData`` (rendered on first use, cached by its settings); ``labels.csv`` is in
    its root. Other keywords go to SingleData."""
    path = write_faces(_root("faces", root, size, num_train, num_val, seed), size=size, num_train=num_train,
                       num_val=num_val, seed=seed)
    return SingleData(root=path, **kwargs)
