"""The face demo's generated attribute distribution at every numbered checkpoint of a run, against the real one.

    python examples/faces_over_training.py RUN EXTRACTOR.safetensors [IMAGES]

For each ``RUN/checkpoints/step_*.pt`` (and last.pt): the Fréchet distance between the attribute extractor's
features of IMAGES (default 500) real val images and as many generated ones, next to the real-vs-real distance
of two halves (the floor for that many images), the KL divergence of the hair colour shares and which colours
are missing. Prints a Markdown table and writes RUN/faces_over_training.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from translate.config.checkpoint import load_checkpoint
from translate.latent.extractor import TrainedExtractor
from translate.latent.generate import load_noise_generator
from translate.latent.report import distribution, real_images
from translate.latent.sampling import Sampler


def main(run: Path, extractor_path: Path, n: int = 500) -> None:
    extractor = TrainedExtractor.load(extractor_path)
    checkpoints = sorted((run / "checkpoints").glob("step_*.pt"))
    real = real_images(checkpoints[-1], n)
    rows = []
    for path in checkpoints:
        sampler = Sampler(load_noise_generator(path), noise="random", seed=1)
        fake = torch.cat([sampler.images(z) for z in sampler.latents(len(real)).split(128)])
        report = distribution(extractor, real, fake)
        hair = report["categories"]["hair_colour"]
        rows.append({"step": load_checkpoint(path)["step"], **report["frechet"], "kl_hair": hair["kl"],
                     "missing_hair": hair["missing"], "hair_shares": hair["generated"]})
    print("| step | Fréchet real vs generated | real vs real | KL hair colour | missing colours |")
    print("| ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(f"| {r['step']} | {r['real_vs_generated']:.2f} | {r['real_vs_real']:.2f} | {r['kl_hair']:.3f} | "
              f"{', '.join(r['missing_hair']) or 'none'} |")
    (run / "faces_over_training.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), *(int(a) for a in sys.argv[3:]))
