"""``translate bench infer [key=value ...]``: batch conversion speed, backends and precisions side by side.

Times batch conversion of a folder against the straightforward loop the reference test script runs (load one
image, ``G(x)``, save it, next), with the same generator: a random one (generator, ngf, norm) or a trained one
(``checkpoint=``), on synthetic images or your own (``input=DIR``, its first num_images). Each mode runs in its
own process so peak memory is measured per mode; each reports its agreement with torch fp32 on the last
``agreement_images`` inputs (int8 calibrates on the others) (PSNR, SSIM, max |diff| of the outputs in [-1, 1]). Prints a table and writes JSON.

Settings (defaults in ``INFER_DEFAULTS``): checkpoint, input, generator, ngf, norm, num_images, size,
backend (torch, openvino), batch_size and precision (fp32, bf16, fp16, int8; each a value or a list: one
pipeline run per combination, int8 with backend=openvino only, calibrated on the inputs), num_workers, device,
channels_last, compile, naive (run the baseline too), agreement_images, output (JSON path).
"""

from __future__ import annotations

import functools
import itertools
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from translate.apps.bench import in_subprocess, peak_memory_mib
from translate.config.compose import build
from translate.core.errors import ConfigError
from translate.core.runtime import resolve_device
from translate.data.images import read_picture, to_model_input
from translate.inference.convert import InferOptions, Translator, backend_generator, torch_precision, translate_files
from translate.inference.inputs import collect_inputs
from translate.inference.openvino import agreement_of
from translate.loading.load import load
from translate.loading.weights import generator_preset
from translate.networks import init_weights

INFER_DEFAULTS: dict[str, Any] = {
    "checkpoint": None,
    "input": None,
    "generator": "resnet_9blocks",
    "ngf": 64,
    "norm": "instance",
    "num_images": 16,
    "size": 256,
    "backend": "torch",
    "batch_size": 8,
    "precision": "fp32",
    "num_workers": 1,
    "device": "auto",
    "channels_last": False,
    "compile": False,
    "naive": True,
    "seed": 0,
    "agreement_images": 4,
    "output": "bench_infer.json",
}


def _make_images(folder: Path, n: int, size: int, seed: int) -> None:
    """Smooth random colour fields (compress like photos, unlike noise)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(folder / f"{i:05d}.png")


def _copy_images(src: Path, folder: Path, n: int) -> None:
    """The first ``n`` images of ``src`` (sorted), as PNG (so the naive loop reads them as the pipeline does)."""
    files = [p for p, _ in collect_inputs(src)[0]][:n]
    if len(files) < n:
        raise ConfigError(f"input={src}: {len(files)} images, num_images={n} asked")
    for i, path in enumerate(files):
        Image.open(path).convert("RGB").save(folder / f"{i:05d}.png")


def _generator(settings: dict[str, Any]) -> torch.nn.Module:
    if settings["checkpoint"]:
        return load(settings["checkpoint"]).module.eval()
    torch.manual_seed(settings["seed"])
    node = generator_preset(settings["generator"], {"ngf": settings["ngf"], "norm": settings["norm"]})
    return init_weights(build(node)(in_channels=3, out_channels=3)).eval()


def _naive(settings: dict[str, Any], src: Path, dst: Path, device: torch.device) -> None:
    """The reference test script's loop: one image at a time, load -> G(x) -> save, all in one thread."""

    G = _generator(settings).to(device)
    with torch.no_grad():
        for path in sorted(src.iterdir()):
            image = Image.open(path).convert("RGB")
            x = TF.normalize(TF.to_dtype(TF.pil_to_tensor(image), torch.float32, scale=True), [0.5] * 3, [0.5] * 3)
            y = G(x.unsqueeze(0).to(device))
            array = ((y[0].float().cpu().numpy().transpose(1, 2, 0) + 1) / 2 * 255).clip(0, 255).astype(np.uint8)
            Image.fromarray(array).save(dst / path.name)


def _pipeline(settings: dict[str, Any], src: Path, dst: Path, device: torch.device, G: torch.nn.Module) -> None:
    """``infer.py``'s conversion with ``G`` as the backend runs it (built once, outside the timing)."""
    summary = translate_files(
        G, src, dst, batch_size=settings["batch_size"], num_workers=settings["num_workers"],
        device=str(device), precision=torch_precision(settings["backend"], settings["precision"]),
        channels_last=settings["channels_last"], compile=settings["compile"], quiet=True,
    )
    if summary.failed:
        raise RuntimeError(f"benchmark conversion failed: {summary.failed[:3]}")


def _backend(settings: dict[str, Any], src: Path, device: torch.device, cache: Path) -> torch.nn.Module:
    """The generator as the mode's backend runs it: an OpenVINO one exported, compiled (int8: calibrated on the
    inputs but the ``agreement_images`` last ones) here, before any timing."""
    G = _generator(settings)
    if settings["backend"] == "torch":
        return G
    options = InferOptions(backend=settings["backend"], precision=settings["precision"], cache=str(cache),
                           int8_min_psnr=0.0, int8_min_ssim=0.0)  # the bench reports the agreement, refuses nothing
    files = sorted(src.iterdir())
    return backend_generator(G, options, device, files[: len(files) - settings["agreement_images"]] or files)[0]


