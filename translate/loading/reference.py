"""Loading weights saved by the reference pix2pix/CycleGAN code (``latest_net_G.pth`` and friends).

Our modules are named differently from the reference's; ``reference_key_map`` gives, for a network of ours,
the reference state-dict key of each of our keys. When a file does not fit the architecture asked for,
``diagnose`` finds the generator settings it does fit, so the error can say which setting is wrong.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

from translate.core.errors import CheckpointError
from translate.networks.discriminators import PatchDiscriminator, PixelDiscriminator
from translate.networks.generators import ResnetGenerator, UnetGenerator

# The reference presets by generator option name, with the constructor arguments that define them.
GENERATOR_PRESETS: dict[str, tuple[type[nn.Module], dict[str, Any]]] = {
    "unet_128": (UnetGenerator, {"num_downs": 7}),
    "unet_256": (UnetGenerator, {"num_downs": 8}),
    "resnet_6blocks": (ResnetGenerator, {"n_blocks": 6}),
    "resnet_9blocks": (ResnetGenerator, {"n_blocks": 9}),
}


def _unet_map(G: UnetGenerator) -> dict[str, str]:
    n = G.num_downs
    mapping = {}

    def prefix(level: int) -> str:
        return "model.model." if level == 0 else "model.model.1.model." + "3.model." * (level - 1)

    for ours, theirs in G.state_dict().items():
        part, index, module, param = ours.split(".", 3)
        level = int(index) if part == "downs" else n - 1 - int(index)
        outermost, innermost = level == 0, level == n - 1
        if part == "downs":
            position = {"conv": 0 if outermost else 1, "norm": 2}[module]
        elif outermost:
            position = 3
        else:
            position = {"conv": 3 if innermost else 5, "norm": 4 if innermost else 6}[module]
        mapping[ours] = f"{prefix(level)}{position}.{param}"
    return mapping


def _resnet_map(G: ResnetGenerator) -> dict[str, str]:
    return {k: k.replace(".block.", ".conv_block.") for k in G.state_dict()}


def _flat_map(D: nn.Module, attribute: str) -> dict[str, str]:
    """Our discriminators group layers in stages; the reference has one flat Sequential."""
    mapping = {}
    flat = 0
    for i, stage in enumerate(D.stages):
        layers = list(stage) if isinstance(stage, nn.Sequential) else [stage]
        for j, layer in enumerate(layers):
            ours = f"stages.{i}.{j}." if isinstance(stage, nn.Sequential) else f"stages.{i}."
            for name in layer.state_dict():
                mapping[ours + name] = f"{attribute}.{flat}.{name}"
            flat += 1
    return mapping


def reference_key_map(net: nn.Module) -> dict[str, str]:
    """Our state-dict key -> the reference's key, for the reference architectures."""
    if isinstance(net, UnetGenerator):
        return _unet_map(net)
    if isinstance(net, ResnetGenerator):
        return _resnet_map(net)
    if isinstance(net, PatchDiscriminator):
        return _flat_map(net, "model")
    if isinstance(net, PixelDiscriminator):
        return _flat_map(net, "net")
    raise TypeError(f"no reference layout is known for {type(net).__name__}")


def is_reference_state_dict(sd: dict[str, Any]) -> bool:
    return bool(sd) and all(isinstance(v, torch.Tensor) for v in sd.values()) and any(
        k.startswith(("model.", "net.", "module.model.")) for k in sd
    )


def strip_module_prefix(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights saved from DataParallel carry a ``module.`` prefix (the reference strips it when loading)."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k.removeprefix("module."): v for k, v in sd.items()}
    return sd


_STATS = ("running_mean", "running_var", "num_batches_tracked")


def drop_stale_statistics(sd: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Checkpoints saved before PyTorch 0.4 carry InstanceNorm running statistics that the networks do not
    use (the reference strips them when loading too); drop statistics the network has no place for."""
    return {k: v for k, v in sd.items() if k in expected or k.rsplit(".", 1)[-1] not in _STATS}


def _shapes(sd: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


def _reference_shapes(net: nn.Module) -> dict[str, tuple[int, ...]]:
    mapping = reference_key_map(net)
    return {mapping[k]: tuple(v.shape) for k, v in net.state_dict().items()}


def diagnose(sd: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    """The generator settings (preset, ngf, norm, dropout, channels) a reference state dict fits, if any."""
    first = next((v for k, v in sd.items() if v.dim() == 4), None)
    last = [v for k, v in sd.items() if v.dim() == 4]
    if first is None:
        return None
    for name, (cls, preset) in GENERATOR_PRESETS.items():
        # The first conv's output width is ngf; the last conv gives the output channels (ConvTranspose2d
        # weights are [in, out, k, k]).
        ngf = first.shape[0]
        in_ch = first.shape[1]
        out_ch = last[-1].shape[1] if cls is UnetGenerator else last[-1].shape[0]
        # Dropout has no weights; only the ResNet's key numbering shows it (the U-Net's does not).
        dropouts = (False, True) if cls is ResnetGenerator else (None,)
        for norm, dropout in itertools.product(("batch", "instance", "none"), dropouts):
            with torch.device("meta"):
                try:
                    net = cls(in_channels=in_ch, out_channels=out_ch, ngf=ngf, norm=norm, dropout=bool(dropout),
                              **preset)
                except (ValueError, RuntimeError):
                    continue
            candidate = _reference_shapes(net)
            if candidate == _shapes(drop_stale_statistics(sd, set(candidate))):
                return {"generator": name, "ngf": int(ngf), "norm": norm, "dropout": dropout,
                        "in_channels": int(in_ch), "out_channels": int(out_ch)}
    return None


def load_reference_weights(net: nn.Module, sd: dict[str, torch.Tensor], *, source: str, asked: str) -> None:
    """Load a reference state dict into ``net``; on a mismatch, say which setting the file fits."""
    sd = strip_module_prefix(sd)
    mapping = reference_key_map(net)
    expected = {mapping[k]: tuple(v.shape) for k, v in net.state_dict().items()}
    sd = drop_stale_statistics(sd, set(expected))
    if _shapes(sd) != expected:
        found = diagnose(sd)
        if found is None:
            raise CheckpointError(
                f"{source}: its {len(sd)} tensors match none of the reference generators (unet_128, unet_256, "
                f"resnet_6blocks, resnet_9blocks with batch/instance/none norm); is it a generator checkpoint?"
            )
        settings = f"generator={found['generator']} generator.ngf={found['ngf']} generator.norm={found['norm']}"
        if found["dropout"] is not None:
            settings += f" generator.dropout={str(found['dropout']).lower()}"
        raise CheckpointError(
            f"{source}: these weights do not fit {asked}; they fit {settings} "
            f"({found['in_channels']} -> {found['out_channels']} channels)"
        )
    net.load_state_dict({ours: sd[theirs] for ours, theirs in mapping.items()})
