"""Shared fixtures: offline W&B, a private demo cache and torch hub folder, tiny image folders and configs."""

from __future__ import annotations

import contextlib
import http.server
import os
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
# Tests never fetch metric weights (the download tests lift this against a local server).
os.environ["TRANSLATE_METRICS_DOWNLOAD"] = "never"

from helpers import tiny_overrides, write_image  # noqa: E402  (after the environment above)


def _private_env(name: str, path: Path):
    """Point environment variable ``name`` at ``path`` for the session, then restore it."""
    old = os.environ.get(name)
    os.environ[name] = str(path)
    yield path
    if old is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = old


@pytest.fixture(scope="session", autouse=True)
def demo_cache(tmp_path_factory) -> Path:
    """Keep the demo's rendered data out of the user's cache."""
    yield from _private_env("TRANSLATE_CACHE", tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session", autouse=True)
def empty_torch_hub(tmp_path_factory) -> Path:
    """No cached pretrained weights (LPIPS, Inception) from the user's machine: tests see what CI sees, and a
    test that wants weights puts stand-ins here."""
    yield from _private_env("TORCH_HOME", tmp_path_factory.mktemp("torch_home"))


@pytest.fixture
def aligned_root(tmp_path) -> Path:
    """root/{train,val}/{A,B}/NNN.png, 6 train and 2 val pairs of 40x36 images."""
    root = tmp_path / "aligned"
    for split, n, first in (("train", 6, 0), ("val", 2, 50)):  # distinct images: no leak between splits
        for i in range(n):
            write_image(root / split / "A" / f"{i:03d}.png", seed=first + i)
            write_image(root / split / "B" / f"{i:03d}.png", seed=100 + first + i)
    return root


@pytest.fixture
def unaligned_root(tmp_path) -> Path:
    """root/{trainA,trainB,valA,valB}: 5 A and 4 B training images."""
    root = tmp_path / "unaligned"
    for folder, n, first in (("trainA", 5, 200), ("trainB", 4, 300), ("valA", 2, 400), ("valB", 2, 500)):
        for i in range(n):
            write_image(root / folder / f"{i:03d}.png", seed=first + i)
    return root


@pytest.fixture
def tiny_cfg(tmp_path):
    """compose(...) with the tiny overrides and a run folder under tmp_path."""
    from omegaconf import open_dict

    from translate.config.compose import compose

    def make(*extra: str, run_dir: Path | None = None):
        cfg = compose(tiny_overrides(*extra))
        with open_dict(cfg):
            cfg.run_dir = str(run_dir or tmp_path / "run")
        return cfg

    return make


@pytest.fixture(scope="session")
def p2p_run(tmp_path_factory) -> Path:
    """A tiny pix2pix run (a 64 px U-Net on paired noise images), shared by the page and API tests."""
    from serving import paired_folder, train_tiny

    tmp = tmp_path_factory.mktemp("p2p_run")
    return train_tiny(tmp, "data=aligned", f"data.root={paired_folder(tmp / 'data')}", "generator=unet_64",
                      "data.load_size=64", "data.crop_size=64")


@pytest.fixture(scope="session")
def bicycle_run(tmp_path_factory) -> Path:
    """A tiny BicycleGAN run (style codes), shared by the page and API tests."""
    from serving import bicycle_tiny

    return bicycle_tiny(tmp_path_factory.mktemp("bicycle_run"))


@pytest.fixture(scope="session")
def gan_run(tmp_path_factory) -> Path:
    """A tiny noise GAN run (DCGAN on four random images), shared by the page and API tests."""
    from helpers import write_image
    from serving import train_tiny

    tmp = tmp_path_factory.mktemp("gan_run")
    for i in range(4):
        write_image(tmp / "images" / f"{i}.png", seed=i)
    return train_tiny(tmp, "model=gan", "data=single", f"data.root={tmp / 'images'}")


class FileHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from ``root`` with HTTP range support; ``cut_after`` bytes into the first full request it
    drops the connection (an interrupted download); ``delay`` seconds before answering (a dead network)."""

    root: Path
    cut_after: int | None = None
    delay: float = 0.0
    send_length: bool = True  # False: no Content-Length (the body ends when the connection closes)
    requests: ClassVar[list[str | None]] = []

    def do_GET(self):
        time.sleep(type(self).delay)
        path = self.root / self.path.lstrip("/")
        range_header = self.headers.get("Range")
        type(self).requests.append(range_header)
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(range_header.removeprefix("bytes=").split("-")[0]) if range_header else 0
        if start >= len(data) and range_header:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if range_header else 200)
        if range_header:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if type(self).send_length:
            self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if type(self).cut_after is not None and not range_header:
            self.wfile.write(body[: type(self).cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server of ``tmp_path/served``: (base URL, that folder, its handler class)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = type("Handler", (FileHandler,), {"root": served, "cut_after": None, "delay": 0.0, "requests": [],
                                          "send_length": True})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served, handler
    httpd.shutdown()
    httpd.server_close()
