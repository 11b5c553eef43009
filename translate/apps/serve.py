"""Draw and translate in the browser: ``translate serve checkpoint=... [port=8000] [host=127.0.0.1]``.

A small Starlette app (``pip install -e ".[serve]"``) for any checkpoint the framework loads (ours, reference
``.pth``, safetensors, ``pretrained:NAME``):

- ``GET /`` the page: a canvas to draw on (ink, width and background as the training sketches), image upload,
  the output with a download link; style codes (``model=bicycle``): new style, truncation, reference photo,
  attribute sliders from saved axes; noise generators (``model=gan``): seed, truncation, sliders.
- ``POST /api/translate``: JSON ``{"image": base64 or data URL, "reference", "seed", "truncation", "edits",
  "resize"}`` (``Content-Type: application/json``), or the raw image as the body (``Content-Type: image/*``;
  the settings as query parameters) -> PNG. Images go through ``infer.py``'s padding and tiling.
- ``POST /api/generate`` (noise generators): JSON ``{"seed", "truncation", "edits"}`` -> PNG.
- ``GET /api/info`` what the page shows and needs; ``GET /api/example/N`` (PNG) the N-th example input, a few of
  the run's validation images; ``GET /healthz``.
- ``guard=RUN`` (``translate.inference.guard``): every translated input is scored by an autoencoder of the model's
  input domain; the answer carries ``X-Guard-Score``, ``X-Guard-Threshold``, ``X-Guard-Flagged`` and the page
  shows a warning beside an output whose input looks out of domain.
- An inpainting model (``data.corruptions=[mask]``) fills an upload's transparent pixels (``translate.data.inpainting``).

Safe by default: binds 127.0.0.1 (another host is printed as a warning); answers only requests whose ``Host``
names this server and whose ``Origin`` is its own page (``allowed_hosts`` adds names), and only the content types
above (415 otherwise: a form or text/plain is what another web page can send unasked); request bodies are
limited, and so is every image the model runs on, counted after ``resize`` and padding from the upload's header
before any work (``max_pixels``, ``max_aspect``); a bad image is answered 400 with the reason; one model call
runs at a time with at most ``queue`` requests waiting (more are answered 503); the client never names a file
and no answer shows a path.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import re
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

import torch
from omegaconf import OmegaConf
from PIL import Image, UnidentifiedImageError

from translate.config.compose import hydra_command
from translate.core.errors import ConfigError, DataError, TranslateError, first_line
from translate.core.runtime import resolve_device
from translate.core.schema import Count, InferencePrecision, Positive, Range, check_dataclass
from translate.data.images import encode, read_picture, to_model_input
from translate.data.inpainting import composited, hole_mask, inpainting_input, remasked
from translate.data.labels import LabelEncoding, Palette, class_colours
from translate.data.semantic import label_encoding
from translate.evaluation.evaluate import validation_inputs
from translate.inference.convert import (
    FAR,
    InferOptions,
    Translator,
    backend_generator,
    resize_for_model,
    resize_labels,
    resized_size,
    torch_precision,
)
from translate.inference.guard import Guard, GuardOptions, load_guard
from translate.inference.openvino import cache_for
from translate.latent.axes import load_axes
from translate.latent.sampling import LatentEdit, Sampler
from translate.latent.styles import as_code, encoder_input, is_styled
from translate.loading.load import load
from translate.loading.pipeline import Pipeline
from translate.models.base import fixed_latents, takes_style
from translate.models.gan import LATENT
from translate.networks.layers import generator_channels

PAGE = Path(__file__).with_name("page.html")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")
MAX_RESIZE = 2048
MAX_ASPECT = 16.0
MEDIA_TYPES = "application/json or the image itself (image/png, image/jpeg, ...)"


class Refused(TranslateError):
    """A request the server will not serve: answered ``status`` with this message (one line)."""

    status: ClassVar[int] = 400
    headers: ClassVar[dict[str, str]] = {}


class BadRequest(Refused):
    """The client sent something unusable: answered 400 with this message."""


class RequestTooLarge(Refused):
    """A body over the upload limit: answered 413 before it is read further."""

    status = 413


class UnsupportedMediaType(Refused):
    """A body of a type the API does not document (a form or text/plain, which another web page may send)."""

    status = 415


class Busy(Refused):
    """Too many requests are waiting for the model: answered 503."""

    status = 503
    headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}


@dataclass
class ServeOptions:
    """``conf/serve.yaml`` besides the checkpoint (see that file for each setting)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Range(0, 65535)] = 8000
    max_upload_mb: Annotated[float, Range(0.01, 1024)] = 10.0
    max_pixels: Positive = 4_194_304
    max_aspect: Annotated[float, Range(1, 1000)] = MAX_ASPECT
    queue: Count = 4
    device: str = "auto"
    precision: InferencePrecision = "fp32"
    backend: Literal["torch", "openvino"] = "torch"
    calibration: str | None = None  # backend=openvino precision=int8: a folder of inputs to calibrate on
    cache: str | None = None  # backend=openvino: where exported graphs are kept
    norm_mode: Literal["auto", "eval", "train"] = "auto"
    tile_size: Positive = 1024
    tile_overlap: Count = 128
    allowed_hosts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_dataclass(vars(self), ServeOptions, "")
        if not all(isinstance(h, str) and h for h in self.allowed_hosts):
            raise ConfigError(f"allowed_hosts={self.allowed_hosts!r}: a list of host names (or [\"*\"] for any)")

    @classmethod
    def from_config(cls, cfg) -> ServeOptions:
        values = {f.name: cfg[f.name] for f in fields(cls) if f.name in cfg}
        return cls(**{k: OmegaConf.to_object(v) if OmegaConf.is_config(v) else v for k, v in values.items()})

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * (1 << 20))


