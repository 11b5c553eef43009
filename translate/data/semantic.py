"""Label map -> photo data (``data=labels``): a semantic map, optionally an instance map, and the photo per sample.

Layouts (``data.layout``):

- ``folders``: ``<root>/<split>/label/*.png``, ``<root>/<split>/image/*``, and with ``data.instances=true``
  ``<root>/<split>/instance/*.png``, matched by file name;
- ``cityscapes``: the download's folders, ``<root>/gtFine/<split>/<city>/<name>_gtFine_labelIds.png`` (and
  ``_instanceIds.png``) with ``<root>/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png``;
- ``ade20k``: ``<root>/annotations/<training|validation>/<name>.png`` with ``<root>/images/<...>/<name>.jpg``;
  class 0 ("other") is don't-care and the 150 classes are 1..150, as the SPADE code reads them.

A sample is ``{"A": the generator's input, "B": the photo, "labels": the class indices [H, W], "A_view": the map
in its palette's colours, for sample grids}`` and ``"instances"``, the instance ids [H, W], with ``instances=true``
(pix2pixHD's instance-wise features pool over them): ``A`` holds one
channel per class (``label_nc``, plus one for don't-care when ``dont_care`` is set), and the instance boundary
map as the last channel with ``instances=true``. Label and instance maps are resampled nearest-neighbour only, with
the same crop and flip as their photo.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

from translate.core.errors import ConfigError, DataError, check_choice
from translate.core.schema import label_channels
from translate.data.files import filter_readable, list_images, load_image
from translate.data.folders import FolderDataset, _part, _stem_map
from translate.data.labels import PALETTES, LabelEncoding, Palette, read_instance_map, read_palette
from translate.data.modules import DataModule
from translate.data.transforms import PairedTransform

Layout = Literal["folders", "cityscapes", "ade20k"]
Encoding = Literal["onehot", "colour"]  # how the classes reach the generator
LAYOUTS = ("folders", "cityscapes", "ade20k")
ADE20K_SPLITS = {"train": "training", "val": "validation"}
Sample = tuple[Path, Path, Path | None]  # label map, photo, instance map


def find_samples(root: Path, split: str, layout: Layout, instances: bool) -> list[Sample]:
    """The (label, photo, instance) files of ``split`` in ``layout``; a DataError naming what is missing."""
    if layout == "cityscapes":
        return _cityscapes(root, split, instances)
    folders = {"folders": (root / split / "label", root / split / "image", root / split / "instance"),
               "ade20k": (root / "annotations" / ADE20K_SPLITS.get(split, split),
                          root / "images" / ADE20K_SPLITS.get(split, split), None)}[layout]
    label_dir, image_dir, instance_dir = folders
    if instances and instance_dir is None:
        raise ConfigError("data.instances=true: the ade20k layout has no instance maps")
    labels, images = _stem_map(list_images(label_dir), label_dir), _stem_map(list_images(image_dir), image_dir)
    if unmatched := sorted(labels.keys() ^ images.keys()):
        name = unmatched[0]
        where = f"photo in {image_dir}" if name in labels else f"label map in {label_dir}"
        raise DataError(f"{root}: {name!r} has a {'label map' if name in labels else 'photo'} but no {where}")
    found = _stem_map(list_images(instance_dir), instance_dir) if instances else {}
    if instances and (lacking := sorted(labels.keys() - found.keys())):
        raise DataError(f"{root}: {lacking[0]!r} has no instance map in {instance_dir}")
    return [(labels[k], images[k], found.get(k)) for k in sorted(labels)]


def _cityscapes(root: Path, split: str, instances: bool) -> list[Sample]:
    label_dir, image_dir = root / "gtFine" / split, root / "leftImg8bit" / split
    if not label_dir.is_dir():
        raise DataError(f"{root}: no {label_dir} (the Cityscapes layout: gtFine/<split>/<city>/...)")
    samples = []
    for label in sorted(label_dir.glob("*/*_gtFine_labelIds.png")):
        name = label.name.removesuffix("_gtFine_labelIds.png")
        photo = image_dir / label.parent.name / f"{name}_leftImg8bit.png"
        instance = label.with_name(f"{name}_gtFine_instanceIds.png")
        if not photo.is_file() or (instances and not instance.is_file()):
            raise DataError(f"{label}: no {photo if not photo.is_file() else instance}")
        samples.append((label, photo, instance if instances else None))
    if not samples:
        raise DataError(f"{label_dir}: no *_gtFine_labelIds.png files")
    return samples


class LabelDataset(FolderDataset):
    """Label map -> photo samples (see the module docstring)."""

    def __init__(self, root: str | Path, split: str, transform: PairedTransform, *, encoding: LabelEncoding,
                 layout: Layout = "folders", output_nc: int = 3, max_size: int | None = None):
        super().__init__(transform)
        self.encoding, self.layout, self.output_nc = encoding, layout, output_nc
        self.shown = encoding.colours  # how sample grids show a map
        files = [tuple(p for p in s if p is not None)
                 for s in find_samples(Path(root), split, layout, encoding.instances)]
        readable = filter_readable(files, f"{root} ({split})")[:max_size]
        self.samples: list[Sample] = [(s[0], s[1], s[2] if len(s) > 2 else None) for s in readable]

    def __len__(self) -> int:
        return len(self.samples)

    def hold_out(self, fraction: float, *, held: bool) -> LabelDataset:
        self.samples = _part(self.samples, fraction, held)
        return self

    def load(self, index: int, seed: int) -> dict:
        label_path, photo_path, instance_path = self.samples[index]
        maps = [self.encoding.read(label_path)] + ([read_instance_map(instance_path)] if instance_path else [])
        photo = load_image(photo_path, self.output_nc)
        if any(m.shape != photo.shape[-2:] for m in maps):
            raise DataError(f"{label_path}: {tuple(maps[0].shape)} map for a {tuple(photo.shape[-2:])} photo "
                            f"({photo_path.name})")
        photo, labels, *instances = self._transform(label_path, photo, *maps, labels=len(maps))
        sample = {"A": self.encoding.encode(labels, instances[0] if instances else None), "B": photo,
                  "labels": labels, "A_view": self.shown.colourise(labels), "A_path": str(label_path),
                  "B_path": str(photo_path)}
        return sample | ({"instances": instances[0]} if instances else {})


def make_encoding(label_nc: int, dont_care: int | None, instances: bool, layout: str, palette: Palette | None,
                  encoding: str) -> LabelEncoding:
    """The LabelEncoding of ``data=labels`` settings (the one place they become one)."""
    return LabelEncoding(int(label_nc), dont_care, bool(instances), layout == "ade20k", palette, encoding == "colour")


def label_encoding(data: Mapping[str, Any]) -> LabelEncoding | None:
    """How a run trained on ``data=labels`` (its stored ``data`` node) reads a label map, for ``infer`` and the
    page; None for any other data. A palette file named there that is gone is left out (index maps still read)."""
    if "label_nc" not in data:
        return None
    palette = data.get("palette")
    known = palette and (str(palette) in PALETTES or Path(str(palette)).is_file())
    return make_encoding(data["label_nc"], data.get("dont_care"), bool(data.get("instances")), data.get("layout", ""),
                         read_palette(palette) if known else None, data.get("encoding", "onehot"))


class LabelData(DataModule):
    """``data=labels``: label maps and their photos (SPADE, pix2pixHD; see the module docstring)."""

    def __init__(self, *, label_nc: int, dont_care: int | None = None, palette: str | None = None,
                 instances: bool = False, layout: Layout = "folders", input_nc: int | None = None,
                 encoding: Encoding = "onehot", **kwargs):
        if layout not in LAYOUTS:
            raise ConfigError(f"data.layout={layout!r} is not one of {', '.join(LAYOUTS)}")
        check_choice("data.encoding", encoding, ("onehot", "colour"))
        if label_nc < 1:
            raise ConfigError(f"data.label_nc={label_nc}: the number of classes, at least 1")
        if layout == "ade20k" and dont_care is None:
            raise ConfigError("data.layout=ade20k: its class 0 is don't-care (data.dont_care=0)")
        super().__init__(input_nc=3, **kwargs)
        self.label_nc, self.dont_care, self.instances, self.layout = int(label_nc), dont_care, instances, layout
        self.palette = read_palette(palette) if palette else None
        self.encoding = encoding
        self.input_nc = label_channels(label_nc, dont_care, instances, encoding)
        if input_nc is not None and input_nc != self.input_nc:
            raise ConfigError(f"data.input_nc={input_nc}: label maps give {self.input_nc} channels (label_nc, "
                              "don't-care, boundaries, encoding); leave it to them")

    def label_encoding(self) -> LabelEncoding:
        """How this data's maps become the generator's input (and inputs become classes again)."""
        return make_encoding(self.label_nc, self.dont_care, self.instances, self.layout, self.palette, self.encoding)

    def dataset(self, split: str, *, train: bool = True) -> Dataset:
        return LabelDataset(self.root, split, self.transform(train), encoding=self.label_encoding(),
                            layout=self.layout, output_nc=self.output_nc, max_size=self.max_size)

    def has_split(self, split: str) -> bool:
        where = {"folders": self.root / split, "cityscapes": self.root / "gtFine" / split,
                 "ade20k": self.root / "annotations" / ADE20K_SPLITS.get(split, split)}[self.layout]
        return where.is_dir()
