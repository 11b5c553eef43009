"""Download the reference pix2pix and CycleGAN datasets: resumable, size-checked, extracted safely.

``translate datasets download NAME [root=datasets]`` fetches the archive the reference code's
download scripts use into ``<root>/.downloads/`` (a ``.part`` file that a rerun continues with an HTTP range
request), checks its size (and SHA-256 where one is recorded), and extracts it into ``<root>/NAME``.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from translate.core.download import download_file, human_size
from translate.core.errors import DataError, first_line
from translate.data.tools import scratch_folder


class CorruptArchive(DataError):
    """The archive itself is damaged or unsafe (a fresh download may fix it), unlike a full disk."""


PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
# Set to a base URL (or file:// folder) holding the same archive names, e.g. a lab mirror.
MIRROR_ENV = "TRANSLATE_DATASET_MIRROR"

# Zip and tar bombs: an archive whose members declare far more bytes than it holds. Image datasets are already
# compressed (JPEG, PNG) and barely shrink in an archive, so even 100x the archive's size is generous; the floor
# keeps small archives (a few MB of text or flat test images) from ever being refused.
MAX_EXPANSION = 100
EXPANSION_FLOOR = 1 << 30  # bytes
# Leave this much free beside the target after extracting: a disk filled to the last byte breaks other programs.
FREE_SPACE_MARGIN = 256 << 20  # bytes


@dataclass(frozen=True)
class Dataset:
    name: str
    kind: str  # pix2pix (aligned AB images) | cyclegan (trainA/trainB/testA/testB)
    about: str  # approximate archive size, for the user
    sha256: str | None = None  # recorded where known; None: the size from the server is checked

    @property
    def url(self) -> str:
        return (PIX2PIX_URL if self.kind == "pix2pix" else CYCLEGAN_URL).format(name=self.name)

    @property
    def archive_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


DATASETS = {d.name: d for d in [
    Dataset("facades", "pix2pix", "30 MB"),
    Dataset("maps", "pix2pix", "250 MB"),
    Dataset("edges2shoes", "pix2pix", "2.2 GB"),
    Dataset("edges2handbags", "pix2pix", "8.6 GB"),
    Dataset("night2day", "pix2pix", "1.9 GB"),
    Dataset("horse2zebra", "cyclegan", "115 MB"),
    Dataset("apple2orange", "cyclegan", "78 MB"),
    Dataset("summer2winter_yosemite", "cyclegan", "130 MB"),
    Dataset("monet2photo", "cyclegan", "300 MB"),
    Dataset("cezanne2photo", "cyclegan", "270 MB"),
    Dataset("ukiyoe2photo", "cyclegan", "280 MB"),
    Dataset("vangogh2photo", "cyclegan", "300 MB"),
    Dataset("iphone2dslr_flower", "cyclegan", "330 MB"),
]}
INSTRUCTIONS_ONLY = {
    "cityscapes": "cityscapes needs a (free) account: download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip "
                  "from https://www.cityscapes-dataset.com, then pair them with the reference repository's "
                  "datasets/prepare_cityscapes_dataset.py and point data.root at the result",
}


def _safe_members(names: list[str], archive: Path) -> None:
    for name in names:
        p = PurePosixPath(name)
        if p.is_absolute() or ".." in p.parts:
            raise CorruptArchive(f"{archive}: refuses to extract {name!r} (outside the target folder)")


def _verify_compression(archive: Path) -> None:
    """Read a gzip/bz2/xz stream to its end: its trailer checksum catches damage that tarfile, which stops at
    the last member, would not."""
    with open(archive, "rb") as f:
        magic = f.read(6)
    opener = {b"\x1f\x8b": gzip.open, b"BZ": bz2.open, b"\xfd7zXZ": lzma.open}
    for prefix, open_ in opener.items():
        if magic.startswith(prefix):
            with open_(archive, "rb") as stream:
                while stream.read(1 << 22):
                    pass


def _check_room(archive: Path, folder: Path, total: int) -> None:
    """Refuse, before writing a byte, an archive whose members declare (``total`` uncompressed bytes) far more
    than it holds (a bomb) or more than the disk has free.

    A zip's declared sizes bound what is written: zipfile stops each member at its declared size and then fails
    its CRC check (BadZipFile), so a member that lies about its size is reported as a corrupt archive. A tar
    member's data is all in the stream, so its declared size is its real one."""
    own = archive.stat().st_size
    if total > max(MAX_EXPANSION * own, EXPANSION_FLOOR):
        raise CorruptArchive(f"{archive}: its members declare {human_size(total)} uncompressed, over "
                             f"{MAX_EXPANSION}x the archive's {human_size(own)} (a decompression bomb?); refused")
    free = shutil.disk_usage(folder).free
    if total + FREE_SPACE_MARGIN > free:
        raise DataError(f"{archive}: extracting needs {human_size(total)} but {folder} has {human_size(free)} free "
                        f"(and {human_size(FREE_SPACE_MARGIN)} are kept spare); the archive is kept, free some space "
                        "and run the same command again")


