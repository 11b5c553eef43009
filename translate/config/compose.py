"""Config helpers: composing configs, building objects from ``_target_`` nodes, resume configs.

This module and the entry points are the only places that import Hydra; the library takes plain
DictConfigs and objects.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra import main as hydra_main
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from translate.config.checkpoint import load_checkpoint, resolve_checkpoint_path
from translate.config.stored import CONF_DIR, RESUME_SECTIONS, allow_targets, conf_keys, is_under, stored_config
from translate.core.errors import ConfigError, TranslateError, first_line
from translate.core.schema import check_dataclass, check_target_node, label_channels, loop_settings

__all__ = ["CONF_DIR", "allow_targets", "build", "build_model", "compose", "resume_config", "stored_config"]


OmegaConf.register_new_resolver("label_channels", label_channels, replace=True)  # conf/data/labels.yaml's input_nc


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


def check_training_config(cfg: DictConfig) -> None:
    """Every setting of a training config against its type and range (``translate.core.schema``), before any work:
    the loop's own nodes against their dataclasses, each ``_target_`` node against its constructor's
    annotations. A problem is one ConfigError naming the key, the value and what is allowed."""
    if not cfg.get("resume"):  # a resumed run's own keys were checked when it started (resume_config: the new ones)
        check_known_keys(cfg)
    for key, (node, schema) in loop_settings(cfg).items():
        check_dataclass(node, schema, key)
    nodes = {key: cfg[key] for key in ("model", "generator", "discriminator", "gan_loss", "data", "scheduler", "logger")}
    nodes |= {f"optim.{name}": node for name, node in cfg.optim.items()}
    for key, node in nodes.items():
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        if isinstance(target, str):
            try:
                located = get_object(target)
            except Exception:  # noqa: BLE001 - an unknown target is reported when it is built
                continue
            check_target_node(node, key, located)


# ---------------------------------------------------------------------------------------------- unknown keys
def check_known_keys(cfg: DictConfig, only: tuple[str, ...] | None = None) -> None:
    """Every key of ``cfg`` is one that ``conf/`` sets or that its node's ``_target_`` takes. A key that nothing
    reads (a typo added with ``+key=`` or ``++key=``) is refused in one line naming the closest known key,
    instead of being silently ignored. ``only``: report just the keys under these (a resume's overrides)."""
    _check_keys(OmegaConf.to_container(cfg, resolve=False), "", only)


NAMED_GROUPS = ("optim",)  # optim.<group>: one optimizer for each group the model declares, named as it does


def _check_keys(node: dict, where: str, only: tuple[str, ...] | None) -> None:
    known, free = conf_keys()
    if where in free:
        return  # a free-form mapping (``edit``): its keys are the user's names
    allowed = _known_children(known, where)
    parameters = _parameters(node.get("_target_"))
    for key, value in node.items():
        here = f"{where}.{key}" if where else str(key)
        if _unknown(key, allowed, parameters) and (only is None or any(_under(here, o) for o in only)):
            close = difflib.get_close_matches(key, sorted(allowed | parameters), n=1, cutoff=0.6)
            hint = f"did you mean {where + '.' if where else ''}{close[0]}? " if close else ""
            raise ConfigError(f"{here}: no such setting ({hint}nothing would read it, so it is refused)")
        if isinstance(value, dict) and not (where == "" and key == "hydra"):
            _check_keys(value, here, only)


def _known_children(known: frozenset[str], where: str) -> set[str]:
    """The keys ``conf/`` sets directly under ``where``. Under a named group (``optim``) any name is a member
    (``*``); a member (``optim.H``) may hold what any member of the group holds."""
    if where in NAMED_GROUPS:
        return {"*"}
    parent = where.rpartition(".")[0]
    if parent in NAMED_GROUPS:
        return set().union(*(_children(known, f"{parent}.{member}") for member in _children(known, parent)))
    return _children(known, where)


def _children(known: frozenset[str], where: str) -> set[str]:
    prefix = f"{where}." if where else ""
    return {k[len(prefix):] for k in known if k.startswith(prefix) and "." not in k[len(prefix):]}


def _unknown(key: Any, allowed: set[str], parameters: set[str]) -> bool:
    key = str(key)
    return not (key in allowed or "*" in allowed or key in parameters or (key.startswith("_") and key.endswith("_")))


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".") or prefix.startswith(key + ".")