@dataclass
class Answer:
    """A PNG and the headers that go with it (the guard's score)."""

    image: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    """One translation or generation: the image (None for noise generators) and the style settings."""

    image: bytes | None = None
    reference: bytes | None = None
    seed: int | None = None
    truncation: float = 1.0
    edits: dict[str, float] = field(default_factory=dict)
    resize: int | None = None


# ----------------------------------------------------------------------------------------------- requests
def _b64(value: Any, key: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key}: a base64 string or data URL")
    try:
        return base64.b64decode(value.split(",", 1)[1] if value.startswith("data:") else value, validate=True)
    except (binascii.Error, ValueError, IndexError):
        raise BadRequest(f"{key}: not valid base64") from None


def _number(value: Any, key: str, kind: type, low: float, high: float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{key}={value!r}: a number") from None
    if not low <= number <= high:  # NaN fails this too
        raise BadRequest(f"{key}={value!r}: must be in [{low}, {high}]")
    return number


def parse_request(settings: dict[str, Any], image: bytes | None = None) -> Request:
    """A Request from JSON (``image``/``reference`` base64) or from query parameters with a raw ``image``."""
    unknown = sorted(set(settings) - {"image", "reference", "seed", "truncation", "edits", "resize"}
                     - {k for k in settings if k.startswith("edit.")})
    if unknown:
        raise BadRequest(f"{unknown[0]}: not a setting (image, reference, seed, truncation, edits, resize)")
    edits = settings.get("edits") or {}
    if not isinstance(edits, dict):
        raise BadRequest("edits: an object of axis name -> standard deviations")
    edits = {**edits, **{k.removeprefix("edit."): v for k, v in settings.items() if k.startswith("edit.")}}
    seed, resize = settings.get("seed"), settings.get("resize")
    return Request(
        image=image if image is not None else _b64(settings.get("image"), "image"),
        reference=_b64(settings.get("reference"), "reference"),
        seed=None if seed in (None, "") else _number(seed, "seed", int, 0, 2**31 - 1),
        truncation=_number(settings.get("truncation", 1.0), "truncation", float, 0.0, 2.0),
        edits={str(k): _number(v, f"edits.{k}", float, -10.0, 10.0) for k, v in edits.items()},
        resize=None if resize in (None, "") else _number(resize, "resize", int, 1, MAX_RESIZE),
    )


def image_size(data: bytes | None, key: str, max_pixels: int, max_aspect: float = MAX_ASPECT) -> tuple[int, int, str]:
    """(width, height, format) of an upload from its header alone; a BadRequest when it is empty, not an image,
    over ``max_pixels`` or longer than ``max_aspect``:1, before any pixel is decoded."""

    if not data:
        raise BadRequest(f"{key}: empty upload")
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height, fmt = *im.size, im.format or "PNG"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # past Pillow's own limit
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(pixels[1]):,} pixels" if pixels else "the image"
        raise BadRequest(f"{key}: {size} is over the limit of {max_pixels:,} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise BadRequest(f"{key}: not an image or an unsupported format (PNG, JPEG, WebP, TIFF, BMP, ...)") from None
    if width * height > max_pixels:
        raise BadRequest(f"{key}: {width}x{height} is over the limit of {max_pixels:,} pixels")
    if max(width, height) > max_aspect * min(width, height):
        ratio = f"{max(width, height) / min(width, height):.1f}".removesuffix(".0")
        raise BadRequest(f"{key}: {width}x{height} image: {ratio}:1 is beyond the aspect limit of {max_aspect:g}:1")
    return width, height, fmt


def decode_image(data: bytes | None, channels: int, max_pixels: int, inpaints: bool = False, *, key: str = "image",
                 max_aspect: float = MAX_ASPECT) -> torch.Tensor:
    """An uploaded image as [1, C, H, W] in [-1, 1] (EXIF orientation, palettes and 16-bit as ``infer.py``
    reads them); a BadRequest (naming ``key``) for anything else, over ``max_pixels`` or ``max_aspect`` before
    any pixel is decoded. ``inpaints``: for an inpainting model, the image with its transparent pixels as the
    holes (``translate.data.inpainting``)."""
    fmt = image_size(data, key, max_pixels, max_aspect)[2]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload.{fmt.lower()}"
        path.write_bytes(data)
        try:
            picture = read_picture(path)
        except DataError as e:
            raise BadRequest(f"{key}: {str(e).removeprefix(f'{path}: ')}") from None
    if inpaints:
        return inpainting_input(to_model_input(picture, channels - 1), transparent_holes(picture))[None]
    return to_model_input(picture, channels)[None]


def transparent_holes(picture) -> torch.Tensor:
    """An upload's holes for an inpainting model: its transparent pixels."""
    if picture.alpha is None:
        raise BadRequest("image: this model fills holes: upload a PNG or WebP with the holes erased to transparency")
    return hole_mask(picture, Path("image"), None)[0]


def png(image: torch.Tensor) -> bytes:
    return encode(image.cpu(), None, "PNG")


# ----------------------------------------------------------------------------------------------- the model
def _saved_axes(checkpoint: str):
    """The attribute axes saved beside an own checkpoint (``translate.latent.axes``), or None."""

    if str(checkpoint).startswith("pretrained:"):
        return None
    try:
        return load_axes(checkpoint)
    except TranslateError:  # none saved (or a reference file, which has no run folder)
        return None


class ModelService:
    """The loaded generator and what one request needs of it; ``call`` runs one model call at a time and
    refuses (Busy) beyond ``queue`` waiting requests."""

    def __init__(self, loaded: Pipeline, checkpoint: str, options: ServeOptions, guard: Guard | None = None):
        self.loaded, self.checkpoint, self.options, self.guard = loaded, str(checkpoint), options, guard
        self.G = loaded.module
        self.device = resolve_device(options.device)
        self.kind = "noise" if loaded.translation.source == LATENT else "style" if takes_style(self.G) else "translation"
        self.axes = _saved_axes(self.checkpoint)
        self.labels = served_labels(loaded)  # label-map models: how the page's painted maps are read
        self.examples, self.no_examples = example_images(loaded, self.kind != "noise", self.labels)
        norm_mode = loaded.norm_mode if options.norm_mode == "auto" else options.norm_mode
        self.backend = ""  # what runs the generator when not torch
        if self.kind == "noise":
            self.backend_generator(norm_mode)  # refuses anything but torch
            self.sampler = Sampler(self.G, device=self.device)
        else:
            G, self.backend = self.backend_generator(norm_mode)
            self.translator = Translator(G, device=self.device, precision=torch_precision(options.backend, options.precision),
                                         norm_mode=norm_mode, tile_size=options.tile_size,
                                         tile_overlap=options.tile_overlap, label_maps=self.labels is not None)
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(options.queue + 1)

    def backend_generator(self, norm_mode: str) -> tuple[torch.nn.Module, str]:
        """The generator as ``options.backend`` runs it (``translate.inference.convert.backend_generator``), and the
        line that says so (empty for torch)."""
        o = self.options
        if o.backend == "torch" and o.precision != "int8":
            return self.G, ""
        if self.kind != "translation":
            raise ConfigError(f"backend={o.backend}: the page serves this {self.kind} model with backend=torch only")
        if o.precision == "int8" and not o.calibration:
            raise ConfigError("precision=int8 on the page needs calibration=DIR: a folder of inputs like the uploads")
        infer = InferOptions(backend=o.backend, precision=o.precision, calibration=o.calibration, norm_mode=norm_mode,
                             cache=cache_for(self.checkpoint, o.cache), tile_size=o.tile_size)
        return backend_generator(self.G, infer, self.device, [], self.labels)

    def call(self, fn, *args):
        """``fn(*args)`` under the model lock; Busy at once when ``queue`` requests already wait."""
        if not self._slots.acquire(blocking=False):
            raise Busy(f"busy: {self.options.queue} requests are already waiting; try again in a moment")
        try:
            with self._lock, torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)  # dropout in train mode: the same drawing gives the same output
                return fn(*args)
        finally:
            self._slots.release()

    # -------------------------------------------------------------------------------------------- requests
    def edits(self, request: Request) -> list[LatentEdit]:
        if not request.edits:
            return []
        if self.axes is None:
            raise BadRequest("edits: this model has no saved axes (translate axes)")
        try:
            return self.axes.edits(request.edits, self.G)
        except ConfigError as e:
            raise BadRequest(str(e)) from None

    def translate(self, request: Request) -> Answer:
        """The PNG of one image translated (with the request's style, for generators that take one) and, with
        a guard, the input's out-of-domain score."""
        if self.kind == "noise":
            raise BadRequest("this model generates from noise: POST /api/generate")
        self.check_sizes(request)
        inpaints = self.translator.inpaints
        if self.labels is not None:
            x = self.label_input(request)
        else:
            x = decode_image(request.image, self.translator.in_channels, self.options.max_pixels, inpaints,
                             max_aspect=self.options.max_aspect)
            if request.resize is not None:
                x = resize_for_model(x[0], request.resize, keep_aspect=True)[None]
                x = remasked(x) if inpaints else x

        def work() -> Answer:
            code = self.style_code(request) if self.kind == "style" else None
            headers = self.guard_headers(x) if self.guard is not None else {}
            out = self.translator(x, code)[0]
            return Answer(png(composited(out, x[0].to(out.device)) if inpaints else out), headers)

        return self.call(work)

    def label_input(self, request: Request) -> torch.Tensor:
        """A painted or uploaded label map (the palette's colours, or class indices) as the model's input [1, C, H,
        W]: read exactly as training and ``infer`` read maps (no resampling but nearest-neighbour)."""
        fmt = image_size(request.image, "image", self.options.max_pixels, self.options.max_aspect)[2]
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"map.{fmt.lower()}"
            path.write_bytes(request.image)
            try:
                labels = self.labels.read(path)
            except DataError as e:
                raise BadRequest(f"image: {str(e).removeprefix(f'{path}: ')}") from None
        if request.resize is not None:
            labels = resize_labels(labels, request.resize, keep_aspect=True)
        return self.labels.encode(labels)[None]

    def check_sizes(self, request: Request) -> None:
        """Refuse, from the headers alone and before any work, uploads that would make a tensor over the pixel
        limit: the image as the network runs it (resized, then padded to its stride; tiles are no larger) and
        the reference photo (resized to the encoder's square input)."""
        limit, aspect = self.options.max_pixels, self.options.max_aspect
        width, height, _ = image_size(request.image, "image", limit, aspect)
        if request.reference is not None:
            image_size(request.reference, "reference", limit, aspect)
        h, w = (height, width) if request.resize is None else resized_size(height, width, request.resize, True)
        H, W = self.translator.padded_size(h, w)
        if H * W > limit:
            resized = f"resized to {request.resize} on its shorter side and " if request.resize else ""
            raise BadRequest(f"image: {width}x{height} image becomes {W}x{H} ({W * H:,} pixels) when {resized}"
                             f"padded for the network (stride {self.translator.stride}): over the limit of "
                             f"{limit:,} pixels")

    def guard_headers(self, x: torch.Tensor) -> dict[str, str]:
        score = float(self.guard.scores(x)[0])
        return {"X-Guard-Score": f"{score:.4f}", "X-Guard-Threshold": f"{self.guard.threshold:.4f}",
                "X-Guard-Flagged": "1" if self.guard.flagged(score) else "0"}

    def style_code(self, request: Request) -> torch.Tensor | None:
        """The code of the request: the reference photo's (E's mean), the seed's, or the mean style (None)."""
        edits = self.edits(request)
        if request.reference is None and request.seed is None and not edits and request.truncation == 1.0:
            return None
        if request.reference is not None:
            z = self.reference_code(request.reference)
        elif request.seed is not None:
            z = fixed_latents(1, int(self.G.nz), request.seed)[0]
        else:
            z = torch.zeros(int(self.G.nz))
        return as_code(self.G, z.to(self.device), request.truncation, edits)

    def reference_code(self, data: bytes) -> torch.Tensor:
        E = self.loaded.style_encoder
        if E is None:
            raise BadRequest("reference: this checkpoint has no style encoder")
        x = decode_image(data, generator_channels(self.G)[1], self.options.max_pixels, key="reference",
                         max_aspect=self.options.max_aspect)
        with torch.no_grad():
            return E.to(self.device)(encoder_input(x, self.input_size).to(self.device))[0][0]

    def generate(self, request: Request) -> bytes:
        if self.kind != "noise":
            raise BadRequest("this model translates images: POST /api/translate")
        if request.image is not None or request.reference is not None or request.resize is not None:
            raise BadRequest("image, reference, resize: this model generates from noise and takes no image")
        try:
            sampler = Sampler(self.G, truncation=request.truncation, seed=request.seed or 0,
                              edits=self.edits(request), device=self.device)
        except ConfigError as e:
            raise BadRequest(str(e)) from None
        return self.call(lambda: Answer(png(sampler.images(sampler.latents(1))[0])))

    # -------------------------------------------------------------------------------------------- info
    @property
    def input_size(self) -> int:
        """The side the model was trained at: the page's canvas and what ``resize`` fits uploads to."""
        return self.loaded.size

    def info(self) -> dict[str, Any]:
        """What the page shows and needs: the model, its direction and input size, the canvas, the controls."""
        t, p = self.loaded.translation, self.loaded.pretrained
        about = p.about if p else _describe(self.loaded.config)
        result: dict[str, Any] = {
            "model": self.loaded.name or file_name(self.checkpoint), "family": self.loaded.family, "about": about,
            "kind": self.kind, "examples": len(self.examples),
            "direction": "noise -> image" if self.kind == "noise" else f"{t.source} -> {t.target}",
            "input_size": self.input_size, "far": FAR,
            "limits": {"max_upload_bytes": self.options.max_bytes, "max_pixels": self.options.max_pixels,
                       "max_aspect": self.options.max_aspect},
            "axes": [{"name": n, "std": self.axes.stds[n]} for n in sorted(self.axes.vectors)] if self.axes else [],
        }
        if self.kind != "noise":
            result["canvas"] = self.canvas()
            result["inpaints"] = bool(self.translator.inpaints)
        if self.labels is not None:
            p = self.labels.palette
            result["labels"] = {"names": list(p.names), "colours": ["#%02x%02x%02x" % c for c in p.colours],
                                "dont_care": self.labels.dont_care is not None}
        if self.kind == "style":
            result["styles"] = {"nz": int(self.G.nz), "reference": self.loaded.style_encoder is not None,
                                "per_level": is_styled(self.G)}
        if self.guard is not None:
            result["guard"] = {"checkpoint": file_name(self.guard.source), "threshold": self.guard.threshold}
        return result

    def canvas(self) -> dict[str, Any]:
        """Ink, background and pen width (in model pixels) of drawings like the training sketches: black
        lines on white, about 1 px at 64 and 3 px at 256 (the demo's outlines, HED edges of edges2shoes)."""
        p = self.loaded.pretrained
        ink, background = p.canvas if p and p.canvas else ("#000000", "#ffffff")
        return {"ink": ink, "background": background, "width": max(1, round(self.input_size / 100)),
                "drawing": bool(p.canvas) if p else _trained_on_sketches(self.loaded.config)}


