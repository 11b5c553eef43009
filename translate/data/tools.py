"""Checking, combining and splitting image-translation datasets on disk."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from translate.core.atomic import atomic_write, atomic_write_bytes
from translate.core.errors import DataError
from translate.data.files import is_image_file, open_image
from translate.data.semantic import find_samples

SPLITS = ("train", "val", "test")


@dataclass
class Report:
    """What ``check`` found: counts per folder, problems (errors fail the check) and remarks."""

    counts: dict[str, int] = field(default_factory=dict)
    modes: Counter = field(default_factory=Counter)
    sizes: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # also in errors; training skips these files

    @property
    def layout_errors(self) -> list[str]:
        """Errors other than unreadable files: problems training cannot work around (or should not)."""
        return [e for e in self.errors if e not in self.unreadable]

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        lines = [f"{name}: {n} images" for name, n in self.counts.items()]
        lines.append("modes: " + ", ".join(f"{m} x{n}" for m, n in self.modes.most_common()))
        common = ", ".join(f"{w}x{h} x{n}" for (w, h), n in self.sizes.most_common(3))
        lines.append(f"sizes: {len(self.sizes)} distinct ({common}{', ...' if len(self.sizes) > 3 else ''})")
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"error: {e}" for e in self.errors]
        lines.append("OK" if self.ok else f"FAILED: {len(self.errors)} error(s)")
        return "\n".join(lines)


def check_ratios(ratios: tuple[float, ...]) -> None:
    if len(ratios) != 3 or any(r < 0 for r in ratios) or not 0.999 < sum(ratios) < 1.001:
        raise DataError(f"ratios {list(ratios)} must be three non-negative fractions summing to 1")


def split_counts(n: int, ratios: tuple[float, float, float]) -> list[int]:
    """``n`` items shared out by ``ratios`` (largest remainders, summing to ``n``); a split with a non-zero
    ratio gets at least one item when there are enough to go round."""
    check_ratios(ratios)
    exact = [r * n for r in ratios]
    counts = [int(e) for e in exact]
    for i in sorted(range(3), key=lambda i: exact[i] - counts[i], reverse=True)[: n - sum(counts)]:
        counts[i] += 1
    if n >= sum(r > 0 for r in ratios):
        for i in range(3):
            if ratios[i] > 0 and counts[i] == 0:
                counts[max(range(3), key=lambda j: counts[j])] -= 1
                counts[i] += 1
    return counts


def fresh_output(out: Path, src: Path) -> None:
    """Refuse an output folder that already holds files (a new dataset mixed into an old one would put images
    in two splits) or that lies inside the input."""
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise DataError(f"{out}: the output must not be inside the input folder {src}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: already exists and is not empty; give a new folder (or delete this one)")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (then its temporary folder is left alone)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) would end the process on Windows rather than probe it
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:
        return True  # it exists but belongs to someone else
    return True


def _remove_stale(prefix: Path) -> None:
    """Remove ``<prefix><pid>`` folders left by runs that died without cleaning up (killed, power cut)."""
    for old in prefix.parent.glob(glob.escape(prefix.name) + "*"):
        pid = old.name.removeprefix(prefix.name)
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


@contextmanager
def scratch_folder(out: Path) -> Iterator[Path]:
    """A new empty folder ``.<name>.partial-<pid>`` beside ``out``, removed on leaving (success, error or
    Ctrl-C): the place to build ``out`` before renaming it into place. Leftovers of dead runs are removed."""
    prefix = out.parent / f".{out.name}.partial-"
    _remove_stale(prefix)
    tmp = Path(f"{prefix}{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def building(out: Path) -> Iterator[Path]:
    """Yield a temporary folder to write a dataset into; it becomes ``out`` only once the block completes.

    An aborted run (an error, Ctrl-C) leaves no partial dataset: one that ``check`` would pass with images
    missing, and that a re-run would refuse to touch as not empty. ``out`` may exist only as an empty folder
    (``fresh_output``), which gives way to the finished one."""
    with scratch_folder(out) as tmp:
        yield tmp
        try:
            if out.is_dir():
                out.rmdir()
            tmp.rename(out)
        except OSError as e:
            raise DataError(f"{out}: cannot move the finished dataset into place ({e.strerror or e})") from None


def unique_names(names: list[str], sources: list[Path]) -> None:
    """Two inputs that would be written under one output name: the second would overwrite the first."""
    seen: dict[str, Path] = {}
    for name, path in zip(names, sources):
        if name in seen:
            raise DataError(f"{path}: would be written as {name!r}, like {seen[name]}; rename one of them")
        seen[name] = path


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p)) if folder.is_dir() else []


def _inspect(path: Path, report: Report, quick: bool) -> bool:
    """Record the file's mode and size; False if it is unreadable."""
    try:
        with open_image(path) as im:
            report.modes[im.mode] += 1
            report.sizes[im.size] += 1
            if not quick:
                im.load()  # decode everything: truncated files fail here
    except DataError as e:
        report.errors.append(str(e))
        report.unreadable.append(str(e))
        return False
    return True


