"""Draw and translate in the browser: ``python -m translate.serve checkpoint=... [port=8000] [host=127.0.0.1]``.

A small Starlette app (``pip install -e ".[serve]"``) for any checkpoint the framework loads (ours, reference
``.pth``, safetensors, ``pretrained:NAME``):

- ``GET /`` the page: a canvas to draw on (ink, width and background as the training sketches), image upload,
  the output with a download link; style codes (``model=bicycle``): new style, truncation, reference photo,
  attribute sliders from saved axes; noise generators (``model=gan``): seed, truncation, sliders.
- ``POST /api/translate``: JSON ``{"image": base64 or data URL, "reference", "seed", "truncation", "edits",
  "resize"}``, or the raw image as the body (``Content-Type: image/*``; the settings as query parameters)
  -> PNG. Images of any size go through ``infer.py``'s padding and tiling.
- ``POST /api/generate`` (noise generators): JSON ``{"seed", "truncation", "edits"}`` -> PNG.
- ``GET /api/info`` what the page shows and needs; ``GET /healthz``.
- ``guard=RUN`` (``translate.anomaly``): every translated input is scored by an autoencoder of the model's
  input domain; the answer carries ``X-Guard-Score``, ``X-Guard-Threshold``, ``X-Guard-Flagged`` and the page
  shows a warning beside an output whose input looks out of domain.
- An inpainting model (``data.corruptions=[mask]``) fills an upload's transparent pixels (``translate.inpainting``).

Safe by default: binds 127.0.0.1 (another host is printed as a warning), request bodies and image pixels are
limited, a bad image is answered 400 with the reason, one model call runs at a time with at most ``queue``
requests waiting (more are answered 503), and the client never names a file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

import torch

from translate.anomaly import Guard, GuardOptions, load_guard
from translate.errors import ConfigError, DataError, TranslateError, first_line
from translate.generator_io import LoadedGenerator, load_translation
from translate.imageio16 import encode, read_picture, to_model_input
from translate.infer import Translator, resize_for_model
from translate.inpainting import composited, hole_mask, inpainting_input, remasked
from translate.models.base import fixed_latents, takes_style
from translate.models.gan import LATENT
from translate.networks.layers import generator_channels
from translate.runtime import resolve_device
from translate.sampling import LatentEdit, Sampler
from translate.schema import Count, Positive, Precision, Range, check_dataclass
from translate.styles import as_code, encoder_input, is_styled

PAGE = Path(__file__).with_name("serve_page.html")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_RESIZE = 2048


class BadRequest(TranslateError):
    """The client sent something unusable: answered 400 with this message."""


class Busy(TranslateError):
    """Too many requests are waiting for the model: answered 503."""


@dataclass
class ServeOptions:
    """``conf/serve.yaml`` besides the checkpoint (see that file for each setting)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Range(0, 65535)] = 8000
    max_upload_mb: Annotated[float, Range(0.01, 1024)] = 10.0
    max_pixels: Positive = 4_194_304
    queue: Count = 4
    device: str = "auto"
    precision: Precision = "fp32"
    norm_mode: Literal["auto", "eval", "train"] = "auto"
    tile_size: Positive = 1024
    tile_overlap: Count = 128

    def __post_init__(self) -> None:
        check_dataclass(vars(self), ServeOptions, "")

    @classmethod
    def from_config(cls, cfg) -> ServeOptions:
        return cls(**{f.name: cfg[f.name] for f in fields(cls) if f.name in cfg})

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


