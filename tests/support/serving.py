"""Helpers for the page tests: tiny runs of each kind of model and a real server on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import struct
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import torch
from helpers import tiny_overrides, write_image
from omegaconf import open_dict
from PIL import Image

from translate.apps.serve import ServeOptions, free_port, load_service, serving_in_thread
from translate.config.compose import compose
from translate.training.loop import fit


def train_tiny(tmp: Path, *overrides: str) -> Path:
    cfg = compose(tiny_overrides(*overrides, "trainer.max_steps=2", "trainer.val_every=0"))
    with open_dict(cfg):
        cfg.run_dir = str(tmp / "run")
    fit(cfg)
    return tmp / "run"


def paired_folder(root: Path, size: int = 64) -> Path:
    for split, n, first in (("train", 4, 0), ("val", 2, 10)):
        for i in range(n):
            write_image(root / split / "A" / f"{i}.png", seed=first + i, size=(size, size))
            write_image(root / split / "B" / f"{i}.png", seed=50 + first + i, size=(size, size))
    return root


def spread_weights(run: Path, part: str = "affine") -> None:
    """Two training steps leave G near its start: spread the weights named ``part`` so codes show."""
    from translate.config.checkpoint import atomic_save, load_checkpoint

    path = run / "checkpoints" / "last.pt"
    ckpt = load_checkpoint(path)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for k, v in ckpt["networks"]["G"].items():
            if v.is_floating_point() and part in k:
                v.add_(0.5 * torch.randn(v.shape, generator=g))
    atomic_save(ckpt, path)


def bicycle_tiny(tmp: Path) -> Path:
    """A 2-step AdaIN BicycleGAN run on 64x64 random pairs, its style weights spread so codes show."""
    run = train_tiny(tmp, "model=bicycle", "generator=bicycle_unet", "generator.z_inject=adain", "data=aligned",
                     f"data.root={paired_folder(tmp / 'data')}", "data.load_size=72", "data.crop_size=64",
                     "generator.num_downs=6", "model.encoder.nef=8", "model.encoder.n_blocks=3",
                     "data.batch_size=2", "generator.n_mlp=2", "generator.w_dim=16")
    spread_weights(run)
    return run


def save_random_axes(run: Path, names: tuple[str, ...], nz: int) -> None:
    """Attribute axes (random unit vectors in z) saved beside a noise GAN run, as ``translate axes`` saves them."""
    from translate.latent.axes import Axes, axes_folder

    g = torch.Generator().manual_seed(1)
    vectors = {n: torch.nn.functional.normalize(torch.randn(nz, generator=g), dim=0) for n in names}
    Axes(vectors, "z", {n: 1.0 for n in names}, {}).save(axes_folder(run))


@contextlib.contextmanager
def serving(checkpoint: str | Path, **options):
    """A server of ``checkpoint`` on a free 127.0.0.1 port in a thread: yields (base URL, service)."""
    service = load_service(str(checkpoint), ServeOptions(port=free_port(), **options))
    with serving_in_thread(service) as url:
        yield url, service


def post(url: str, payload: dict | bytes, content_type: str = "application/json") -> tuple[int, bytes, dict]:
    """(status, body, headers) of a POST; JSON payloads are encoded."""
    data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def send(url: str, method: str = "GET", body: bytes | None = None, **headers: str) -> tuple[int, bytes]:
    """(status, body) of a request whose headers are exactly ``headers`` (underscores as dashes) besides the ones
    http.client always sends: no Content-Type unless given, and ``Host`` as given (DNS rebinding)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body,
                           {k.replace("_", "-"): v for k, v in headers.items()})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height and holds almost nothing: a few dozen bytes whatever the size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))
