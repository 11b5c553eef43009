"""The ``data`` config group's targets: what to load and how, for each split."""

from __future__ import annotations

import signal
from pathlib import Path

from torch.utils.data import DataLoader, Dataset

from translate.core.errors import ConfigError, DataError
from translate.data.folders import AlignedDataset, SingleDataset, UnalignedDataset
from translate.data.transforms import PairedTransform, Preprocess


def ignore_stop_signals(worker_id: int) -> None:
    """A DataLoader ``worker_init_fn``: the worker ignores SIGINT and SIGTERM. Terminals, ``timeout``, SLURM and
    Kubernetes signal every process of the job, and a worker killed by one ends the run with an error before the
    training process can stop after its step and save; the workers end when the training process closes them."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def close_workers(loader: DataLoader) -> None:
    """End ``loader``'s persistent workers now. Workers that ignore SIGTERM (``ignore_stop_signals``) would
    otherwise keep the interpreter waiting at exit, where multiprocessing terminates and joins them; torch has no
    public call for this."""
    iterator = getattr(loader, "_iterator", None)
    loader._iterator = None
    if hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()


class DataModule:
    """Settings shared by every layout; ``dataset(split, train=...)`` builds the dataset of a split."""

    def __init__(
        self,
        *,
        root: str | Path,
        load_size: int = 286,
        crop_size: int = 256,
        preprocess: Preprocess = "resize_and_crop",
        flip: bool = True,
        input_nc: int = 3,
        output_nc: int = 3,
        batch_size: int = 1,
        num_workers: int = 2,
        size_multiple: int = 4,
        max_size: int | None = None,
        train_split: str = "train",
        val_split: str = "val",
        val_holdout: float = 0.0,
    ):
        if root is None or str(root) in ("", "???"):
            raise ConfigError("data.root is not set: give the dataset folder, e.g. data.root=/data/facades")
        for name, nc in (("data.input_nc", input_nc), ("data.output_nc", output_nc)):
            if nc not in (1, 3):
                raise ConfigError(f"{name}={nc}: images have 1 (grayscale) or 3 (RGB) channels")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size={batch_size} must be >= 1")
        self.root = Path(root).expanduser()
        self.load_size, self.crop_size, self.preprocess, self.flip = load_size, crop_size, preprocess, flip
        self.input_nc, self.output_nc = input_nc, output_nc
        self.batch_size, self.num_workers = batch_size, num_workers
        self.size_multiple, self.max_size = size_multiple, max_size
        if not 0 <= val_holdout < 1:
            raise ConfigError(f"data.val_holdout={val_holdout}: a fraction of the training images, 0 <= f < 1")
        self.train_split, self.val_split, self.val_holdout = train_split, val_split, val_holdout

    def transform(self, train: bool) -> PairedTransform:
        return PairedTransform(
            preprocess=self.preprocess,
            load_size=self.load_size,
            crop_size=self.crop_size,
            flip=self.flip,
            train=train,
            size_multiple=self.size_multiple,
        )

    def dataset(self, split: str, *, train: bool = True) -> Dataset:
        raise NotImplementedError

    def has_split(self, split: str) -> bool:
        """Whether the folders of ``split`` exist (their contents are checked when the dataset is built)."""
        raise NotImplementedError

    def holding_out(self) -> bool:
        """True when part of train stands in for a missing val split (``val_holdout`` > 0)."""
        return self.val_holdout > 0 and not self.has_split(self.val_split)

    def train_dataset(self) -> Dataset:
        """The train split, less the held-out part when ``holding_out()``."""
        dataset = self.dataset(self.train_split, train=True)
        return dataset.hold_out(self.val_holdout, held=False) if self.holding_out() else dataset

    def val_dataset(self) -> Dataset:
        """The val split; without one, the held-out part of train (``val_holdout``). DataError if neither."""
        if self.holding_out():
            return self.dataset(self.train_split, train=False).hold_out(self.val_holdout, held=True)
        return self.dataset(self.val_split, train=False)

    def truth_dataset(self) -> Dataset | None:
        """Aligned pairs of a source image and its true translation, for unpaired data that has them (None)."""
        return None

    def sample_dataset(self) -> Dataset:
        """Fixed inputs for sample grids: the val split (or held-out part) when there is one, else train."""
        try:
            return self.val_dataset()
        except DataError:  # a missing val split is normal
            return self.dataset(self.train_split, train=False)


class AlignedData(DataModule):
    """Paired A/B images (pix2pix)."""

    def dataset(self, split: str, *, train: bool = True) -> Dataset:
        return AlignedDataset(
            self.root, split, self.transform(train), input_nc=self.input_nc, output_nc=self.output_nc,
            max_size=self.max_size,
        )

    def has_split(self, split: str) -> bool:
        return (self.root / split).is_dir() or (self.root / "A" / split).is_dir()


class UnalignedData(DataModule):
    """Unpaired ``trainA``/``trainB`` folders (CycleGAN, CUT).

    ``truth``: a folder under ``root`` of aligned pairs (``A/<val split>``, ``B/<val split>``) in which each B is
    the true translation of its A, when such a thing exists (a rendered demo). Validation then also scores
    G(A) against it (``val/paired_*``).
    """

    def __init__(self, *, serial: bool = False, truth: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.serial = serial
        self.truth = truth

    def truth_dataset(self) -> Dataset | None:
        """The aligned true translations of val images (``truth``), or None."""
        if not self.truth:
            return None
        return AlignedDataset(self.root / self.truth, self.val_split, self.transform(False),
                              input_nc=self.input_nc, output_nc=self.output_nc, max_size=self.max_size)

    def dataset(self, split: str, *, train: bool = True) -> Dataset:
        return UnalignedDataset(
            self.root, split, self.transform(train), input_nc=self.input_nc, output_nc=self.output_nc,
            serial=self.serial or not train, max_size=self.max_size,
        )

    def has_split(self, split: str) -> bool:
        return (self.root / f"{split}A").is_dir() or (self.root / f"{split}B").is_dir()


class SingleData(DataModule):
    """One folder of images (inference or evaluation inputs)."""

    def dataset(self, split: str, *, train: bool = True) -> Dataset:
        return SingleDataset(
            self.root, split, self.transform(train), input_nc=self.input_nc, max_size=self.max_size
        )

    def has_split(self, split: str) -> bool:
        return (self.root / split).is_dir()
