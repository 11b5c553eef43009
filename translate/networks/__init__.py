"""Generators and discriminators: plain modules with typed keyword arguments."""

from translate.networks.bicycle import LatentUnetGenerator, StyleEncoder
from translate.networks.discriminators import MultiscaleDiscriminator, PatchDiscriminator, PixelDiscriminator
from translate.networks.generators import ResnetGenerator, UnetGenerator
from translate.networks.latent import DCGANDiscriminator, DCGANGenerator, TutorialDiscriminator, TutorialGenerator
from translate.networks.stylegan import StyleDiscriminator, StyleGenerator
from translate.networks.layers import count_parameters, init_weights

__all__ = [
    "LatentUnetGenerator",
    "StyleEncoder",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "StyleDiscriminator",
    "StyleGenerator",
    "TutorialDiscriminator",
    "TutorialGenerator",
    "MultiscaleDiscriminator",
    "PatchDiscriminator",
    "PixelDiscriminator",
    "ResnetGenerator",
    "UnetGenerator",
    "count_parameters",
    "init_weights",
]
