"""Train a model family (pix2pix, CycleGAN, CUT, BicycleGAN, GANs from noise, autoencoders):
``python train.py [experiment=...] [group=option ...] [key=value ...]``."""

import math

import hydra
from omegaconf import DictConfig

from translate.config.compose import run_cli
from translate.training.loop import fit


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    metrics = run_cli(fit, cfg)
    # Sweepers (Optuna) optimise the returned value: the metric named by `objective`; NaN marks a failed job.
    return float(metrics.get(cfg.objective, math.nan)) if metrics else math.nan


if __name__ == "__main__":
    main()
