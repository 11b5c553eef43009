"""Models wire generators and discriminators and define one training step's losses."""

from translate.models.autoencoder import Autoencoder
from translate.models.base import Translation, TranslationModel
from translate.models.bicycle import BicycleGAN
from translate.models.cut import CUT
from translate.models.cyclegan import CycleGAN
from translate.models.gan import NoiseGAN
from translate.models.pix2pix import Pix2Pix
from translate.models.pix2pixhd import Pix2PixHD
from translate.models.pool import ImagePool
from translate.models.spade import SPADE

__all__ = ["Autoencoder", "BicycleGAN", "CUT", "CycleGAN", "ImagePool", "NoiseGAN", "Pix2Pix", "Pix2PixHD", "SPADE", "TranslationModel", "Translation"]
