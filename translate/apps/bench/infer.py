"""``translate bench infer [key=value ...]``: batch conversion speed.

Times batch conversion of a folder of synthetic images against the straightforward loop the reference test
script runs (load one image, ``G(x)``, save it, next), side by side with the same random generator. Each mode
runs in its own process so peak memory is measured per mode. Prints a table and writes JSON.

Settings (defaults in ``INFER_DEFAULTS``): generator (a generator config option), ngf, norm, num_images,
size, batch_size and precision (a value or a list: one pipeline run per combination), num_workers,
device, channels_last, compile, naive (run the baseline too), output (JSON path).
"""

from __future__ import annotations

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
from translate.core.runtime import resolve_device
from translate.inference.convert import translate_files
from translate.loading.weights import generator_preset
from translate.networks import init_weights

INFER_DEFAULTS: dict[str, Any] = {
    "generator": "resnet_9blocks",
    "ngf": 64,
    "norm": "instance",
    "num_images": 16,
    "size": 256,
    "batch_size": 8,
    "precision": "fp32",
    "num_workers": 1,
    "device": "auto",
    "channels_last": False,
    "compile": False,
    "naive": True,
    "seed": 0,
    "output": "bench_infer.json",
}


def _make_images(folder: Path, n: int, size: int, seed: int) -> None:
    """Smooth random colour fields (compress like photos, unlike noise)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(folder / f"{i:05d}.png")


def _generator(settings: dict[str, Any]) -> torch.nn.Module:
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


def _pipeline(settings: dict[str, Any], src: Path, dst: Path, device: torch.device) -> None:
    summary = translate_files(
        _generator(settings), src, dst, batch_size=settings["batch_size"], num_workers=settings["num_workers"],
        device=str(device), precision=settings["precision"], channels_last=settings["channels_last"],
        compile=settings["compile"], quiet=True,
    )
    if summary.failed:
        raise RuntimeError(f"benchmark conversion failed: {summary.failed[:3]}")


def _child(mode: str, settings: dict[str, Any], src: str, results: Any) -> None:
    device = resolve_device(settings["device"])
    run = _naive if mode == "naive" else _pipeline
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
                 "precision": "fp32" if mode == "naive" else settings["precision"], "seconds": seconds,
                 "images_per_s": n / seconds, "ms_per_image": 1000 * seconds / n,
                 "peak_memory_mib": peak_memory_mib(device)})


def bench_infer(**overrides: Any) -> dict[str, Any]:
    settings = {**INFER_DEFAULTS, **overrides}
    batch_sizes = settings["batch_size"] if isinstance(settings["batch_size"], list) else [settings["batch_size"]]
    precisions = settings["precision"] if isinstance(settings["precision"], list) else [settings["precision"]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        _make_images(src, settings["num_images"], settings["size"], settings["seed"])
        if settings["naive"]:
            rows.append(in_subprocess(_child, "naive", settings, str(src)))
        for bs, precision in itertools.product(batch_sizes, precisions):
            rows.append(in_subprocess(_child, "pipeline", {**settings, "batch_size": bs, "precision": precision}, str(src)))
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


def print_table(report: dict[str, Any]) -> None:
    s = report["settings"]
    print(f"infer: {s['generator']} ngf={s['ngf']} norm={s['norm']}, {s['num_images']} images of "
          f"{s['size']}x{s['size']}, {report['machine']['threads']} threads, torch {report['machine']['torch']}")
    print(f"{'mode':<10}{'device':<8}{'batch':>6}{'precision':>10}{'images/s':>10}{'ms/image':>10}"
          f"{'peak MiB':>10}{'speedup':>9}")
    for r in report["results"]:
        speed = f"{r['speedup_vs_naive']:.2f}x" if r["speedup_vs_naive"] else "-"
        print(f"{r['mode']:<10}{r['device']:<8}{r['batch_size']:>6}{r['precision']:>10}{r['images_per_s']:>10.2f}"
              f"{r['ms_per_image']:>10.1f}{r['peak_memory_mib']:>10.0f}{speed:>9}")