EXAMPLES = 6


def served_labels(loaded: Pipeline) -> LabelEncoding | None:
    """How the page reads a label-map model's input: the run's encoding with a palette for every class (the
    run's own, or distinct colours) and, for don't-care, black."""
    encoding = label_encoding(loaded.config.data) if loaded.config is not None else None
    if encoding is None or encoding.zero_is_dont_care:
        return None
    palette = encoding.palette or class_colours(encoding.label_nc)
    if encoding.dont_care is not None:
        palette = Palette((*palette.names, "don't care"), (*palette.colours, (0, 0, 0)))
    return replace(encoding, palette=palette, dont_care=None if encoding.dont_care is None else -1)


def example_images(loaded: Pipeline, translates: bool,
                   labels: LabelEncoding | None = None) -> tuple[list[bytes], str | None]:
    """The page's example inputs as PNGs: a few of the run's validation images (an inpainting model's with its
    holes transparent; a label map in the palette's colours), and why there are none when the run's data cannot
    be read here."""
    if not translates:
        return [], None
    try:
        images = validation_inputs(loaded, EXAMPLES)
    except TranslateError as e:
        return [], f"no example inputs: {first_line(e)}"
    if labels is not None:  # one-hot maps: their classes, in the colours the page paints
        return [png(labels.palette.colourise(labels.decode(x[None])[0] % len(labels.palette))) for x in images], None
    if images and images[0].shape[0] in (2, 4):  # an inpainting input: the image and its hole mask
        return [encode(x[:-1], ((x[-1:] < 0) * 255).to(torch.uint8), "PNG") for x in images], None
    return [png(x) for x in images], None


