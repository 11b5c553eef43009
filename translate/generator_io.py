"""Rebuilding a generator from a file: our training checkpoints, reference ``.pth`` state dicts, safetensors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from translate.checkpoint import load_checkpoint, load_network_state
from translate.config import CONF_DIR, build, build_model, stored_config
from translate.errors import CheckpointError, ConfigError, first_line
from translate.models.base import Translation
from translate.networks.layers import generator_channels
from translate.pretrained import Pretrained, is_pretrained, resolve
from translate.reference import (
    is_reference_state_dict,
    load_reference_weights,
    reference_key_map,
    strip_module_prefix,
)

WEIGHTS = ("auto", "G", "G_ema")


def _read_state(path: Path) -> dict[str, Any]:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt, truncated or hostile files all end here
        raise CheckpointError(f"{path}: not a readable checkpoint ({first_line(e)})") from None


def generator_preset(name: str, overrides: dict[str, Any]):
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


@dataclass(frozen=True)
class LoadedGenerator:
    """A generator ready for inference (eval mode, CPU), the translation it performs (which batch key it reads
    and which it writes) and, for our checkpoints, the training config it was stored with and the model's style
    encoder (``model=bicycle``'s E, for reference styles), if it has one."""

    module: nn.Module
    translation: Translation
    config: DictConfig | None = None
    style_encoder: nn.Module | None = None
    pretrained: Pretrained | None = None

    @property
    def direction(self) -> str:
        """``AtoB`` or ``BtoA``: the translation's sides."""
        return f"{self.translation.source}to{self.translation.target}"

    @property
    def norm_mode(self) -> str:
        """How to run the generator when nobody says: as the reference test script runs a pretrained model
        (pix2pix's U-Net in train mode), else with running statistics (eval)."""
        return self.pretrained.norm_mode if self.pretrained is not None else "eval"


def load_generator(path: str | Path, **kwargs: Any) -> nn.Module:
    """The generator of ``load_translation(path, **kwargs)`` (``direction`` defaults to AtoB here)."""
    kwargs.setdefault("direction", "AtoB")
    return load_translation(path, **kwargs).module


def load_translation(
    path: str | Path,
    *,
    generator: str | Mapping[str, Any] | None = None,
    direction: str | None = None,
    weights: str = "auto",
    in_channels: int = 3,
    out_channels: int = 3,
    **overrides: Any,
) -> LoadedGenerator:
    """Load a generator for inference.

    - Our checkpoints (``last.pt`` or a run folder) rebuild the model from their stored config; no other
      argument is needed. ``direction`` picks one of the model's translations (CycleGAN: G_A for AtoB, G_B for
      BtoA; None: the model's primary one). ``weights``: ``auto`` uses the EMA generator when the run kept one,
      ``G`` the raw generator, ``G_ema`` insists on the average.
    - ``pretrained:NAME`` (``translate.pretrained``): a reference model by name, downloaded when missing.
    - Reference state dicts (``latest_net_G_A.pth``) and safetensors files need the architecture, named like
      the generator config group: ``generator='resnet_9blocks', norm='instance', dropout=False`` (other
      keyword arguments override the preset's ``ngf``, ``norm``, ``dropout``, ...). Their channel counts come
      from the file; ``direction`` (default AtoB) only says which domain is the input.
    """
    if weights not in WEIGHTS:
        raise ConfigError(f"weights={weights!r} is not one of {', '.join(WEIGHTS)}")
    if is_pretrained(path):
        return _from_pretrained(str(path), direction)
    path = Path(path).expanduser()
    if path.is_dir() or path.suffix == ".pt":
        return _from_training_checkpoint(path, load_checkpoint(path), direction=direction, weights=weights)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    state = _read_state(path)
    if isinstance(state, dict) and "format_version" in state:
        return _from_training_checkpoint(path, load_checkpoint(path), direction=direction, weights=weights)
    if not isinstance(state, dict) or not is_reference_state_dict(state):
        raise CheckpointError(f"{path}: neither a translate checkpoint nor a generator state dict")
    G = _from_reference_weights(path, state, generator, overrides, in_channels, out_channels)
    direction = direction or "AtoB"
    if direction not in ("AtoB", "BtoA"):
        raise ConfigError(f"direction={direction!r} is not one of AtoB, BtoA")
    source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
    return LoadedGenerator(G, Translation("G", source, target))


def _from_pretrained(checkpoint: str, direction: str | None) -> LoadedGenerator:
    """``pretrained:NAME``: the reference model's file (downloaded when missing) in its own architecture;
    ``direction`` says which side of a dataset it reads (default: the one its test script uses)."""
    model, path = resolve(checkpoint)
    g = model.generator
    loaded = load_translation(path, generator=str(g["name"]), direction=direction or model.direction,
                              norm=g["norm"], dropout=g["dropout"])
    return replace(loaded, pretrained=model)


def _from_reference_weights(path: Path, state: dict[str, torch.Tensor], generator: str | Mapping[str, Any] | None,
                            overrides: dict[str, Any], in_channels: int, out_channels: int) -> nn.Module:
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


def _from_training_checkpoint(path: Path, ckpt: dict[str, Any], *, direction: str | None,
                              weights: str) -> LoadedGenerator:
    """Rebuild the model from the checkpoint's stored config and load the weights of one of its generators."""
    cfg = stored_config(ckpt["config"], path)
    with torch.random.fork_rng(devices=[]):  # the initial weights drawn here are replaced below
        model = build_model(cfg)
    direction = direction or next(iter(model.translations))
    if direction not in model.translations and model.from_noise:
        raise ConfigError(f"{path}: this model generates images from noise (model=gan); use python -m "
                          f"translate.generate checkpoint={path} output=DIR")
    if direction not in model.translations:
        raise ConfigError(f"{path}: this model was trained {', '.join(model.translations)}; direction={direction} "
                          "is not available")
    translation = model.translations[direction]
    name = translation.generator
    ema = ckpt.get("ema", {}).get(name)
    if weights == "G_ema" and ema is None:
        raise ConfigError(f"{path}: the run kept no G_ema (trainer.ema.enabled was false); use weights=G")
    if name not in ckpt["networks"]:
        raise CheckpointError(f"{path}: the checkpoint has no weights for the generator {name} (networks: "
                              f"{', '.join(ckpt['networks']) or 'none'})")
    if ema is not None and weights != "G":
        state = {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")}
    else:
        state = ckpt["networks"][name]
    G = model.generators()[name]
    try:
        load_network_state(G, state, name)
    except (RuntimeError, ValueError) as e:
        raise CheckpointError(f"{path}: generator weights do not fit its stored config ({first_line(e)})") from None
    return LoadedGenerator(G.eval(), translation, cfg, _style_encoder(path, ckpt, model))


def _style_encoder(path: Path, ckpt: dict[str, Any], model) -> nn.Module | None:
    """The model's style encoder with its trained weights (None when the model has none)."""
    E = model.style_encoder()
    if E is None:
        return None
    name = next(n for n, net in model.networks().items() if net is E)
    if name not in ckpt["networks"]:
        raise CheckpointError(f"{path}: the checkpoint has no weights for the style encoder {name}")
    try:
        load_network_state(E, ckpt["networks"][name], name)
    except (RuntimeError, ValueError) as e:
        raise CheckpointError(f"{path}: style encoder weights do not fit its stored config ({first_line(e)})") from None
    return E.eval()
