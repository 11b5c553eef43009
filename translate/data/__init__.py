"""Data: image I/O, paired transforms, datasets and the built-in demo."""

from translate.data.datasets import AlignedDataset, EpochSampler, SingleDataset, UnalignedDataset
from translate.data.modules import AlignedData, ImageData, SingleData, UnalignedData
from translate.data.transforms import PairedTransform

__all__ = [
    "AlignedData",
    "AlignedDataset",
    "EpochSampler",
    "ImageData",
    "PairedTransform",
    "SingleData",
    "SingleDataset",
    "UnalignedData",
    "UnalignedDataset",
]
