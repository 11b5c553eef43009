"""``translate bench train [overrides ...] [bench.key=value ...]``: training-step speed.

Builds the real training step (``translate.training.loop.Trainer``) from the composed config (any Hydra override;
the reference defaults without an experiment) and times ``bench.steps`` steps after ``bench.warmup``, once per
mode, each in its own process:

- ``core``: the core issue's fp32 eager step (unfused Adam, default allocator), the baseline of the speedup
  column;
- ``fp32``: today's fp32 eager step; ``channels_last``; ``bf16`` / ``fp16`` autocast (fp16: CUDA only);
  ``compile``: ``torch.compile``; ``best``: every switch that beat the baseline, combined.

``bench.data=synthetic`` (default) feeds one in-memory batch repeatedly, so only the step is timed;
``bench.data=pipeline`` reads batches through the configured DataLoader and reports the time spent waiting
for them separately (an input-bound run shows up there). Reports ms/step (median, min, max), images/s, peak
memory, FLOPs per step (``torch.utils.flop_counter``) and, on GPU, TFLOP/s and its share of the device's
dense bf16/fp16 peak.

``bench.compare=[model=cyclegan,model=cut]`` measures several configurations side by side in one run (each entry
is a set of space-separated overrides added to the command line's), with each row's time and memory relative to
the first configuration's in the same mode.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import open_dict
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from translate.apps.bench import in_subprocess, peak_memory_mib
from translate.config.compose import compose, model_class
from translate.training.loop import Trainer

TRAIN_DEFAULTS: dict[str, Any] = {
    "steps": 10,
    "warmup": 3,
    "modes": None,  # default: fp32, channels_last, bf16 (+ fp16 on CUDA), compile, best
    "data": "synthetic",  # synthetic | pipeline
    "output": "bench_train.json",
    "compare": None,  # a list of override sets measured side by side, e.g. [model=cyclegan,model=cut]
}
MODES: dict[str, list[str]] = {
    # The core issue's step, before the speed work: Adam's per-parameter loop instead of the fused kernel, and
    # glibc's default of unmapping freed activations (page-faulted back in every step).
    "core": ["optim.G.fused=false", "optim.D.fused=false", "trainer.reuse_cpu_memory=false"],
    "fp32": [],
    "channels_last": ["trainer.channels_last=true"],
    "bf16": ["trainer.precision=bf16"],
    "fp16": ["trainer.precision=fp16"],
    "compile": ["trainer.compile=true"],
}
# Dense (no sparsity) tensor-core peaks in TFLOP/s for bf16/fp16, from the vendors' data sheets.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0, "L4": 121.0,
               "RTX 4090": 165.0, "RTX 3090": 71.0, "V100": 125.0, "T4": 65.0}


def _peak_tflops(name: str | None) -> float | None:
    if not name:
        return None
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


LAYOUTS = {"single": ["train"], "unaligned": ["trainA", "trainB"], "aligned": ["train/A", "train/B"]}


def _write_synthetic(root: Path, layout: str, n: int, size: int, channels: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    folders = list(zip(LAYOUTS[layout], channels))
    for folder, c in folders:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            small = rng.integers(0, 256, (8, 8, c), dtype=np.uint8)
            im = Image.fromarray(small.squeeze(-1) if c == 1 else small).resize((size, size), Image.BICUBIC)
            im.save(root / folder / f"{i:04d}.png")


def compose_bench(overrides: list[str], root: Path) -> Any:
    """The training config under test, with synthetic images written to ``root`` in the right layout."""

    # The reference defaults unless an experiment is named (deleting the default demo would drop it too).
    chosen = any(o.startswith("experiment=") for o in overrides)
    base = [*([] if chosen else ["~experiment"]), "logger=none", "trainer.progress_bar=false",
            "trainer.num_samples=0"]
    probe = compose(base + overrides + ["data.root=unused"])
    if "num_train" in probe.data:
        # A built-in demo (an experiment chose it): rendered into ``root``, a few images at its own size.
        n = max(8, 2 * int(probe.data.batch_size))
        return base + overrides + [f"data.root={root / 'demo'}", f"data.num_train={n}", "data.num_val=8", *_QUIET]
    family = model_class(probe)
    layout = "single" if family.from_noise else "aligned" if family.paired else "unaligned"
    data_choice = [] if any(o.startswith("data=") for o in overrides) else [f"data={layout}"]
    probe = compose(base + data_choice + overrides + ["data.root=unused"])
    n = max(8, 2 * int(probe.data.batch_size))
    channels = (int(probe.data.input_nc), int(probe.data.get("output_nc", probe.data.input_nc)))
    _write_synthetic(root, layout, n, int(probe.data.load_size), channels)
    return base + data_choice + overrides + [f"data.root={root}", *_QUIET]


# The bench times steps only: no checkpoints, samples or logs come due.
_QUIET = ["trainer.max_steps=1000000", "trainer.checkpoint_every=1000000", "trainer.sample_every=1000000",
          "trainer.log_every=1000000"]


def _child(overrides: list[str], settings: dict[str, Any], results: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(overrides)
        with open_dict(cfg):
            cfg.run_dir = tmp
        trainer = Trainer(cfg)
        device = trainer.device
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        batches = trainer.batches()
        fixed = next(batches)
        data_ms, compute_ms, step_ms = [], [], []
        for i in range(settings["warmup"] + settings["steps"]):
            t0 = time.perf_counter()
            batch = next(batches) if settings["data"] == "pipeline" else fixed
            t1 = time.perf_counter()
            trainer.train_step(batch)
            sync()
            t2 = time.perf_counter()
            if i >= settings["warmup"]:
                data_ms.append(1000 * (t1 - t0))
                compute_ms.append(1000 * (t2 - t1))
                step_ms.append(1000 * (t2 - t0))
        peak = peak_memory_mib(device)
        counter = FlopCounterMode(display=False)
        with counter:
            trainer.train_step(fixed)
        flops = counter.get_total_flops()
    batch_size = int(cfg.data.batch_size)
    median = statistics.median(step_ms)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    tflops = flops / (median / 1000) / 1e12
    peak_tflops = _peak_tflops(name)
    results.put({
        "device": str(device), "device_name": name or platform.processor() or "cpu",
        "precision": cfg.trainer.precision, "channels_last": bool(cfg.trainer.channels_last),
        "compile": bool(cfg.trainer.compile), "batch_size": batch_size,
        "ms_per_step": {"median": median, "min": min(step_ms), "max": max(step_ms)},
        "compute_ms_median": statistics.median(compute_ms), "data_ms_median": statistics.median(data_ms),
        "images_per_s": batch_size * 1000 / median, "peak_memory_mib": peak, "gflop_per_step": flops / 1e9,
        "achieved_tflops": tflops, "share_of_peak": tflops / peak_tflops if peak_tflops else None,
    })


def _bench_modes(base: list[str], modes: list[str], settings: dict[str, Any], cuda: bool) -> dict[str, dict[str, Any]]:
    """One configuration's rows: each mode in its own process, then ``best``, with speedups over ``core`` (or
    fp32)."""
    rows: dict[str, dict[str, Any]] = {}
    for mode in modes:
        if mode == "best" or (mode == "fp16" and not cuda):
            continue
        rows[mode] = in_subprocess(_child, base + MODES[mode], settings)
    if "best" in modes and "fp32" in rows:
        baseline = rows["fp32"]["ms_per_step"]["median"]
        # Every switch that beat fp32 eager by more than 2%; of the two precisions, the faster.
        winners = [m for m in ("channels_last", "compile") if m in rows and
                   rows[m]["ms_per_step"]["median"] < 0.98 * baseline]
        precisions = sorted((m for m in ("bf16", "fp16") if m in rows and
                             rows[m]["ms_per_step"]["median"] < 0.98 * baseline),
                            key=lambda m: rows[m]["ms_per_step"]["median"])
        combo = winners + precisions[:1]
        candidates = {m: {**rows[m], "combination": [m]} for m in ("fp32", *combo)}
        if len(combo) > 1:
            candidates["combo"] = in_subprocess(_child, base + [o for m in combo for o in MODES[m]], settings)
            candidates["combo"]["combination"] = combo
        # Switches do not always add up (channels_last can slow bf16 down): keep the fastest measured.
        rows["best"] = min(candidates.values(), key=lambda r: r["ms_per_step"]["median"])
    reference = "core" if "core" in rows else "fp32"
    baseline = rows[reference]["ms_per_step"]["median"] if reference in rows else None
    for row in rows.values():
        row["speedup"] = baseline / row["ms_per_step"]["median"] if baseline else None
        row["speedup_over"] = reference
    return rows


def _relative_to_first(variants: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Each row's step time and peak memory as a fraction of the first configuration's in the same mode."""
    first = next(iter(variants.values()))
    for rows in variants.values():
        for mode, row in rows.items():
            if mode in first:
                row["time_vs_first"] = row["ms_per_step"]["median"] / first[mode]["ms_per_step"]["median"]
                row["memory_vs_first"] = row["peak_memory_mib"] / first[mode]["peak_memory_mib"]