def _describe(cfg) -> str:
    if cfg is None:
        return "reference generator weights"
    model = str(cfg.model.get("_target_", "model")).rsplit(".", 1)[-1]
    data = file_name(cfg.data.get("root") or str(cfg.data.get("_target_", "data")).rsplit(".", 1)[-1])
    return f"{model} trained on {data}"


_FOLDERS = re.compile(r"(?<![\w.:/\\~-])(?:[A-Za-z]:)?[/\\~](?!api/)(?:[^\s'\"/\\]*[/\\])+")  # not /api/...


def file_name(path: Any) -> str:
    """The last part of a path: the API names files, never says where they are."""
    return Path(str(path)).name or str(path)


def without_paths(text: str) -> str:
    """``text`` with the folders of every absolute path taken out (``/a/b/last.pt: ...`` -> ``last.pt: ...``)."""
    return _FOLDERS.sub("", text)


def _trained_on_sketches(cfg) -> bool:
    if cfg is None:
        return False
    data = f"{cfg.data.get('_target_', '')} {cfg.data.get('root') or ''}".lower()
    return any(word in data for word in ("sketch", "edges", "draw"))


# ----------------------------------------------------------------------------------------------- the app
def create_app(service: ModelService):
    """The Starlette app serving ``service``, answering only requests meant for it (``OwnPageOnly``)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    def answer(work):
        async def endpoint(request):
            try:
                answer = await run_in_threadpool(work, await parsed(request, service.options))
            except ClientDisconnect:
                return Response(status_code=400)  # the client left: no one reads this, nothing to log
            except Refused as e:
                return refusal(e.status, str(e), e.headers)
            except (RuntimeError, ValueError, TranslateError) as e:
                print(f"serve: model call failed: {first_line(e)}", file=sys.stderr)
                return refusal(500, f"the model failed on this input: {first_line(e)}")
            return Response(answer.image, media_type="image/png", headers=answer.headers)
        return endpoint

    async def page(request):
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    async def info(request):
        return JSONResponse(service.info())

    async def example(request):
        index = request.path_params["index"]
        if not 0 <= index < len(service.examples):
            return refusal(404, f"example {index}: there are {len(service.examples)}")
        return Response(service.examples[index], media_type="image/png")

    async def health(request):
        return JSONResponse({"status": "ok", "model": service.info()["model"]})

    app = Starlette(routes=[
        Route("/", page), Route("/api/info", info), Route("/healthz", health),
        Route("/api/example/{index:int}", example),
        Route("/api/translate", answer(service.translate), methods=["POST"]),
        Route("/api/generate", answer(service.generate), methods=["POST"]),
    ])
    return OwnPageOnly(app, service.options)


def refusal(status: int, message: str, headers: dict[str, str] | None = None):
    """The JSON answer ``{"error": message}`` of a refused request, with no filesystem path in it."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": without_paths(message)}, status, headers=headers or None)


