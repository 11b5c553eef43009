"""Photos -> aligned sketch->photo datasets, the way edges2shoes/edges2handbags were made: an edge map of each
photo (A) beside the photo (B).

Two edge styles, both from kornia filters: ``canny`` (thin binary contours, like the HED/Canny edges of the
edges2* sets) and ``xdog`` (an eXtended Difference-of-Gaussians: soft pencil-like strokes). Lines are dark on
white, as in edges2shoes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import kornia
import numpy as np
import torch
import torch.nn.functional as F

from translate.core.errors import DataError
from translate.data.files import is_image_file, load_image, save_image
from translate.data.tools import building, fresh_output, split_counts, unique_names

LAYOUTS = ("AB", "folders")


@dataclass
class EdgeStyle:
    """How edges are drawn. ``canny``: ``low``/``high`` hysteresis thresholds on the gradient magnitude (of the
    image in [0, 1]) after a Gaussian of ``sigma``. ``xdog``: strokes where the DoG of ``sigma`` and
    ``1.6 * sigma`` falls below ``threshold``, ``sharpness`` sets how soft they are. ``thickness``: line width in
    pixels (dilation)."""

    style: str = "canny"
    sigma: float = 1.0
    low: float = 0.1
    high: float = 0.2
    threshold: float = -0.005
    sharpness: float = 200.0
    thickness: int = 1

    def __post_init__(self) -> None:
        if self.style not in ("canny", "xdog"):
            raise DataError(f"edge style {self.style!r} is not one of canny, xdog")
        if self.sigma <= 0 or self.thickness < 1 or not 0 <= self.low <= self.high:
            raise DataError(f"bad edge settings: sigma={self.sigma} (> 0), thickness={self.thickness} (>= 1), "
                            f"low={self.low} <= high={self.high}")


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = 2 * int(3 * sigma + 0.5) + 1  # +-3 sigma
    return kornia.filters.gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="replicate")


def edge_map(photo: torch.Tensor, style: EdgeStyle = EdgeStyle()) -> torch.Tensor:
    """Edge drawing of ``photo`` (float [N, 3 or 1, H, W] in [0, 1]) as [N, 1, H, W] in [0, 1], dark lines on
    white."""
    gray = kornia.color.rgb_to_grayscale(photo) if photo.shape[1] == 3 else photo
    if style.style == "canny":
        k = 2 * int(3 * style.sigma + 0.5) + 1
        _, edges = kornia.filters.canny(gray, style.low, style.high, (k, k), (style.sigma, style.sigma))
        ink = edges
    else:
        # XDoG (Winnemoeller et al. 2012): D = G_s - tau * G_1.6s; ink rises smoothly where D < threshold.
        dog = _gaussian(gray, style.sigma) - 0.98 * _gaussian(gray, 1.6 * style.sigma)
        ink = (-torch.tanh(style.sharpness * (dog - style.threshold))).clamp(min=0)
    if style.thickness > 1:
        kernel = torch.ones(style.thickness, style.thickness, device=ink.device)
        ink = kornia.morphology.dilation(ink, kernel)
    return (1 - ink).clamp(0, 1)


def _crops(photo: torch.Tensor, size: int | None, crops: int, rng: np.random.Generator) -> list[torch.Tensor]:
    """The pieces of one photo [3, H, W] to draw: the centred square resized to ``size`` (crops == 0), or
    ``crops`` random squares of random scale, each resized to ``size``; the whole photo when size is None."""
    if size is None:
        return [photo]
    _, h, w = photo.shape
    side = min(h, w)
    if crops <= 0:
        boxes = [((h - side) // 2, (w - side) // 2, side)]
    else:
        boxes = []
        for _ in range(crops):
            s = int(rng.integers(min(size, side), side + 1))
            boxes.append((int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1)), s))
    out = []
    for top, left, s in boxes:
        piece = photo[:, top : top + s, left : left + s].unsqueeze(0)
        if s != size:
            piece = F.interpolate(piece, size=(size, size), mode="bilinear", antialias=s > size, align_corners=False)
        out.append(piece[0].clamp(0, 1))
    return out


def _split_photos(photos: list[Path], ratios: tuple[float, float, float], seed: int) -> dict[str, list[Path]]:
    order = np.random.default_rng(seed).permutation(len(photos))
    n_train, n_val, _ = split_counts(len(photos), ratios)
    parts = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
    return {name: sorted(photos[i] for i in idx) for name, idx in parts.items()}


def _strips(photo: torch.Tensor, ratios: tuple[float, float, float]) -> dict[str, torch.Tensor]:
    """Side-by-side vertical strips of ``photo`` [C, H, W], one per split, as wide as its ratio."""
    w = photo.shape[2]
    x1 = round(ratios[0] * w)
    x2 = x1 + round(ratios[1] * w)
    strips = {"train": photo[:, :, :x1], "val": photo[:, :, x1:x2], "test": photo[:, :, x2:]}
    return {name: strip for name, strip in strips.items() if strip.shape[2] > 0}


def sketch(src: str | Path, out: str | Path, *, style: EdgeStyle = EdgeStyle(), size: int | None = 256,
           crops: int = 0, layout: str = "AB", ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
           holdout: str = "photo", seed: int = 0) -> dict[str, int]:
    """Write an aligned sketch->photo dataset from the photos under ``src`` (searched recursively).

    ``holdout='photo'`` splits the photos into train/val/test (by ``ratios``, deterministically by ``seed``), so
    crops of one photo never land in two splits. ``'region'`` (for a handful of large photos) cuts every photo
    into side-by-side strips as wide as the ratios and crops each split from its own strip: no val or test pixel
    is seen in training. ``layout='AB'`` writes side-by-side ``out/<split>/<name>.png`` (sketch left);
    ``'folders'`` writes ``out/<split>/A/<name>.png`` and ``out/<split>/B/<name>.png``. Returns pairs per split.
    """
    src, out = Path(src), Path(out)
    if layout not in LAYOUTS:
        raise DataError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if holdout not in ("photo", "region"):
        raise DataError(f"holdout {holdout!r} is not one of photo, region")
    if not src.is_dir():
        raise DataError(f"{src}: no such folder")
    fresh_output(out, src)
    photos = sorted(p for p in src.rglob("*") if p.is_file() and is_image_file(p))
    if not photos:
        raise DataError(f"{src}: no images")
    name_of = {path: "_".join(path.relative_to(src).with_suffix("").parts) for path in photos}
    unique_names(list(name_of.values()), photos)
    if holdout == "photo":
        assignment = [(split, path) for split, files in _split_photos(photos, ratios, seed).items() for path in files]
    else:
        _split_photos(photos, ratios, seed)  # validates the ratios
        assignment = [("*", path) for path in photos]
    rng = np.random.default_rng(seed)
    counts = {"train": 0, "val": 0, "test": 0}
    with building(out) as tmp:  # an aborted run leaves no partial dataset
        for split, path in assignment:
            photo = load_image(path, 3).float() / 255
            parts = {split: photo} if split != "*" else _strips(photo, ratios)
            for part_split, part in parts.items():
                counts[part_split] += _write_pairs(part, tmp / part_split, name_of[path], style=style, size=size,
                                                   crops=crops, layout=layout, rng=rng)
    return counts


def _write_pairs(photo: torch.Tensor, folder: Path, name: str, *, style: EdgeStyle, size: int | None, crops: int,
                 layout: str, rng: np.random.Generator) -> int:
    """The (drawing, photo) pairs of one photo or strip into ``folder``; returns how many."""
    pieces = _crops(photo, size, crops, rng)
    drawings = edge_map(torch.stack(pieces), style) if size else [edge_map(photo[None], style)[0]]
    for i, (piece, drawing) in enumerate(zip(pieces, drawings)):
        stem = f"{name}_{i:03d}" if crops > 0 else name
        a, b = drawing.expand(3, -1, -1) * 2 - 1, piece * 2 - 1
        if layout == "AB":
            save_image(torch.cat([a, b], dim=2), folder / f"{stem}.png")
        else:
            save_image(a, folder / "A" / f"{stem}.png")
            save_image(b, folder / "B" / f"{stem}.png")
    return len(pieces)