def bench_train(overrides: list[str], **settings: Any) -> dict[str, Any]:
    settings = {**TRAIN_DEFAULTS, **settings}
    cuda = torch.cuda.is_available() and not any(o in ("trainer.device=cpu",) for o in overrides)
    if isinstance(settings["modes"], str):
        settings["modes"] = [settings["modes"]]
    modes = settings["modes"] or (["core", "fp32", "channels_last", "bf16"] + (["fp16"] if cuda else [])
                                  + ["compile", "best"])
    compare = settings["compare"] or [""]
    variants: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, variant in enumerate(compare):
            root = Path(tmp) / str(i)
            base = compose_bench(list(overrides) + str(variant).split(), root)
            variants[str(variant)] = _bench_modes(base, modes, settings, cuda)
    if settings["compare"]:
        _relative_to_first(variants)
    rows = {f"{variant} {mode}".strip(): row for variant, variant_rows in variants.items()
            for mode, row in variant_rows.items()}
    return {"benchmark": "train", "overrides": list(overrides), "settings": settings,
            "machine": {"platform": platform.platform(), "torch": torch.__version__,
                        "threads": torch.get_num_threads()},
            "results": rows}


def print_table(report: dict[str, Any]) -> None:
    print(f"train: {' '.join(report['overrides']) or '(reference pix2pix defaults)'}; "
          f"{report['settings']['steps']} steps after {report['settings']['warmup']} warm-up, "
          f"data={report['settings']['data']}, torch {report['machine']['torch']}")
    width = max(15, *(len(m) + 2 for m in report["results"]))
    print(f"{'mode':<{width}}{'ms/step':>9}{'min':>8}{'max':>8}{'data ms':>9}{'img/s':>8}{'GFLOP':>8}{'TFLOP/s':>9}"
          f"{'of peak':>9}{'peak MiB':>10}{'speedup':>9}{'time/1st':>9}{'mem/1st':>8}")
    for mode, r in report["results"].items():
        share = f"{100 * r['share_of_peak']:.1f}%" if r["share_of_peak"] else "-"
        label = mode + (f" ({'+'.join(r['combination'])})" if mode.endswith("best") else "")
        relative = "".join(f"{r[k]:>{w}.2f}" if k in r else f"{'-':>{w}}"
                           for k, w in (("time_vs_first", 9), ("memory_vs_first", 8)))
        print(f"{label:<{width}}{r['ms_per_step']['median']:>9.1f}{r['ms_per_step']['min']:>8.1f}"
              f"{r['ms_per_step']['max']:>8.1f}{r['data_ms_median']:>9.1f}{r['images_per_s']:>8.2f}"
              f"{r['gflop_per_step']:>8.1f}{r['achieved_tflops']:>9.3f}{share:>9}{r['peak_memory_mib']:>10.0f}"
              f"{(format(r['speedup'], '.2f') + 'x') if r['speedup'] else '-':>9}{relative}")
