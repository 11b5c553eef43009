"""``translate bench serve [key=value ...]``: latency and memory of ``translate.apps.serve``.

Serves a generator with random weights (a reference-layout file of ``generator``, ``ngf``, ``norm``) on
127.0.0.1 in a fresh process, then sends ``requests`` translations of ``size`` x ``size`` PNG images one at a
time and as bursts of ``concurrency`` parallel requests (the server runs one model call at a time; the others
wait in its queue). Reports p50/p95 latency of both, throughput and the process's peak memory (server and
clients together; on CPU the resident set). Prints a table and writes JSON.
"""

from __future__ import annotations

import io
import platform
import statistics
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image

from translate.apps.bench import in_subprocess, peak_memory_mib
from translate.apps.serve import ServeOptions, free_port, load_service, serving_in_thread
from translate.config.compose import build
from translate.loading.reference import reference_key_map
from translate.loading.weights import generator_preset

SERVE_DEFAULTS: dict[str, Any] = {
    "generator": "resnet_9blocks",
    "ngf": 64,
    "norm": "instance",
    "size": 256,
    "requests": 20,
    "concurrency": 4,
    "device": "auto",
    "output": "bench_serve.json",
}


def _reference_file(folder: Path, node) -> Path:
    """A reference-layout file of the generator config ``node`` with random weights."""

    G = build(node)()
    path = folder / "latest_net_G.pth"
    torch.save({theirs: G.state_dict()[ours] for ours, theirs in reference_key_map(G).items()}, path)
    return path


def _png(size: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in seconds)
    return {"p50_ms": statistics.median(ms), "p95_ms": ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]}


def _timed_post(url: str, body: bytes) -> float:
    start = time.perf_counter()
    request = urllib.request.Request(f"{url}/api/translate", data=body, headers={"Content-Type": "image/png"})
    with urllib.request.urlopen(request, timeout=600) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
    return time.perf_counter() - start


def _measure(settings: dict[str, Any], results) -> None:
    torch.manual_seed(0)
    node = generator_preset(settings["generator"], {"ngf": settings["ngf"], "norm": settings["norm"]})
    with tempfile.TemporaryDirectory() as folder:
        path = _reference_file(Path(folder), node)
        options = ServeOptions(port=free_port(), device=settings["device"], queue=settings["concurrency"])
        service = load_service(str(path), options, generator=OmegaConf.to_container(node))
    images = [_png(settings["size"], i) for i in range(settings["requests"])]
    with serving_in_thread(service) as url:
        _timed_post(url, images[0])  # warm-up
        alone = [_timed_post(url, body) for body in images]
        start = time.perf_counter()
        with ThreadPoolExecutor(settings["concurrency"]) as pool:
            burst = list(pool.map(lambda body: _timed_post(url, body), images))
        wall = time.perf_counter() - start
    results.put({"one_at_a_time": _percentiles(alone), "burst": _percentiles(burst),
                 "burst_images_per_s": len(images) / wall, "peak_memory_mib": peak_memory_mib(service.device),
                 "device": str(service.device)})


def bench_serve(**changes: Any) -> dict[str, Any]:
    settings = {**SERVE_DEFAULTS, **changes}
    measured = in_subprocess(_measure, settings)
    return {"settings": settings, "machine": {"cpu": platform.processor() or platform.machine(),
                                             "threads": torch.get_num_threads(), "torch": torch.__version__},
            "results": measured}


def print_table(report: dict[str, Any]) -> None:
    s, r = report["settings"], report["results"]
    print(f"{s['generator']} ngf {s['ngf']}, {s['size']}x{s['size']} PNG, {s['requests']} requests on {r['device']}")
    print(f"  one at a time        p50 {r['one_at_a_time']['p50_ms']:8.1f} ms   p95 {r['one_at_a_time']['p95_ms']:8.1f} ms")
    print(f"  {s['concurrency']} in parallel        p50 {r['burst']['p50_ms']:8.1f} ms   p95 {r['burst']['p95_ms']:8.1f} ms"
          f"   {r['burst_images_per_s']:.2f} images/s")
    print(f"  peak memory          {r['peak_memory_mib']:.0f} MiB")
