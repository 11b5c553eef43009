"""translate: paired (pix2pix) and unpaired (CycleGAN) image-to-image translation in PyTorch."""

__version__ = "0.1.0"
