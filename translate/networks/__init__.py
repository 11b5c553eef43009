"""Generators and discriminators: plain modules with typed keyword arguments.

The names below are imported on first use, so that loading one generator (``translate.load``) does not import
every network: ``from translate.networks import UnetGenerator`` imports ``translate.networks.generators`` alone.
"""

from importlib import import_module
from typing import Any

_HOMES = {
    "LatentUnetGenerator": "bicycle", "StyleEncoder": "bicycle",
    "MultiscaleDiscriminator": "discriminators", "PatchDiscriminator": "discriminators",
    "PixelDiscriminator": "discriminators", "Pix2PixHDGenerator": "pix2pixhd", "FeatureEncoder": "pix2pixhd",
    "ResnetGenerator": "generators", "UnetGenerator": "generators", "SPADEGenerator": "spade", "ConvEncoder": "spade",
    "DCGANDiscriminator": "latent", "DCGANGenerator": "latent", "TutorialDiscriminator": "latent",
    "TutorialGenerator": "latent",
    "StyleDiscriminator": "stylegan", "StyleGenerator": "stylegan",
    "count_parameters": "layers", "init_weights": "layers",
}
__all__ = [  # noqa: RUF022 - as _HOMES lists them
    "LatentUnetGenerator", "StyleEncoder", "MultiscaleDiscriminator", "PatchDiscriminator", "PixelDiscriminator", "Pix2PixHDGenerator",
    "FeatureEncoder", "ResnetGenerator", "UnetGenerator", "SPADEGenerator", "ConvEncoder", "DCGANDiscriminator", "DCGANGenerator", "TutorialDiscriminator",
    "TutorialGenerator", "StyleDiscriminator", "StyleGenerator", "count_parameters", "init_weights",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'translate.networks' has no attribute {name!r}")
    return getattr(import_module(f"translate.networks.{_HOMES[name]}"), name)
