"""``translate train`` (and ``python train.py``): train a model family under Hydra."""

from __future__ import annotations

import math

from omegaconf import DictConfig, OmegaConf

from translate.config.compose import hydra_command
from translate.training.loop import fit


def run_name(overrides, experiment: str | None, model: str, data: str) -> str:
    """The run folder's name (``runs/<name>/<date_time>``): the experiment when one is chosen on the command line,
    or when model and data are left to it; else ``<model>_<data>`` (``model=cyclegan data=unaligned`` does not
    file into the default experiment's folder)."""
    chosen = {str(o).lstrip("+~").partition("=")[0] for o in overrides}
    if experiment and ("experiment" in chosen or not {"model", "data"} & chosen):
        return str(experiment)
    return f"{model}_{data}"


OmegaConf.register_new_resolver("run_name", run_name, replace=True)  # conf/train.yaml's hydra.run.dir


def objective(cfg: DictConfig, metrics: dict[str, float] | None) -> float:
    """What a sweeper (Optuna) optimises: the metric named by ``objective``; NaN marks a failed job."""
    return float(metrics.get(cfg.objective, math.nan)) if metrics else math.nan


def main() -> None:
    """Hydra reads the ``key=value`` overrides from ``sys.argv``; ``-m`` sweeps them."""
    hydra_command("train", fit, objective)
