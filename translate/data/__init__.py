"""Data: image I/O, paired transforms, datasets and the built-in demo."""

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