def _layout(root: Path, mode: str, splits: Sequence[str] | None = None) -> dict[str, list[Path]]:
    """Folders to check, by a name like 'train/A' or 'trainA'; ``splits`` (single mode): the sub-folders a
    data module reads (``data.train_split``, ``data.val_split``) instead of the usual split names."""
    folders: dict[str, Path] = {}
    if mode == "single" and splits:
        folders = {split: root / split for split in splits if (root / split).is_dir()}
        return {name: _images(folder) for name, folder in (folders or {".": root}).items()}
    for split in SPLITS:
        if mode == "aligned":
            for a, b in ((root / split / "A", root / split / "B"), (root / "A" / split, root / "B" / split)):
                if a.is_dir() or b.is_dir():
                    folders[f"{split}/A"], folders[f"{split}/B"] = a, b
                    break
            else:
                if (root / split).is_dir():
                    folders[split] = root / split
        elif mode == "unaligned":
            for domain in "AB":
                if (root / f"{split}{domain}").is_dir():
                    folders[f"{split}{domain}"] = root / f"{split}{domain}"
        elif (root / split).is_dir():
            folders[split] = root / split
    if mode == "single" and not folders:
        folders["."] = root
    return {name: _images(folder) for name, folder in folders.items()}


def _label_layout(root: Path, layout: str, instances: bool, report: Report) -> dict[str, list[Path]]:
    """A label map dataset's files by ``<split>/label``, ``<split>/image`` (and ``<split>/instance``), each split
    read as ``data=labels`` reads it; what it cannot match goes into the report's errors."""
    folders: dict[str, list[Path]] = {}
    for split in SPLITS:
        try:
            samples = find_samples(root, split, layout, instances)  # type: ignore[arg-type]
        except DataError as e:
            if "no such folder" not in str(e) and f"no {root / 'gtFine' / split}" not in str(e):
                report.errors.append(str(e))
            continue
        for k, kind in enumerate(("label", "image", "instance")[: 2 + instances]):
            folders[f"{split}/{kind}"] = [s[k] for s in samples]
    return folders


def check(root: str | Path, mode: str = "aligned", *, quick: bool = False,
          splits: Sequence[str] | None = None, layout: str = "folders", instances: bool = False) -> Report:
    """Validate a dataset: counts, modes, sizes, unreadable files, A/B (or label map/photo) name mismatches, and
    files that occur in more than one split (leaks between train and val/test). ``mode=labels`` reads a label map
    dataset in its ``layout`` (folders, cityscapes, ade20k; ``instances``: with instance maps)."""
    root = Path(root)
    report = Report()
    if mode not in ("aligned", "unaligned", "single", "labels"):
        raise DataError(f"mode={mode!r} is not one of aligned, unaligned, single, labels")
    if not root.is_dir():
        report.errors.append(f"{root}: no such folder")
        return report
    folders = _label_layout(root, layout, instances, report) if mode == "labels" else _layout(root, mode, splits)
    if report.errors:
        return report
    if not folders:
        report.errors.append(f"{root}: no {mode} layout found (see datasets/README.md)")
        return report
    by_size: dict[int, list[tuple[Path, str]]] = defaultdict(list)  # file size in bytes -> (file, split)
    for name, files in folders.items():
        report.counts[name] = len(files)
        if not files:
            report.errors.append(f"{root / name}: no images")
        split = name.split("/")[0].removesuffix("A").removesuffix("B")
        maps = mode == "labels" and not name.endswith("/image")  # two scenes may share a map, not a photo
        for f in files:
            if _inspect(f, report, quick) and not maps:
                by_size[f.stat().st_size].append((f, split))
    # Leaks: the same bytes in two splits. Only files whose size occurs in another split can be equal, so only
    # those are hashed (for a large JPEG dataset, a few files rather than gigabytes).
    seen: dict[str, set[str]] = defaultdict(set)  # content hash -> splits it occurs in
    where: dict[str, Path] = {}
    for group in by_size.values():
        if len({split for _, split in group}) < 2:
            continue
        for f, split in group:
            digest = hashlib.sha1(f.read_bytes()).hexdigest()
            seen[digest].add(split)
            where.setdefault(digest, f)
    if mode == "aligned":
        for split in SPLITS:
            a, b = folders.get(f"{split}/A"), folders.get(f"{split}/B")
            if a is None and b is None:
                continue
            only_a = sorted({p.stem for p in a or []} - {p.stem for p in b or []})
            only_b = sorted({p.stem for p in b or []} - {p.stem for p in a or []})
            if only_a or only_b:
                report.errors.append(f"{root}/{split}: A/B name mismatch: {len(only_a)} A without B "
                                     f"(e.g. {only_a[:3]}), {len(only_b)} B without A (e.g. {only_b[:3]})")
        odd = sum(n for (w, _), n in report.sizes.items() if w % 2) if any("/" not in k for k in folders) else 0
        if odd:
            report.warnings.append(f"{odd} side-by-side images have an odd width (A and B halves differ by a pixel)")
    leaks = [(d, s) for d, s in seen.items() if len(s) > 1]
    for digest, found_in in leaks[:10]:
        report.errors.append(f"{where[digest]}: the same image is in {' and '.join(sorted(found_in))}")
    if len(leaks) > 10:
        report.errors.append(f"... {len(leaks) - 10} more images shared between splits")
    return report


