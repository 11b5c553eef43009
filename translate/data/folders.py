"""Datasets over image folders (aligned, unaligned, single) and a resumable, seeded sampler.

The sampler yields ``(index, sample_seed)`` pairs. Each sample's randomness (crop, flip, unaligned pairing)
is drawn under that seed, so a sample depends only on (seed, epoch, position): the same with any number of
workers, and exactly reproducible after a resume.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import Dataset, Sampler

from translate.core.errors import DataError
from translate.data.files import filter_readable, list_images, load_image
from translate.data.transforms import PairedTransform


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A per-sample seed; distinct for every (seed, epoch, position) in practice."""
    return (seed * 0x9E3779B1 + epoch * 1_000_003 + position * 7919 + 12345) % (2**62)


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffles with a permutation seeded by (seed, epoch); can start mid-epoch after a resume."""

    def __init__(self, size: int, *, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        self.size, self.seed, self.shuffle = size, seed, shuffle
        # Under DDP every process draws the same permutation and takes every world_size-th position, so the
        # processes see disjoint samples (the remainder is dropped so all take the same number of steps).
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch and how many of its samples to skip (those already trained on)."""
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        g = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, -1))
        return torch.randperm(self.size, generator=g).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self.order()[: self.size - self.size % self.world_size]
        mine = list(enumerate(order))[self.rank :: self.world_size]
        for k, (pos, index) in enumerate(mine):
            if k >= self.start:
                yield index, sample_seed(self.seed, self.epoch, pos)

    def __len__(self) -> int:
        return self.size // self.world_size - self.start


class FolderDataset(Dataset):
    """Base of the datasets over image folders: per-sample seeding, and skipping files that fail to decode."""

    def __init__(self, transform: PairedTransform):
        self.transform = transform
        self._warned: set[str] = set()

    def load(self, index: int, seed: int) -> dict:
        raise NotImplementedError

    def _transform(self, path: Path, *images: torch.Tensor, labels: int = 0) -> list[torch.Tensor]:
        """The transform (the last ``labels`` images: index maps), with a per-image problem (e.g. smaller than the
        crop) reported against ``path``."""
        try:
            return self.transform(*images, labels=labels)
        except DataError as e:
            raise DataError(f"{path}: {e}") from None

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        index, seed = item if isinstance(item, tuple) else (item, item)
        for attempt in range(len(self)):
            try:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    return self.load((index + attempt) % len(self), seed)
            except DataError as e:
                # A file that passed the header check but fails to decode (e.g. truncated): skip it and
                # use the next sample, deterministically, rather than stopping a long run.
                if str(e) not in self._warned:
                    self._warned.add(str(e))
                    warnings.warn(f"{e}; skipped", stacklevel=2)
        raise DataError(f"{type(self).__name__}: no sample could be decoded")


def holdout_mask(n: int, fraction: float, seed: int = 0) -> list[bool]:
    """Which of ``n`` items are held out for validation: ``round(n * fraction)`` of them (at least one, and
    never all), drawn with a fixed seed so the same files are held out on every run, resume and rank."""
    if fraction <= 0 or n < 2:
        return [False] * n
    k = min(n - 1, max(1, round(n * fraction)))
    chosen = set(torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].tolist())
    return [i in chosen for i in range(n)]


def _part(items: list, fraction: float, held: bool) -> list:
    return [x for x, h in zip(items, holdout_mask(len(items), fraction)) if h == held]


