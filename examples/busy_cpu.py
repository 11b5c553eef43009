"""Training speed on a quiet and on a busy CPU, ours beside the reference code: ``python examples/busy_cpu.py OUT
--data DIR [--reference PATH] [--model pix2pix|cycle_gan] [--load 4] [--steps 20 60] [--repeats 2]
[--crop 128] [--variants ours reference ...]``.

Each variant trains with its own default settings on the same folder (pix2pix: side-by-side AB images in
DIR/train; cycle_gan: DIR/trainA and DIR/trainB), with samples, validation and periodic checkpoints out of the
way, for two run lengths (``--steps``); the time per step is the difference of the two wall-clock times over the
difference of the steps, so start-up (imports, data, the first step) cancels out. Quiet: nothing else runs.
Loaded: ``--load`` spinning single-threaded processes (``translate.apps.bench.load``) run beside it, started by
this script in its own session (the scheduler shares the cores between threads, not sessions). Runs are
interleaved (variant by variant, repeat by repeat) and the median of the repeats is kept.

``--reference`` is a checkout of junyanz/pytorch-CycleGAN-and-pix2pix (measured at 2a7afba, 2025-08-06: it trains on
the CPU when torch sees no CUDA device; hide one with ``CUDA_VISIBLE_DEVICES=``).
Variants of ours (VARIANTS) change one thing: the thread count, OpenMP's wait policy (``ours`` spins briefly,
``ours_active`` keeps OpenMP's default spin), the DataLoader's workers.
Writes OUT/busy_cpu.json and prints a table: ms/step quiet and loaded, and loaded/quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENT = dict(os.environ)  # before import translate sets OpenMP's spin for this process (and its children)
sys.path.insert(0, str(ROOT))
from translate.apps.bench.load import background_load  # noqa: E402

OURS = {"pix2pix": ["~experiment", "data=aligned"], "cycle_gan": ["~experiment", "model=cyclegan", "data=unaligned"]}
QUIET = ["logger=none", "trainer.progress_bar=false", "trainer.sample_every=1000000", "trainer.val_every=1000000",
         "trainer.checkpoint_every=1000000"]
VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {  # name -> (overrides, environment)
    "ours": ([], {}),  # as shipped: a short OpenMP spin (translate.core.openmp)
    "ours_active": ([], {"TRANSLATE_OMP_WAIT": "active"}),  # OpenMP's default spin, as before
    "ours_passive": ([], {"OMP_WAIT_POLICY": "PASSIVE"}),
    "ours_threads1": ([], {"OMP_NUM_THREADS": "1"}),
    "ours_spin20k": ([], {"GOMP_SPINCOUNT": "20000"}),
    "ours_workers0": (["data.num_workers=0"], {}),
    "ours_workers4": (["data.num_workers=4"], {}),
    "ours_system_malloc": (["trainer.reuse_cpu_memory=false"], {}),
}
REFERENCE = "reference"


def sizes(crop: int | None) -> tuple[int, int] | None:
    """(load, crop) sides: the reference's 286/256 ratio at ``crop``; None keeps each one's default (256)."""
    return None if crop is None else (round(crop * 286 / 256), crop)


def ours(name: str, model: str, data: Path, steps: int, folder: Path,
         crop: int | None = None) -> tuple[list[str], dict[str, str], Path]:
    overrides, env = VARIANTS[name]
    size = [f"data.load_size={sizes(crop)[0]}", f"data.crop_size={crop}"] if crop else []
    command = [sys.executable, "train.py", *OURS[model], f"data.root={data}", *QUIET, *size, *overrides,
               f"trainer.max_steps={steps}", f"run_dir={folder}"]
    return command, env, ROOT


def reference(checkout: Path, model: str, data: Path, steps: int, folder: Path, images: int,
              crop: int | None = None) -> tuple[list[str], dict, Path]:
    """The reference's train.py for ``steps`` iterations: ``steps / images`` epochs of ``images`` images."""
    if steps % images:
        raise SystemExit(f"--steps must be multiples of the {images} images the reference reads per epoch")
    mode = ["--dataset_mode", "aligned"] if model == "pix2pix" else ["--dataset_mode", "unaligned"]
    command = [sys.executable, "train.py", "--dataroot", str(data), "--name", "busy", "--model", model, *mode,
               "--n_epochs", str(steps // images), "--n_epochs_decay", "0", "--no_html", "--print_freq", "1000000", "--save_epoch_freq", "1000000", "--save_latest_freq",
               "1000000", "--max_dataset_size", str(images), "--checkpoints_dir", str(folder)]
    if crop:
        command += ["--load_size", str(sizes(crop)[0]), "--crop_size", str(crop)]
    return command, {"WANDB_MODE": "disabled", "CUDA_VISIBLE_DEVICES": ""}, checkout


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env={**ENVIRONMENT, **env}, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, start_new_session=False)
    return time.perf_counter() - start


def measure(args, name: str, steps: int, load: int) -> float:
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        if name == REFERENCE:
            command, env, cwd = reference(args.reference, args.model, args.data, steps, Path(tmp), args.images,
                                          args.crop)
        else:
            command, env, cwd = ours(name, args.model, args.data, steps, Path(tmp) / "run", args.crop)
        with background_load(load):
            return timed(command, env, cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--model", choices=list(OURS), default="pix2pix")
    parser.add_argument("--load", type=int, default=4)
    parser.add_argument("--steps", type=int, nargs=2, default=[20, 60])
    parser.add_argument("--images", type=int, default=10, help="images per reference epoch (--max_dataset_size)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--crop", type=int, help="train at this side (both; loaded at 286/256 of it)")
    parser.add_argument("--variants", nargs="+", default=["ours", REFERENCE])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "busy_cpu.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    short, long = args.steps
    for repeat in range(args.repeats):
        for load in (0, args.load):
            for name in args.variants:
                key = f"{args.model} {name} load={load}"
                runs = results.setdefault(key, [])
                if len(runs) > repeat:
                    continue
                seconds = [measure(args, name, steps, load) for steps in (short, long)]
                runs.append({"seconds": seconds, "ms_per_step": 1000 * (seconds[1] - seconds[0]) / (long - short)})
                results_path.write_text(json.dumps(results, indent=2))
                print(f"{key}: {runs[-1]['ms_per_step']:.0f} ms/step ({seconds[0]:.1f} s, {seconds[1]:.1f} s)",
                      flush=True)
    print(table(results, args))


def table(results: dict, args) -> str:
    rows = [f"| {args.model} | quiet ms/step | load {args.load} ms/step | loaded / quiet |", "| --- | --- | --- | --- |"]
    for name in args.variants:
        quiet, busy = (results.get(f"{args.model} {name} load={load}") for load in (0, args.load))
        if not quiet or not busy:
            continue
        q, b = (statistics.median(r["ms_per_step"] for r in runs) for runs in (quiet, busy))
        rows.append(f"| {name} | {q:.0f} | {b:.0f} | {b / q:.2f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
