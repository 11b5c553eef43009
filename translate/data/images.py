"""Reading images for inference with what they carry (alpha, 16-bit depth) and writing results back alike."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import png
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from translate.data.files import check_pixels, image_errors, open_image

ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}
SIXTEEN_BIT_FORMATS = {"PNG", "TIFF"}


@dataclass
class Picture:
    """Pixels as uint8 or uint16 [C, H, W] with C in 1 (gray) or 3 (RGB), plus the alpha plane if any."""

    pixels: torch.Tensor
    alpha: torch.Tensor | None

    @property
    def bits(self) -> int:
        return 16 if self.pixels.dtype == torch.uint16 else 8

    @property
    def size(self) -> tuple[int, int]:
        return int(self.pixels.shape[-2]), int(self.pixels.shape[-1])


def _split(array: torch.Tensor) -> Picture:
    c = array.shape[0]
    if c in (2, 4):
        return Picture(array[:-1].contiguous(), array[-1:].contiguous())
    return Picture(array, None)


def _read_pil(path: Path) -> Picture:
    with open_image(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            a = np.asarray(im, dtype=np.int64).clip(0, 65535).astype(np.uint16)
            return Picture(torch.from_numpy(a.copy()).unsqueeze(0), None)
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif im.mode not in ("L", "LA", "RGB", "RGBA"):
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        a = np.asarray(im)
        a = a[..., None] if a.ndim == 2 else a
        return _split(torch.from_numpy(a.copy()).permute(2, 0, 1))


def _png_header(path: Path) -> tuple[int, int, int, int] | None:
    """(width, height, bit depth, colour type) from a PNG's IHDR chunk, or None for anything else."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"), head[24], head[25]


def _png_is_deep_colour(path: Path) -> bool:
    """A 16-bit PNG with colour or alpha (IHDR bit depth 16, colour type 2/4/6): Pillow would cut it to 8 bits."""
    header = _png_header(path)
    return header is not None and header[2] == 16 and header[3] in (2, 4, 6)


def _read_png16(path: Path) -> Picture:
    width, height, _, _ = _png_header(path)
    check_pixels(path, width, height)  # pypng has no limit of its own: a tiny file could ask for gigabytes
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    a = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, info["planes"])
    x = torch.from_numpy(a).permute(2, 0, 1)
    with open_image(path) as im:
        orientation = im.getexif().get(0x0112, 1)
    return _split(_orient(x, orientation).contiguous())


def _orient(x: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply an EXIF orientation to [C, H, W] pixels, as ``ImageOps.exif_transpose`` does for PIL images."""
    ops = {
        2: lambda t: t.flip(-1),
        3: lambda t: t.flip(-1, -2),
        4: lambda t: t.flip(-2),
        5: lambda t: t.transpose(-1, -2),
        6: lambda t: torch.rot90(t, k=-1, dims=(-2, -1)),
        7: lambda t: t.transpose(-1, -2).flip(-1, -2),
        8: lambda t: torch.rot90(t, k=1, dims=(-2, -1)),
    }
    return ops.get(orientation, lambda t: t)(x)


def read_picture(path: str | Path) -> Picture:
    """Decode any image: EXIF orientation applied; palette expanded; alpha split off; 16-bit kept."""
    path = Path(path)
    with image_errors(path):
        if path.suffix.lower() == ".png" and _png_is_deep_colour(path):
            return _read_png16(path)
        return _read_pil(path)


def picture_size(path: str | Path) -> tuple[int, int]:
    """(height, width) after EXIF orientation, from the header alone."""
    with open_image(path) as im:
        w, h = im.size
        if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 degrees on display
            w, h = h, w
        return h, w


def resize_images(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Images [N, C, H, W] in [-1, 1] at ``size`` (height, width): bicubic, antialiased when shrinking,
    clamped to the range (bicubic overshoots)."""
    return F.interpolate(x.float(), size=size, mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)


def to_model_input(picture: Picture, channels: int) -> torch.Tensor:
    """float [-1, 1] with the model's channel count (RGB -> luma, or gray repeated)."""
    x = picture.pixels.to(torch.float32) / (65535.0 if picture.bits == 16 else 255.0)
    if x.shape[0] == 3 and channels == 1:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
    elif x.shape[0] == 1 and channels == 3:
        x = x.expand(3, -1, -1)
    return x * 2 - 1


def quantize(x: torch.Tensor, bits: int) -> np.ndarray:
    """float [-1, 1] [C, H, W] -> uint8/uint16 array [H, W, C]."""
    top = 65535.0 if bits == 16 else 255.0
    q = ((x.float().clamp(-1, 1) + 1) * (top / 2)).round()
    return q.to(torch.int32).permute(1, 2, 0).numpy().astype(np.uint16 if bits == 16 else np.uint8)


def encode(
    image: torch.Tensor, alpha: torch.Tensor | None, fmt: str, *, bits: int = 8, quality: int = 95
) -> bytes:
    """Encode a [-1, 1] result [C, H, W] (C = 1 or 3) with an optional alpha plane (uint8/uint16 [1, H, W])."""
    if fmt not in SIXTEEN_BIT_FORMATS:
        bits = 8
    if fmt not in ALPHA_FORMATS:
        alpha = None
    pixels = quantize(image, bits)
    if alpha is not None:
        a = alpha.permute(1, 2, 0).numpy()
        if a.dtype == np.uint16 and bits == 8:
            a = (a.astype(np.uint32) // 257).astype(np.uint8)
        elif a.dtype == np.uint8 and bits == 16:
            a = a.astype(np.uint16) * 257
        pixels = np.concatenate([pixels, a.astype(pixels.dtype)], axis=2)
    channels = pixels.shape[2]
    buf = io.BytesIO()
    if bits == 16 and not (channels == 1):
        if fmt == "PNG":

            writer = png.Writer(width=pixels.shape[1], height=pixels.shape[0], greyscale=channels <= 2,
                                alpha=channels in (2, 4), bitdepth=16)
            writer.write(buf, pixels.reshape(pixels.shape[0], -1).tolist())
            return buf.getvalue()
        pixels = (pixels // 257).astype(np.uint8)  # 16-bit colour TIFF: Pillow writes 8 bits only
    # Pillow picks the mode from the array: uint16 [H, W] -> I;16, uint8 [H, W, 2|3|4] -> LA/RGB/RGBA.
    pil = Image.fromarray(np.ascontiguousarray(pixels[..., 0] if channels == 1 else pixels))
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    pil.save(buf, format=fmt, **options)
    return buf.getvalue()