def _agreement(settings: dict[str, Any], G: torch.nn.Module, src: Path, device: torch.device) -> dict[str, float]:
    """This mode's outputs against torch fp32's on the last ``agreement_images`` inputs (held out of int8's
    calibration)."""
    files = sorted(src.iterdir())[-settings["agreement_images"] :]
    reference = Translator(_generator(settings), device=device)
    ours = Translator(G, device=device, precision=torch_precision(settings["backend"], settings["precision"]))
    pairs = []
    for path in files:
        x = to_model_input(read_picture(path), reference.in_channels)[None]
        pairs.append((ours(x).cpu().clamp(-1, 1), reference(x).cpu().clamp(-1, 1)))
    return agreement_of(pairs)


def _child(mode: str, settings: dict[str, Any], src: str, results: Any) -> None:
    device = resolve_device(settings["device"])
    if mode == "naive":
        run, agreement = _naive, {}
    else:
        cache = Path(src).parent / "cache"
        G = _backend(settings, Path(src), device, cache)
        run = functools.partial(_pipeline, G=G)
        agreement = _agreement(settings, G, Path(src), device) if settings["agreement_images"] else {}
    with tempfile.TemporaryDirectory() as warm, tempfile.TemporaryDirectory() as out:
        # Warm-up on two images (allocator, kernels, compile) outside the timing.
        warm_src = Path(warm) / "in"
        warm_src.mkdir()
        for p in sorted(Path(src).iterdir())[:2]:
            (warm_src / p.name).write_bytes(p.read_bytes())
        (Path(warm) / "out").mkdir()
        run(settings, warm_src, Path(warm) / "out", device)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        run(settings, Path(src), Path(out), device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    n = settings["num_images"]
    results.put({"mode": mode, "device": str(device), "batch_size": 1 if mode == "naive" else settings["batch_size"],
                 "backend": "torch" if mode == "naive" else settings["backend"],
                 "precision": "fp32" if mode == "naive" else settings["precision"], "seconds": seconds,
                 "images_per_s": n / seconds, "ms_per_image": 1000 * seconds / n,
                 "peak_memory_mib": peak_memory_mib(device), "agreement": agreement})


def bench_infer(**overrides: Any) -> dict[str, Any]:
    settings = {**INFER_DEFAULTS, **overrides}
    combinations = [(b, bs, p) for b, bs, p in itertools.product(*(_listed(settings[k]) for k in AXES))
                    if b != "torch" or p != "int8"]  # int8 is an OpenVINO precision
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "images"
        src.mkdir()
        if settings["input"]:
            _copy_images(Path(settings["input"]).expanduser(), src, settings["num_images"])
        else:
            _make_images(src, settings["num_images"], settings["size"], settings["seed"])
        if settings["naive"]:
            rows.append(in_subprocess(_child, "naive", settings, str(src)))
        for backend, bs, precision in combinations:
            mode = {**settings, "backend": backend, "batch_size": bs, "precision": precision}
            rows.append(in_subprocess(_child, "pipeline", mode, str(src)))
    baseline = rows[0]["images_per_s"] if settings["naive"] else None
    for row in rows:
        row["speedup_vs_naive"] = row["images_per_s"] / baseline if baseline else None
    return {
        "benchmark": "infer",
        "settings": settings,
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "results": rows,
    }


AXES = ("backend", "batch_size", "precision")  # settings that may be lists: one pipeline run per combination


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def print_table(report: dict[str, Any]) -> None:
    s = report["settings"]
    model = s["checkpoint"] or f"{s['generator']} ngf={s['ngf']} norm={s['norm']} (random weights)"
    images = s["input"] or f"synthetic {s['size']}x{s['size']}"
    print(f"infer: {model}, {s['num_images']} images ({images}), {report['machine']['threads']} threads, "
          f"torch {report['machine']['torch']}")
    print(f"{'mode':<10}{'backend':<10}{'batch':>6}{'precision':>10}{'images/s':>10}{'ms/image':>10}"
          f"{'peak MiB':>10}{'speedup':>9}{'PSNR dB':>9}{'SSIM':>8}{'max|d|':>8}")
    for r in report["results"]:
        speed = f"{r['speedup_vs_naive']:.2f}x" if r["speedup_vs_naive"] else "-"
        a = r["agreement"]
        agree = f"{a['psnr']:>9.1f}{a['ssim']:>8.4f}{a['max_abs_diff']:>8.3f}" if a else f"{'-':>9}{'-':>8}{'-':>8}"
        print(f"{r['mode']:<10}{r['backend']:<10}{r['batch_size']:>6}{r['precision']:>10}{r['images_per_s']:>10.2f}"
              f"{r['ms_per_image']:>10.1f}{r['peak_memory_mib']:>10.0f}{speed:>9}{agree}")
