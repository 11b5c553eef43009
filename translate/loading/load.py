"""``translate.load``: a ``Pipeline`` from whatever holds a generator, the one way every command loads one."""

from __future__ import annotations

from pathlib import Path

from translate.loading.folder import is_model_folder
from translate.loading.pipeline import Pipeline, from_model_folder, source_name


def load(source: str | Path, *, direction: str | None = None, weights: str = "auto", **architecture) -> Pipeline:
    """A ``Pipeline`` from a model folder, a run folder or ``.pt`` checkpoint, reference weights (name the
    architecture: ``generator="resnet_9blocks", norm="instance"``) or ``pretrained:NAME``. ``direction`` picks one
    of a run's translations (CycleGAN: AtoB or BtoA); ``weights``: ``auto`` (the EMA generator when the run kept
    one), ``G`` or ``G_ema``."""
    if is_model_folder(source):
        pipe = from_model_folder(source, direction)
    else:
        from translate.loading.generator import load_translation  # runs and reference weights need Hydra, models

        pipe = load_translation(source, direction=direction, weights=weights, **architecture)
    pipe.name = source_name(source)
    return pipe
