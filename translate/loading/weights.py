"""Generator weights from files that do not record their architecture: reference pix2pix/CycleGAN ``.pth``
state dicts and safetensors files, loaded into the architecture a user (or a pretrained name) names, built from
the generator config group."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from translate.config.compose import CONF_DIR, build
from translate.core.errors import CheckpointError, ConfigError, first_line
from translate.loading.reference import load_reference_weights, reference_key_map, strip_module_prefix
from translate.networks.layers import generator_channels


def read_state(path: Path) -> dict[str, Any]:
    """The tensors of a ``.safetensors`` file or a ``torch.save`` file (weights only: nothing in it runs)."""
    if path.suffix == ".safetensors":

        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt, truncated or hostile files all end here
        raise CheckpointError(f"{path}: not a readable checkpoint ({first_line(e)})") from None


def generator_preset(name: str, overrides: dict[str, Any]):
    """The node of ``conf/generator/<name>.yaml`` with ``overrides`` (each a setting it has)."""
    path = CONF_DIR / "generator" / f"{name}.yaml"
    if not path.is_file():
        options = sorted(p.stem for p in (CONF_DIR / "generator").glob("*.yaml"))
        raise ConfigError(f"generator={name!r} is not one of {', '.join(options)}")
    node = OmegaConf.load(path)
    for key, value in overrides.items():
        if key not in node:
            raise ConfigError(f"generator.{key} is not a setting of generator={name}")
        node[key] = value
    return node


def reference_generator(path: Path, state: dict[str, torch.Tensor], generator: str | Mapping[str, Any] | None,
                        overrides: dict[str, Any], in_channels: int = 3, out_channels: int = 3) -> nn.Module:
    """The generator ``generator`` names (a preset of the generator group with ``overrides``, or a config node)
    with the reference-format weights ``state`` of ``path``; channel counts come from the file."""
    if generator is None:
        raise ConfigError(
            f"{path}: a reference state dict does not record its architecture; name it, e.g. "
            f"generator=resnet_9blocks generator.norm=instance"
        )
    if isinstance(generator, str):
        node = generator_preset(generator, overrides)
        asked = f"generator={generator}" + "".join(f" generator.{k}={v}" for k, v in overrides.items())
    else:  # a generator config node, e.g. from infer.py's generator group
        node = OmegaConf.merge(OmegaConf.create(dict(generator)), overrides)
        settings = ", ".join(f"{k}={v}" for k, v in node.items() if not k.startswith("_"))
        asked = f"{node._target_.rsplit('.', 1)[-1]}({settings})"
    G = build(node)(in_channels=in_channels, out_channels=out_channels)
    # Channel counts come from the file itself, so a grayscale model loads without extra arguments.
    channels = _file_channels(G, strip_module_prefix(state))
    if channels is not None and channels != generator_channels(G):
        G = build(node)(in_channels=channels[0], out_channels=channels[1])
    load_reference_weights(G, state, source=str(path), asked=asked)
    return G.eval()


def _file_channels(G: nn.Module, state: dict[str, torch.Tensor]) -> tuple[int, int] | None:
    """(input, output) channels of reference weights laid out like ``G`` (None if they do not fit it)."""
    mapping = reference_key_map(G)
    convs = [(name, m) for name, m in G.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    first, last = state.get(mapping.get(convs[0][0] + ".weight", "")), state.get(mapping.get(convs[-1][0] + ".weight", ""))
    if first is None or last is None or first.dim() != 4 or last.dim() != 4:
        return None
    out = last.shape[1] if isinstance(convs[-1][1], nn.ConvTranspose2d) else last.shape[0]
    return int(first.shape[1]), int(out)
