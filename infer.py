"""Translate images with a trained generator: ``python infer.py checkpoint=PATH input=PATH output=DIR``."""

import sys

import hydra
from omegaconf import DictConfig

from translate.config import run_cli
from translate.infer import run


@hydra.main(version_base="1.3", config_path="conf", config_name="infer")
def main(cfg: DictConfig) -> None:
    summary = run_cli(run, cfg)
    sys.exit(summary.exit_code)


if __name__ == "__main__":
    main()
