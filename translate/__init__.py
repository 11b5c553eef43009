"""translate: image-to-image translation (pix2pix, CycleGAN, CUT, BicycleGAN) and images from noise in PyTorch.

``translate.load(path)`` gives a ``Pipeline``, an object that converts images (``translate.loading``). The package
is laid out by area (``docs/develop/architecture.md``): ``core``, ``data``, ``networks``, ``models``, ``config``,
``loading``, ``latent``, ``evaluation``, ``inference``, ``training`` and ``apps``."""

from translate.core.openmp import settle_wait_policy

settle_wait_policy()  # before anything imports torch: how its threads wait on a busy CPU (translate.core.openmp)

from translate.loading.load import load  # noqa: E402
from translate.loading.pipeline import Pipeline  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Pipeline", "load"]
