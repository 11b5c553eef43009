"""Config helpers: composing configs, building objects from ``_target_`` nodes, resume configs.

This module and the entry points are the only places that import Hydra; the library takes plain
DictConfigs and objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from translate.checkpoint import load_checkpoint
from translate.errors import ConfigError, TranslateError, first_line

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("model", "generator", "discriminator", "gan_loss", "data", "optim", "scheduler", "trainer", "logger")


def compose(overrides: list[str] | None = None, config_name: str = "train") -> DictConfig:
    """Compose a config from ``conf/`` as the command line would (for tests and notebooks)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))


def build(node: DictConfig, **kwargs: Any) -> Any:
    """Instantiate one ``_target_`` node, turning constructor errors into one-line config errors."""
    try:
        return instantiate(node, **kwargs)
    except Exception as e:  # noqa: BLE001 - Hydra wraps the real error; report the root cause in one line
        cause = e
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, TranslateError):
            raise cause from None
        target = node.get("_target_", "?") if isinstance(node, DictConfig) else "?"
        raise ConfigError(f"cannot build {target}: {cause}") from None


def build_model(cfg: DictConfig):
    """The model with its generator/discriminator factories and GAN objective from their groups."""
    return build(
        cfg.model,
        generator=build(cfg.generator),
        discriminator=build(cfg.discriminator),
        gan_loss=build(cfg.gan_loss),
    )


def to_container(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def resume_config(resume: str, overrides: list[str]) -> DictConfig:
    """The config to continue a run with: the one stored in the checkpoint, plus command-line ``key=value``
    overrides (e.g. ``trainer.max_steps=20000``). Group choices cannot change on resume."""
    ckpt = load_checkpoint(resume)
    cfg = OmegaConf.create(ckpt["config"])
    parser = OverridesParser.create()
    for override in parser.parse_overrides(overrides):
        key = override.key_or_group
        if key == "resume" or key.startswith("hydra"):
            continue
        if key in GROUPS or override.is_add() and "." not in key:
            raise ConfigError(
                f"{override.input_line}: config groups cannot change when resuming; the run keeps "
                f"{key}={OmegaConf.select(cfg, key + '._target_', default='its stored choice')}"
            )
        if override.is_delete():
            raise ConfigError(f"{override.input_line}: deleting keys is not supported when resuming")
        if OmegaConf.select(cfg, key, default="__missing__") == "__missing__" and not override.is_add():
            raise ConfigError(f"{override.input_line}: the stored config has no key {key!r}")
        with open_dict(cfg):
            OmegaConf.update(cfg, key, override.value(), merge=True, force_add=True)
    with open_dict(cfg):
        cfg.resume = str(resume)
    return cfg


def run_cli(app, cfg: DictConfig) -> Any:
    """Run ``app(cfg)`` for a Hydra entry point: fill in the run folder, apply ``resume=``, and turn
    user errors into one line on stderr and exit code 2 (a traceback only with HYDRA_FULL_ERROR=1)."""
    import os
    import sys

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        if cfg.get("resume"):
            cfg = resume_config(cfg.resume, list(hydra_cfg.overrides.task))
        elif "run_dir" in cfg and not cfg.run_dir:
            with open_dict(cfg):
                cfg.run_dir = hydra_cfg.runtime.output_dir
        if multirun and "logger" in cfg and "group" in cfg.logger and not cfg.logger.group:
            with open_dict(cfg):  # one W&B group per sweep
                cfg.logger.group = Path(hydra_cfg.sweep.dir).name
        return app(cfg)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if multirun:
            # One bad combination must not end the sweep: report it (result.json records it) and go on.
            print(f"error: job {hydra_cfg.job.num} ({' '.join(hydra_cfg.overrides.task)}) failed: "
                  f"{type(e).__name__}: {first_line(e)}", file=sys.stderr)
            return None
        if not isinstance(e, TranslateError):
            raise
        message = str(e)
        if message.startswith("Caught "):  # raised in a DataLoader worker: torch wraps it with a traceback
            message = message.strip().splitlines()[-1].split(": ", 1)[-1]
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
