"""Score unpaired day -> night checkpoints against the demo's true night renderings, side by side.

    python docs/compare_day2night.py docs/compare_day2night.png RUN [RUN ...]

Each RUN is a checkpoint or run folder trained on the built-in day -> night demo (``experiment=demo_day2night``,
``demo_day2night_cut``, ``demo_day2night_fastcut``). Every val scene of the demo is rendered by day and by
night; each run's generator translates the day renderings and is scored on all of them (PSNR, SSIM, L1, as
``val/paired_*`` in training). Writes a grid (day | one column per run | true night) of the first 6 scenes and
prints a Markdown table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from translate.config.checkpoint import load_checkpoint
from translate.config.compose import build
from translate.data.files import sample_grid, save_image
from translate.data.fixed import truth_batches
from translate.evaluation.metrics import evaluate_paired
from translate.loading.generator import load_translation


def main(output: str, runs: list[str]) -> None:
    generators = {run: load_translation(run) for run in runs}
    # The val scenes as the runs saw them in training (the first run's stored data settings: size, crop).
    batches = truth_batches(build(generators[runs[0]].config.data), 1_000)
    columns = [torch.cat([b["A"] for b in batches])[:6]]
    print("| run | checkpoint step | paired SSIM | paired PSNR (dB) | paired L1 |\n| --- | --- | --- | --- | --- |")
    for run, loaded in generators.items():
        scores = evaluate_paired(loaded.module, batches, device="cpu", prefix="")
        step = load_checkpoint(run)["step"]
        print(f"| {run} | {step} | {scores['ssim']:.4f} | {scores['psnr']:.2f} | {scores['l1']:.4f} |")
        with torch.no_grad():
            columns.append(loaded.module.eval()(columns[0]))
    columns.append(torch.cat([b["B"] for b in batches])[:6])
    save_image(sample_grid(columns), Path(output))
    print(f"wrote {output}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
