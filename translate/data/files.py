"""Image files: discovery, loading with clear errors, and atomic saving."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError
from torchvision.transforms.v2 import functional as TF
from torchvision.utils import make_grid

from translate.core.atomic import atomic_write
from translate.core.errors import DataError, first_line

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """Sorted image files in ``folder``; a clear error if it is missing or holds no images."""
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and is_image_file(p))
    if not files:
        raise DataError(f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def check_header(path: Path) -> str | None:
    """Cheap validity check reading only the header: None if fine, else the reason (without the file name).

    It opens the file as ``open_image`` does, so a file it passes is not refused later for its pixel count, and a
    decompression bomb is one more unreadable file rather than an exception that stops the dataset."""
    try:
        with open_image(path):
            pass
    except DataError as e:
        return str(e).removeprefix(f"{path}: ")
    return None


def filter_readable(items: list, what: str) -> list:
    """Drop the files, or the pairs of files (tuples, e.g. an A and its B: both or neither), whose header cannot be
    read, warning once per unreadable file (and what else of its pair is dropped) and once with the count."""
    good = []
    bad = 0
    for item in items:
        group = tuple(dict.fromkeys(item if isinstance(item, tuple) else (item,)))  # a side-by-side AB file once
        reasons = {f: reason for f in group if (reason := check_header(f)) is not None}
        if not reasons:
            good.append(item)
            continue
        bad += 1
        rest = [str(f) for f in group if f not in reasons]
        also = f"; so is its pair {', '.join(rest)}" if rest else ""
        for f, reason in reasons.items():
            warnings.warn(f"{f}: skipped, {reason}{also}", stacklevel=2)
    kind = "pairs" if any(isinstance(item, tuple) for item in items) else "files"
    if bad:
        warnings.warn(f"{what}: skipped {bad} of {len(items)} {kind} that could not be read", stacklevel=2)
    if not good:
        raise DataError(f"{what}: none of the {len(items)} image {kind} could be read")
    return good


def check_pixels(path: str | Path, width: int, height: int) -> None:
    """Refuse an image of more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``, read now so that a caller (or a test)
    can change it. It is the one limit for every decoder: Pillow only warns between one and two times the limit
    and pypng has none, so a small file declaring a huge size would otherwise take all memory before failing."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise DataError(f"{path}: {width}x{height} image ({width * height:,} pixels) is over the limit of "
                        f"{limit:,} pixels (a decompression bomb?); PIL.Image.MAX_IMAGE_PIXELS sets the limit")


def _out_of_memory(path: str | Path) -> str:
    """The reason for a MemoryError (which has no message): the image size from the header when it reads."""
    try:
        with Image.open(path) as im:
            width, height = im.size
    except Exception:  # noqa: BLE001 - only a nicer message is lost
        return "out of memory decoding the image"
    return f"out of memory decoding {width}x{height} image"


@contextmanager
def image_errors(path: str | Path) -> Iterator[None]:
    """Turn whatever a decoder raises for ``path`` into a one-line DataError naming the file (and never an empty
    reason: a MemoryError says so, other message-less errors give their type via ``first_line``)."""
    try:
        if Path(path).stat().st_size == 0:
            raise DataError(f"{path}: empty file")
        yield
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image or an unsupported format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # the warning under -W error
        raise DataError(f"{path}: {first_line(e)}; PIL.Image.MAX_IMAGE_PIXELS sets the limit") from None
    except MemoryError:
        raise DataError(f"{path}: {_out_of_memory(path)}") from None
    except Exception as e:  # noqa: BLE001 - decoders raise many types for damaged files
        raise DataError(f"{path}: cannot decode image ({first_line(e)})") from None


@contextmanager
def open_image(path: str | Path) -> Iterator[Image.Image]:
    """``Image.open`` with every failure a one-line DataError and the pixel limit checked on the header, before
    any pixel is decoded. Use it wherever a dataset file is opened, so all tools agree on what is readable."""
    with image_errors(path), Image.open(path) as im:
        check_pixels(path, *im.size)
        yield im


def load_image(path: str | Path, channels: int) -> torch.Tensor:
    """Load an image as a uint8 tensor [C, H, W] with ``channels`` 1 (grayscale) or 3 (RGB).

    EXIF orientation is applied; 16-bit and float images are scaled to 8 bits; transparent images (RGBA, LA,
    palette with transparency) are laid on white, as product photos and drawings are. Raises DataError naming
    the file.
    """
    if channels not in (1, 3):
        raise DataError(f"{path}: {channels} channels requested; images must be loaded with 1 or 3 channels")
    with open_image(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            # 16-bit: scale to 8 bits rather than letting PIL clip.
            im = im.point(lambda v: v / 256).convert("L")
        elif im.mode == "F":  # float: [0, 1] (most tools) or already [0, 255]
            _, high = im.getextrema()
            im = im.point(lambda v: v * 255 + 0.5) if high <= 1.0 else im  # +0.5: L rounds down
            im = im.convert("L")
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            im = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im.alpha_composite(rgba)
        im = im.convert("L" if channels == 1 else "RGB")
        return TF.pil_to_tensor(im)


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """The rows of a CSV file (a labels file) as dicts by column name. A UTF-8 byte-order mark, which Excel's
    "CSV UTF-8" writes, is not part of the first column's name; an unreadable file is a one-line DataError."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: not a readable CSV file ({first_line(e)})") from None


def to_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return image.float().div_(127.5).sub_(1.0)


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]."""
    return ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def save_image(image: torch.Tensor, path: str | Path) -> Path:
    """Save a [-1, 1] float or uint8 tensor [C, H, W] atomically, in the format of the file suffix."""
    if image.dtype != torch.uint8:
        image = to_uint8(image)
    pil = TF.to_pil_image(image.cpu())
    fmt = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    return atomic_write(path, lambda f: pil.save(f, format=fmt))


GRID_PADDING = 2


def sample_grid(columns: list[torch.Tensor], labels: list[str] | None = None) -> torch.Tensor:
    """Interleave columns [N, C, H, W] x K into a grid of N rows and K columns, in [-1, 1]; ``labels`` (one per
    column) are written above their columns."""
    n = columns[0].shape[0]
    tiles = torch.stack(columns, dim=1).reshape(n * len(columns), *columns[0].shape[1:])
    grid = make_grid(tiles.float().cpu(), nrow=len(columns), padding=GRID_PADDING, pad_value=1.0)
    if not labels:
        return grid
    if len(labels) != len(columns):
        raise ValueError(f"{len(labels)} labels for {len(columns)} columns")
    return torch.cat([column_labels(labels, columns[0].shape[-1], grid.shape[-1]), grid], dim=1)


def column_labels(labels: list[str], tile_width: int, width: int) -> torch.Tensor:
    """A white strip [3, h, width] in [-1, 1] with each label centred over its column of a ``sample_grid``
    (shortened with an ellipsis to fit its column)."""
    font = ImageFont.load_default(size=13)
    strip = Image.new("RGB", (width, 20), "white")
    draw = ImageDraw.Draw(strip)
    for k, label in enumerate(labels):
        text = label
        while len(text) > 1 and draw.textlength(text, font=font) > tile_width:
            text = text[:-2] + "…"
        left = GRID_PADDING + k * (tile_width + GRID_PADDING)
        draw.text((left + tile_width / 2, 10), text, fill="black", font=font, anchor="mm")
    return torch.from_numpy(np.array(strip)).permute(2, 0, 1).float() / 127.5 - 1
