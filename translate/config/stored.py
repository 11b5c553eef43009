"""Configs read from files (the config stored in a checkpoint) are untrusted data.

``stored_config`` turns one into a DictConfig only after checking exactly what Hydra would build from it: the
value is first normalised to what OmegaConf itself makes of it (mappings with string keys, lists, scalars; a
tuple becomes a list, anything else is refused), and the check then walks that normalised tree, every
mapping and every list position at any depth. A ``_target_`` is accepted only at a key where this project's
own ``conf/`` puts one, and only a target that ``conf/`` puts there (plus the torch optimizers at
``optim.<group>``, the project's feature extractors at ``metrics.features``, and what a program registers
with ``allow_targets``). Hydra's other special keys (``_args_``, ``_recursive_``, ``_convert_``) and
interpolations are refused. Each accepted node's values are then range-checked against its constructor's
annotations (``translate.core.schema``).
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from translate.core.errors import CheckpointError, ConfigError
from translate.core.schema import check_dataclass, check_target_node, loop_settings

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
MAX_DEPTH = 32  # a stored config deeper than this is not one of ours
TORCH_OPTIMIZERS = frozenset({"torch.optim.Adam", "torch.optim.AdamW", "torch.optim.SGD", "torch.optim.RMSprop",
                              "torch.optim.Adamax", "torch.optim.NAdam", "torch.optim.RAdam"})
FEATURE_EXTRACTORS = frozenset({"translate.latent.extractor.ExtractorFeatures", "translate.latent.attributes.PixelFeatures"})
ALLOWED_SPECIAL_KEYS = frozenset({"_target_", "_partial_"})
# Modules that moved, old dotted prefix -> new: a stored config written before a move names the old place, and is
# read as naming the new one (only at ``_target_`` keys, before anything is checked or built). The second group is
# the package's layout by area (docs/develop/architecture.md); ``translate.config`` kept its name as a package.
MOVED = {
    "translate.logging.": "translate.training.tracking.",  # renamed before the areas
    "translate.errors.": "translate.core.errors.", "translate.fsutil.": "translate.core.atomic.",
    "translate.schema.": "translate.core.schema.", "translate.runtime.": "translate.core.runtime.",
    "translate.fetch.": "translate.core.download.", "translate.imageio16.": "translate.data.images.",
    "translate.inpainting.": "translate.data.inpainting.", "translate.losses.": "translate.models.losses.",
    "translate.stored.": "translate.config.stored.", "translate.checkpoint.": "translate.config.checkpoint.",
    "translate.reference.": "translate.loading.reference.", "translate.weights.": "translate.loading.weights.",
    "translate.generator_io.": "translate.loading.generator.", "translate.model_folder.": "translate.loading.folder.",
    "translate.pipeline.": "translate.loading.pipeline.", "translate.pretrained.": "translate.loading.pretrained.",
    "translate.sampling.": "translate.latent.sampling.", "translate.styles.": "translate.latent.styles.",
    "translate.attributes.": "translate.latent.attributes.", "translate.extractor.": "translate.latent.extractor.",
    "translate.axes_report.": "translate.latent.report.", "translate.axes_app.": "translate.apps.axes.",
    "translate.axes.": "translate.latent.axes.", "translate.style_axes.": "translate.latent.style_axes.",
    "translate.generate.": "translate.latent.generate.", "translate.latent_plot.": "translate.latent.plot.",
    "translate.metrics.": "translate.evaluation.metrics.",
    "translate.validation.": "translate.evaluation.validation.",
    "translate.evaluate.": "translate.evaluation.evaluate.", "translate.infer.": "translate.inference.convert.",
    "translate.anomaly.": "translate.inference.guard.", "translate.inputs.": "translate.inference.inputs.",
    "translate.export.": "translate.inference.export.", "translate.train.": "translate.training.loop.",
    "translate.optimization.": "translate.training.optimization.",
    "translate.schedulers.": "translate.training.schedulers.", "translate.tracking.": "translate.training.tracking.",
    "translate.distributed.": "translate.training.distributed.", "translate.sweep.": "translate.training.sweep.",
    "translate.plot.": "translate.training.plot.", "translate.serve.": "translate.apps.serve.",
    "translate.bench.": "translate.apps.bench.",
}
_registered_targets: set[str] = set()


def allow_targets(*targets: str) -> None:
    """Let configs stored in checkpoints build ``targets`` (dotted paths, e.g. ``mypkg.models.MyGAN``) at any key
    where a target belongs (a model family at ``model``, a feature extractor at ``metrics.features``)."""
    _registered_targets.update(targets)


# ---------------------------------------------------------------------------------------------- where targets go
def _package(path: Path) -> str:
    """The dotted key a ``conf/`` file's content lands at (its ``# @package`` line, else its group folder)."""
    group = ".".join(path.relative_to(CONF_DIR).parent.parts)
    header = re.search(r"^#\s*@package\s+(\S+)", path.read_text(), re.MULTILINE)
    if header is None:
        return group
    package = header.group(1).replace("_group_", group)
    return package.removeprefix("_global_").lstrip(".")


