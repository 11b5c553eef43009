"""``translate infer`` (and ``python infer.py``): batch conversion under Hydra."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from translate.config.compose import CONF_DIR, run_cli
from translate.inference.convert import run


def main() -> None:
    """Hydra reads the ``key=value`` overrides from ``sys.argv``; the exit code is the conversion's."""

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="infer")
    def _main(cfg: DictConfig) -> None:
        sys.exit(run_cli(run, cfg).exit_code)

    _main()
