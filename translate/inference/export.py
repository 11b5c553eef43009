"""Export a generator to ONNX or TorchScript with dynamic batch, height and width.

``translate export checkpoint=PATH format=onnx|torchscript|folder [output=FILE] [direction=BtoA]``
(``folder``: a model folder, config.json + model.safetensors + a model card, that ``translate.load`` and every
command read without the training stack: ``translate.loading.folder``)
(reference weights also need ``generator=...`` as in ``infer.py``). Inputs are [N, C, H, W] in [-1, 1] with
H and W multiples of the generator's stride (stored in the ONNX metadata as ``stride``); a noise generator
(``model=gan``) takes latents [N, z_dim] (metadata ``z_dim``, ``size``) and StyleGAN ``truncation=PSI``. A
generator with a style code (``model=bicycle``) takes the latent [N, nz] as a second input ``latent``
(``style=input``), or bakes one in: ``style=mean`` or ``style=SEED``; ``truncation=PSI`` applies to it.
"""

from __future__ import annotations

import io
import shlex
import sys
import warnings
from pathlib import Path

import torch
import yaml
from torch import nn

from translate.config.checkpoint import load_checkpoint
from translate.config.compose import hydra_command
from translate.core.atomic import atomic_write, atomic_write_bytes
from translate.core.errors import ConfigError
from translate.latent.generate import truncation_of
from translate.loading.folder import FolderSpec, save_model_folder, spec_of
from translate.loading.load import load
from translate.loading.pipeline import Pipeline, results_folder, source_name
from translate.loading.pretrained import is_pretrained
from translate.models.base import Translation, fixed_latents
from translate.models.gan import LATENT
from translate.networks.layers import baked, generator_channels, generator_stride
from translate.networks.stylegan import StyleGenerator

MAX_OVERRIDES_BYTES = 64 * 1024

FORMATS = {"onnx": ".onnx", "torchscript": ".ts"}
FOLDER = "folder"


