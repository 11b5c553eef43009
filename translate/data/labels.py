"""Label maps: semantic maps (one class index per pixel) and instance maps, as SPADE and pix2pixHD take them.

A label map is read as an index map [H, W] (int64) from

- a single-channel PNG whose values are the class indices (Cityscapes' ``*_labelIds.png``, ADE20K's
  ``annotations/*.png``), 8 or 16 bits;
- a palette PNG (mode ``P``): its palette indices are the classes (PASCAL VOC style);
- a colour-coded RGB PNG with a ``Palette``: each class's colour; a colour not in the palette is refused.

Indices at or above ``label_nc`` are refused with the file and the value, except the "don't care" index, which is
mapped to one extra class, ``label_nc`` (SPADE's ``contain_dontcare_label``). An instance map (one id per
object) gives the boundary map: 1 where a pixel's instance differs from a neighbour's (pix2pixHD's edges).
``one_hot`` turns the index map into the generator's input channels. Geometry (resize, crop, flip) on label and
instance maps is nearest-neighbour only: ``translate.data.transforms.PairedTransform(..., labels=k)``.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from translate.core.errors import DataError
from translate.data.files import open_image


@dataclass(frozen=True)
class Palette:
    """Class names and their RGB colours, index = class: how colour-coded maps are read and how maps are shown."""

    names: tuple[str, ...]
    colours: tuple[tuple[int, int, int], ...]

    def __post_init__(self):
        if len(self.names) != len(self.colours):
            raise DataError(f"palette: {len(self.names)} names for {len(self.colours)} colours")
        if len(set(self.colours)) != len(self.colours):
            raise DataError("palette: two classes share a colour")

    def __len__(self) -> int:
        return len(self.colours)

    def codes(self) -> np.ndarray:
        """Each colour as one int (r << 16 | g << 8 | b), in class order."""
        rgb = np.asarray(self.colours, dtype=np.int64).reshape(-1, 3)
        return (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]

    def colourise(self, labels: torch.Tensor) -> torch.Tensor:
        """Index maps [..., H, W] -> RGB [..., 3, H, W] in [-1, 1] (indices past the palette are black)."""
        table = torch.zeros(max(len(self), int(labels.max()) + 1 if labels.numel() else 1), 3)
        table[: len(self)] = torch.tensor(self.colours, dtype=torch.float32) / 127.5 - 1
        table[len(self):] = -1
        return table[labels.long()].movedim(-1, -3)


PALETTES = {  # built-in palettes, by name (data.palette=NAME): the semantic demo's street scenes
    "street_scenes": Palette(("sky", "grass", "road", "building", "tree", "water", "car"),
                             ((135, 190, 235), (90, 160, 60), (110, 110, 115), (170, 90, 70), (30, 100, 40),
                              (40, 90, 180), (220, 40, 40))),
}


def class_colours(n: int) -> Palette:
    """A palette of ``n`` distinct colours (hues a golden angle apart) for maps whose data names none."""
    colours = []
    for k in range(n):
        r, g, b = colorsys.hsv_to_rgb((k * 0.618034) % 1.0, 0.65, 0.55 + 0.4 * (k % 2))
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return Palette(tuple(f"class {k}" for k in range(n)), tuple(colours))


def read_label_map(path: str | Path, label_nc: int, *, palette: Palette | None = None,
                   dont_care: int | None = None) -> torch.Tensor:
    """The class indices [H, W] (int64) of a label map file, checked against ``label_nc`` (``dont_care`` pixels
    become class ``label_nc``); a DataError naming the file and the first bad value otherwise."""
    with open_image(path) as im:
        if im.mode in ("RGB", "RGBA") and palette is None:
            raise DataError(f"{path}: a colour label map needs the palette (data.palette=FILE), or save index PNGs")
        if im.mode in ("RGB", "RGBA"):
            labels = _from_colours(Path(path), np.asarray(im.convert("RGB")), palette)
        elif im.mode in ("P", "L", "I", "I;16", "I;16B", "I;16L"):
            labels = np.asarray(im).astype(np.int64)  # a palette PNG's indices are its classes
        else:
            raise DataError(f"{path}: a {im.mode} image is not a label map (index, palette or colour PNG)")
    labels = torch.from_numpy(labels.copy())
    if dont_care is not None:
        labels[labels == dont_care] = label_nc
    bad = (labels < 0) | (labels >= label_nc + (dont_care is not None))
    if bad.any():
        value = int(labels[bad][0])
        raise DataError(f"{path}: label {value} is outside data.label_nc={label_nc}"
                        + ("" if dont_care is not None else " (a don't-care value? set data.dont_care)"))
    return labels


def _from_colours(path: Path, rgb: np.ndarray, palette: Palette) -> np.ndarray:
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    known = palette.codes()
    order = np.argsort(known)
    at = np.clip(np.searchsorted(known[order], codes), 0, len(known) - 1)
    found = known[order][at] == codes
    if not found.all():
        y, x = np.argwhere(~found)[0]
        colour = tuple(int(c) for c in rgb[y, x])
        raise DataError(f"{path}: colour {colour} at ({x}, {y}) is not in the palette")
    return order[at]


@dataclass(frozen=True)
class LabelEncoding:
    """How a label-map model reads a map: ``label_nc`` classes, a ``dont_care`` value (one extra class), the
    ADE20K numbering (0 is don't-care, the classes 1..label_nc), a ``palette`` for colour-coded maps, whether
    the instance boundaries are an input channel, and whether the classes reach the generator one-hot or as
    their colours (``colour``: a map as an RGB picture, as reference pix2pix reads one). The one place training
    data and ``infer`` turn a file into the generator's input (``encode``) and an input back into classes
    (``decode``)."""

    label_nc: int
    dont_care: int | None = None
    instances: bool = False
    zero_is_dont_care: bool = False  # ADE20K
    palette: Palette | None = None
    colour: bool = False

    @property
    def colours(self) -> Palette:
        """The colours a ``colour`` encoding paints the classes in: the palette, or distinct colours."""
        return self.palette or class_colours(self.label_nc)

    @property
    def classes(self) -> int:
        """One-hot channels: the classes and don't-care."""
        return self.label_nc + (self.dont_care is not None)

    def read(self, path: str | Path) -> torch.Tensor:
        """The class indices [H, W] of a label map file (don't-care as class ``label_nc``)."""
        if self.zero_is_dont_care:
            labels = read_label_map(path, self.label_nc + 1) - 1
            labels[labels < 0] = self.label_nc
            return labels
        return read_label_map(path, self.label_nc, palette=self.palette, dont_care=self.dont_care)

    def encode(self, labels: torch.Tensor, instances: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's input [C, H, W]: one-hot classes, then (``instances``) the boundaries of ``instances``,
        or of the classes themselves when no instance map is at hand."""
        parts = [self.colours.colourise(labels) if self.colour else one_hot(labels, self.classes)]
        if self.instances:
            parts.append(boundaries(instances if instances is not None else labels))
        return torch.cat(parts, -3)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """The classes [N, H, W] of encoded inputs [N, C, H, W]; -1 where a pixel has none of the ``label_nc``
        classes (don't-care)."""
        if self.colour:
            table = torch.tensor(self.colours.colours[: self.label_nc], dtype=x.dtype, device=x.device) / 127.5 - 1
            distance = (x[:, :3, None] - table.T[None, :, :, None, None]).abs().sum(1)
            labels = distance.argmin(1)
            labels[distance.min(1).values > 0.02] = -1  # black: don't care
            return labels
        onehot = x[:, : self.label_nc]
        labels = onehot.argmax(1)
        labels[onehot.sum(1) == 0] = -1
        return labels


def read_instance_map(path: str | Path) -> torch.Tensor:
    """The instance ids [H, W] (int64) of an instance map (any single-channel PNG, 8, 16 or 32 bits)."""
    with open_image(path) as im:
        if im.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
            raise DataError(f"{path}: an instance map is a single-channel image, not {im.mode}")
        return torch.from_numpy(np.asarray(im).astype(np.int64).copy())


def boundaries(instances: torch.Tensor) -> torch.Tensor:
    """[..., H, W] instance ids -> float [..., 1, H, W]: 1 where a pixel's id differs from a 4-neighbour's."""
    edge = torch.zeros(instances.shape, dtype=torch.bool, device=instances.device)
    vertical = instances[..., 1:, :] != instances[..., :-1, :]
    horizontal = instances[..., :, 1:] != instances[..., :, :-1]
    edge[..., 1:, :] |= vertical
    edge[..., :-1, :] |= vertical
    edge[..., :, 1:] |= horizontal
    edge[..., :, :-1] |= horizontal
    return edge.unsqueeze(-3).float()


def one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """[..., H, W] class indices -> float [..., classes, H, W] with a 1 in each pixel's class channel."""
    return F.one_hot(labels.long(), classes).movedim(-1, -3).float()


def read_palette(path: str | Path) -> Palette:
    """A built-in palette by name (``PALETTES``) or a palette file: one class per line, ``name r g b`` (or
    ``name #rrggbb``), in class order; lines that start with ``#`` are comments."""
    if str(path) in PALETTES:
        return PALETTES[str(path)]
    names, colours = [], []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the palette ({e})") from None
    for number, line in enumerate(text.splitlines(), 1):
        parts = [] if line.lstrip().startswith("#") else line.split()
        if not parts:
            continue
        try:
            colour = _colour(parts[1:])
        except ValueError:
            raise DataError(f"{path}, line {number}: {line.strip()!r} is not 'name r g b' or 'name #rrggbb'") from None
        names.append(parts[0])
        colours.append(colour)
    if not names:
        raise DataError(f"{path}: no classes (one 'name r g b' per line)")
    return Palette(tuple(names), tuple(colours))


def _colour(parts: list[str]) -> tuple[int, int, int]:
    if len(parts) == 1 and parts[0].startswith("#") and len(parts[0]) == 7:
        return tuple(int(parts[0][i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    if len(parts) == 3 and all(0 <= int(p) <= 255 for p in parts):
        return tuple(int(p) for p in parts)  # type: ignore[return-value]
    raise ValueError(parts)
