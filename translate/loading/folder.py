"""A generator on its own: a model folder that converts images without the training stack.

``save_model_folder`` writes three files:

- ``config.json``: the generator's class and the keyword arguments it was built with (``net.arguments``, kept
  by ``networks.layers.keeps_arguments``), its channels, stride, direction and style-code size;
- ``model.safetensors``: its weights;
- ``README.md``: a model card (family, direction, data, steps, validation figures, how it was trained).

``load_model_folder`` rebuilds the generator from them, importing only its own network module: no Hydra, no
discriminator, loss, model family or training module. A folder is untrusted input like a checkpoint: the class
must be a rebuildable network of ``translate.networks`` (nothing else is imported), its arguments are checked
against the constructor's annotations (``translate.core.schema``), the weights are read as safetensors, and every
problem is one ``CheckpointError`` naming the file and the key.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from translate.config.checkpoint import load_network_state
from translate.core.atomic import atomic_write_bytes, json_text, make_folder
from translate.core.errors import CheckpointError, ConfigError, first_line
from translate.core.schema import check_target_node
from translate.networks.layers import generator_channels, generator_stride

CONFIG, WEIGHTS, CARD = "config.json", "model.safetensors", "README.md"
FORMAT = "translate-generator"
VERSION = 1
NETWORKS = "translate.networks."  # the only package a model folder may name a class of


@dataclass(frozen=True)
class FolderSpec:
    """What ``config.json`` holds besides the weights."""

    network: str  # module.Class of the generator
    arguments: dict[str, Any]
    direction: str  # AtoB | BtoA | noise
    source: str  # the batch key it reads: A, B or z
    target: str
    in_channels: int
    out_channels: int
    stride: int
    nz: int  # the style code's size (0: none)
    size: int  # the side it was trained at


def is_model_folder(path: str | Path) -> bool:
    return (Path(path) / CONFIG).is_file() and (Path(path) / WEIGHTS).is_file()


# ----------------------------------------------------------------------------------------------- writing
def spec_of(G: nn.Module, *, direction: str, source: str, target: str, size: int) -> FolderSpec:
    """The folder spec of generator ``G`` (it must be one ``keeps_arguments`` marks rebuildable)."""
    if not getattr(type(G), "rebuildable", False) or not hasattr(G, "arguments"):
        raise ConfigError(f"{type(G).__name__} does not keep its constructor arguments; it cannot be saved as a "
                          "model folder")
    in_channels, out_channels = generator_channels(G)
    return FolderSpec(f"{type(G).__module__}.{type(G).__qualname__}", dict(G.arguments), direction, source, target,
                      in_channels, out_channels, generator_stride(G), int(getattr(G, "nz", 0) or 0), int(size))


def save_model_folder(G: nn.Module, spec: FolderSpec, folder: str | Path, card: str) -> Path:
    """Write ``G`` as a model folder (each file atomically); returns the folder."""

    folder = make_folder(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    atomic_write_bytes(folder / WEIGHTS, save(state))
    atomic_write_bytes(folder / CONFIG, json_text({"format": FORMAT, "version": VERSION, **asdict(spec)},
                                                  indent=2).encode())
    atomic_write_bytes(folder / CARD, card.encode())
    return folder


# ----------------------------------------------------------------------------------------------- reading
def read_spec(folder: Path) -> FolderSpec:
    """``config.json`` of a model folder, checked field by field."""
    path = folder / CONFIG
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable model folder config ({first_line(e)})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a translate model folder (format is not {FORMAT!r})")
    if not isinstance(data.get("version"), int) or data["version"] > VERSION:
        raise CheckpointError(f"{path}: model folder version {data.get('version')!r} is not one this translate "
                              f"reads ({VERSION}); upgrade translate")
    fields = FolderSpec.__dataclass_fields__
    for name, field in fields.items():
        kind = {"str": str, "int": int, "dict[str, Any]": dict}[str(field.type)]
        if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool):
            raise CheckpointError(f"{path}: {name} is missing or not {kind.__name__}")
    return FolderSpec(**{name: data[name] for name in fields})


def network_class(spec: FolderSpec, path: Path) -> type:
    """The generator class the spec names: a rebuildable network of ``translate.networks``, nothing else."""
    module, _, name = spec.network.rpartition(".")
    if not module.startswith(NETWORKS) or not name.isidentifier():
        raise CheckpointError(f"{path}: network={spec.network!r} is not a network of translate.networks; refused")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise CheckpointError(f"{path}: network={spec.network!r} does not exist in this translate") from None
    if not isinstance(cls, type) or not issubclass(cls, nn.Module) or not getattr(cls, "rebuildable", False):
        raise CheckpointError(f"{path}: network={spec.network!r} is not a generator a model folder can hold")
    return cls


def load_model_folder(folder: str | Path) -> tuple[nn.Module, FolderSpec]:
    """The generator of a model folder in eval mode, and its spec."""

    folder = Path(folder).expanduser()
    spec = read_spec(folder)
    cls = network_class(spec, folder / CONFIG)
    try:
        check_target_node(spec.arguments, "arguments", cls)
        G = cls(**spec.arguments)
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"{folder / CONFIG}: {first_line(e)}") from None
    try:
        state = load_file(folder / WEIGHTS)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{folder / WEIGHTS}: not a readable safetensors file ({first_line(e)})") from None
    try:
        load_network_state(G, state, "weights")
    except (RuntimeError, ValueError) as e:
        raise CheckpointError(f"{folder / WEIGHTS}: the weights do not fit the network ({first_line(e)})") from None
    if generator_channels(G) != (spec.in_channels, spec.out_channels):
        raise CheckpointError(f"{folder / CONFIG}: in_channels/out_channels do not match the network's")
    return G.eval(), spec