def _parameters(target: Any) -> set[str]:
    """The keyword arguments ``target`` takes (none when it cannot be read: building it will say)."""
    if not isinstance(target, str):
        return set()
    try:
        signature = inspect.signature(get_object(target))
    except Exception:  # noqa: BLE001 - an unknown target is reported when it is built
        return set()
    return {name for name, p in signature.parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def build_model(cfg: DictConfig):
    """The model with its generator/discriminator factories and GAN objective from their groups."""
    return build(
        cfg.model,
        generator=build(cfg.generator),
        discriminator=build(cfg.discriminator),
        gan_loss=build(cfg.gan_loss),
    )


def model_class(cfg: DictConfig) -> type:
    """The model family ``cfg.model`` names, without building it (its ``paired`` says which data it needs)."""
    return get_object(cfg.model._target_)


def to_container(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- resume
def resumed_run_dir(resume: str | Path) -> Path:
    """The folder a resumed run writes into: the run folder the checkpoint was resumed from (a run folder
    itself, or the folder holding ``checkpoints/``), never the path stored inside the checkpoint."""
    path = resolve_checkpoint_path(resume)
    folder = path.parent
    return folder.parent if folder.name == "checkpoints" else folder


LATEST = "latest"  # resume=latest: the newest run of the same name (runs/<name>/<date_time>) with a checkpoint


def latest_run(output_dir: Path) -> Path:
    """The newest run folder beside ``output_dir`` (this command's own new one, ``runs/<name>/<date_time>``) that
    holds a checkpoint: what ``resume=latest`` continues."""
    runs = [p for p in output_dir.parent.iterdir() if p != output_dir and (p / "checkpoints" / "last.pt").is_file()]
    if not runs:
        raise ConfigError(f"resume=latest: no run with a checkpoint in {output_dir.parent} (the same experiment, or "
                          "model and data, as this command); give resume=RUN_FOLDER")
    return max(runs, key=lambda p: ((p / "checkpoints" / "last.pt").stat().st_mtime, p.name))


def resume_config(resume: str, overrides: list[str], composed: DictConfig | None = None) -> DictConfig:
    """The config to continue a run with: the one stored in the checkpoint, plus command-line ``key=value``
    overrides (e.g. ``trainer.max_steps=20000``). Group choices (``logger=none``, ``experiment=demo``) are
    accepted when they give what the run already has, so resubmitting the original command works; a real change
    is refused. The run writes into the folder it was resumed from unless ``run_dir=`` is given."""
    parsed = [o for o in OverridesParser.create().parse_overrides(overrides)
              if o.key_or_group != "resume" and not o.key_or_group.startswith("hydra")]
    chosen = [o.key_or_group for o in parsed if not _is_group_choice(o)]
    ckpt = load_checkpoint(resume)
    cfg = stored_config(ckpt["config"], resume, chosen, builds_data=True, sections=RESUME_SECTIONS)
    _check_group_choices(parsed, cfg, overrides, composed)
    for override in parsed:
        if not _is_group_choice(override):
            _apply(override, cfg)
    check_known_keys(cfg, only=tuple(chosen))
    with open_dict(cfg):
        cfg.resume = str(resume)
        if "run_dir" not in chosen:
            cfg.run_dir = str(resumed_run_dir(resume).resolve())
    return cfg


def _is_group_choice(override) -> bool:
    key = override.key_or_group
    return "." not in key and (CONF_DIR / key).is_dir()


def _apply(override, cfg: DictConfig) -> None:
    """One ``key=value`` (or ``+key=value``) override on the stored config."""
    key = override.key_or_group
    if override.is_delete():
        raise ConfigError(f"{override.input_line}: deleting keys is not supported when resuming")
    if override.is_add() and "." not in key and key not in cfg:
        raise ConfigError(f"{override.input_line}: config groups cannot be added when resuming")
    if OmegaConf.select(cfg, key, default="__missing__") == "__missing__" and not override.is_add():
        raise ConfigError(f"{override.input_line}: the stored config has no key {key!r}")
    with open_dict(cfg):
        OmegaConf.update(cfg, key, override.value(), merge=True, force_add=True)


def _check_group_choices(parsed: list, stored: DictConfig, overrides: list[str], composed: DictConfig | None) -> None:
    """Each group choice on the command line must give, in every key it decides, what the run already has
    (keys the command line also sets with ``key=value`` are overrides, applied afterwards)."""
    choices = [o.input_line for o in parsed if _is_group_choice(o)]
    if not choices:
        return
    given = _leaves(composed if composed is not None else _compose_any([o.input_line for o in parsed]))
    have = _leaves(stored)
    assigned = tuple(o.key_or_group for o in parsed if not _is_group_choice(o))
    conflicts = []
    for choice in choices:
        others = [c for c in choices if c != choice]
        changed = [k for k in _decided_keys(others, choice) if not any(is_under(k, a) for a in assigned)
                   and given.get(k, _MISSING) != have.get(k, _MISSING)]
        conflicts += [(choice, others, key) for key in changed[:1]]
    if conflicts:
        # Blame the choice that changes the run on its own (experiment=demo model=cyclegan: model), else the first.
        choice, others, key = next((c for c in conflicts if _composed_leaves((c[0],)).get(c[2], _MISSING)
                                    != have.get(c[2], _MISSING)), conflicts[0])
        group = choice.split("=", 1)[0].lstrip("+")
        raise ConfigError(f"{choice}: config groups cannot change when resuming; the run keeps "
                          f"{group}={_stored_option(group, others, have)} ({key} would be {given.get(key)!r}, "
                          f"the run has {have.get(key)!r})")


_MISSING = object()
_RUN_KEYS = ("run_dir", "resume")  # where and from what: not part of what a group choice decides


def _decided_keys(others: list[str], choice: str) -> list[str]:
    """The leaves whose value depends on ``choice`` (group=option), the other group choices held fixed: where
    the chosen option and any other option of the group differ (so choosing the default option counts too)."""
    group, chosen = choice.lstrip("+").split("=", 1)
    with_it = _composed_leaves((*others, choice))
    keys: set[str] = set()
    for option in _group_options(group):
        if option != chosen:
            try:
                alternative = _composed_leaves((*others, f"{group}={option}"))
            except Exception:  # noqa: BLE001 - an option that does not compose with the others decides nothing
                continue
            keys |= {k for k in with_it.keys() | alternative.keys()
                     if with_it.get(k, _MISSING) != alternative.get(k, _MISSING)}
    return sorted(keys - set(_RUN_KEYS))


def _group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@functools.lru_cache(maxsize=256)
def _composed_leaves(overrides: tuple[str, ...]) -> dict[str, Any]:
    return _leaves(_compose_any(list(overrides)))


def _leaves(cfg: DictConfig | dict, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of every leaf (lists are leaves), interpolations resolved where they resolve (an
    option can leave another's interpolation dangling, e.g. ``data=single`` has no ``output_nc``)."""
    if isinstance(cfg, DictConfig):
        structure = OmegaConf.to_container(cfg, resolve=False)
        return {k: _resolved(cfg, k) for k in _leaves(structure)}
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        where = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out |= _leaves(value, where + ".")
        else:
            out[where] = value
    return out


def _resolved(cfg: DictConfig, key: str) -> Any:
    try:
        value = OmegaConf.select(cfg, key, throw_on_missing=False)
        return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    except Exception:  # noqa: BLE001 - an interpolation that does not resolve in this combination
        return _MISSING


def _stored_option(group: str, others: list[str], have: dict[str, Any]) -> str:
    """The option of ``group`` whose choice gives what the stored run has, by name."""
    for option in _group_options(group):
        choice = f"{group}={option}"
        with_it = _composed_leaves((*others, choice))
        if all(with_it.get(k, _MISSING) == have.get(k, _MISSING) for k in _decided_keys(others, choice)):
            return option
    return "its stored choice"


def _compose_any(overrides: list[str]) -> DictConfig:
    """Compose ``train`` with ``overrides``, inside a running Hydra app or outside one."""

    if GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name="train", overrides=overrides)
    return compose(overrides)


HYDRA_ONLY = {".hydra", "train.log"}  # what Hydra itself puts in a run folder
# All a run that failed before its first step wrote (its log says why, on the console too).
NOTHING_YET = frozenset({"config.yaml", "result.json", "train.log"})


def _remove_if_empty(folder: str | None, also: frozenset[str] = frozenset()) -> None:
    """Remove a Hydra run folder the command wrote nothing into (Hydra's own ``.hydra/`` and an empty log do not
    count, nor the names in ``also``, a log among them): a resumed run writes into its old folder, a bad setting
    stops before writing anything."""
    if not folder:
        return
    path, log = Path(folder), Path(folder) / "train.log"
    try:  # the ranks of a torchrun share the folder: another may have removed it in between
        names = {p.name for p in path.iterdir()}
        empty_log = "train.log" in also or not log.exists() or log.stat().st_size == 0
    except FileNotFoundError:
        return
    if names <= HYDRA_ONLY | also and empty_log:
        shutil.rmtree(path, ignore_errors=True)


def hydra_command(config_name: str, app, returns=None) -> None:
    """Run ``app(cfg)`` as a Hydra command: ``conf/<config_name>.yaml`` composed with the ``key=value`` overrides
    Hydra reads from ``sys.argv`` (``-m`` sweeps them), through ``run_cli``. ``returns(cfg, result)`` is what Hydra
    gets back (a sweeper optimises it) or how the process ends (an exit code); by default nothing."""

    def task(cfg: DictConfig) -> Any:
        result = run_cli(app, cfg)
        return returns(cfg, result) if returns is not None else None

    # Hydra names the job, and so its log file (<job>.log in the run folder), after the task's module's last part.
    task.__module__ = f"translate.{config_name}"
    hydra_main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)(task)()


def exit_with_code(cfg: DictConfig, result) -> None:
    """``hydra_command``'s ``returns`` for commands whose result carries the process's exit code (infer, generate)."""
    sys.exit(result.exit_code)


def run_cli(app, cfg: DictConfig) -> Any:
    """Run ``app(cfg)`` for a Hydra entry point: check its keys, fill in the run folder, apply ``resume=``, and
    turn user errors into one line on stderr and exit code 2 (a traceback only with HYDRA_FULL_ERROR=1). The
    Hydra run folder is removed when nothing was written into it."""

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        if cfg.get("resume"):
            resume = cfg.resume
            if resume == LATEST:
                resume = latest_run(Path(hydra_cfg.runtime.output_dir))
            cfg = resume_config(resume, list(hydra_cfg.overrides.task), composed=cfg)
        else:
            check_known_keys(cfg)
            if "run_dir" in cfg and not cfg.run_dir:
                with open_dict(cfg):
                    cfg.run_dir = hydra_cfg.runtime.output_dir
        if multirun and "logger" in cfg and "group" in cfg.logger and not cfg.logger.group:
            with open_dict(cfg):  # one W&B group per sweep
                cfg.logger.group = Path(hydra_cfg.sweep.dir).name
        return app(cfg)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or not (multirun or isinstance(e, TranslateError)):
            raise
        return _report(e, hydra_cfg, multirun)
    finally:  # a single run that failed before its first step leaves nothing; a sweep keeps each job's result
        _remove_if_empty(hydra_cfg.runtime.output_dir, frozenset() if multirun else NOTHING_YET)


def _report(error: Exception, hydra_cfg, multirun: bool) -> None:
    """One line on stderr; a single run then exits with 2, a sweep goes on (result.json records the job)."""
    if multirun:
        print(f"error: job {hydra_cfg.job.num} ({' '.join(hydra_cfg.overrides.task)}) failed: "
              f"{type(error).__name__}: {first_line(error)}", file=sys.stderr)
        return
    message = str(error)
    if message.startswith("Caught "):  # raised in a DataLoader worker: torch wraps it with a traceback
        message = message.strip().splitlines()[-1].split(": ", 1)[-1]
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
