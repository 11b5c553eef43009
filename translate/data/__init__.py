"""Data: image files and image I/O, paired transforms, datasets, the built-in demos, inpainting inputs, and the
dataset tools of ``translate datasets download|sketch|check|combine|separate|split`` (``download``,
``sketch``, ``tools``)."""

from translate.data.folders import AlignedDataset, EpochSampler, SingleDataset, UnalignedDataset
from translate.data.modules import AlignedData, DataModule, SingleData, UnalignedData
from translate.data.transforms import PairedTransform

__all__ = [
    "AlignedData",
    "AlignedDataset",
    "EpochSampler",
    "DataModule",
    "PairedTransform",
    "SingleData",
    "SingleDataset",
    "UnalignedData",
    "UnalignedDataset",
]
