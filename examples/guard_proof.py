"""The docs' out-of-domain guard figures: ``python examples/guard_proof.py [STEPS]``.

1. Sketch guards (a dense and a spatial code): autoencoders trained on the proof set's XDoG sketches (``datasets/photos_split/trainA``,
   docs "Restoration"), its threshold from the even-numbered val sketches; scored on the odd-numbered ones
   (in domain, unseen by training and calibration) against the val photos (a photo given to a sketch model)
   and against Canny sketches of the same val crops (another edge detector).
2. Day guard: an autoencoder trained on the day images of the day->night demo (its 400 train scenes; its
   threshold from 100 val scenes: 32, the demo's own, cannot place a 99th percentile), scored on 100 further
   day scenes against 200 night ones (the night domain given to a day model).
3. Cycle guard: the demo's CycleGAN (``experiment=demo_day2night``) scores the same sets by its own cycle
   error |G_B(G_A(x)) - x| (``guard=cycle``, no extra model), trained with the same 100 val scenes (its
   threshold).

The autoencoders are scored four ways (``guard.score``): ``all`` (the default), and ``reconstruction``,
``code`` and ``detail`` alone. For each out-of-domain set: the AUROC of the scores (in domain = negative) and the share
flagged at the guard's default threshold (the 99th percentile of its calibration scores); for the in-domain
set the share of false alarms at that threshold. Prints a Markdown table and writes ``docs/guard_scores.png``
(the default scores).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from translate.data.images import read_picture, to_model_input
from translate.inference.guard import GuardOptions, load_guard

ROOT = Path(__file__).resolve().parent.parent
SPLIT = ROOT / "datasets" / "photos_split"
CANNY = ROOT / "datasets" / "sketch2photo_canny"
SCORES = ("all", "reconstruction", "code", "detail")  # guard.score: the default first
DAY_CALIBRATION = 100  # val scenes for the day guard's threshold: a 99th percentile needs 99 or more


def run(*args: str) -> None:
    subprocess.run([sys.executable, *args], check=True, cwd=ROOT)


def train_guard(name: str, steps: int, *overrides: str) -> Path:
    out = ROOT / "runs" / name
    if not (out / "checkpoints" / "last.pt").is_file():
        run(str(ROOT / "train.py"), "model=autoencoder", "data=single", f"trainer.max_steps={steps}",
            "trainer.val_every=500", "trainer.val_images=320", "logger=none", f"run_dir={out}", *overrides)
    return out


def folder_scores(guard, folder: Path) -> np.ndarray:
    scores = []
    for path in sorted(folder.glob("*.png")):
        x = to_model_input(read_picture(path), guard.channels)[None]
        scores.append(float(guard.scores(x)[0]))
    return np.array(scores)


def canny_sketches() -> Path:
    if not (CANNY / "valA").is_dir():
        run("-m", "translate.data", "sketch", "datasets/photos", str(CANNY) + "_pairs", "style=canny", "size=128",
            "crops=40", "ratios=[0.75,0.25,0]", "holdout=region")
        run("-m", "translate.data", "separate", str(CANNY) + "_pairs", str(CANNY), "layout=unaligned")
    return CANNY / "valA"


def day_night_folders() -> tuple[Path, Path, Path]:
    """A render of the demo with ``DAY_CALIBRATION`` val scenes (the day guard's threshold), and from one with
    twice as many (the same train scenes and first val scenes) the further, unseen day scenes and the night
    ones of all its val scenes."""
    from translate.data.demo import day2night

    calibration = day2night(num_train=400, num_val=DAY_CALIBRATION).root
    test = day2night(num_train=400, num_val=2 * DAY_CALIBRATION).root
    unseen = ROOT / "runs" / "guard_data" / f"day_unseen{DAY_CALIBRATION}"
    if not unseen.is_dir():
        unseen.mkdir(parents=True)
        for path in sorted((test / "valA").glob("*.png"))[DAY_CALIBRATION:]:
            shutil.copy(path, unseen / path.name)
    return calibration, unseen, test / "valB"


def sketch_folders() -> Path:
    """root/{trainA (all), calA (even val crops), testA (odd)} of the proof set's XDoG sketches."""
    root = ROOT / "runs" / "guard_data" / "xdog"
    if not (root / "testA").is_dir():
        for name in ("trainA", "calA", "testA"):
            (root / name).mkdir(parents=True, exist_ok=True)
        for path in sorted((SPLIT / "trainA").glob("*.png")):
            shutil.copy(path, root / "trainA" / path.name)
        for i, path in enumerate(sorted((SPLIT / "valA").glob("*.png"))):
            shutil.copy(path, root / ("calA" if i % 2 == 0 else "testA") / path.name)
    return root


def cycle_run(steps: int) -> Path:
    out = ROOT / "runs" / f"proof_guard_cycle{DAY_CALIBRATION}"
    if not (out / "checkpoints" / "last.pt").is_file():
        run(str(ROOT / "train.py"), "experiment=demo_day2night", f"data.num_val={DAY_CALIBRATION}",
            f"trainer.val_images={DAY_CALIBRATION}", f"trainer.max_steps={steps}", "logger=none", f"run_dir={out}")
    return out


def report(name: str, guard, inside: np.ndarray, outside: dict[str, np.ndarray]) -> list[str]:
    rows = [f"| {name} | in domain ({len(inside)}) | - | {100 * (inside > guard.threshold).mean():.1f} % false alarms |"]
    for label, scores in outside.items():
        auroc = roc_auc_score(np.r_[np.zeros(len(inside)), np.ones(len(scores))], np.r_[inside, scores])
        rows.append(f"| {name} | {label} ({len(scores)}) | {auroc:.3f} | "
                    f"{100 * (scores > guard.threshold).mean():.1f} % flagged |")
    return rows


def histograms(panels: list[tuple[str, float, dict[str, np.ndarray]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.2))
    for ax, (title, threshold, sets) in zip(np.atleast_1d(axes), panels):
        top = max(s.max() for s in sets.values())
        for label, scores in sets.items():
            ax.hist(scores, bins=np.linspace(0, top, 40), alpha=0.6, label=label)
        ax.axvline(threshold, color="k", linestyle="--", label="threshold (99th pct)")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("score")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(steps: int = 1500) -> None:
    torch.set_grad_enabled(False)
    xdog = sketch_folders()
    rows, panels = [], []
    variants = (("dense code", "proof_guard_sketch", ["generator.n_downs=5"]),
                ("spatial code", "proof_guard_sketch_spatial",
                 ["generator.n_downs=4", "generator.dense=false", "generator.latent_dim=16"]))
    for name, run_name, code in variants:
        sketch_run = train_guard(run_name, steps, f"data.root={xdog}", "data.train_split=trainA",
                                 "data.val_split=calA", "data.load_size=128", "data.crop_size=128", "data.flip=true",
                                 "data.batch_size=8", *code)
        for score in SCORES:
            sketch = load_guard(GuardOptions(str(sketch_run), score=score))
            inside = folder_scores(sketch, xdog / "testA")
            outside = {"photos": folder_scores(sketch, SPLIT / "valB"),
                       "Canny sketches": folder_scores(sketch, canny_sketches())}
            rows += report(f"autoencoder on XDoG sketches ({name}), score={score}", sketch, inside, outside)
            if name == "dense code" and score == SCORES[0]:
                panels.append((f"autoencoder of XDoG sketches (score={score})", sketch.threshold,
                               {"XDoG sketches (in domain)": inside, **outside}))
    calibration, day, night = day_night_folders()
    day_run = train_guard(f"proof_guard_day{DAY_CALIBRATION}", steps, f"data.root={calibration}", "data.train_split=trainA",
                          "data.val_split=valA", "data.load_size=64", "data.crop_size=64", "data.batch_size=8")
    guards = [(f"autoencoder on day scenes, score={score}", load_guard(GuardOptions(str(day_run), score=score)))
              for score in SCORES]
    guards.append(("CycleGAN's cycle (day->night)", load_guard(GuardOptions("cycle"), str(cycle_run(steps)), "AtoB")))
    for name, guard in guards:
        day_in, night_out = folder_scores(guard, day), {"night": folder_scores(guard, night)}
        rows += report(name, guard, day_in, night_out)
        if not any(f"score={part}" in name for part in SCORES[1:]):
            panels.append((name, guard.threshold, {"day (in domain)": day_in, **night_out}))
        print(f"{name}: threshold {guard.threshold:.4f}", file=sys.stderr)
    histograms(panels, ROOT / "docs" / "guard_scores.png")
    print("| guard | scored | AUROC | at the default threshold |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1500)
