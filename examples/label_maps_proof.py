"""The label-map families side by side on the semantic demo, at equal wall-clock: ``python
examples/label_maps_proof.py OUT [--minutes 5] [--seeds 0 1] [--bench OUT/bench_train.json]``.

1. Held-out data: street scenes rendered with another seed (``OUT/heldout``: 400 training scenes for the
   segmentation network, 200 val maps to score on); the models train on the demo itself (seed 0).
2. Step times from ``translate bench train`` (``--bench``, a ``bench_train.json`` whose rows are pix2pix with the
   maps as colours, SPADE, pix2pixHD's joint step and its global phase, in that order): each family gets
   ``--minutes`` of training steps, pix2pixHD's phases counted at their own speeds.
3. Each family and seed through ``translate train``, then ``translate evaluate`` of its last checkpoint on the 200
   held-out maps (L1, PSNR, SSIM against the true photos; mIoU and pixel accuracy of the segmentation network's
   labels against the input maps, and of the real photos).
4. ``OUT/results.json``, a markdown table (mean and spread over seeds) and ``OUT/grid.png`` (map | each family
   | photo for 6 held-out maps, first seed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from translate.data.files import load_image, sample_grid, save_image
from translate.data.labels import PALETTES, read_instance_map
from translate.data.scenes import street_scenes
from translate.data.semantic import label_encoding
from translate.loading.load import load

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = {  # name -> overrides (the demo presets, as a user runs them)
    "pix2pix (maps as RGB)": ["data=demo_labels", "data.encoding=colour"],
    "pix2pixHD": ["experiment=demo_labels_pix2pixhd"],
    "SPADE": ["experiment=demo_labels"],
}
HELDOUT = ["data=labels", "data.label_nc=7", "data.instances=true", "data.palette=street_scenes",
           "data.load_size=64", "data.crop_size=64"]
METRICS = ("l1", "psnr", "ssim", "miou", "pixel_acc", "real_miou", "real_pixel_acc")


def translate(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "translate", *args], check=True, cwd=ROOT)


def steps_for(bench: Path, minutes: float) -> dict[str, int]:
    """Each family's steps in ``minutes`` of its median step time (pix2pixHD: its 300 global-phase steps at their
    own speed, the rest at the joint step's)."""
    rows = [r["ms_per_step"]["median"] for r in json.loads(bench.read_text())["results"].values()]
    pix2pix, spade, hd_joint, hd_global = rows[0], rows[1], rows[2], rows[3]
    budget = minutes * 60_000
    hd = 300 + 150 + int((budget - 300 * hd_global - 150 * hd_joint) / hd_joint)
    return {"pix2pix (maps as RGB)": int(budget / pix2pix), "pix2pixHD": hd, "SPADE": int(budget / spade)}


def heldout(out: Path) -> Path:
    """Street scenes of another seed: 400 to train the segmentation network on, 200 held-out maps."""
    return Path(street_scenes(root=str(out / "heldout"), num_train=400, num_val=200, seed=7).root)


def train_and_score(name: str, seed: int, steps: int, out: Path, data: Path) -> dict[str, float]:
    run = out / "runs" / f"{name.split()[0]}_seed{seed}"
    if not (run / "checkpoints" / "last.pt").is_file():
        translate("train", *FAMILIES[name], f"trainer.max_steps={steps}", f"trainer.seed={seed}",
                  "trainer.val_every=500", "trainer.sample_every=500", "trainer.checkpoint_every=500",
                  "trainer.progress_bar=false", "logger=none", f"run_dir={run}")
    report = out / "eval" / run.name
    if not (report / "metrics.json").is_file():
        translate("evaluate", f"checkpoint={run / 'checkpoints' / 'last.pt'}", *HELDOUT, f"data.root={data}",
                  "metrics.fid=false", "metrics.lpips=null", "grid_images=6", f"output={report}")
    return json.loads((report / "metrics.json").read_text())


def table(results: dict[str, list[dict[str, float]]]) -> str:
    lines = ["| family | steps | " + " | ".join(METRICS) + " |", "|" + " --- |" * (len(METRICS) + 2)]
    for name, runs in results.items():
        cells = []
        for key in METRICS:
            values = [r[key] for r in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {spread:.3f}")
        lines.append(f"| {name} | {runs[0]['steps']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def grid(out: Path, names: list[str], seed: int, data: Path, rows: int = 6) -> None:
    """map | each family's output | photo for the first ``rows`` held-out maps (with their instance maps), the
    ``seed`` runs' last checkpoints."""
    maps = sorted((data / "val" / "label").glob("*.png"))[:rows]
    columns = [torch.stack([PALETTES["street_scenes"].colourise(label_encoding({"label_nc": 7}).read(m))
                            for m in maps])]
    for name in names:
        pipe = load(out / "runs" / f"{name.split()[0]}_seed{seed}" / "checkpoints" / "last.pt")
        encoding = label_encoding(pipe.config.data)
        x = torch.stack([encoding.encode(encoding.read(m), read_instance_map(data / "val" / "instance" / m.name))
                         for m in maps])
        columns.append(pipe.tensors(x))
    columns.append(torch.stack([load_image(data / "val" / "image" / m.name, 3).float() / 127.5 - 1 for m in maps]))
    save_image(sample_grid(columns, ["map", *(n.split()[0] for n in names), "photo"]), out / "grid.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--bench", type=Path, default=None)
    args = parser.parse_args()
    out = args.out.resolve()
    steps = steps_for(args.bench or out / "bench_train.json", args.minutes)
    data = heldout(out)
    results = {}
    for name in FAMILIES:
        results[name] = [train_and_score(name, seed, steps[name], out, data) | {"steps": steps[name]}
                         for seed in args.seeds]
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    grid(out, list(FAMILIES), args.seeds[0], data)
    print(table(results))


if __name__ == "__main__":
    main()