def _pairs(src: Path) -> dict[str, list[tuple[Path, Path]]]:
    """Matched (A, B) files per split from src/A[/split] and src/B[/split] (no split folders: 'train')."""
    out: dict[str, list[tuple[Path, Path]]] = {}
    splits = [s for s in SPLITS if (src / "A" / s).is_dir()] or [""]
    for split in splits:
        files_a, files_b = _images(src / "A" / split), _images(src / "B" / split)
        for files in (files_a, files_b):
            unique_names([p.stem for p in files], files)
        a, b = {p.stem: p for p in files_a}, {p.stem: p for p in files_b}
        if not a:
            raise DataError(f"{src / 'A' / split}: no images")
        missing = sorted(a.keys() ^ b.keys())
        if missing:
            raise DataError(f"{src}: A/B name mismatch for {len(missing)} files (e.g. {missing[:3]})")
        out[split or "train"] = [(a[k], b[k]) for k in sorted(a)]
    return out


def combine(src: str | Path, out: str | Path) -> int:
    """Write side-by-side AB images (A left) to ``out/<split>/`` from ``src/A/<split>`` + ``src/B/<split>``.
    Pairs must have equal sizes. Returns the number written."""
    src, out = Path(src), Path(out)
    fresh_output(out, src)
    n = 0
    with building(out) as tmp:
        for split, pairs in _pairs(src).items():
            for a_path, b_path in pairs:
                with open_image(a_path) as a, open_image(b_path) as b:
                    a, b = a.convert("RGB"), b.convert("RGB")
                    if a.size != b.size:
                        raise DataError(f"{b_path}: size {b.size} differs from {a_path} {a.size}")
                    ab = Image.fromarray(np.concatenate([np.asarray(a), np.asarray(b)], axis=1))
                target = tmp / split / f"{a_path.stem}.png"
                atomic_write(target, lambda f, im=ab: im.save(f, format="PNG"))
                n += 1
    return n


def split(src: str | Path, out: str | Path, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
          ) -> dict[str, int]:
    """Copy a flat dataset into ``out/{train,val,test}`` by ratio, deterministically by ``seed``.

    ``src`` is a folder of images (e.g. AB images) or holds ``A/`` and ``B/`` folders matched by name, which
    stay paired (``out/<split>/A``, ``out/<split>/B``). Returns the count per split.
    """
    src, out = Path(src), Path(out)
    check_ratios(ratios)
    fresh_output(out, src)
    paired = (src / "A").is_dir() and (src / "B").is_dir()
    items = [(a,) + (b,) for a, b in _pairs(src)["train"]] if paired else [(p,) for p in _images(src)]
    if not items:
        raise DataError(f"{src}: no images")
    order = np.random.default_rng(seed).permutation(len(items))
    n_train, n_val, _ = split_counts(len(items), ratios)
    bounds = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
    counts = {}
    with building(out) as tmp:
        for name, indices in bounds.items():
            for i in indices:
                for j, path in enumerate(items[i]):
                    atomic_write_bytes(tmp / name / ("AB"[j] if paired else "") / path.name, path.read_bytes())
            counts[name] = len(indices)
    return counts


def separate(src: str | Path, out: str | Path, *, layout: str = "folders", swap: bool = False) -> dict[str, int]:
    """Split side-by-side AB images (``src/<split>/*``) into halves: ``out/<split>/A`` + ``out/<split>/B``
    (``layout='folders'``, still paired) or ``out/<split>A`` + ``out/<split>B`` (``'unaligned'``, for CycleGAN).
    ``swap`` makes the right half A (e.g. night2day's day photos as A for day -> night). Returns images per split.
    """
    src, out = Path(src), Path(out)
    if layout not in ("folders", "unaligned"):
        raise DataError(f"layout {layout!r} is not one of folders, unaligned")
    splits = {s: _images(src / s) for s in SPLITS if (src / s).is_dir()} or {"train": _images(src)}
    if not any(splits.values()):
        raise DataError(f"{src}: no images (expected side-by-side AB images in train/, val/, test/ or {src})")
    fresh_output(out, src)
    for files in splits.values():
        unique_names([p.stem for p in files], files)
    counts = {}
    with building(out) as tmp:
        for name, files in splits.items():
            for path in files:
                with open_image(path) as im:
                    ab = np.asarray(im.convert("RGB"))
                w = ab.shape[1] // 2
                halves = [Image.fromarray(ab[:, :w]), Image.fromarray(ab[:, w : 2 * w])]
                if swap:
                    halves.reverse()
                for domain, half in zip("AB", halves):
                    folder = tmp / name / domain if layout == "folders" else tmp / f"{name}{domain}"
                    atomic_write(folder / f"{path.stem}.png", lambda f, im=half: im.save(f, format="PNG"))
            counts[name] = len(files)
    return counts
