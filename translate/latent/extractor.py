"""TL-GAN's attribute extractor: what a generated image shows, as numbers a latent axis can be fitted to.

Two kinds, one interface (``scores(images)`` -> attribute -> [N] tensor; ``features(images)`` -> [N, D]):

- ``TrainedExtractor``: a small CNN trained on labelled real images (a labels file: CSV or JSON, one row per
  image, ``file`` relative to the file's folder, the rest attributes). Numeric 0/1 columns become binary
  attributes (scored as probabilities), other numeric ones regressions (scored in their own units), text
  columns categories (one probability per class, ``hair_colour=blonde``). The face demo writes such a file.
- ``PixelExtractor``: brightness, colour temperature, saturation and edge density from the pixels
  (``translate.latent.attributes``); nothing to train or download.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import nn

from translate.core.atomic import atomic_write_bytes, json_text
from translate.core.errors import ConfigError, DataError
from translate.data.files import load_image, read_csv, to_float
from translate.latent.attributes import PIXEL_ATTRIBUTES, PixelFeatures, pixel_attributes


# ---------------------------------------------------------------------------------------------- labels
@dataclass(frozen=True)
class Attribute:
    """One labelled attribute: ``kind`` binary | continuous | category (with its ``classes``); continuous values
    are standardised with ``mean`` and ``std`` for training."""

    name: str
    kind: str
    classes: tuple[str, ...] = ()
    mean: float = 0.0
    std: float = 1.0

    def score_names(self) -> list[str]:
        return [f"{self.name}={c}" for c in self.classes] if self.kind == "category" else [self.name]

    @property
    def width(self) -> int:
        return len(self.classes) if self.kind == "category" else 1


@dataclass
class LabelTable:
    """Image files and their attribute targets: ``targets[name]`` is [N] (class indices for categories)."""

    files: list[Path]
    attributes: list[Attribute]
    targets: dict[str, torch.Tensor]


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: no such labels file")
    try:
        if path.suffix == ".json":
            rows = json.loads(path.read_text(encoding="utf-8-sig"))
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise DataError(f"{path}: a JSON labels file is a list of objects, one per image")
            return [{k: str(v) for k, v in r.items()} for r in rows]
        return read_csv(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a readable labels file ({e})") from None


def _attribute(name: str, values: list[str]) -> Attribute:
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return Attribute(name, "category", tuple(sorted(set(values))))
    if set(numbers) <= {0.0, 1.0}:
        return Attribute(name, "binary")
    t = torch.tensor(numbers)
    return Attribute(name, "continuous", mean=float(t.mean()), std=float(t.std().clamp_min(1e-6)))


def read_labels(path: str | Path, attributes: list[str] | None = None) -> LabelTable:
    """The labels file at ``path`` (only ``attributes`` when given). A DataError names the file and the problem:
    no ``file`` column, a file outside the folder or missing, an unknown attribute, an empty value."""
    path = Path(path)
    rows = _rows(path)
    if not rows or "file" not in rows[0]:
        raise DataError(f"{path}: needs a 'file' column and at least one row")
    names = [c for c in rows[0] if c != "file"]
    for name in attributes or []:
        if name not in names:
            raise DataError(f"{path}: no attribute {name!r} (it has {', '.join(names)})")
    names = list(attributes or names)
    folder = path.parent.resolve()
    files = []
    for i, row in enumerate(rows, 2):
        file = (folder / row["file"]).resolve()
        if not file.is_relative_to(folder) or not file.is_file():
            raise DataError(f"{path}: line {i}: {row['file']!r} is not an image inside {folder}")
        if any(row.get(n) in (None, "") for n in names):
            raise DataError(f"{path}: line {i}: a value is missing")
        files.append(file)
    found = [_attribute(n, [r[n] for r in rows]) for n in names]
    targets = {}
    for a in found:
        column = [r[a.name] for r in rows]
        targets[a.name] = (torch.tensor([a.classes.index(v) for v in column]) if a.kind == "category"
                           else torch.tensor([float(v) for v in column]))
    return LabelTable(files, found, targets)


# ---------------------------------------------------------------------------------------------- the CNN
class AttributeNet(nn.Module):
    """A full-resolution 3x3 convolution (small details: eyes, glasses) and four stride-2 ones (batch norm,
    ReLU), global average pooling and one linear head with a slot per binary/continuous attribute and per class
    of each category."""

    def __init__(self, *, outputs: int, width: int = 32, size: int = 64):
        super().__init__()
        layers, channels = [], 3
        for c, stride in ((width, 1), (width, 2), (2 * width, 2), (4 * width, 2), (4 * width, 2)):
            layers += [nn.Conv2d(channels, c, 3, stride, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
            channels = c
        self.body, self.size = nn.Sequential(*layers), size
        self.head = nn.Linear(channels, outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return self.body(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class TrainedExtractor:
    """An ``AttributeNet`` with the attributes its outputs stand for."""

    def __init__(self, net: AttributeNet, attributes: list[Attribute]):
        self.net, self.attributes = net.eval(), attributes

    @property
    def score_names(self) -> list[str]:
        return [n for a in self.attributes for n in a.score_names()]

    def _split(self, out: torch.Tensor) -> dict[Attribute, torch.Tensor]:
        parts, start = {}, 0
        for a in self.attributes:
            parts[a] = out[:, start : start + a.width]
            start += a.width
        return parts

    @torch.no_grad()
    def scores(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per image: binary attributes' probabilities, continuous values in their units, class probabilities."""
        result = {}
        for a, out in self._split(self.net(images.float())).items():
            if a.kind == "category":
                result |= dict(zip(a.score_names(), out.softmax(1).unbind(1)))
            elif a.kind == "binary":
                result[a.name] = out[:, 0].sigmoid()
            else:
                result[a.name] = out[:, 0] * a.std + a.mean
        return result

    @torch.no_grad()
    def classes(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each category attribute's most likely class index per image."""
        return {a.name: out.argmax(1) for a, out in self._split(self.net(images.float())).items()
                if a.kind == "category"}

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.features(images.float())

    def loss(self, images: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        terms = []
        for a, out in self._split(self.net(images)).items():
            y = targets[a.name]
            if a.kind == "category":
                terms.append(F.cross_entropy(out, y))
            elif a.kind == "binary":
                terms.append(F.binary_cross_entropy_with_logits(out[:, 0], y))
            else:
                terms.append(F.mse_loss(out[:, 0], (y - a.mean) / a.std))
        return torch.stack(terms).sum()

    # ------------------------------------------------------------------ files
    def save(self, path: Path) -> Path:
        meta = {"attributes": [a.__dict__ | {"classes": list(a.classes)} for a in self.attributes],
                "size": self.net.size, "width": self.net.body[0].out_channels}
        atomic_write_bytes(path.with_suffix(".json"), json_text(meta, indent=2).encode())
        state = {k: v.contiguous() for k, v in self.net.state_dict().items()}
        return atomic_write_bytes(path, save(state))

    @classmethod
    def load(cls, path: Path) -> TrainedExtractor:
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
            attributes = [Attribute(a["name"], a["kind"], tuple(a["classes"]), float(a["mean"]), float(a["std"]))
                          for a in meta["attributes"]]
            net = AttributeNet(outputs=sum(a.width for a in attributes), width=int(meta["width"]),
                               size=int(meta["size"]))
            net.load_state_dict(load_file(path))
        except Exception as e:  # noqa: BLE001 - a damaged or foreign file is one line
            raise ConfigError(f"{path}: not a usable attribute extractor ({e})") from None
        return cls(net, attributes)


def load_labelled_images(table: LabelTable, size: int) -> torch.Tensor:
    """The table's images as [N, 3, size, size] in [-1, 1]."""
    images = [F.interpolate(to_float(load_image(f, 3))[None], size=(size, size), mode="bilinear",
                            align_corners=False, antialias=True)[0] for f in table.files]
    return torch.stack(images)


def train_extractor(table: LabelTable, *, epochs: int = 6, batch_size: int = 64, lr: float = 1e-3,
                    size: int = 64, width: int = 32, seed: int = 0, holdout: float = 0.1) -> tuple[TrainedExtractor, dict]:
    """Train an extractor on the labelled images; returns it and its held-out scores (accuracy per binary and
    category attribute, R^2 per continuous one)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        images = load_labelled_images(table, size)
        order = torch.randperm(len(images), generator=gen)
        held = max(1, int(len(images) * holdout))
        test, train = order[:held], order[held:]
        extractor = TrainedExtractor(AttributeNet(outputs=sum(a.width for a in table.attributes), width=width,
                                                  size=size), table.attributes)
        optimizer = torch.optim.Adam(extractor.net.parameters(), lr=lr)
        for epoch in range(epochs):
            extractor.net.train()
            for chunk in train[torch.randperm(len(train), generator=gen)].split(batch_size):
                x = images[chunk]
                loss = extractor.loss(x, {k: v[chunk] for k, v in table.targets.items()})
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            print(f"extractor epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}", file=sys.stderr)
        extractor.net.eval()
    return extractor, held_out_scores(extractor, images[test], {k: v[test] for k, v in table.targets.items()})


def held_out_scores(extractor: TrainedExtractor, images: torch.Tensor, targets: dict[str, torch.Tensor]) -> dict:
    scores, classes = extractor.scores(images), extractor.classes(images)
    result = {}
    for a in extractor.attributes:
        y = targets[a.name]
        if a.kind == "category":
            result[a.name] = {"accuracy": float((classes[a.name] == y).float().mean())}
        elif a.kind == "binary":
            result[a.name] = {"accuracy": float(((scores[a.name] > 0.5).float() == y).float().mean())}
        else:
            residual = ((scores[a.name] - y) ** 2).sum() / ((y - y.mean()) ** 2).sum().clamp_min(1e-12)
            result[a.name] = {"r2": float(1 - residual)}
    return result


class ExtractorFeatures(nn.Module):
    """A trained extractor's pooled features of uint8 images, for FID/KID on them (``metrics.features``:
    ``{_target_: translate.latent.extractor.ExtractorFeatures, path: .../extractor.safetensors}``)."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.net = TrainedExtractor.load(Path(path)).net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.features(to_float(images))


class PixelExtractor:
    """Attributes computed from pixels (no training, no download)."""

    def __init__(self) -> None:
        self.score_names = list(PIXEL_ATTRIBUTES)
        self.attributes = [Attribute(n, "continuous") for n in PIXEL_ATTRIBUTES]
        self.pixel_features = PixelFeatures()

    def scores(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return pixel_attributes(images)

    def classes(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.pixel_features(images)
