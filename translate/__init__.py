"""translate: image-to-image translation (pix2pix, CycleGAN, CUT, BicycleGAN) and images from noise in PyTorch.

``translate.load(path)`` gives an object that converts images (``translate.pipeline``)."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["load", "load_generator", "translate_files"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so `import translate` stays light.
    if name == "load":
        from translate.pipeline import load

        return load
    if name == "load_generator":
        from translate.generator_io import load_generator

        return load_generator
    if name == "translate_files":
        from translate.infer import translate_files

        return translate_files
    raise AttributeError(f"module 'translate' has no attribute {name!r}")
