"""SPADE / GauGAN (Park et al. 2019) as a model family: label maps -> photos.

The official trainer (NVlabs/SPADE, ``trainers/pix2pix_trainer.py``) takes the generator's step first, then the
discriminator's, on the same batch; G's loss is the hinge GAN loss plus discriminator feature matching (weight
10, summed over D's layers and averaged over its scales); D judges (label map, image) pairs with the hinge loss.
This family is pix2pix's conditional GAN with that order and that feature matching; ``conf/model/spade.yaml``
sets the rest (``generator=spade``, a multi-scale spectral-norm D, hinge loss, no L1, Adam with betas (0, 0.9)
and the two time-scale learning rates 1e-4 for G and 4e-4 for D).

Where it still differs from the official code (issue 31 goes on): no VGG perceptual loss yet (lambda_vgg 10 in
the code), no VAE style encoder (``use_vae``), and the PatchGAN's 4x4 convolutions pad by 1 (the code: 2).
"""

from __future__ import annotations

from translate.models.pix2pix import Pix2Pix


class SPADE(Pix2Pix):
    """Label map (one-hot, ``data=labels``) -> photo: G's step, then D's (the official order)."""

    phases = ("G", "D")
    feature_layers_averaged = False