def _stem_map(files: list[Path], folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise DataError(f"{folder}: two images share the name {f.stem!r} ({out[f.stem].name}, {f.name})")
        out[f.stem] = f
    return out


class AlignedDataset(FolderDataset):
    """Paired images: side-by-side AB files in ``root/split`` (A left, B right, as the reference stores
    them), or ``root/split/A`` + ``root/split/B`` (also ``root/A/split``) matched by file name."""

    def __init__(
        self, root: str | Path, split: str, transform: PairedTransform, *, input_nc: int = 3, output_nc: int = 3,
        max_size: int | None = None,
    ):
        super().__init__(transform)
        root = Path(root)
        self.input_nc, self.output_nc = input_nc, output_nc
        folders = [(root / split / "A", root / split / "B"), (root / "A" / split, root / "B" / split)]
        pair = next(((a, b) for a, b in folders if a.is_dir() or b.is_dir()), None)
        if pair is not None:
            self.side_by_side = False  # A and B in their own folders
            dir_A, dir_B = pair
            files_A, files_B = _stem_map(list_images(dir_A), dir_A), _stem_map(list_images(dir_B), dir_B)
            only_A, only_B = sorted(files_A.keys() - files_B.keys()), sorted(files_B.keys() - files_A.keys())
            if only_A or only_B:
                missing = [f"{dir_B}/{n}.*" for n in only_A[:3]] + [f"{dir_A}/{n}.*" for n in only_B[:3]]
                raise DataError(
                    f"{root}: A/B name mismatch, {len(only_A)} A images without a B and {len(only_B)} B images "
                    f"without an A (missing e.g. {', '.join(missing)})"
                )
            # An unreadable file (a decompression bomb, a damaged file) drops its pair: the rest stay aligned.
            self.pairs = filter_readable([(files_A[k], files_B[k]) for k in sorted(files_A)], f"{dir_A} and {dir_B}")
        else:
            self.side_by_side = True  # one AB image per pair
            folder = root / split
            if not folder.exists():
                raise DataError(
                    f"{root}: no {split!r} split found (expected {folder}/ with AB images, or {folder}/A and "
                    f"{folder}/B)"
                )
            self.pairs = [(f, f) for f in filter_readable(list_images(folder), str(folder))]
        if max_size is not None:
            self.pairs = self.pairs[:max_size]

    def __len__(self) -> int:
        return len(self.pairs)

    def hold_out(self, fraction: float, *, held: bool) -> AlignedDataset:
        """Keep only the held-out pairs (``held=True``) or only the rest."""
        self.pairs = _part(self.pairs, fraction, held)
        return self

    def load(self, index: int, seed: int) -> dict:
        path_A, path_B = self.pairs[index]
        if self.side_by_side:
            ab = load_image(path_A, 3 if 3 in (self.input_nc, self.output_nc) else 1)
            w = ab.shape[-1]
            if w < 2:
                raise DataError(f"{path_A}: too narrow to hold an A|B pair")
            A, B = ab[..., : w // 2], ab[..., w // 2 : w // 2 * 2]
            A, B = _channels(A, self.input_nc), _channels(B, self.output_nc)
        else:
            A, B = load_image(path_A, self.input_nc), load_image(path_B, self.output_nc)
            if A.shape[-2:] != B.shape[-2:] and self.transform.preprocess in ("crop", "none"):
                raise DataError(f"{path_B}: size {tuple(B.shape[-2:])} differs from {path_A} {tuple(A.shape[-2:])}")
        A, B = self._transform(path_A, A, B)
        return {"A": A, "B": B, "A_path": str(path_A), "B_path": str(path_B)}


def _channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    if image.shape[0] == channels:
        return image
    if channels == 1:  # ITU-R 601 luma, as PIL's convert("L")
        weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        return (image.float() * weights).sum(0, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    return image.expand(3, -1, -1).clone()


class UnalignedDataset(FolderDataset):
    """Unpaired images from ``root/{split}A`` and ``root/{split}B``. Each A is paired with a random B
    (``serial=True``: the B at the same position). Its length is the larger of the two folders."""

    def __init__(
        self, root: str | Path, split: str, transform: PairedTransform, *, input_nc: int = 3, output_nc: int = 3,
        serial: bool = False, max_size: int | None = None,
    ):
        super().__init__(transform)
        root = Path(root)
        dir_A, dir_B = root / f"{split}A", root / f"{split}B"
        self.files_A = filter_readable(list_images(dir_A), str(dir_A))[:max_size]
        self.files_B = filter_readable(list_images(dir_B), str(dir_B))[:max_size]
        self.input_nc, self.output_nc, self.serial = input_nc, output_nc, serial

    def __len__(self) -> int:
        return max(len(self.files_A), len(self.files_B))

    def hold_out(self, fraction: float, *, held: bool) -> UnalignedDataset:
        """Keep only the held-out A and B images (``held=True``) or only the rest; each domain on its own."""
        self.files_A, self.files_B = _part(self.files_A, fraction, held), _part(self.files_B, fraction, held)
        return self

    def load(self, index: int, seed: int) -> dict:
        path_A = self.files_A[index % len(self.files_A)]
        if self.serial:
            path_B = self.files_B[index % len(self.files_B)]
        else:
            g = torch.Generator().manual_seed(seed)
            path_B = self.files_B[int(torch.randint(len(self.files_B), (), generator=g))]
        A = load_image(path_A, self.input_nc)
        B = load_image(path_B, self.output_nc)
        # The two images are unrelated: transform each on its own (with its own random crop/flip).
        (A,) = self._transform(path_A, A)
        (B,) = self._transform(path_B, B)
        return {"A": A, "B": B, "A_path": str(path_A), "B_path": str(path_B)}


class SingleDataset(FolderDataset):
    """One folder of images (``root/split`` if it exists, else ``root``), returned under key ``A``."""

    def __init__(
        self, root: str | Path, split: str, transform: PairedTransform, *, input_nc: int = 3,
        max_size: int | None = None,
    ):
        super().__init__(transform)
        root = Path(root)
        folder = root / split if (root / split).is_dir() else root
        self.files = filter_readable(list_images(folder), str(folder))[:max_size]
        self.input_nc = input_nc

    def __len__(self) -> int:
        return len(self.files)

    def hold_out(self, fraction: float, *, held: bool) -> SingleDataset:
        """Keep only the held-out images (``held=True``) or only the rest."""
        self.files = _part(self.files, fraction, held)
        return self

    def load(self, index: int, seed: int) -> dict:
        (A,) = self._transform(self.files[index], load_image(self.files[index], self.input_nc))
        return {"A": A, "A_path": str(self.files[index])}
