"""Generators and discriminators: plain modules with typed keyword arguments."""

from translate.networks.discriminators import MultiscaleDiscriminator, PatchDiscriminator, PixelDiscriminator
from translate.networks.generators import ResnetGenerator, UnetGenerator
from translate.networks.layers import count_parameters, init_weights

__all__ = [
    "MultiscaleDiscriminator",
    "PatchDiscriminator",
    "PixelDiscriminator",
    "ResnetGenerator",
    "UnetGenerator",
    "count_parameters",
    "init_weights",
]
