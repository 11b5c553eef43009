"""The images a command is given: files, folders (optionally recursive), globs and list files, each with the
path its output takes below an output folder (never outside it), and what was passed over and why.

``infer.py``, ``translate.inference.guard score`` and the benchmarks read their inputs through ``collect_inputs``.
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from pathlib import Path

from translate.core.errors import DataError
from translate.data.files import IMAGE_EXTENSIONS, is_image_file

LIST_SUFFIXES = (".txt", ".lst", ".list")
NOT_IMAGE, BROKEN_LINK = "not a supported image", "broken link"
Found = list[tuple[Path, Path]]  # (input file, its path relative to the output folder)
Ignored = list[tuple[str, str]]  # (path, NOT_IMAGE or BROKEN_LINK)


def describe_ignored(ignored: Ignored) -> str:
    """``3 (2 not a supported image, 1 broken link)``: a user who expected those files converted sees why not."""
    counts = Counter(reason for _, reason in ignored)
    return f"{len(ignored)} ({', '.join(f'{n} {reason}' for reason, n in counts.most_common())})"


def collect_inputs(inputs: str | Path | list, *, recursive: bool = False) -> tuple[Found, set[Path], Ignored]:
    """Files to translate, as (file, path relative to the output folder), from files, folders, globs or text
    files listing paths; the folders that were scanned (an output folder must not lie inside them); and what
    folders and globs held besides images (broken links, other files), so that nothing is skipped silently."""
    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    found: Found = []
    scanned: set[Path] = set()
    ignored: Ignored = []
    for item in items:
        text = str(item)
        path = Path(text).expanduser()
        if path.is_dir():
            found += _sift(sorted(path.glob("**/*" if recursive else "*")), path, ignored)
            scanned.add(path.resolve())
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            found += _read_list(path)
        elif path.is_file():
            found.append((path, Path(path.name)))
        elif glob.has_magic(text):
            root = _glob_root(path)
            found += _sift(sorted(Path(p) for p in glob.glob(str(path), recursive=True)), root, ignored)
            scanned.add(root.resolve())
        else:
            raise DataError(f"{path}: no such file, folder or glob")
    if not found:
        also = f"; ignored {describe_ignored(ignored)}" if ignored else ""
        raise DataError(f"{', '.join(map(str, items))}: no images found "
                        f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))}){also}")
    return [(f, _inside(rel)) for f, rel in found], scanned, ignored


def _sift(paths: list[Path], root: Path, ignored: Ignored) -> Found:
    """The image files among ``paths`` (with their path relative to ``root``); broken links and other files go
    to ``ignored``, except hidden ones (``.DS_Store``, ``.git/``), which nobody expects to be converted."""
    found: Found = []
    for p in paths:
        rel = p.relative_to(root)
        hidden = any(part.startswith(".") and part not in (".", "..") for part in rel.parts)
        if p.is_file():
            if is_image_file(p):
                found.append((p, rel))
            elif not hidden:
                ignored.append((str(p), NOT_IMAGE))
        elif p.is_symlink() and not p.exists() and not hidden:
            ignored.append((str(p), BROKEN_LINK))
    return found


def _read_list(path: Path) -> Found:
    """The files a list file names, one a line (``#`` comments), relative paths being relative to it."""
    found: Found = []
    base = path.parent.resolve()
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        listed = Path(line).expanduser()
        listed = (listed if listed.is_absolute() else path.parent / listed).resolve()
        # Mirror the path below the list's folder; anything else (including ../) keeps only its name,
        # so no output can land outside the output folder.
        rel = listed.relative_to(base) if listed.is_relative_to(base) else Path(listed.name)
        found.append((listed, rel))
    return found


def _glob_root(pattern: Path) -> Path:
    """The folder before the first wildcard: outputs mirror the matches' paths below it."""
    parts = pattern.parts
    fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    return Path(*parts[:fixed]) if fixed else Path(".")


def _inside(rel: Path) -> Path:
    """``rel`` without ``..`` detours, and never climbing out of the output folder: a glob such as
    ``root/*/../../elsewhere/*.png`` matches files whose path below ``root`` starts with ``..``; those keep
    only their name, as escaping entries of list files do."""
    clean = Path(os.path.normpath(rel))
    if clean.is_absolute() or clean.parts[:1] == ("..",):
        return Path(rel.name)
    return clean


def input_folder_holding(output: str | Path, scanned: set[Path]) -> Path | None:
    """The scanned input folder that ``output`` lies inside, if any (what is written there would be read back as
    input by the next run, or written over an input)."""
    return next((root for root in scanned if Path(output).resolve().is_relative_to(root)), None)