async def body(request, options: ServeOptions) -> bytes:
    """The request body, refused (413) past ``max_upload_mb``, declared or read."""
    declared, limit = request.headers.get("content-length"), options.max_bytes
    too_large = RequestTooLarge(f"request over {options.max_upload_mb:g} MB")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise too_large
    return bytes(data)


async def parsed(request, options: ServeOptions) -> Request:
    """The Request of a JSON body or of a raw image body with the settings as query parameters; the other
    content types (forms, text/plain: what another web page can send without asking) are refused (415)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not media.startswith("image/") and media != "application/json":
        raise UnsupportedMediaType(f"{f'Content-Type {media}' if media else 'no Content-Type'}: send {MEDIA_TYPES}")
    data = await body(request, options)
    if media.startswith("image/"):
        return parse_request(dict(request.query_params), image=data)
    try:
        settings = json.loads(data or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("body: not JSON (or send the image itself with Content-Type: image/...)") from None
    except RecursionError:
        raise BadRequest("body: JSON nested too deeply") from None
    if not isinstance(settings, dict):
        raise BadRequest("body: a JSON object")
    return parse_request(settings)


class OwnPageOnly:
    """ASGI middleware: serves only requests whose ``Host`` names this server (a DNS-rebinding page names its
    own) and whose ``Origin``, when a browser sends one, is this server's own page (or an ``allowed_hosts``
    name); 400 and 403 otherwise, in one line."""

    def __init__(self, app, options: ServeOptions):
        self.app, self.hosts = app, served_hosts(options)
        self.origins = {h.lower() for h in options.allowed_hosts}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and self.hosts is not None:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            problem = self.problem(headers.get("host", ""), headers.get("origin"))
            if problem is not None:
                await refusal(*problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def problem(self, host: str, origin: str | None) -> tuple[int, str] | None:
        """(status, reason) of a request this server does not serve, None for one it does."""
        hint = "(allowed_hosts in conf/serve.yaml adds names)"
        if _hostname(host) not in self.hosts:
            return 400, f"Host {host[:100] or '(none)'}: not a name this server answers to {hint}"
        if origin is not None and not _same_origin(origin, host) and _hostname(origin, "") not in self.origins:
            return 403, f"Origin {origin[:100]}: requests from other web pages are refused {hint}"
        return None


def _hostname(address: str, prefix: str = "//") -> str | None:
    """The host name of a ``Host`` header (``prefix`` "//") or an ``Origin`` (a URL), lower case; None if bad."""
    try:
        return urlsplit(prefix + address).hostname
    except ValueError:
        return None


def _same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` is the page of the server the request's ``host`` names."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def served_hosts(options: ServeOptions) -> set[str] | None:
    """The names a request's ``Host`` may give: the address the server was started on (with the loopback names
    when that is loopback, and also this machine's names when it is every address) and ``allowed_hosts``;
    None: any (``allowed_hosts=["*"]``)."""
    extra = {h.lower() for h in options.allowed_hosts}
    if "*" in extra:
        return None
    host = options.host.lower().strip("[]")
    names = {host, *extra}
    if host in LOCAL_HOSTS or host in ANY_ADDRESS:
        names |= set(LOCAL_HOSTS)
    if host in ANY_ADDRESS:
        names |= _machine_names()
    return names


def _machine_names() -> set[str]:
    """This machine's host names and addresses (for a server on every address)."""
    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    with contextlib.suppress(OSError):
        names |= set(socket.gethostbyname_ex(socket.gethostname())[2])
    return names


