"""translate: image-to-image translation (pix2pix, CycleGAN, CUT, BicycleGAN) and images from noise in PyTorch.

``translate.load(path)`` gives a ``Pipeline``, an object that converts images (``translate.loading``). The package
is laid out by area (``docs/develop/architecture.md``): ``core``, ``data``, ``networks``, ``models``, ``config``,
``loading``, ``latent``, ``evaluation``, ``inference``, ``training`` and ``apps``."""

from translate.loading.load import load
from translate.loading.pipeline import Pipeline

__version__ = "0.1.0"
__all__ = ["Pipeline", "load"]
