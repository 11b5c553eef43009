"""The OpenVINO backend of batch conversion and the page (``backend=openvino``): the generator exported once to ONNX
(dynamic batch, height and width; cached by a hash of its weights), compiled for the CPU at the precision asked
(``fp32``, ``bf16``: OpenVINO's inference precision) or quantised to ``int8`` with NNCF on real inputs, the
quantised graph checked against fp32 on held-out images and refused below ``Int8Target``.

``compiled_generator`` gives an ``nn.Module`` stand-in that ``Translator`` runs like the torch generator, so the
conversion path (any size, stride padding, tiling, bit depth, alpha, resume, guard) is the same for both backends.
Needs the optional extra: ``pip install -e ".[openvino]"``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from translate.core.errors import ConfigError
from translate.evaluation.metrics import psnr, ssim
from translate.inference.export import export_generator
from translate.loading.pipeline import run_folder
from translate.networks.layers import generator_channels, generator_stride

BACKENDS = ("torch", "openvino")
PRECISIONS = ("fp32", "bf16", "int8")
HINTS = {"fp32": "f32", "bf16": "bf16"}  # OpenVINO's inference precision (bf16: f32 on CPUs without it)
MISSING = 'backend=openvino needs OpenVINO and NNCF: pip install -e ".[openvino]"'
EXPORT_VERSION = 1  # part of every cache key: bump when the exported graph changes


@dataclass(frozen=True)
class Int8Target:
    """The agreement an int8 graph must keep with the fp32 one on held-out images (mean over them), else it is
    refused; and how it is calibrated: ``preset`` (NNCF's ``performance``: symmetric activations, or ``mixed``),
    the first and last convolutions kept in floating point (``keep_ends``), ``subset`` images at most.

    ``float_ops`` are the OpenVINO operations whose inputs stay in floating point, tried in order: the first
    that meets the target is used, so a generator keeps as many int8 layers as its picture allows. ``MVN`` is
    instance and layer normalisation, which divides a channel's rounding error by its spread (a channel that is
    nearly flat, as on a blank stretch of a sketch, comes out as noise); ``Add`` the residual sums;
    ``ConvolutionBackpropData`` the transposed, upsampling convolutions. The layers in floating point run at
    ``float_precision`` (``bf16``: OpenVINO's bf16, which is f32 on CPUs without it)."""

    min_psnr: float = 40.0
    min_ssim: float = 0.99
    preset: str = "mixed"
    keep_ends: bool = True
    float_ops: tuple[tuple[str, ...], ...] = (("MVN", "Add"), ("MVN", "Add", "ConvolutionBackpropData"))
    float_precision: str = "bf16"
    subset: int = 300

    def __post_init__(self):
        if not self.float_ops:
            raise ValueError("Int8Target.float_ops: give at least one graph to try (() inside it quantises every op)")

    def met_by(self, agreement: dict[str, float]) -> bool:
        return agreement["psnr"] >= self.min_psnr and agreement["ssim"] >= self.min_ssim


def openvino_module():
    """``openvino``, or the one line that says how to install it."""
    try:
        import openvino
    except ImportError:
        raise ConfigError(MISSING) from None
    return openvino


def check_servable(G: nn.Module, *, device: torch.device, norm_mode: str, compile: bool) -> None:
    """One line for what ``backend=openvino`` cannot do: a CUDA device, torch.compile, the reference test script's
    train-mode normalisation (batch statistics and dropout at inference), a style code."""
    if device.type != "cpu":
        raise ConfigError(f"backend=openvino runs on the CPU; device={device} needs backend=torch")
    if compile:
        raise ConfigError("compile=true is torch.compile: with backend=openvino the graph is compiled by OpenVINO")
    if norm_mode == "train":
        raise ConfigError("backend=openvino runs the generator in eval mode; norm_mode=train (the reference "
                          "pix2pix models' batch statistics and dropout) needs backend=torch or norm_mode=eval")
    if int(getattr(G, "nz", 0) or 0):
        raise ConfigError("backend=openvino serves generators without a style code; this one takes one (model="
                          "bicycle, SPADE or pix2pixHD styles): use backend=torch")


def weights_key(G: nn.Module, **extra) -> str:
    """A hash of the generator's class, arguments, weights and buffers, and of ``extra`` (what else shapes the
    cached graph): the name of its cached files, so new weights never meet an old graph."""
    digest = hashlib.sha256(json.dumps([type(G).__qualname__, EXPORT_VERSION, extra], sort_keys=True,
                                       default=str).encode())
    for name, value in sorted(G.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(value.dtype).encode() + str(tuple(value.shape)).encode())
        digest.update(value.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:24]


def default_cache() -> Path:
    """Where graphs of generators loaded without a known home are cached: ``$XDG_CACHE_HOME/translate/openvino``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "translate" / "openvino"


def cache_for(source: str | Path, cache: str | None) -> str | None:
    """Where the graphs of the model loaded from ``source`` are kept: ``cache`` when given, else inside a run's
    folder (``<run>/export/openvino``); None (the user's cache folder) for anything else."""
    if cache is not None:
        return cache
    run = run_folder(source)
    return str(run / "export" / "openvino") if run is not None else None


def exported_onnx(G: nn.Module, cache: Path) -> Path:
    """The ONNX file of ``G`` (dynamic batch, height and width), exported once; a cached file is used only while it
    still computes what ``G`` computes (``matches``), else exported again."""
    path = Path(cache) / f"{weights_key(G, axes='batch,height,width')}.onnx"
    if path.is_file() and not matches(path, G):
        path.unlink()  # altered, truncated or stale: a cache folder is not to be trusted blindly
    if not path.is_file():
        try:
            export_generator(G, path)
        except (RuntimeError, ValueError, TypeError) as e:
            raise ConfigError(f"backend=openvino: this generator ({type(G).__name__}) does not export to ONNX "
                              f"({str(e).splitlines()[0][:200]}); use backend=torch") from None
    return path


@torch.no_grad()
def matches(path: Path, G: nn.Module) -> bool:
    """Whether the graph at ``path`` gives ``G``'s output (to 1e-3) on a random input of the smallest size ``G``
    takes."""
    stride = generator_stride(G)
    side = 2 * stride if stride < 64 else stride
    x = torch.rand(1, generator_channels(G)[0], side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1
    try:
        y = run_compiled(compile_for_cpu(path, "fp32"), x)
    except Exception:  # noqa: BLE001 - any file OpenVINO cannot read or run is simply not a match
        return False
    expected = G(x)
    return y.shape == expected.shape and bool((y - expected).abs().max() < 1e-3)


class CompiledGenerator(nn.Module):
    """An OpenVINO compiled generator behind the torch generator's interface: ``G(x)``, float32 tensors in and
    out, channels and stride declared as the original declares them. Calls are serialised (one infer request)."""

    def __init__(self, compiled, G: nn.Module, precision: str, agreement: dict[str, float] | None = None):
        super().__init__()
        self.in_channels, self.out_channels = generator_channels(G)
        self.stride = generator_stride(G)
        self.precision, self.agreement = precision, agreement
        self._compiled, self._request, self._lock = compiled, compiled.create_infer_request(), threading.Lock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self._lock:
            self._request.infer({0: x.detach().float().cpu().contiguous().numpy()})
            return torch.from_numpy(self._request.get_output_tensor(0).data.copy())


def compile_for_cpu(model, precision: str, threads: int | None = None):
    """``model`` (an OpenVINO model or file) compiled for the CPU at ``precision``'s inference precision."""
    ov = openvino_module()
    config = {"INFERENCE_PRECISION_HINT": HINTS[precision], "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return ov.Core().compile_model(model, "CPU", config)


def compiled_generator(G: nn.Module, *, precision: str = "fp32", cache: Path | None = None,
                       calibration: Sequence[torch.Tensor] = (), check: Sequence[torch.Tensor] = (),
                       target: Int8Target = Int8Target(), threads: int | None = None) -> CompiledGenerator:
    """``G`` (eval mode) as a CompiledGenerator at ``precision`` (fp32, bf16 or int8). int8 calibrates on the
    ``calibration`` inputs ([1, C, H, W] each, in [-1, 1]) and is refused (ConfigError) when its outputs on the
    held-out ``check`` inputs miss ``target``; its ``agreement`` says what it kept."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r} is not one of {', '.join(PRECISIONS)} for backend=openvino")
    openvino_module()
    G = G.eval()
    cache = Path(cache) if cache is not None else default_cache()
    onnx_path = exported_onnx(G, cache)
    if precision != "int8":
        return CompiledGenerator(compile_for_cpu(onnx_path, precision, threads), G, precision)
    if not calibration or not check:
        raise ConfigError("precision=int8 needs calibration images and held-out ones to check it on "
                          "(calibration=DIR, or two or more input images)")
    model, agreement = quantized(onnx_path, calibration, check, target, cache)
    return CompiledGenerator(compile_for_cpu(model, target.float_precision, threads), G, "int8", agreement)


def data_key(images: Sequence[torch.Tensor], **settings) -> str:
    """A hash of ``images`` and ``settings``."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for x in images:
        digest.update(str(tuple(x.shape)).encode() + x.float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def quantized(onnx_path: Path, calibration: Sequence[torch.Tensor], check: Sequence[torch.Tensor],
              target: Int8Target, cache: Path):
    """The int8 OpenVINO model of ``onnx_path`` calibrated on ``calibration`` with the first of ``target.float_ops``
    whose agreement with fp32 on ``check`` meets ``target``, and that agreement; refused when none does. The
    agreement is measured every time: a cached graph is not trusted to be what it claims."""
    expected = outputs_of(compile_for_cpu(onnx_path, "fp32"), check)  # once for every graph tried
    for float_ops in target.float_ops:
        model = calibrated(onnx_path, calibration, check, target, float_ops, cache)
        agreement = measure_agreement(compile_for_cpu(model, target.float_precision), check, expected)
        if target.met_by(agreement):
            return model, agreement
    raise ConfigError(f"precision=int8: on {agreement['images']} held-out images the int8 graph agrees with fp32 "
                      f"at {agreement['psnr']:.1f} dB PSNR, SSIM {agreement['ssim']:.4f}, below the target "
                      f"({target.min_psnr:g} dB, {target.min_ssim:g}); use precision=bf16")


def calibrated(onnx_path: Path, calibration: Sequence[torch.Tensor], check: Sequence[torch.Tensor],
               target: Int8Target, float_ops: tuple[str, ...], cache: Path):
    """``calibrate``'s graph, cached as OpenVINO IR named by the graph, the images and the method."""
    ov = openvino_module()
    method = {"preset": target.preset, "keep_ends": target.keep_ends, "float_ops": list(float_ops),
              "subset": target.subset}  # float_precision is the compiler's: the same graph serves both
    xml = cache / f"{onnx_path.stem}-int8-{data_key([*calibration, *check], **method)}.xml"
    if xml.is_file():
        with contextlib.suppress(Exception):  # unreadable: calibrate again
            return ov.Core().read_model(xml)
    model = calibrate(ov.Core().read_model(onnx_path), calibration, target, float_ops)
    save_ir(ov, model, xml)
    return model


def calibrate(model, calibration: Sequence[torch.Tensor], target: Int8Target, float_ops: tuple[str, ...]):
    """NNCF post-training quantisation of ``model`` on the calibration inputs, ``float_ops`` left unquantised."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # NNCF's import: "no CUDA runtime"
    try:
        import nncf
    except ImportError:
        raise ConfigError(MISSING) from None
    nncf.set_log_level(logging.ERROR)  # its per-layer notes: the caller says what came of it
    convs = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    ends = [convs[0], convs[-1]] if target.keep_ends and convs else []
    ignored = nncf.IgnoredScope(names=ends, types=list(float_ops), validate=False)
    preset = nncf.QuantizationPreset.MIXED if target.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
    items = [x.float().numpy() for x in calibration]
    with contextlib.redirect_stdout(io.StringIO()):  # its progress bars
        return nncf.quantize(model, nncf.Dataset(items), preset=preset, subset_size=min(target.subset, len(items)),
                             ignored_scope=ignored)


def run_compiled(compiled, x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(compiled({0: x.float().numpy()})[0].copy())


def outputs_of(compiled, images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [run_compiled(compiled, x).clamp(-1, 1) for x in images]


def measure_agreement(candidate, images: Sequence[torch.Tensor], expected: Sequence[torch.Tensor]) -> dict[str, float]:
    """Mean PSNR and SSIM of ``candidate``'s outputs on ``images`` against the ``expected`` ones, and the largest
    |difference|."""
    return agreement_of(list(zip(outputs_of(candidate, images), expected, strict=True)))


def agreement_of(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """PSNR (capped at 100 dB), SSIM and max |diff| of (output, reference) pairs of [N, C, H, W] in [-1, 1]."""
    psnrs = torch.cat([psnr(y, r) for y, r in pairs]).clamp(max=100.0)
    ssims = torch.cat([ssim(y, r) for y, r in pairs])
    worst = max(float((y - r).abs().max()) for y, r in pairs)
    return {"psnr": float(psnrs.mean()), "ssim": float(ssims.mean()), "max_abs_diff": worst, "images": len(psnrs)}


def save_ir(ov, model, xml: Path) -> None:
    """The model as OpenVINO IR (.xml and .bin), each file moved into place whole."""
    xml.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=xml.parent, prefix=".ir-") as tmp:
        staged = Path(tmp) / xml.name
        ov.save_model(model, staged, compress_to_fp16=False)
        for suffix in (".bin", ".xml"):  # the .xml last: it is what a reader looks for
            shutil.move(staged.with_suffix(suffix), xml.with_suffix(suffix))