def _unpack(archive: Path, tmp: Path) -> None:
    """Check and extract every member of a zip or tar archive into ``tmp``."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            _check_room(archive, tmp, sum(info.file_size for info in z.infolist()))  # before testzip reads it all
            bad = z.testzip()  # CRC of every member
            if bad is not None:
                raise CorruptArchive(f"{archive}: corrupt archive (bad CRC in {bad})")
            _safe_members(z.namelist(), archive)
            z.extractall(tmp)
    else:
        _verify_compression(archive)
        with tarfile.open(archive, "r:*") as t:
            members = t.getmembers()
            _check_room(archive, tmp, sum(m.size for m in members if m.isfile()))
            _safe_members([m.name for m in members], archive)
            members = [m for m in members if m.isfile() or m.isdir()]  # no links or devices
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python's own guard too
            t.extractall(tmp, members=members, **safe)


def extract(archive: Path, target: Path) -> Path:
    """Extract a .tar.gz or .zip into ``target`` (atomically: a temporary folder renamed at the end, removed on
    any failure); an archive holding one top folder is unwrapped. A damaged or oversized archive raises
    DataError."""
    with scratch_folder(target) as tmp:
        try:
            _unpack(archive, tmp)
        except DataError:
            raise
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as e:
            raise CorruptArchive(f"{archive}: corrupt archive ({first_line(e)})") from None
        except OSError as e:  # a full disk or a permission problem: the archive is fine, keep it
            raise DataError(f"{archive}: cannot extract into {target.parent} ({e.strerror or e}); the archive is "
                            "kept, run the same command again once that is fixed") from None
        entries = [p for p in tmp.iterdir() if not p.name.startswith(("__MACOSX", "."))]
        inner = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        shutil.rmtree(target, ignore_errors=True)
        inner.rename(target)
    return target


def download(name: str, root: str | Path = "datasets", *, archive: str | Path | None = None,
             mirror: str | None = None, force: bool = False, timeout: float = 30.0, progress: bool = True) -> Path:
    """Fetch dataset ``name`` into ``<root>/<name>`` and return that folder.

    ``archive``: use this local file instead of downloading. ``mirror`` (or $TRANSLATE_DATASET_MIRROR): a base URL
    with the same archive names. An existing dataset folder is kept unless ``force``.
    """
    if name in INSTRUCTIONS_ONLY:
        raise DataError(INSTRUCTIONS_ONLY[name])
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted([*DATASETS, *INSTRUCTIONS_ONLY]))}")
    spec = DATASETS[name]
    root = Path(root)
    target = root / name
    if target.is_dir() and any(target.iterdir()) and not force:
        print(f"{target} already exists (force=true downloads it again)")
        return target
    if archive is not None:
        path = Path(archive)
        if not path.is_file():
            raise DataError(f"{path}: no such file")
    else:
        downloads = root / ".downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        path = downloads / spec.archive_name
        if force:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".part").unlink(missing_ok=True)
        if not path.exists():
            base = mirror or os.environ.get(MIRROR_ENV)
            url = f"{base.rstrip('/')}/{spec.archive_name}" if base else spec.url
            print(f"{name}: about {spec.about} from {url}")
            download_file(url, path, sha256=spec.sha256, timeout=timeout, progress=progress,
                          offline_hint=f"Fetch it by hand and give it as archive=FILE, or set {MIRROR_ENV}")
    try:
        extract(path, target)
    except CorruptArchive as e:
        if archive is None:
            path.unlink(missing_ok=True)  # a fresh download on the next run
            raise DataError(f"{e}; deleted, run again to download it afresh") from None
        raise
    print(f"{name}: extracted to {target}")
    return target
