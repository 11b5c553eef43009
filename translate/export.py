"""Export a generator to ONNX or TorchScript with dynamic batch, height and width.

``python -m translate.export checkpoint=PATH format=onnx|torchscript [output=FILE] [direction=BtoA]``
(reference weights also need ``generator=...`` as in ``infer.py``). Inputs are [N, C, H, W] in [-1, 1] with
H and W multiples of the generator's stride (stored in the ONNX metadata as ``stride``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from translate.errors import ConfigError
from translate.fsutil import atomic_write, atomic_write_bytes
from translate.generator_io import load_generator
from translate.networks.layers import generator_channels, generator_stride

FORMATS = {"onnx": ".onnx", "torchscript": ".ts"}


class ImageToImage(nn.Module):
    """``G(image)`` alone, whatever else ``G.forward`` accepts (a style code, ``feature_layers``): the exporters
    bind every argument of the traced ``forward``, keyword-only ones included, to positions."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.G(image)


def export_generator(G: nn.Module, path: str | Path, format: str = "onnx", opset: int = 17) -> Path:
    """Write ``G`` (in eval mode) to ``path``; returns the path."""
    if format not in FORMATS:
        raise ConfigError(f"format={format!r} is not one of {', '.join(FORMATS)}")
    G = G.eval().cpu()
    in_ch, out_ch = generator_channels(G)
    stride = generator_stride(G)
    G = ImageToImage(G).eval()
    side = max(stride, 64 // stride * stride)
    example = torch.zeros(1, in_ch, side, side)
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is chatty about deprecations
        if format == "torchscript":
            with torch.no_grad():
                traced = torch.jit.trace(G, example)
            atomic_write(path, lambda f: torch.jit.save(traced, f))
            return path
        import onnx

        tmp = path.with_name(f".{path.name}.export")
        try:
            dims = {0: "batch", 2: "height", 3: "width"}
            torch.onnx.export(G, (example,), str(tmp), input_names=["image"], output_names=["output"],
                              dynamic_axes={"image": dims, "output": dims}, opset_version=opset, dynamo=False)
            model = onnx.load(str(tmp))
        finally:
            tmp.unlink(missing_ok=True)
    for key, value in {"stride": stride, "in_channels": in_ch, "out_channels": out_ch, "range": "[-1, 1]"}.items():
        model.metadata_props.add(key=key, value=str(value))
    atomic_write_bytes(path, model.SerializeToString())
    return path


def run(cfg) -> Path:
    """The ``python -m translate.export`` app."""
    generator = dict(cfg.generator) if cfg.get("generator") else None
    G = load_generator(cfg.checkpoint, generator=generator, direction=cfg.direction, weights=cfg.weights)
    output = cfg.output or str(Path(str(cfg.checkpoint)).with_suffix("").as_posix() + f"_{cfg.direction}" + FORMATS[cfg.format])
    path = export_generator(G, output, cfg.format, cfg.opset)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    import hydra

    from translate.config import CONF_DIR, run_cli

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="export")
    def main(cfg) -> None:
        run_cli(run, cfg)

    main()
