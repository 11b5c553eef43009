"""Translate images with a trained generator: ``python infer.py checkpoint=PATH input=PATH output=DIR``."""

import sys

import hydra
from omegaconf import DictConfig

from translate.config.compose import run_cli
from translate.inference.convert import run


@hydra.main(version_base="1.3", config_path="conf", config_name="infer")
def main(cfg: DictConfig) -> None:
    summary = run_cli(run, cfg)
    sys.exit(summary.exit_code)


if __name__ == "__main__":
    # edit.NAME=k names axes the config cannot list in advance: add them as Hydra's +key=value does.
    sys.argv = [f"+{a}" if a.startswith("edit.") else a for a in sys.argv]
    main()
