"""The image sizes a model's networks need, checked before training: each problem stops the run in one line,
before any step."""

from __future__ import annotations

import math

from translate.core.errors import ConfigError
from translate.data.modules import DataModule
from translate.models.base import TranslationModel
from translate.networks.layers import discriminator_min_size, generator_stride


def fit_sizes_to_networks(model: TranslationModel, data: DataModule) -> None:
    """Images must fit the generators' stride (e.g. 256 for unet_256) and be large enough for the
    discriminators: fail now, not in a conv layer. Sets ``data.size_multiple`` to the stride."""
    stride = max(generator_stride(G) for G in model.generators().values())
    data.size_multiple = math.lcm(int(data.size_multiple), stride)
    cropping = data.preprocess.endswith("crop")
    if cropping and data.crop_size % stride:
        raise ConfigError(f"data.crop_size={data.crop_size} is not a multiple of {stride}, which the generator "
                          "needs (pick a crop size that is, or a shallower generator)")
    need = max((discriminator_min_size(D) for D in model.discriminators().values()), default=1)
    need *= model.coarsest_scale  # pix2pixHD's global phase shows D images smaller than the data's
    if cropping and data.crop_size < need:
        raise ConfigError(f"data.crop_size={data.crop_size} is too small for the discriminator, which needs at least "
                          f"{need} pixels (use fewer layers or scales: discriminator.n_layers / discriminator.num_D)")
