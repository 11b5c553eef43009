"""pix2pix on the real-photo proof set with and without augmentation, several seeds: ``python
examples/small_data_proof.py OUT --data DIR [--quarter] [--steps 2000] [--seeds 0 1] [--variants reference
diffaugment ada]``.

DIR is the sketch->photo proof set of the docs ("Proof on real photos": 320 training and 320 held-out pairs made
from the eight bundled photographs, each photo's right quarter held out). ``--quarter`` trains on a quarter of it
(the first 10 of each photo's 40 training crops: 80 pairs), validated on the same held-out pairs.

Each variant and seed runs ``python train.py experiment=sketch2photo`` at the proof's settings (unet_128,
128x128 crops, batch 1) for ``--steps`` steps, validating on the 32 fixed val crops every 250 steps, then
``translate evaluate`` of its last checkpoint on all 320 held-out pairs. Writes OUT/results.json (per run: the
final scores, the val curve, D's real_sign and ADA's p over training), a markdown table (mean and spread over
seeds) and OUT/curves.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {  # name -> overrides
    "reference": [],
    "diffaugment": ["augment=diffaugment"],
    "ada": ["augment=ada"],
}
BASE = ["experiment=sketch2photo", "generator=unet_128", "data.load_size=143", "data.crop_size=128",
        "data.batch_size=1", "trainer.val_every=250", "trainer.log_every=50", "trainer.sample_every=1000",
        "logger=none", "trainer.progress_bar=false"]
METRICS = ("ssim", "psnr", "l1")


def quarter(data: Path, out: Path) -> Path:
    """The first 10 training crops of each photo (80 pairs), the same held-out pairs."""
    if not (out / "train").is_dir():
        (out / "train").mkdir(parents=True)
        for path in sorted((data / "train").glob("*.png")):
            if int(path.stem.rsplit("_", 1)[1]) < 10:
                shutil.copy2(path, out / "train" / path.name)
        shutil.copytree(data / "val", out / "val")
    return out


def run(name: str, overrides: list[str], data: Path, out: Path, steps: int, seed: int) -> dict:
    folder = out / "runs" / f"{name}_s{seed}"
    if not (folder / "checkpoints" / "last.pt").is_file():
        subprocess.run([sys.executable, "train.py", *BASE, *overrides, f"data.root={data}",
                        f"trainer.max_steps={steps}", f"trainer.seed={seed}", f"run_dir={folder}"], check=True, cwd=ROOT)
    scores = out / "eval" / f"{name}_s{seed}"
    if not (scores / "metrics.json").is_file():
        subprocess.run([sys.executable, "-m", "translate", "evaluate", f"checkpoint={folder / 'checkpoints' / 'last.pt'}",
                        f"data.root={data}", "metrics.fid=false", "metrics.lpips=null", f"output={scores}"],
                       check=True, cwd=ROOT)
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    curve = {k: [(line["step"], line[k]) for line in lines if k in line]
             for k in ("val/ssim", "val/psnr", "val/l1", "D_out/D/real_sign", "augment/p")}
    return {"final": json.loads((scores / "metrics.json").read_text()), "curves": curve}


def table(results: dict[str, dict[int, dict]]) -> str:
    rows = ["| variant | " + " | ".join(METRICS) + " |", "| --- |" + " --- |" * len(METRICS)]
    for name, seeds in results.items():
        cells = []
        for m in METRICS:
            values = [r["final"][m] for r in seeds.values()]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(results: dict[str, dict[int, dict]], out: Path) -> None:
    keys = ("val/ssim", "val/l1", "D_out/D/real_sign", "augment/p")
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    for ax, key in zip(axes, keys, strict=True):
        for i, (name, seeds) in enumerate(results.items()):
            for seed, r in seeds.items():
                points = r["curves"].get(key) or []
                if points:
                    ax.plot(*zip(*points, strict=True), color=f"C{i}", alpha=0.8,
                            label=name if seed == min(seeds) else None)
        ax.set_title(key)
        ax.set_xlabel("step")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--quarter", action="store_true")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    out = args.out.resolve()
    data = quarter(args.data.resolve(), out / "data") if args.quarter else args.data.resolve()
    results: dict[str, dict[int, dict]] = {}
    for seed in args.seeds:  # seed by seed: the first seed of every variant comes first
        for name in args.variants:
            results.setdefault(name, {})[seed] = run(name, VARIANTS[name], data, out, args.steps, seed)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "curves.png")
    print(table(results))


if __name__ == "__main__":
    main()