def _conf_targets(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """(key of the node, target) of every ``_target_`` in one parsed ``conf/`` file."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_" and isinstance(value, str):
                yield where, value
            elif key != "defaults":
                yield from _conf_targets(value, f"{where}.{key}" if where else str(key))


@functools.cache
def conf_files() -> tuple[tuple[str, dict], ...]:
    """(package, content) of every file in ``conf/``: where its keys land, and what it sets there."""
    return tuple((_package(path), OmegaConf.to_container(OmegaConf.load(path), resolve=False))
                 for path in sorted(CONF_DIR.rglob("*.yaml")))


@functools.cache
def target_sites() -> dict[str, frozenset[str]]:
    """Every key where this project's ``conf/`` puts a ``_target_``, with the targets it puts there."""
    sites: dict[str, set[str]] = defaultdict(set)
    for package, content in conf_files():
        for where, target in _conf_targets(content, package):
            sites[where].add(target)
    return {where: frozenset(targets) for where, targets in sites.items()}


def _conf_keys(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "defaults":
                here = f"{where}.{key}" if where else str(key)
                yield here, value
                yield from _conf_keys(value, here)


@functools.cache
def conf_keys() -> tuple[frozenset[str], frozenset[str]]:
    """Every dotted key that a file of ``conf/`` sets, and those of them that are free-form mappings (``{}``,
    e.g. ``edit``: their keys are the user's names)."""
    keys, free = set(), set()
    for package, content in conf_files():
        for where, value in _conf_keys(content, package):
            parts = where.split(".")
            keys.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
            if value == {}:
                free.add(where)
    return frozenset(keys), frozenset(free)


def allowed_targets(site: str) -> frozenset[str]:
    """What a stored config may build at ``site`` (the dotted key of the node holding ``_target_``)."""
    allowed = set(target_sites().get(site, ()))
    if re.fullmatch(r"optim\.\w+", site):
        allowed |= TORCH_OPTIMIZERS
    if site == "metrics.features":
        allowed |= FEATURE_EXTRACTORS
    return frozenset(allowed | _registered_targets) if allowed else frozenset()


# ---------------------------------------------------------------------------------------------- the check
def _key(where: str, key: Any) -> str:
    return f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)


def plain(value: Any, source: str | Path, where: str = "", depth: int = 0) -> Any:
    """``value`` as the plain data OmegaConf and Hydra see: mappings with string keys, lists (a tuple is a list
    to both), strings, numbers, booleans and null. Anything else, or nesting deeper than ``MAX_DEPTH``, is
    refused naming the key."""
    if depth > MAX_DEPTH:
        raise CheckpointError(f"{source}: its stored config nests deeper than {MAX_DEPTH} levels at {where}")
    if isinstance(value, dict):
        bad = next((k for k in value if not isinstance(k, str)), None)
        if bad is not None:
            raise CheckpointError(f"{source}: its stored config has a key {bad!r} at {where or 'the top'} that is "
                                  "not a string")
        return {k: plain(v, source, _key(where, k), depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, source, _key(where, i), depth + 1) for i, v in enumerate(value)]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise CheckpointError(f"{source}: its stored config has {where or 'the top'} of type {type(value).__name__}, "
                          "which a config cannot hold")


def _mappings(node: Any, where: str = "") -> Iterator[tuple[str, dict]]:
    """(key, mapping) of every mapping in a plain tree, at any depth and list position."""
    if isinstance(node, dict):
        yield where, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from _mappings(value, _key(where, key))


def _refuse_target(source: str | Path, where: str, target: Any) -> CheckpointError:
    key = _key(where, "_target_")
    if isinstance(target, str) and any(target in targets for targets in target_sites().values()):
        why = f"which this project never builds at {where or 'the top'}"
    else:
        why = "which is not a class or function this project builds"
    return CheckpointError(f"{source}: its stored config has {key}={target!r}, {why}; refused (a program that "
                           "trusts it can call translate.config.compose.allow_targets)")


def _check_instructions(node: dict, where: str, source: str | Path) -> None:
    """What Hydra would do with ``node``: build only an allowed target, take no other instruction."""
    if "_target_" in node:
        target = node["_target_"]
        if not isinstance(target, str) or target not in allowed_targets(where):
            raise _refuse_target(source, where, target)
    special = sorted(k for k in node if k.startswith("_") and k.endswith("_") and k not in ALLOWED_SPECIAL_KEYS)
    if special:
        raise CheckpointError(f"{source}: its stored config has {_key(where, special[0])}, a Hydra instruction a "
                              "stored config may not give; refused")
    if "_partial_" in node and not isinstance(node["_partial_"], bool):
        raise CheckpointError(f"{source}: its stored config has {_key(where, '_partial_')}={node['_partial_']!r}, "
                              "not true or false")


def _check_ranges(node: dict, where: str, source: str | Path, chosen: tuple[str, ...]) -> None:
    """The node's values against its target's keyword annotations (keys the user sets are the user's)."""
    stored = {k: v for k, v in node.items() if not _chosen_by_user(_key(where, k), chosen)}
    try:
        check_target_node(stored, where, get_object(node["_target_"]))
    except ConfigError as e:
        raise CheckpointError(f"{source}: in its stored config, {e}") from None
    except Exception:  # noqa: BLE001, S110 - a registered target that does not import is reported when built
        pass


def _check_settings(cfg: DictConfig, source: str | Path, chosen: tuple[str, ...]) -> None:
    """The nodes the loop reads itself (trainer, data, checkpoint, optimizers) against their dataclasses."""
    for key, (node, schema) in loop_settings(cfg).items():
        mine = {k: v for k, v in node.items() if not _chosen_by_user(f"{key}.{k}", chosen)}
        try:
            check_dataclass(mine, schema, key)
        except ConfigError as e:
            raise CheckpointError(f"{source}: in its stored config, {e}") from None


def _chosen_by_user(where: str, chosen: tuple[str, ...]) -> bool:
    return any(is_under(where, c) for c in chosen)


def is_under(key: str, prefix: str) -> bool:
    """Whether dotted ``key`` is ``prefix`` or lies below it (``a.b``, ``a[0]`` under ``a``)."""
    return key == prefix or key.startswith((prefix + ".", prefix + "["))


# The sections every stored training config has (a generator is rebuilt from them), and those a resume also reads.
SECTIONS = ("model", "generator", "discriminator", "gan_loss", "data")
RESUME_SECTIONS = (*SECTIONS, "trainer", "optim", "scheduler", "checkpoint", "logger")


def stored_config(config: Any, source: str | Path, chosen: Iterable[str] = (), *, builds_data: bool = False,
                  sections: tuple[str, ...] = SECTIONS) -> DictConfig:
    """The config stored in checkpoint ``source``, checked as untrusted data (see the module docstring), with
    every one of ``sections``. Keys under ``chosen`` (the user's own command-line overrides, e.g.
    ``metrics.features``) are the user's choice and not checked. ``builds_data``: the caller builds ``data``
    from it (``check_rendering``)."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{source}: its stored config is not a mapping")
    data = plain(config, source)
    for _, node in _mappings(data):
        target = node.get("_target_")
        old = next((prefix for prefix in MOVED if isinstance(target, str) and target.startswith(prefix)), None)
        if old is not None:
            node["_target_"] = MOVED[old] + target.removeprefix(old)
    if "${" in json.dumps(data):
        raise CheckpointError(f"{source}: its stored config contains an interpolation (${{...}}); a stored config "
                              "is data and is never resolved")
    cfg = OmegaConf.create(data)
    built = OmegaConf.to_container(cfg, resolve=False)  # exactly the tree Hydra will instantiate from
    chosen = tuple(chosen)
    mine = [(where, node) for where, node in _mappings(built) if not _chosen_by_user(where, chosen)]
    for where, node in mine:  # first what would be built, anywhere; then the values of what may be
        _check_instructions(node, where, source)
    for where, node in mine:
        if "_target_" in node:
            _check_ranges(node, where, source, chosen)
    _check_settings(cfg, source, chosen)
    missing = [s for s in sections if not isinstance(data.get(s), dict)]
    if missing:
        raise CheckpointError(f"{source}: its stored config has no {missing[0]} section (it is incomplete, or not a "
                              "training run's)")
    if builds_data:
        check_rendering(cfg, source, chosen)
    return cfg


def check_rendering(cfg: DictConfig, source: str | Path, chosen: Iterable[str] = ()) -> None:
    """A stored ``data`` node that renders its images on first use (the demos) writes into its ``root``. A path
    read from a checkpoint is never written to: it must already hold the rendering, unless the user gives
    ``data.root`` on this command line (``root: null`` renders into the user's own cache, within the bounds its
    settings are checked against)."""
    node, chosen = cfg.get("data"), tuple(chosen)
    if not isinstance(node, DictConfig) or not node.get("root") or _chosen_by_user("data.root", chosen):
        return
    try:
        rendered = getattr(get_object(node._target_), "rendered_at", None)
    except Exception:  # noqa: BLE001 - not a function that renders
        return
    if rendered is not None and not rendered(node.root):
        raise CheckpointError(f"{source}: its stored config would render the demo data into data.root={node.root}, "
                              "which does not hold it; a path read from a checkpoint is never written to: give "
                              "data.root=DIR (or data.root=null, the cache) on the command line")
