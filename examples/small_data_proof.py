"""Families with and without augmentation on small data, several seeds: ``python examples/small_data_proof.py OUT
[--family pix2pix] [--data DIR] [--quarter] [--steps N] [--seeds 0 1] [--variants reference diffaugment ada]``.

- ``--family pix2pix`` (default): the sketch->photo proof set of the docs ("Proof on real photos", ``--data``:
  320 training and 320 held-out pairs made from the eight bundled photographs, each photo's right quarter held
  out); ``--quarter`` trains on a quarter of it (the first 10 of each photo's 40 training crops: 80 pairs),
  validated on the same held-out pairs. ``python train.py experiment=sketch2photo`` at the proof's settings
  (unet_128, 128x128 crops, batch 1), validating on the 32 fixed val crops every 250 steps, then ``translate
  evaluate`` of the last checkpoint on all 320 held-out pairs (ssim, psnr, l1).
- ``--family cyclegan`` or ``cut``: the day->night demo with 10 % of its training scenes (40 of 400), scored by
  the last validation's ``val/paired_*`` (G(day) against the true night renderings; FID/KID need the Inception
  weights, which this machine cannot download).
- ``--family dcgan`` or ``stylegan``: the face demo with 10 % of its images (600), scored by the last
  validation's ``val/kid`` and ``val/fid`` (on the demo's pixel statistics).

Variants: ``reference`` (the preset as it is), ``diffaugment``, ``ada``, ``recipe`` (``recipe=small_paired`` for pix2pix,
``small_unpaired`` for CycleGAN and CUT)
and the candidates measured for the recipes (VARIANTS).

Writes OUT/results.json (per run: the final scores, the val curve, D's real_sign and ADA's p over training), a
markdown table (mean and spread over seeds) and OUT/curves.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {  # name -> overrides
    "reference": [],
    "diffaugment": ["augment=diffaugment"],
    "ada": ["augment=ada"],
    "ada_fast": ["augment=ada", "augment.speed_kimg=0.5"],  # p can move 4x faster: for runs of ~2,000 images
    "ada_fast_t03": ["augment=ada", "augment.speed_kimg=0.5", "augment.target=0.3"],  # and acts on milder overfitting
    # p held at 0.8 from the first step (it barely moves at this speed): strong enough that ADA's paper saw leaks,
    # to show the leak check catches one
    "ada_p08": ["augment=ada", "augment.initial_p=0.8", "augment.speed_kimg=1000000"],
    # p held at 1: every image through every transform, so an upright and a turned face look alike to D once
    # augmented; where a leak is possible, to show the leak check finds one
    "ada_p1": ["augment=ada", "augment.initial_p=1", "augment.speed_kimg=1000000"],
    # candidates for the small-data recipe, each one addition on top of DiffAugment
    "diff_sn": ["augment=diffaugment", "discriminator.spectral_norm=true"],
    "diff_resize": ["augment=diffaugment", "generator.upsample=resize"],
    "diff_tc": ["augment=diffaugment", "augment.policy='translation,cutout'"],
    "diff_ema": ["augment=diffaugment", "generator.norm=instance", "trainer.ema.enabled=true"],
    "diff_lsgan": ["augment=diffaugment", "gan_loss=lsgan"],
    "diff_translation": ["augment=diffaugment", "augment.policy=translation"],  # the gentlest policy (CUT)
}
# KID, FID and the leak check against held-out faces (*_real: the same for held-out real faces, the chance level)
FACES = ("val/kid", "val/fid", "val/leak_orientation", "val/leak_orientation_real", "val/leak_colour",
         "val/leak_colour_real")
RECIPE = "recipe"  # the variant that trains with the family's recipe= option (Family.recipe)
QUIET = ["logger=none", "trainer.progress_bar=false", "trainer.log_every=50"]


@dataclass(frozen=True)
class Family:
    overrides: list[str]
    metrics: tuple[str, ...]  # of translate evaluate (evaluate=True) or of the run's last validation
    curve: str  # the val metric plotted over training
    evaluate: bool = False
    steps: int = 2000
    recipe: str | None = None  # its recipe= option, for the "recipe" variant


FAMILIES = {
    "pix2pix": Family(["experiment=sketch2photo", "generator=unet_128", "data.load_size=143", "data.crop_size=128",
                       "data.batch_size=1", "trainer.val_every=250", "trainer.sample_every=1000"],
                      ("ssim", "psnr", "l1"), "val/ssim", evaluate=True, recipe="small_paired"),
    "cyclegan": Family(["experiment=demo_day2night", "data.num_train=40"],
                       ("val/paired_ssim", "val/paired_psnr", "val/paired_l1"), "val/paired_ssim", steps=1500,
                       recipe="small_unpaired"),
    "cut": Family(["experiment=demo_day2night_cut", "data.num_train=40"],
                  ("val/paired_ssim", "val/paired_psnr", "val/paired_l1"), "val/paired_ssim", steps=1500,
                  recipe="small_unpaired"),
    "dcgan": Family(["experiment=demo_faces", "data.num_train=600", "metrics.leaks=true"], FACES, "val/kid",
                    steps=3000),
    "stylegan": Family(["experiment=demo_faces_stylegan", "data.num_train=600", "metrics.leaks=true"], FACES,
                       "val/kid", steps=3000),
}


def quarter(data: Path, out: Path) -> Path:
    """The first 10 training crops of each photo (80 pairs), the same held-out pairs."""
    if not (out / "train").is_dir():
        (out / "train").mkdir(parents=True)
        for path in sorted((data / "train").glob("*.png")):
            if int(path.stem.rsplit("_", 1)[1]) < 10:
                shutil.copy2(path, out / "train" / path.name)
        shutil.copytree(data / "val", out / "val")
    return out


def run(family: Family, name: str, data: Path, out: Path, steps: int, seed: int) -> dict:
    """One variant and seed: trained (unless done), scored; its final scores and curves over training."""
    folder = out / "runs" / f"{name}_s{seed}"
    if (folder / "checkpoints" / "last.pt").is_file() and not finished(folder):  # interrupted: go on from it
        subprocess.run([sys.executable, "train.py", f"resume={folder}", f"trainer.max_steps={steps}"], check=True, cwd=ROOT)
    elif not (folder / "checkpoints" / "last.pt").is_file():
        variant = [f"recipe={family.recipe}"] if name == RECIPE else VARIANTS[name]
        subprocess.run([sys.executable, "train.py", *family.overrides, *QUIET, *variant, f"data.root={data}",
                        f"trainer.max_steps={steps}", f"trainer.seed={seed}", f"run_dir={folder}"], check=True, cwd=ROOT)
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    keys = {family.curve, "augment/p", *(k for line in lines for k in line if k.endswith("/real_sign"))}
    curves = {k: [(line["step"], line[k]) for line in lines if k in line] for k in keys}
    seconds = elapsed(lines)
    if not family.evaluate:  # the last validation's scores (runs from before a metric existed lack it)
        final = {k: next((line[k] for line in reversed(lines) if k in line), None) for k in family.metrics}
        return {"final": {k: v for k, v in final.items() if v is not None}, "curves": curves, "seconds": seconds}
    scores = out / "eval" / f"{name}_s{seed}"
    if not (scores / "metrics.json").is_file():
        subprocess.run([sys.executable, "-m", "translate", "evaluate", f"checkpoint={folder / 'checkpoints' / 'last.pt'}",
                        f"data.root={data}", "metrics.fid=false", "metrics.lpips=null", "metrics.leaks=true",
                        f"output={scores}"], check=True, cwd=ROOT)
    return {"final": json.loads((scores / "metrics.json").read_text()), "curves": curves, "seconds": seconds}


def finished(folder: Path) -> bool:
    result = folder / "result.json"
    return result.is_file() and json.loads(result.read_text()).get("status") == "completed"


def elapsed(lines: list[dict]) -> list[tuple[int, float]]:
    """(step, seconds since the start) at each logged step, from the logged steps per second (which count all
    the loop's time, validation included): wall-clock, when nothing else shared the CPU."""
    points, seconds, last = [(0, 0.0)], 0.0, 0
    for line in lines:
        if "perf/it_per_s" in line:
            seconds += (line["step"] - last) / line["perf/it_per_s"]
            points.append((line["step"], seconds))
            last = line["step"]
    return points


def table(results: dict[str, dict[int, dict]], metrics: tuple[str, ...]) -> str:
    rows = ["| variant | " + " | ".join(metrics) + " | minutes |", "| --- |" + " --- |" * (len(metrics) + 1)]
    for name, seeds in results.items():
        cells = []
        for m in metrics:
            values = [r["final"][m] for r in seeds.values() if m in r["final"]]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}" if values else "–")
        cells.append(f"{statistics.mean(r['seconds'][-1][1] for r in seeds.values()) / 60:.1f}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def at_seconds(curve: list[list[float]], seconds: list[list[float]]) -> list[tuple[float, float]]:
    """A curve over steps as a curve over the run's seconds (the logged step at or before each point)."""
    return [(max(t for s, t in seconds if s <= step), value) for step, value in curve]


def plot(results: dict[str, dict[int, dict]], out: Path, family: Family) -> None:
    """One panel per logged curve over steps, and the val curve over seconds (equal wall-clock)."""
    keys = sorted({k for seeds in results.values() for r in seeds.values() for k, v in r["curves"].items() if v})
    fig, axes = plt.subplots(1, len(keys) + 1, figsize=(4 * (len(keys) + 1), 3.2))
    for ax, key in zip(axes[:-1], keys, strict=True):
        draw(ax, results, lambda r, key=key: r["curves"].get(key))
        ax.set(title=key, xlabel="step")
    draw(axes[-1], results, lambda r: at_seconds(r["curves"].get(family.curve) or [], r["seconds"]))
    axes[-1].set(title=f"{family.curve} over time", xlabel="seconds (alone on the CPU)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out)


def draw(ax, results: dict[str, dict[int, dict]], points_of) -> None:
    """Each variant's runs in its own colour, labelled once: ``points_of(run)`` gives a run's (x, y) points."""
    for i, (name, seeds) in enumerate(results.items()):
        for seed, r in seeds.items():
            if points := points_of(r):
                ax.plot(*zip(*points, strict=True), color=f"C{i}", alpha=0.8, label=name if seed == min(seeds) else None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--family", default="pix2pix", choices=list(FAMILIES))
    parser.add_argument("--data", type=Path, help="pix2pix: the proof set (the demos render their own)")
    parser.add_argument("--quarter", action="store_true")
    parser.add_argument("--steps", type=int, help="default: the family's (pix2pix 2000, the demos their presets')")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=["reference", "diffaugment", "ada"],
                        choices=[*VARIANTS, RECIPE])
    args = parser.parse_args()
    out, family = args.out.resolve(), FAMILIES[args.family]
    if args.family == "pix2pix" and args.data is None:
        parser.error("--family pix2pix needs --data (the proof set)")
    if RECIPE in args.variants and family.recipe is None:
        parser.error(f"--family {args.family} has no recipe")
    data = out / "data" if args.data is None else args.data.resolve()
    data = quarter(data, out / "data") if args.quarter else data
    results: dict[str, dict[int, dict]] = {}
    for seed in args.seeds:  # seed by seed: the first seed of every variant comes first
        for name in args.variants:
            results.setdefault(name, {})[seed] = run(family, name, data, out, args.steps or family.steps, seed)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "curves.png", family)
    print(table(results, family.metrics))


if __name__ == "__main__":
    main()