def load_service(checkpoint: str, options: ServeOptions, *, weights: str = "auto", direction: str | None = None,
                 generator: str | dict | None = None, guard: GuardOptions | None = None) -> ModelService:
    loaded = load(checkpoint, generator=generator, direction=direction, weights=weights)
    return ModelService(loaded, checkpoint, options, load_guard(guard or GuardOptions(), checkpoint, loaded.direction))


@contextlib.contextmanager
def serving_in_thread(service: ModelService):
    """Serve ``service`` with uvicorn on a thread of this process (tests, benchmarks); yields the base URL and
    stops the server on exit."""
    import uvicorn

    config = uvicorn.Config(create_app(service), host=service.options.host, port=service.options.port,
                            log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the server did not start on {service.options.host}:{service.options.port}")
        time.sleep(0.05)
    try:
        yield f"http://{service.options.host}:{service.options.port}"
    finally:
        server.should_exit = True
        thread.join(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cfg) -> None:
    """``translate serve``: load the model, print the address, serve until Ctrl-C."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigError('translate.apps.serve needs its extra: pip install -e ".[serve]"') from None
    options = ServeOptions.from_config(cfg)
    generator = dict(cfg.generator) if cfg.get("generator") else None
    service = load_service(str(cfg.checkpoint), options, weights=cfg.weights, direction=cfg.direction,
                           generator=generator, guard=GuardOptions.from_config(cfg.get("guard")))
    if options.host not in LOCAL_HOSTS:
        print(f"warning: host={options.host} serves the model to every machine that can reach this one",
              file=sys.stderr)
    hosts = served_hosts(options)
    print(f"answering Host {', '.join(sorted(hosts)) if hosts else 'any (allowed_hosts=[*])'}; more: "
          "allowed_hosts=[NAME,...]", file=sys.stderr)
    info = service.info()
    if service.no_examples:
        print(service.no_examples, file=sys.stderr)
    backend = f", {service.backend}" if service.backend else ""
    print(f"serving {info['model']} ({info['about']}, {info['direction']}, input {info['input_size']} px{backend}) "
          f"at http://{options.host}:{options.port}/", file=sys.stderr)
    uvicorn.run(create_app(service), host=options.host, port=options.port, log_level="warning")


def main() -> None:
    """``translate serve``: Hydra reads the ``key=value`` overrides from ``sys.argv``."""
    hydra_command("serve", run)


if __name__ == "__main__":  # python -m translate.apps.serve is translate serve
    from translate.apps.cli import main as translate_command

    sys.exit(translate_command(["serve", *sys.argv[1:]]))
