"""Batch conversion: translate files and folders of any-size images with a generator.

``translate_files`` is the library function; ``run(cfg)`` is what ``infer.py`` calls. Images keep their own
size (padded to the network's stride and cropped back, or tiled when large), their alpha plane and their bit
depth. Outputs are written atomically by a background thread; existing outputs are skipped, so re-running an
interrupted command resumes it. Inputs are never modified.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from translate.core.atomic import atomic_write_bytes, is_write_failure, remove_stale_temp_files, write_failure
from translate.core.errors import ConfigError, DataError, DiskFullError, OutputError, first_line
from translate.core.runtime import autocast, precision_dtype, resolve_device
from translate.core.schema import Count, InferencePrecision, Positive, Range, check_dataclass
from translate.data.images import Picture, encode, picture_size, read_picture, resize_images, to_model_input
from translate.data.inpainting import composited, hole_mask, inpainting_input, mask_file, remasked
from translate.data.labels import LabelEncoding, read_instance_map
from translate.data.semantic import label_encoding
from translate.inference import openvino  # imports OpenVINO itself only when used
from translate.inference.guard import Guard, GuardOptions, load_guard, write_scores
from translate.inference.inputs import Ignored, collect_inputs, describe_ignored, input_folder_holding
from translate.latent.axes import load_axes
from translate.latent.styles import StyleOptions, StylePlan, run_with_code, style_plan
from translate.loading.load import load
from translate.models.gan import LATENT
from translate.networks.layers import generator_channels, generator_stride, pad_to_stride, stride_padding

FORMATS = {"keep": None, "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tif": "TIFF", "tiff": "TIFF"}
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif"}


@dataclass
class Summary:
    converted: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    ignored: Ignored = field(default_factory=list)  # in input folders/globs, not images: reported, never failed
    backend: str = ""  # what ran the generator, when not torch (backend=openvino; with int8, its agreement)
    scores: dict[str, tuple[float, bool]] = field(default_factory=dict)  # the guard's: input -> (score, flagged)
    out_of_domain_skipped: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def __str__(self) -> str:
        rate = self.converted / self.seconds if self.seconds > 0 else 0.0
        text = (f"converted {self.converted}, skipped {self.skipped} existing, failed {len(self.failed)} "
                f"({self.seconds:.1f} s, {rate:.2f} images/s)")
        if self.scores:
            flagged = sum(f for _, f in self.scores.values())
            also = f", {self.out_of_domain_skipped} of them not converted" if self.out_of_domain_skipped else ""
            text += f"; out of domain {flagged} of {len(self.scores)} scored{also}"
        text = f"{text}; {self.backend}" if self.backend else text
        return f"{text}; ignored {describe_ignored(self.ignored)}" if self.ignored else text

    @property
    def flagged(self) -> list[tuple[str, float]]:
        """The inputs the guard found out of domain, with their scores, highest first."""
        return sorted(((k, v[0]) for k, v in self.scores.items() if v[1]), key=lambda kv: -kv[1])


def output_path(rel: Path, output: Path, fmt: str | None) -> Path:
    suffix = SUFFIX[fmt] if fmt else rel.suffix
    return output / rel.with_suffix(suffix)


def _format_of(path: Path) -> str:
    return Image.registered_extensions().get(path.suffix.lower(), "PNG")


# ----------------------------------------------------------------------------------------------- reading
class _Reader(Dataset):
    """Decodes one file per item in DataLoader workers; a failure travels back as a message. ``holes``: an
    inpainting model's mask per file (``translate.data.inpainting``; None: the file's transparency), or None when
    the model does not inpaint; ``mask_folder``: where those masks were looked for."""

    def __init__(self, files: list[Path], channels: int, resize: int | None, keep_aspect: bool,
                 holes: list[Path | None] | None = None, mask_folder: Path | None = None,
                 labels: LabelEncoding | None = None, instances: list[Path | None] | None = None,
                 instance_folder: Path | None = None):
        self.files, self.channels, self.resize, self.keep_aspect = files, channels, resize, keep_aspect
        self.holes, self.mask_folder, self.labels = holes, mask_folder, labels
        self.instances, self.instance_folder = instances, instance_folder  # a label model's instance maps

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, Any]:
        try:
            picture = read_picture(self.files[i])
            item = {"index": i, "picture": picture, "opaque": False}
            if self.labels is not None:
                return item | {"x": self._label_input(i)}
            if self.holes is None:
                x = to_model_input(picture, self.channels)
            else:
                x, item["opaque"] = self._with_holes(i, picture)
            if self.resize:
                x = resize_for_model(x, self.resize, self.keep_aspect)
                if self.holes is not None:
                    x = remasked(x)
            return item | {"x": x}
        except DataError as e:
            return {"index": i, "error": str(e)}
        except Exception as e:  # noqa: BLE001 - any decoder failure is this file's problem, not the run's
            return {"index": i, "error": f"{self.files[i]}: {type(e).__name__}: {e}"}

    def _label_input(self, i: int) -> torch.Tensor:
        """A label map model's input: the map's classes (and its instance map, ``instances=DIR``), resized
        nearest-neighbour only, then encoded as in training."""
        maps = [self.labels.read(self.files[i])]
        if self.instances is not None:
            path = self.instances[i]
            if path is None:
                raise DataError(f"{self.files[i]}: no instance map named like it in {self.instance_folder}")
            maps.append(read_instance_map(path))
            if maps[1].shape != maps[0].shape:
                raise DataError(f"{path}: a {tuple(maps[1].shape)} instance map for a {tuple(maps[0].shape)} label map")
        if self.resize:
            maps = [resize_labels(m, self.resize, self.keep_aspect) for m in maps]
        return self.labels.encode(*maps)

    def _with_holes(self, i: int, picture: Picture) -> tuple[torch.Tensor, bool]:
        if self.mask_folder is not None and self.holes[i] is None:
            raise DataError(f"{self.files[i]}: no mask of that name in {self.mask_folder}")
        holes, from_alpha = hole_mask(picture, self.files[i], self.holes[i])
        return inpainting_input(to_model_input(picture, self.channels - 1), holes), from_alpha


def resized_size(h: int, w: int, size: int, keep_aspect: bool) -> tuple[int, int]:
    """(height, width) of an h x w image with its shorter side (``keep_aspect``) or both sides at ``size``."""
    if not keep_aspect:
        return size, size
    scale = size / min(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize_for_model(x: torch.Tensor, size: int, keep_aspect: bool) -> torch.Tensor:
    """[C, H, W] with its shorter side (``keep_aspect``) or both sides at ``size``."""
    return resize_images(x[None], resized_size(*x.shape[-2:], size, keep_aspect))[0]


def resize_labels(labels: torch.Tensor, size: int, keep_aspect: bool) -> torch.Tensor:
    """An index map [H, W] with its shorter side (``keep_aspect``) or both sides at ``size``, nearest-neighbour."""
    h, w = resized_size(*labels.shape, size, keep_aspect)
    return F.interpolate(labels[None, None].float(), size=(h, w), mode="nearest-exact")[0, 0].long()


def _batches_by_size(sizes: dict[int, tuple[int, int]], batch_size: int) -> list[list[int]]:
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, size in sizes.items():
        groups[size].append(i)
    batches = []
    for indices in groups.values():
        batches += [indices[k : k + batch_size] for k in range(0, len(indices), batch_size)]
    return batches


def _collate(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return items


# ----------------------------------------------------------------------------------------------- model
def _window(n: int, overlap: int, device, dtype) -> torch.Tensor:
    """1 in the middle, a raised-cosine ramp over ``overlap`` pixels at both ends (never exactly 0)."""
    w = torch.ones(n, device=device, dtype=dtype)
    if overlap > 0:
        ramp = 0.5 - 0.5 * torch.cos(torch.linspace(0, math.pi, overlap + 2, device=device, dtype=dtype)[1:-1])
        k = min(overlap, n // 2)
        w[:k] = ramp[:k]
        w[n - k :] = ramp[:k].flip(0)
    return w


def _starts(total: int, tile: int, overlap: int) -> list[int]:
    if total <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, total - tile, step)) + [total - tile]
    return sorted(set(starts))


class Translator:
    """Runs a generator on batches of any size: stride padding, tiling with blended overlaps, precision."""

    def __init__(
        self,
        G: nn.Module,
        *,
        device: torch.device,
        precision: str = "fp32",
        channels_last: bool = False,
        compile: bool = False,
        norm_mode: str = "eval",
        tile_size: int = 1024,
        tile_overlap: int = 128,
        label_maps: bool = False,
    ):
        self.amp_dtype = precision_dtype(precision, device)
        self.label_maps = label_maps  # its inputs are encoded label maps (never an inpainting mask)
        if norm_mode not in ("eval", "train"):
            raise ConfigError(f"norm_mode={norm_mode!r} is not one of eval, train")
        if tile_overlap < 0 or tile_size < 1:
            raise ConfigError(f"tile_size={tile_size} and tile_overlap={tile_overlap} must be positive and >= 0")
        self.stride = generator_stride(G)
        self.in_channels, self.out_channels = generator_channels(G)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        # train: batch statistics and active dropout, what the reference test script does without --eval.
        self.G = G.to(device, memory_format=self.memory_format).train(norm_mode == "train")
        if compile:
            self.G.compile()
        self.device = device
        tile = max(self.stride, (int(tile_size) // self.stride) * self.stride)
        self.tile, self.overlap = tile, min(int(tile_overlap), tile // 2)

    @property
    def inpaints(self) -> bool:
        """A model with one input channel more than its output (``data.corruptions=[mask]``): the hole mask. (A
        label-map model can take as many: a map's colours and its boundaries.)"""
        return not self.label_maps and self.in_channels == self.out_channels + 1

    @property
    def min_side(self) -> int:
        """At least two strides: a 1x1 bottleneck leaves nothing for instance norm to normalise."""
        return 2 * self.stride if self.stride < 64 else self.stride

    def padded_size(self, h: int, w: int) -> tuple[int, int]:
        """The (height, width) an h x w input is run at: the largest tensor a call makes (tiles are no larger)."""
        ph, pw = stride_padding(h, w, self.stride, self.min_side)
        return h + ph, w + pw

    def _run(self, x: torch.Tensor, code: torch.Tensor | None) -> torch.Tensor:
        x = x.contiguous(memory_format=self.memory_format)
        with autocast(self.device, self.amp_dtype):
            return (self.G(x) if code is None else run_with_code(self.G, x, code)).float()

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        """[N, C, H, W] in [-1, 1] -> [N, C_out, H, W]; ``code``: a style code for every image (``styles``)."""
        x = x.to(self.device, non_blocking=True)
        padded, h, w = pad_to_stride(x, self.stride, minimum=self.min_side)
        H, W = padded.shape[-2:]
        if H <= self.tile and W <= self.tile:
            return self._run(padded, code)[..., :h, :w]
        out = torch.zeros(x.shape[0], self.out_channels, H, W, device=self.device)
        weight = torch.zeros(1, 1, H, W, device=self.device)
        th, tw = min(self.tile, H), min(self.tile, W)
        wy = _window(th, self.overlap if H > th else 0, self.device, torch.float32)
        wx = _window(tw, self.overlap if W > tw else 0, self.device, torch.float32)
        win = (wy[:, None] * wx[None, :])[None, None]
        for y0 in _starts(H, th, self.overlap):
            for x0 in _starts(W, tw, self.overlap):
                tile = self._run(padded[..., y0 : y0 + th, x0 : x0 + tw], code)
                out[..., y0 : y0 + th, x0 : x0 + tw] += tile * win
                weight[..., y0 : y0 + th, x0 : x0 + tw] += win
        return (out / weight)[..., :h, :w]


# ----------------------------------------------------------------------------------------------- writing
class _Writer:
    """Encodes and writes outputs on a background thread so the model never waits on the disk. The first write
    that finds no space left (``full``) stops the writing: the outputs still queued are dropped, not tried."""

    def __init__(self, summary: Summary, bar: tqdm, depth: int = 16):
        self.summary, self.bar = summary, bar
        self.full: DiskFullError | None = None
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _offer(self, item) -> None:
        # Never block forever on a full queue: if the writer thread died, say so instead of hanging.
        while True:
            if not self.thread.is_alive():
                raise RuntimeError("the output writer thread stopped unexpectedly")
            try:
                self.queue.put(item, timeout=1.0)
                return
            except queue.Full:
                continue

    def put(self, *job) -> None:
        self._offer(job)

    def _loop(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            if self.full is not None:
                continue
            src, dst, image, alpha, fmt, bits, quality = job
            try:
                data = encode(image, alpha, fmt, bits=bits, quality=quality)
                atomic_write_bytes(dst, data)
                with self.lock:
                    self.summary.converted += 1
            except Exception as e:  # noqa: BLE001 - a failed write is that file's failure, unless the disk is full
                failure = e if isinstance(e, OutputError) else write_failure(dst, e) if is_write_failure(e) else e
                if isinstance(failure, DiskFullError):
                    self.full = failure
                    continue
                with self.lock:
                    self.summary.failed.append((str(src), f"cannot write {dst}: {e}"))
            with contextlib.suppress(Exception):  # a broken progress display must not stop the writes
                self.bar.update(1)

    def close(self, *, drop: bool = False) -> None:
        """Wait until the queued outputs are written; with ``drop`` (on Ctrl-C) discard those not yet started,
        so only the write in progress finishes. Writes are atomic: every output is complete or absent."""
        if drop:
            with contextlib.suppress(queue.Empty):
                while True:
                    self.queue.get_nowait()
        if self.thread.is_alive():
            self._offer(None)
        self.thread.join()


# ----------------------------------------------------------------------------------------------- driver
@dataclass
class InferOptions:
    """How ``translate_files`` converts: the settings of ``conf/infer.yaml`` besides what, where and with
    which weights (see that file for each)."""

    recursive: bool = False
    format: str = "keep"
    jpg_quality: Annotated[int, Range(1, 100)] = 95
    overwrite: bool = False
    allow_inplace: bool = False
    norm_mode: Literal["eval", "train", "auto"] = "eval"  # auto: resolved by run() from the checkpoint
    resize: Positive | Literal["auto"] | None = None  # auto: own size, with a warning far from trained_size
    keep_aspect: bool = True
    tile_size: Positive = 1024
    tile_overlap: Count = 128
    batch_size: Positive | None = None
    num_workers: Count = 1
    device: str = "auto"
    precision: InferencePrecision = "fp32"
    backend: Literal["torch", "openvino"] = "torch"
    calibration: str | None = None  # int8: a folder of the user's own inputs (None: some of the inputs)
    int8_min_psnr: float = 40.0  # int8 is refused when its agreement with fp32 on held-out images is lower
    int8_min_ssim: Annotated[float, Range(0, 1)] = 0.99
    cache: str | None = None  # backend=openvino: where exported graphs are kept (None: the user's cache folder)
    channels_last: bool = False
    compile: bool = False
    quiet: bool = False
    trained_size: Positive | None = None  # the side the model was trained at (run() sets it from the model)
    mask: str | None = None  # inpainting models: a folder of hole masks named like the inputs
    instances: str | None = None  # label-map models with instance boundaries: a folder of instance maps

    def __post_init__(self) -> None:
        check_dataclass(vars(self), InferOptions, "")  # each type and range, before any work

    @classmethod
    def from_config(cls, cfg) -> InferOptions:
        return cls(**{f.name: cfg[f.name] for f in fields(cls) if f.name in cfg})


def translate_files(G: nn.Module, inputs: str | Path | list, output: str | Path, options: InferOptions | None = None,
                    plan: StylePlan | None = None, guard: Guard | None = None, labels: LabelEncoding | None = None,
                    **changes: Any) -> Summary:
    """Translate every image of ``inputs`` (files, folders, globs or list files) into ``output``, as ``options``
    (or the defaults) with ``changes`` (e.g. ``quiet=True``) say.

    Outputs mirror the inputs' relative paths, never leaving ``output``. Unreadable inputs are reported and
    skipped; existing outputs are skipped unless ``overwrite``; other files in input folders are listed in
    ``Summary.ignored``. An output folder that cannot be written is a ConfigError before anything is translated.
    Returns the counts (``Summary.exit_code``: 0 all converted, 1 some failed). ``plan``: the styles of a
    generator with a style code (``translate.latent.styles``): several outputs per input, each counted. ``guard``
    (``translate.inference.guard``): every input is scored, ``Summary.scores`` and ``guard.csv`` in ``output`` say which
    are out of domain, and ``guard.action=skip`` leaves those unconverted. ``labels``: the inputs are label maps,
    read and encoded so (``translate.data.labels.LabelEncoding``; a model trained with ``data=labels``).
    """
    start = time.perf_counter()
    opts = replace(options or InferOptions(), **changes)
    if opts.format not in FORMATS:
        raise ConfigError(f"format={opts.format!r} is not one of {', '.join(FORMATS)}")
    output = Path(output).expanduser()
    found, scanned, ignored = collect_inputs(inputs, recursive=opts.recursive)
    if not opts.allow_inplace:
        _refuse_output_inside(output, scanned)
    summary = Summary(ignored=ignored)
    plan = plan or StylePlan()
    jobs = _plan(found, output, FORMATS[opts.format], opts.overwrite, summary, plan.suffixes)
    if jobs:
        _check_writable(output)
    _remove_leftovers(output)
    sizes = _read_sizes(jobs, summary)
    opts = _settled_resize(opts, [(jobs[i][0], hw) for i, hw in sizes.items()])
    device = resolve_device(opts.device)
    G, summary.backend = backend_generator(G, opts, device, [src for src, _ in jobs], labels)
    translator = _translator(G, opts, device, labels)
    loader = _loader(jobs, sizes, translator, opts, device, _masks(jobs, output, opts.mask, translator), labels,
                     _instance_maps(jobs, output, opts.instances, labels))
    _translate_all(loader, jobs, len(jobs) - len(sizes), Converter(translator, plan, guard), opts, summary)
    if guard is not None and summary.scores:
        write_scores(output / "guard.csv", summary.scores, guard.threshold, {"action": guard.action})
    summary.seconds = time.perf_counter() - start
    return summary


def torch_precision(backend: str, precision: str) -> str:
    """The autocast precision of the Translator: the asked one with torch; fp32 around a compiled generator, which
    runs at its own precision."""
    return precision if backend == "torch" else "fp32"


def _translator(G: nn.Module, opts: InferOptions, device: torch.device, labels: LabelEncoding | None) -> Translator:
    """The Translator of ``G`` as ``opts`` say."""
    return Translator(G, device=device, precision=torch_precision(opts.backend, opts.precision),
                      channels_last=opts.channels_last, compile=opts.compile, norm_mode=opts.norm_mode,
                      tile_size=opts.tile_size, tile_overlap=opts.tile_overlap, label_maps=labels is not None)


def check_backend(G: nn.Module, opts: InferOptions, device: torch.device) -> None:
    """One line for a backend, precision or option that cannot run ``G``, before any work."""
    if opts.backend == "torch":
        if opts.precision == "int8":
            raise ConfigError("precision=int8 needs backend=openvino (pip install -e \".[openvino]\")")
        return
    openvino.check_servable(G, device=device, norm_mode=opts.norm_mode, compile=opts.compile)
    if opts.precision == "fp16":
        raise ConfigError("precision=fp16 is CUDA only; backend=openvino takes fp32, bf16 or int8")


def backend_generator(G: nn.Module, opts: InferOptions, device: torch.device, inputs: list[Path],
                      labels: LabelEncoding | None = None) -> tuple[nn.Module, str]:
    """The generator as ``opts.backend`` runs it, and a line saying so (empty for torch). int8 calibrates on
    ``opts.calibration`` or on some of the ``inputs``, and checks itself on others (``calibration_split``)."""
    check_backend(G, opts, device)
    if opts.backend == "torch":
        return G, ""
    calibration, check = (), ()
    if opts.precision == "int8":
        files = [src for src, _ in collect_inputs(opts.calibration, recursive=True)[0]] if opts.calibration else inputs
        calibration, check = calibration_split(_model_inputs(spread(files, CALIBRATION_IMAGES), G, opts, labels))
    target = openvino.Int8Target(min_psnr=opts.int8_min_psnr, min_ssim=opts.int8_min_ssim)
    cache = Path(opts.cache).expanduser() if opts.cache else None
    compiled = openvino.compiled_generator(G, precision=opts.precision, cache=cache, calibration=calibration,
                                           check=check, target=target)
    said = f"backend openvino {opts.precision}"
    if compiled.agreement:
        a = compiled.agreement
        said += (f" (agreement with fp32 on {a['images']} held-out images: {a['psnr']:.1f} dB PSNR, SSIM "
                 f"{a['ssim']:.4f}, max |diff| {a['max_abs_diff']:.3f})")
    return compiled, said


CALIBRATION_IMAGES = 48  # at most, spread over the folder; every fourth is held out to check the int8 graph


def spread(items: list, n: int) -> list:
    """At most ``n`` of ``items``, evenly spaced (only those are read)."""
    return items[:: max(1, len(items) // n)][:n]


def calibration_split(images: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(calibration, held-out check): every fourth image held out (the last one when there are fewer than four)."""
    if len(images) < 2:
        raise ConfigError(f"precision=int8 calibrates on real inputs and checks on others: {len(images)} readable "
                          "image(s) found; give calibration=DIR with a few dozen of your own inputs")
    held = set(range(3, len(images), 4)) or {len(images) - 1}
    return [x for i, x in enumerate(images) if i not in held], [x for i, x in enumerate(images) if i in held]


def _model_inputs(files: list[Path], G: nn.Module, opts: InferOptions,
                  labels: LabelEncoding | None) -> list[torch.Tensor]:
    """``files`` read as conversion reads them ([1, C, H, W], padded to the stride), at most a tile each (the
    centre): the inputs the generator will see. Unreadable files are left out."""
    probe = Translator(G, device=torch.device("cpu"), tile_size=opts.tile_size, label_maps=labels is not None)
    holes = [None] * len(files) if probe.inpaints else None
    reader = _Reader(files, probe.in_channels, opts.resize, opts.keep_aspect, holes, labels=labels)
    inputs = []
    for i in range(len(files)):
        item = reader[i]
        if "x" in item:
            x, _, _ = pad_to_stride(item["x"][None], probe.stride, minimum=probe.min_side)
            top, left = [max(0, (side - probe.tile) // 2) // probe.stride * probe.stride for side in x.shape[-2:]]
            inputs.append(x[..., top : top + probe.tile, left : left + probe.tile].contiguous())
    return inputs


@dataclass
class Converter:
    """What each batch goes through: the generator (``translator``), the styles of ``plan`` and, with a
    ``guard``, the out-of-domain score first."""

    translator: Translator
    plan: StylePlan
    guard: Guard | None = None


def _translate_all(loader: DataLoader, jobs: list[tuple[Path, Path]], header_failures: int, converter: Converter,
                   opts: InferOptions, summary: Summary) -> None:
    """Translate every batch while the writer thread writes. On Ctrl-C keep only complete outputs (queued ones
    are dropped), say how far it got and how to resume, and re-raise so the CLI exits 130."""
    plan = converter.plan
    bar = tqdm(total=len(jobs) * len(plan.suffixes), desc="translate", unit="img", disable=opts.quiet,
               file=sys.stderr, dynamic_ncols=True)
    bar.update(header_failures * len(plan.suffixes))
    writer = _Writer(summary, bar)
    try:
        for items in loader:
            if writer.full is not None:
                break
            _convert(items, jobs, converter, writer, opts, summary, bar)
        writer.close()
    except KeyboardInterrupt:
        writer.close(drop=True)
        bar.close()
        # Printed even when quiet: the user pressed Ctrl-C and needs to know what is on disk.
        print(f"interrupted: converted {summary.converted} of {len(jobs)}; run the same command again to convert "
              "the rest (existing outputs are skipped)", file=sys.stderr)
        raise
    finally:
        writer.close()
        bar.close()
    if writer.full is not None:
        raise DiskFullError(f"{writer.full}; stopped after converting {summary.converted} of {len(jobs)}: free some "
                            "space and run the same command again (existing outputs are skipped)")


def _check_writable(output: Path) -> None:
    """Create ``output`` and write (then delete) a probe file the way outputs are written, so that a read-only,
    full or forbidden output folder stops the run at once with one line, instead of failing every file only
    after translating it."""
    probe = output / f".write-probe-{os.getpid()}"  # per process: two runs into one folder must not collide
    try:
        output.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(probe, b"")
        probe.unlink(missing_ok=True)
    except (OSError, OutputError) as e:
        # write_failure names the reason (full disk, read-only, permission, a file in the path); so does the
        # OutputError atomic_write_bytes raises. Either names the probe: name the output folder instead.
        failure = e if isinstance(e, OutputError) else write_failure(probe, e)
        raise ConfigError(f"output folder {output}: {str(failure).removeprefix(f'{probe}: ')}") from None


def _remove_leftovers(output: Path) -> None:
    """Delete the temporary files a killed earlier run (kill -9, power loss) left mid-write in the output tree
    (``remove_stale_temp_files`` spares other programs' files and those of live writers). Tidying up must
    never stop a conversion, hence the suppressed errors."""
    with contextlib.suppress(OSError):
        remove_stale_temp_files(output, recursive=True)


def _refuse_output_inside(output: Path, scanned: set[Path]) -> None:
    """Outputs inside a scanned folder would be picked up as inputs by the next run."""
    root = input_folder_holding(output, scanned)
    if root is not None:
        raise ConfigError(
            f"output {output} is inside the input folder {root}; choose another folder or set allow_inplace=true"
        )


def with_suffix_in_name(path: Path, suffix: str) -> Path:
    """``a/b.png`` with ``_s0`` -> ``a/b_s0.png`` (an output of one style)."""
    return path.with_name(f"{path.stem}{suffix}{path.suffix}") if suffix else path


def _plan(found: list[tuple[Path, Path]], output: Path, fmt: str | None, overwrite: bool,
          summary: Summary, suffixes: list[str] = ("",)) -> list[tuple[Path, Path]]:
    """(input, output) pairs still to convert; collisions, outputs that would overwrite an input and outputs
    outside ``output`` (through ``..`` or a symbolic link) fail, and existing outputs are skipped unless
    ``overwrite``. With several outputs per input (``suffixes`` in the output's name), the pair's output is
    the base name: each of its outputs is checked, and an input is skipped when all of them exist."""
    sources = {src.resolve() for src, _ in found}
    inside = output.resolve()
    jobs: list[tuple[Path, Path]] = []
    claimed: dict[Path, Path] = {}
    for src, rel in found:
        dst = output_path(rel, output, fmt)
        if not dst.resolve().is_relative_to(inside):  # last guard: collect_inputs already keeps paths inside
            summary.failed.append((str(src), f"its output {dst} would be outside the output folder {output}"))
            continue
        outputs = [with_suffix_in_name(dst, suffix).resolve() for suffix in suffixes]
        taken = next((out for out in outputs if out in claimed), None)
        if taken is not None:
            summary.failed.append((str(src), f"its output {taken} is also the output of {claimed[taken]}"))
            continue
        claimed |= dict.fromkeys(outputs, src)
        overwritten = next((out for out in outputs if out in sources), None)
        if overwritten is not None:
            reason = f"its output {overwritten} would overwrite an input; set format= or output="
            summary.failed.append((str(src), reason))
        elif all(out.exists() for out in outputs) and not overwrite:
            summary.skipped += 1
        else:
            jobs.append((src, dst))
    return jobs


FAR = 2.0  # an input whose shorter side is over FAR times, or under 1/FAR of, the training size


def _settled_resize(opts: InferOptions, sizes: list[tuple[Path, tuple[int, int]]]) -> InferOptions:
    """``resize=auto``: each image at its own size, and one warning naming the option that fixes it when some are
    far from the scale the model was trained at (a generator sees shapes at the scale it learned them)."""
    if opts.resize != "auto":
        return opts
    n = opts.trained_size
    far = [(src, hw) for src, hw in sizes if n and not 1 / FAR <= min(hw) / n <= FAR]
    if far:
        src, (h, w) = far[0]
        warnings.warn(f"{len(far)} of {len(sizes)} inputs are far from the {n} px the model was trained at (e.g. "
                      f"{src.name}, {w}x{h}): resize={n} translates them at that scale and back to their size; "
                      "resize=null keeps their own size without this warning", stacklevel=2)
    return replace(opts, resize=None)


def _read_sizes(jobs: list[tuple[Path, Path]], summary: Summary) -> dict[int, tuple[int, int]]:
    """Each job's image size from its header (for batching equal sizes); unreadable headers fail that file."""
    sizes: dict[int, tuple[int, int]] = {}
    for i, (src, _) in enumerate(jobs):
        try:
            sizes[i] = picture_size(src)
        except DataError as e:
            summary.failed.append((str(src), str(e).removeprefix(f"{src}: ")))
    return sizes


def _masks(jobs: list[tuple[Path, Path]], output: Path, folder: str | None,
           translator: Translator) -> list[Path | None] | None:
    """Each job's hole mask in ``folder`` (by its name relative to the output; None: not found, or no folder:
    the input's transparency) for an inpainting model; None for any other model."""
    if not translator.inpaints:
        if folder:
            raise ConfigError(f"mask={folder}: this model does not inpaint (it takes {translator.in_channels} "
                              "channels, no mask)")
        return None
    root = Path(folder).expanduser() if folder else None
    if root is not None and not root.is_dir():
        raise ConfigError(f"mask={folder}: no such folder")
    return [mask_file(root, dst.relative_to(output)) if root else None for _, dst in jobs]


def _instance_maps(jobs: list[tuple[Path, Path]], output: Path, folder: str | None,
                   labels: LabelEncoding | None) -> list[Path | None] | None:
    """Each job's instance map in ``folder`` (named like its input; None: not found) for a label-map model that
    reads instance boundaries; None without a folder."""
    if not folder:
        return None
    if labels is None or not labels.instances:
        raise ConfigError(f"instances={folder}: this model reads no instance maps (it was not trained on label maps "
                          "with data.instances=true)")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ConfigError(f"instances={folder}: no such folder")
    return [mask_file(root, dst.relative_to(output)) for _, dst in jobs]


def _loader(jobs: list[tuple[Path, Path]], sizes: dict[int, tuple[int, int]], translator: Translator,
            opts: InferOptions, device: torch.device, holes: list[Path | None] | None = None,
            labels: LabelEncoding | None = None, instances: list[Path | None] | None = None) -> DataLoader:
    """Decoding workers feeding batches of equal-size images."""
    batch_size = opts.batch_size
    if batch_size is None:
        # Measured: on CPU batching only adds memory traffic (8 images/batch ran 0.74x as fast as 1); GPUs gain.
        batch_size = 8 if device.type == "cuda" else 1
    # Batch statistics are per image in the reference test script: train mode runs one image at a time.
    batches = _batches_by_size(sizes, 1 if opts.norm_mode == "train" else max(1, int(batch_size)))
    mask_folder = Path(opts.mask).expanduser() if opts.mask else None
    reader = _Reader([src for src, _ in jobs], translator.in_channels, opts.resize, opts.keep_aspect, holes,
                     mask_folder, labels, instances, Path(opts.instances).expanduser() if opts.instances else None)
    # fork where available: decoding workers need no CUDA, and start in milliseconds instead of re-importing
    # torch (which a spawn-started caller would otherwise impose, seconds per run).
    # OpenVINO int8 decodes in this process: with a decoding worker process beside an int8 graph, this process
    # crashed (SIGSEGV) at its next subprocess (OpenVINO 2026.4 on a CPU with AMX; fp32 and bf16 did not).
    workers = 0 if opts.backend == "openvino" and opts.precision == "int8" else opts.num_workers
    context = "fork" if workers > 0 and "fork" in mp.get_all_start_methods() else None
    return DataLoader(reader, batch_sampler=batches, num_workers=workers, collate_fn=_collate,
                      pin_memory=device.type == "cuda", prefetch_factor=4 if workers > 0 else None,
                      multiprocessing_context=context)


def _convert(items: list[dict[str, Any]], jobs: list[tuple[Path, Path]], converter: Converter, writer: _Writer,
             opts: InferOptions, summary: Summary, bar: tqdm) -> None:
    """Translate one batch of decoded items (once per style code of the plan) and queue their outputs; decode
    and model failures fail their files only (e.g. out of memory on a huge image)."""
    translator, plan = converter.translator, converter.plan
    good = [it for it in items if "error" not in it]
    per_input = len(plan.suffixes)
    for it in items:
        if "error" in it:
            src = jobs[it["index"]][0]
            summary.failed.append((str(src), it["error"].removeprefix(f"{src}: ")))
            bar.update(per_input)
    if converter.guard is not None:
        good = _guarded(good, jobs, converter.guard, summary, bar, per_input)
    if not good:
        return
    x = torch.stack([it["x"] for it in good])
    try:
        ys = [translator(x, code).cpu() for code in plan.codes()]
    except (RuntimeError, ValueError) as e:
        for it in good:
            summary.failed.append((str(jobs[it["index"]][0]), f"translation failed: {first_line(e)}"))
            bar.update(per_input)
        return
    fmt = FORMATS[opts.format]
    for n, it in enumerate(good):
        src, dst = jobs[it["index"]]
        picture: Picture = it["picture"]
        size = picture.size if opts.resize else None
        x, outputs = it["x"], [y[n] for y in ys]
        if translator.inpaints:
            x, outputs = x[:-1], [composited(y, it["x"]) for y in outputs]
        images = plan.compose([_resized(y, size) for y in outputs], _resized(x, size))
        same_size = tuple(images[0].shape[-2:]) == picture.size  # grids have no alpha
        alpha = picture.alpha if same_size and not it["opaque"] else None
        for suffix, image in zip(plan.suffixes, images):
            out = with_suffix_in_name(dst, suffix)
            writer.put(src, out, image, alpha, fmt or _format_of(out), picture.bits, opts.jpg_quality)


def _guarded(good: list[dict[str, Any]], jobs: list[tuple[Path, Path]], guard: Guard, summary: Summary, bar: tqdm,
             per_input: int) -> list[dict[str, Any]]:
    """Score each item (``summary.scores``); with ``guard.action=skip`` only the in-domain ones go on."""
    kept = []
    for it in good:
        score = float(guard.scores(it["x"][None])[0])
        flagged = guard.flagged(score)
        summary.scores[str(jobs[it["index"]][0])] = (score, flagged)
        if flagged and guard.action == "skip":
            summary.out_of_domain_skipped += 1
            bar.update(per_input)
        else:
            kept.append(it)
    return kept


def _resized(image: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """``image`` [C, H, W] back at the input's ``size`` (after ``resize``); as it is for None."""
    if size is None:
        return image
    return resize_images(image[None], size)[0]


def run(cfg) -> Summary:
    """``infer.py``: load the generator named by ``cfg.checkpoint`` and translate ``cfg.input`` into ``cfg.output``."""

    generator = dict(cfg.generator) if cfg.get("generator") else None
    loaded = load(cfg.checkpoint, generator=generator, direction=cfg.direction, weights=cfg.weights)
    if loaded.translation.source == LATENT:
        raise ConfigError(f"{cfg.checkpoint}: this model generates images from noise (model=gan); use translate "
                          f"generate checkpoint={cfg.checkpoint} output=DIR")
    plan = style_plan_of(loaded, StyleOptions.from_config(cfg.get("style")), cfg.get("edit"), cfg.checkpoint)
    inputs = list(cfg.input) if not isinstance(cfg.input, str) else cfg.input
    options = InferOptions.from_config(cfg)
    if options.norm_mode == "auto":
        options = replace(options, norm_mode=loaded.norm_mode)
    known_size = loaded.config is not None or loaded.pretrained is not None or loaded.trained_size
    options = replace(options, trained_size=loaded.size if known_size else None)
    if options.backend == "openvino":  # a run keeps its exported graphs
        options = replace(options, cache=openvino.cache_for(cfg.checkpoint, options.cache))
    guard = load_guard(GuardOptions.from_config(cfg.get("guard")), cfg.checkpoint, loaded.direction)
    labels = label_encoding(loaded.config.data) if loaded.config is not None else None
    if labels is not None and labels.instances and not options.instances:
        warnings.warn("this model also read instance boundaries in training; infer takes the label maps' class "
                      "boundaries for them (objects of one class that touch are not told apart; instances=DIR gives the "
                      "instance maps)", stacklevel=2)
    summary = translate_files(loaded.module, inputs, cfg.output, options, plan=plan, guard=guard, labels=labels)
    if guard is not None:
        verb = "not converted" if guard.action == "skip" else "converted anyway"
        _print_some([(src, f"score {score:.4f} > {guard.threshold:.4f}, {verb}") for src, score in summary.flagged],
                    "out of domain", "out-of-domain inputs", 20)
    _print_some(summary.failed, "failed", "failures", 20)
    _print_some(summary.ignored, "ignored", "ignored files", 5)
    print(f"{summary}\n  output: {Path(cfg.output).resolve()}", file=sys.stderr)
    return summary


def style_plan_of(loaded, opts: StyleOptions, edit=None, checkpoint=None) -> StylePlan:
    """The styles ``opts`` ask of a loaded generator (references are read at the training crop size), moved
    along the attribute axes saved beside ``checkpoint`` by ``edit`` ({NAME: k standard deviations})."""
    edits = []
    if edit:
        edits = load_axes(checkpoint).edits({str(k): v for k, v in edit.items()}, loaded.module)
    channels = generator_channels(loaded.module)[1]
    return style_plan(loaded.module, opts, encoder=loaded.style_encoder, channels=channels, image_size=loaded.size,
                      edits=edits)


def _print_some(entries: list[tuple[str, str]], label: str, plural: str, limit: int) -> None:
    """The first ``limit`` (path, reason) entries on stderr, and how many more: enough to act on, never a flood."""
    for src, reason in entries[:limit]:
        print(f"{label}: {src}: {reason}", file=sys.stderr)
    if len(entries) > limit:
        print(f"... and {len(entries) - limit} more {plural}", file=sys.stderr)
