"""translate: paired (pix2pix) and unpaired (CycleGAN) image-to-image translation in PyTorch."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_generator", "translate_files"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so `import translate` stays light.
    if name == "load_generator":
        from translate.generator_io import load_generator

        return load_generator
    if name == "translate_files":
        from translate.infer import translate_files

        return translate_files
    raise AttributeError(f"module 'translate' has no attribute {name!r}")
