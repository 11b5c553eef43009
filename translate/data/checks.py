"""Checks before training: the dataset's layout (``python -m translate.datasets check``) and the image sizes
the model's networks need. Each problem stops the run in one line, before any step."""

from __future__ import annotations

import math
import sys

from translate.data.modules import AlignedData, DataModule, UnalignedData
from translate.errors import ConfigError, DataError
from translate.models.base import TranslationModel
from translate.networks.layers import discriminator_min_size, generator_stride

CHECK_MODES = ("quick", "full", "off")


def check_dataset(data: DataModule, how: str) -> None:
    """Layout problems (A/B name mismatches, empty folders, images shared between splits) stop the run;
    unreadable files are reported and skipped by the loader. ``how``: quick (headers), full (decode all), off."""
    from translate.datasets import check

    if how not in CHECK_MODES:
        raise ConfigError(f"trainer.check_data={how!r} is not one of {', '.join(CHECK_MODES)}")
    if how == "off":
        return
    mode = "aligned" if isinstance(data, AlignedData) else "unaligned" if isinstance(data, UnalignedData) else "single"
    splits = (data.train_split, data.val_split) if mode == "single" else None
    report = check(data.root, mode, quick=how == "quick", splits=splits)
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    if report.unreadable:
        print(f"warning: {len(report.unreadable)} unreadable image(s) will be skipped, e.g. {report.unreadable[0]}",
              file=sys.stderr)
    problems = report.layout_errors
    if problems:
        more = (f" (and {len(problems) - 1} more: python -m translate.datasets check {data.root})"
                if len(problems) > 1 else "")
        raise DataError(f"{problems[0]}{more}; fix the dataset or set trainer.check_data=off")


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
    if cropping and data.crop_size < need:
        raise ConfigError(f"data.crop_size={data.crop_size} is too small for the discriminator, which needs at least "
                          f"{need} pixels (use fewer layers or scales: discriminator.n_layers / discriminator.num_D)")