class ImageToImage(nn.Module):
    """``G(image)`` alone, whatever else ``G.forward`` accepts (a style code, ``feature_layers``): the exporters
    bind every argument of the traced ``forward``, keyword-only ones included, to positions."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.G(image)


class LatentToImage(nn.Module):
    """A noise generator as ``G(latent)``: [N, z_dim] -> [N, C, size, size]. A StyleGAN is exported with its
    stored (fixed) noise images, so the file is deterministic, and with ``truncation`` baked in."""

    def __init__(self, G: nn.Module, truncation: float = 1.0):
        super().__init__()
        self.G, self.styled = G, isinstance(G, StyleGenerator)
        self.truncation = float(truncation)
        if not self.styled and self.truncation != 1.0:
            raise ConfigError("truncation: only a StyleGAN generator is exported with truncation")

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        if self.styled:
            return self.G(latent, truncation=self.truncation, noise="fixed")
        return self.G(latent)


class ImageAndLatentToImage(nn.Module):
    """A generator with a style code as ``G(image, latent)``: [N, C, H, W] and [N, nz] -> [N, C_out, H, W], with
    ``truncation`` baked in (the mapping network, in AdaIN mode, is part of the file)."""

    def __init__(self, G: nn.Module, truncation: float = 1.0):
        super().__init__()
        self.G, self.truncation = G, float(truncation)

    def forward(self, image: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return self.G(image, latent, truncation=self.truncation)


class ImageToImageWithStyle(nn.Module):
    """A generator with a style code as ``G(image)`` under one code chosen at export (stored in the file)."""

    def __init__(self, G: nn.Module, code: torch.Tensor, truncation: float = 1.0):
        super().__init__()
        self.G, self.truncation = G, float(truncation)
        self.register_buffer("code", code.reshape(1, -1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.G(image, self.code * image.new_ones(image.shape[0], 1), truncation=self.truncation)


def _image_wrapper(G: nn.Module, truncation: float, style: str | int) -> tuple[nn.Module, list[str], dict]:
    """For an image generator: the module to trace, its input names and extra metadata (``style``: ``input``
    takes the latent as a second input, ``mean`` the mean style, a number the code of that seed)."""
    nz = int(getattr(G, "nz", 0))
    if not nz:
        if truncation != 1.0 or style != "input":
            raise ConfigError("truncation and style: only generators with a style code (model=bicycle) or noise "
                              "generators (model=gan) take them")
        return ImageToImage(G), ["image"], {}
    if not isinstance(truncation, (int, float)):
        raise ConfigError("truncation: give one number for an export")
    meta = {"nz": nz, "truncation": truncation, "style": style}
    if style == "input":
        return ImageAndLatentToImage(G, truncation), ["image", "latent"], meta
    if style == "mean":
        return ImageToImage(G), ["image"], meta
    if isinstance(style, bool) or not isinstance(style, int):
        raise ConfigError(f"style={style!r} is not one of input, mean or a seed (an integer)")
    return ImageToImageWithStyle(G, fixed_latents(1, nz, style), truncation), ["image"], meta


def _wrapped(G: nn.Module, truncation: float,
             style: str | int = "input") -> tuple[nn.Module, tuple[torch.Tensor, ...], list[str], dict[str, str]]:
    """The module to trace, example inputs, their names and the file's metadata."""
    if hasattr(G, "z_dim"):
        example = torch.zeros(1, int(G.z_dim))
        meta = {"z_dim": G.z_dim, "size": G.size, "truncation": truncation, "range": "[-1, 1]"}
        return LatentToImage(G, truncation).eval(), (example,), ["latent"], {k: str(v) for k, v in meta.items()}
    wrapper, names, extra = _image_wrapper(G, truncation, style)
    in_ch, out_ch = generator_channels(G)
    stride = generator_stride(G)
    side = max(stride, 64 // stride * stride)
    examples = (torch.zeros(1, in_ch, side, side), torch.zeros(1, int(getattr(G, "nz", 0))))[: len(names)]
    meta = {"stride": stride, "in_channels": in_ch, "out_channels": out_ch, "range": "[-1, 1]", **extra}
    return wrapper.eval(), examples, names, {k: str(v) for k, v in meta.items()}


def export_generator(G: nn.Module, path: str | Path, format: str = "onnx", opset: int = 17,
                     truncation: float = 1.0, style: str | int = "input") -> Path:
    """Write ``G`` (in eval mode) to ``path``; returns the path. An image generator takes [N, C, H, W] (dynamic
    batch and sides), one with a style code also latents [N, nz] (``style=input``; or ``mean`` / a seed: one
    code chosen now); a noise generator [N, z_dim] latents (dynamic batch)."""
    if format not in FORMATS:
        raise ConfigError(f"format={format!r} is not one of {', '.join(FORMATS)}")
    if int(getattr(G, "coarse", 0)):
        raise ConfigError("this pix2pixHD checkpoint is still in its global phase (model.global_steps): export one "
                          "from after it")
    G, examples, input_names, metadata = _wrapped(baked(G.eval().cpu()), truncation, style)
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is chatty about deprecations
        if format == "torchscript":
            with torch.no_grad():
                traced = torch.jit.trace(G, examples)
            atomic_write(path, lambda f: torch.jit.save(traced, f))
            return path
        import onnx

        # Exported in memory: the only file written is the final one, atomically (an unwritable folder is then
        # atomic_write's one-line OutputError, with nothing left behind).
        buffer = io.BytesIO()
        dims = {0: "batch", 2: "height", 3: "width"}
        axes = {name: dims if name == "image" else {0: "batch"} for name in input_names} | {"output": dims}
        torch.onnx.export(G, examples, buffer, input_names=input_names, output_names=["output"],
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
        model = onnx.load_from_string(buffer.getvalue())
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    atomic_write_bytes(path, model.SerializeToString())
    return path


def _direction_name(translation: Translation) -> str:
    if translation.source == LATENT:
        return "noise"
    return f"{translation.source}to{translation.target}"


def write_model_folder(loaded, checkpoint: str, output: str | Path) -> Path:
    """The generator ``translate.load`` gave, with its model card, as a model folder at ``output``."""
    return save_model_folder(loaded.module, folder_spec(loaded), output, model_card(loaded, checkpoint))


def folder_spec(pipe: Pipeline) -> FolderSpec:
    """The model folder spec of a loaded generator: its direction (``noise`` for one from noise) and training size."""
    t = pipe.translation
    direction = pipe.direction if t.source in ("A", "B") else "noise"
    return spec_of(pipe.module, direction=direction, source=t.source, target=t.target, size=pipe.size)


def model_card(loaded, checkpoint: str) -> str:
    """A model folder's README.md: what the generator does, what it was trained on, how long, how well, how."""
    lines = [f"# {loaded.name or source_name(checkpoint)}: {loaded.direction}", ""]
    if loaded.pretrained is not None:
        lines += [(f"The reference model `{loaded.pretrained.name}` ({loaded.pretrained.about}; "
                   f"{loaded.pretrained.architecture}).")]
    elif loaded.config is None:
        lines += ["Reference generator weights."]
    else:
        cfg = loaded.config
        ckpt = {} if is_pretrained(checkpoint) else load_checkpoint(checkpoint)
        data = cfg.data
        lines += [f"- family: `{cfg.model._target_}`, generator `{cfg.generator._target_}`",
                  f"- direction: {loaded.direction}",
                  (f"- data: `{data._target_}` ({Path(str(data.get('root') or 'the built-in demo')).name}), "
                   f"{data.crop_size} px crops"),
                  f"- steps: {ckpt.get('step', '?')}",
                  f"- validation: {_figures(ckpt)}",
                  f"- trained with: {training_command(checkpoint)}"]
    lines += ["", "```python", "import translate", f"pipe = translate.load({'<this folder>'!r})",
              "image = pipe(PIL.Image.open('input.png'))", "```", ""]
    return "\n".join(lines)


def training_command(checkpoint: str) -> str:
    """The command that trained a run, from the overrides Hydra kept in its run folder (``.hydra/overrides.yaml``),
    read as untrusted data: a short list of short one-line strings, else the run's ``config.yaml`` is named."""
    path = Path(checkpoint)
    run = path.parent.parent if path.parent.name == "checkpoints" else path if path.is_dir() else path.parent
    fallback = "`python train.py` and the settings in the run's `config.yaml`"
    overrides = run / ".hydra" / "overrides.yaml"
    if is_pretrained(checkpoint) or not overrides.is_file() or overrides.stat().st_size > MAX_OVERRIDES_BYTES:
        return fallback
    try:
        items = yaml.safe_load(overrides.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        return fallback
    if not isinstance(items, list) or not all(_plain_override(item) for item in items):
        return fallback
    return "`" + " ".join(["python train.py", *(shlex.quote(item) for item in items)]) + "`"


def _plain_override(item) -> bool:
    """One Hydra override that can be shown in a code span: a short single-line string without backticks."""
    return isinstance(item, str) and len(item) <= 500 and item.isprintable() and "`" not in item


def _figures(ckpt: dict) -> str:
    metrics = {k: v for k, v in ckpt.get("metrics", {}).items() if k.startswith("val/") and isinstance(v, float)}
    best = {k: v for k, v in ckpt.get("best", {}).items() if k != "step" and isinstance(v, float)}
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items())) or "none recorded"
    kept = "".join(f"; best {k} {v:.4f} at step {ckpt['best'].get('step')}" for k, v in best.items())
    return shown + kept


def run(cfg) -> Path:
    """The ``translate export`` app."""
    truncation = truncation_of(cfg.get("truncation", 1.0))  # a NaN or huge psi would bake in black images
    generator = dict(cfg.generator) if cfg.get("generator") else None
    loaded = load(cfg.checkpoint, generator=generator, direction=cfg.direction, weights=cfg.weights)
    direction = cfg.direction or _direction_name(loaded.translation)
    source = Path(str(cfg.checkpoint))
    stem = source.stem if source.suffix in (".pt", ".pth", ".safetensors") else loaded.name
    default = results_folder(cfg.checkpoint, "export") / f"{stem}_{direction}"
    if cfg.format == FOLDER:
        path = write_model_folder(loaded, str(cfg.checkpoint), cfg.output or default)
        print(f"wrote {path} (load it with translate.load({str(path)!r}), or checkpoint={path})")
        return path
    output = cfg.output or default.with_name(default.name + FORMATS[cfg.format])
    path = export_generator(loaded.module, output, cfg.format, cfg.opset, truncation=truncation,
                            style=cfg.get("style", "input"))
    print(f"wrote {path}")
    return path


def main() -> None:
    """``translate export``: Hydra reads the ``key=value`` overrides from ``sys.argv``."""
    hydra_command("export", run)


if __name__ == "__main__":  # python -m translate.inference.export is translate export
    from translate.apps.cli import main as translate_command

    sys.exit(translate_command(["export", *sys.argv[1:]]))