def decode_image(data: bytes | None, channels: int, max_pixels: int, inpaints: bool = False) -> torch.Tensor:
    """An uploaded image as [1, C, H, W] in [-1, 1] (EXIF orientation, palettes and 16-bit as ``infer.py``
    reads them); a BadRequest for anything else, over ``max_pixels`` before any pixel is decoded. ``inpaints``:
    for an inpainting model, the image with its transparent pixels as the holes (``translate.inpainting``)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadRequest("image: empty upload")
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height, fmt = *im.size, im.format or "PNG"
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise BadRequest("image: not an image or an unsupported format (PNG, JPEG, WebP, TIFF, BMP, ...)") from None
    if width * height > max_pixels:
        raise BadRequest(f"image: {width}x{height} is over the limit of {max_pixels:,} pixels")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload.{fmt.lower()}"
        path.write_bytes(data)
        try:
            picture = read_picture(path)
        except DataError as e:
            raise BadRequest(f"image: {str(e).removeprefix(f'{path}: ')}") from None
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
    """The attribute axes saved beside an own checkpoint (``translate.axes``), or None."""
    from translate.axes import load_axes

    if str(checkpoint).startswith("pretrained:"):
        return None
    try:
        return load_axes(checkpoint)
    except TranslateError:  # none saved (or a reference file, which has no run folder)
        return None


class ModelService:
    """The loaded generator and what one request needs of it; ``call`` runs one model call at a time and
    refuses (Busy) beyond ``queue`` waiting requests."""

    def __init__(self, loaded: LoadedGenerator, checkpoint: str, options: ServeOptions, guard: Guard | None = None):
        self.loaded, self.checkpoint, self.options, self.guard = loaded, str(checkpoint), options, guard
        self.G = loaded.module
        self.device = resolve_device(options.device)
        self.kind = "noise" if loaded.translation.source == LATENT else "style" if takes_style(self.G) else "translation"
        self.axes = _saved_axes(self.checkpoint)
        norm_mode = loaded.norm_mode if options.norm_mode == "auto" else options.norm_mode
        if self.kind == "noise":
            self.sampler = Sampler(self.G, device=self.device)
        else:
            self.translator = Translator(self.G, device=self.device, precision=options.precision,
                                         norm_mode=norm_mode, tile_size=options.tile_size,
                                         tile_overlap=options.tile_overlap)
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(options.queue + 1)

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
            raise BadRequest("edits: this model has no saved axes (python -m translate.axes)")
        try:
            return self.axes.edits(request.edits, self.G)
        except ConfigError as e:
            raise BadRequest(str(e)) from None

    def translate(self, request: Request) -> Answer:
        """The PNG of one image translated (with the request's style, for generators that take one) and, with
        a guard, the input's out-of-domain score."""
        if self.kind == "noise":
            raise BadRequest("this model generates from noise: POST /api/generate")
        inpaints = self.translator.inpaints
        x = decode_image(request.image, self.translator.in_channels, self.options.max_pixels, inpaints)
        if request.resize is not None:
            x = resize_for_model(x[0], request.resize, keep_aspect=True)[None]
            x = remasked(x) if inpaints else x

        def work() -> Answer:
            code = self.style_code(request) if self.kind == "style" else None
            headers = self.guard_headers(x) if self.guard is not None else {}
            out = self.translator(x, code)[0]
            return Answer(png(composited(out, x[0].to(out.device)) if inpaints else out), headers)

        return self.call(work)

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
        x = decode_image(data, generator_channels(self.G)[1], self.options.max_pixels)
        with torch.no_grad():
            return E.to(self.device)(encoder_input(x, self.input_size).to(self.device))[0][0]

    def generate(self, request: Request) -> bytes:
        if self.kind != "noise":
            raise BadRequest("this model translates images: POST /api/translate")
        try:
            sampler = Sampler(self.G, truncation=request.truncation, seed=request.seed or 0,
                              edits=self.edits(request), device=self.device)
        except ConfigError as e:
            raise BadRequest(str(e)) from None
        return self.call(lambda: Answer(png(sampler.images(sampler.latents(1))[0])))

    # -------------------------------------------------------------------------------------------- info
    @property
    def input_size(self) -> int:
        if self.loaded.config is not None:
            return int(self.loaded.config.data.get("crop_size") or self.loaded.config.data.get("size") or 256)
        return 256

    def info(self) -> dict[str, Any]:
        """What the page shows and needs: the model, its direction and input size, the canvas, the controls."""
        t, p = self.loaded.translation, self.loaded.pretrained
        about = p.about if p else _describe(self.loaded.config)
        result: dict[str, Any] = {
            "model": p.name if p else Path(self.checkpoint).name, "about": about, "kind": self.kind,
            "direction": "noise -> image" if self.kind == "noise" else f"{t.source} -> {t.target}",
            "input_size": self.input_size,
            "limits": {"max_upload_bytes": self.options.max_bytes, "max_pixels": self.options.max_pixels},
            "axes": [{"name": n, "std": self.axes.stds[n]} for n in sorted(self.axes.vectors)] if self.axes else [],
        }
        if self.kind != "noise":
            result["canvas"] = self.canvas()
        if self.kind == "style":
            result["styles"] = {"nz": int(self.G.nz), "reference": self.loaded.style_encoder is not None,
                                "per_level": is_styled(self.G)}
        if self.guard is not None:
            result["guard"] = {"checkpoint": self.guard.source, "threshold": self.guard.threshold}
        return result

    def canvas(self) -> dict[str, Any]:
        """Ink, background and pen width (in model pixels) of drawings like the training sketches: black
        lines on white, about 1 px at 64 and 3 px at 256 (the demo's outlines, HED edges of edges2shoes)."""
        p = self.loaded.pretrained
        ink, background = p.canvas if p and p.canvas else ("#000000", "#ffffff")
        return {"ink": ink, "background": background, "width": max(1, round(self.input_size / 100)),
                "drawing": bool(p.canvas) if p else _trained_on_sketches(self.loaded.config)}


def _describe(cfg) -> str:
    if cfg is None:
        return "reference generator weights"
    model = str(cfg.model.get("_target_", "model")).rsplit(".", 1)[-1]
    data = cfg.data.get("root") or str(cfg.data.get("_target_", "data")).rsplit(".", 1)[-1]
    return f"{model} trained on {data}"


def _trained_on_sketches(cfg) -> bool:
    if cfg is None:
        return False
    data = f"{cfg.data.get('_target_', '')} {cfg.data.get('root') or ''}".lower()
    return any(word in data for word in ("sketch", "edges", "draw"))


# ----------------------------------------------------------------------------------------------- the app
def create_app(service: ModelService):
    """The Starlette app serving ``service``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    async def body(request) -> bytes:
        declared = request.headers.get("content-length")
        limit = service.options.max_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise RequestTooLarge
        return bytes(data)

    async def parsed(request) -> Request:
        data = await body(request)
        if request.headers.get("content-type", "").startswith("image/"):
            return parse_request(dict(request.query_params), image=data)
        try:
            settings = json.loads(data or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadRequest("body: not JSON (or send the image itself with Content-Type: image/...)") from None
        if not isinstance(settings, dict):
            raise BadRequest("body: a JSON object")
        return parse_request(settings)

    def answer(work):
        async def endpoint(request):
            try:
                answer = await run_in_threadpool(work, await parsed(request))
                return Response(answer.image, media_type="image/png", headers=answer.headers)
            except RequestTooLarge:
                return JSONResponse({"error": f"request over {service.options.max_upload_mb:g} MB"}, 413)
            except BadRequest as e:
                return JSONResponse({"error": str(e)}, 400)
            except Busy as e:
                return JSONResponse({"error": str(e)}, 503, headers={"Retry-After": "1"})
            except (RuntimeError, ValueError, TranslateError) as e:
                print(f"serve: model call failed: {first_line(e)}", file=sys.stderr)
                return JSONResponse({"error": f"the model failed on this input: {first_line(e)}"}, 500)
        return endpoint

    async def page(request):
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    async def info(request):
        return JSONResponse(service.info())

    async def health(request):
        return JSONResponse({"status": "ok", "model": service.info()["model"]})

    return Starlette(routes=[
        Route("/", page), Route("/api/info", info), Route("/healthz", health),
        Route("/api/translate", answer(service.translate), methods=["POST"]),
        Route("/api/generate", answer(service.generate), methods=["POST"]),
    ])


class RequestTooLarge(Exception):
    """A body over the upload limit: answered 413 before it is read further."""


def load_service(checkpoint: str, options: ServeOptions, *, weights: str = "auto", direction: str | None = None,
                 generator: str | dict | None = None, guard: GuardOptions | None = None) -> ModelService:
    loaded = load_translation(checkpoint, generator=generator, direction=direction, weights=weights)
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
    """``python -m translate.serve``: load the model, print the address, serve until Ctrl-C."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigError('translate.serve needs its extra: pip install -e ".[serve]"') from None
    options = ServeOptions.from_config(cfg)
    generator = dict(cfg.generator) if cfg.get("generator") else None
    service = load_service(str(cfg.checkpoint), options, weights=cfg.weights, direction=cfg.direction,
                           generator=generator, guard=GuardOptions.from_config(cfg.get("guard")))
    if options.host not in LOCAL_HOSTS:
        print(f"warning: host={options.host} serves the model to every machine that can reach this one",
              file=sys.stderr)
    info = service.info()
    print(f"serving {info['model']} ({info['about']}, {info['direction']}, input {info['input_size']} px) at "
          f"http://{options.host}:{options.port}/", file=sys.stderr)
    uvicorn.run(create_app(service), host=options.host, port=options.port, log_level="warning")


if __name__ == "__main__":
    import hydra

    from translate.config import CONF_DIR, run_cli

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="serve")
    def main(cfg) -> None:
        run_cli(run, cfg)

    main()
