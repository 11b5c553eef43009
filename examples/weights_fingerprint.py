"""Fingerprint of the weights two tiny runs end with, to show a refactoring changed no behaviour.

    python examples/weights_fingerprint.py

Trains the sketch->photo pix2pix demo and the day->night CycleGAN demo for 6 steps each (``debug=fast``, 64 px,
``trainer.seed=3``, CPU) and prints, per run, the step, the number of tensors and the sha256 of every tensor of
every network and EMA copy in the last checkpoint. Equal lines before and after a change mean bit-identical
training."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from omegaconf import open_dict

from translate.config.checkpoint import load_checkpoint
from translate.config.compose import compose
from translate.training.loop import fit

TINY = ["debug=fast", "logger=none", "trainer.progress_bar=false", "data.load_size=64", "data.crop_size=64",
        "trainer.max_steps=6", "trainer.seed=3"]
RUNS = {"pix2pix": "experiment=demo", "cyclegan": "experiment=demo_day2night"}


def fingerprint(state: dict) -> tuple[int, str]:
    """(tensor count, sha256) over the networks and EMA copies of a checkpoint, in a fixed order."""
    digest, count = hashlib.sha256(), 0
    for group in ("networks", "ema"):
        for net, tensors in sorted((state.get(group) or {}).items()):
            for key in sorted(tensors):
                digest.update(f"{group}.{net}.{key}".encode())
                digest.update(tensors[key].cpu().numpy().tobytes())
                count += 1
    return count, digest.hexdigest()


def main() -> None:
    os.environ.setdefault("TRANSLATE_METRICS_DOWNLOAD", "never")
    for name, experiment in RUNS.items():
        with tempfile.TemporaryDirectory() as tmp:
            cfg = compose([experiment, *TINY])
            with open_dict(cfg):
                cfg.run_dir = tmp
            fit(cfg)
            state = load_checkpoint(Path(tmp) / "checkpoints" / "last.pt")
            count, digest = fingerprint(state)
            print(name, state["step"], count, digest)


if __name__ == "__main__":
    main()
