"""Rebuilding a generator from a file: our training checkpoints, reference ``.pth`` state dicts, safetensors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translate.config.checkpoint import load_checkpoint, load_network_state
from translate.config.compose import build_model, stored_config
from translate.core.errors import CheckpointError, ConfigError, first_line
from translate.loading.folder import is_model_folder
from translate.loading.pipeline import Pipeline, from_model_folder
from translate.loading.pretrained import is_pretrained, resolve
from translate.loading.reference import is_reference_state_dict
from translate.loading.weights import read_state, reference_generator
from translate.models.base import Translation

WEIGHTS = ("auto", "G", "G_ema")


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
) -> Pipeline:
    """Load a generator for inference.

    - Our checkpoints (``last.pt`` or a run folder) rebuild the model from their stored config; no other
      argument is needed. ``direction`` picks one of the model's translations (CycleGAN: G_A for AtoB, G_B for
      BtoA; None: the model's primary one). ``weights``: ``auto`` uses the EMA generator when the run kept one,
      ``G`` the raw generator, ``G_ema`` insists on the average.
    - ``pretrained:NAME`` (``translate.loading.pretrained``): a reference model by name, downloaded when missing.
    - A model folder (``translate.loading.folder``, written by ``translate.inference.export format=folder``).
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
    if is_model_folder(path):
        return from_model_folder(path, direction)
    if path.is_dir() or path.suffix == ".pt":
        return _from_training_checkpoint(path, load_checkpoint(path), direction=direction, weights=weights)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    state = read_state(path)
    if isinstance(state, dict) and "format_version" in state:
        return _from_training_checkpoint(path, load_checkpoint(path), direction=direction, weights=weights)
    if not isinstance(state, dict) or not is_reference_state_dict(state):
        raise CheckpointError(f"{path}: neither a translate checkpoint nor a generator state dict")
    G = reference_generator(path, state, generator, overrides, in_channels, out_channels)
    direction = direction or "AtoB"
    if direction not in ("AtoB", "BtoA"):
        raise ConfigError(f"direction={direction!r} is not one of AtoB, BtoA")
    source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
    return Pipeline(G, Translation("G", source, target))


def _from_pretrained(checkpoint: str, direction: str | None) -> Pipeline:
    """``pretrained:NAME``: the reference model's file (downloaded when missing) in its own architecture;
    ``direction`` says which side of a dataset it reads (default: the one its test script uses)."""
    model, path = resolve(checkpoint)
    g = model.generator
    loaded = load_translation(path, generator=str(g["name"]), direction=direction or model.direction,
                              norm=g["norm"], dropout=g["dropout"])
    return replace(loaded, pretrained=model)


def _from_training_checkpoint(path: Path, ckpt: dict[str, Any], *, direction: str | None,
                              weights: str) -> Pipeline:
    """Rebuild the model from the checkpoint's stored config and load the weights of one of its generators."""
    cfg = stored_config(ckpt["config"], path)
    with torch.random.fork_rng(devices=[]):  # the initial weights drawn here are replaced below
        model = build_model(cfg)
    direction = direction or next(iter(model.translations))
    if direction not in model.translations and model.from_noise:
        raise ConfigError(f"{path}: this model generates images from noise (model=gan); use translate "
                          f"generate checkpoint={path} output=DIR")
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
    return Pipeline(G, translation, cfg, _style_encoder(path, ckpt, model))


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
