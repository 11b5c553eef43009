"""Untrusted data: pixel limits for every decoder, decompression bombs in datasets, dataset tools that never leave
a partial output, and archive bombs refused before extraction."""

from __future__ import annotations

import importlib
import io
import os
import shutil
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import png
import pytest
from helpers import write_image
from PIL import Image

from translate.core.errors import DataError
from translate.data import AlignedData, tools
from translate.data.download import download, extract
from translate.data.files import load_image
from translate.data.images import picture_size, read_picture
from translate.data.tools import check, combine, separate, split

# The module itself (its functions are patched in place).
download_module = importlib.import_module("translate.data.download")


def _png16(path: Path, width: int = 20, height: int = 10) -> Path:
    """A 16-bit RGB PNG (read by pypng, not Pillow)."""
    rows = np.arange(width * height * 3, dtype=np.uint16).reshape(height, width * 3) * 97
    with open(path, "wb") as f:
        png.Writer(width, height, bitdepth=16, greyscale=False).write(f, rows.tolist())
    return path


def _no_pypng(*args, **kwargs):
    raise AssertionError("pypng must not decode an image over the limit")


# ------------------------------------------------------------------ one pixel limit for every decoder


def test_deep_colour_png_over_the_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    path = _png16(tmp_path / "deep.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 199)
    with monkeypatch.context() as m:
        m.setattr(png, "Reader", _no_pypng)
        with pytest.raises(DataError, match=r"deep.png: 20x10 image .*limit of 199 pixels.*PIL.Image.MAX_IMAGE_PIXELS"):
            read_picture(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200)  # read at call time; at the limit is fine
    assert read_picture(path).bits == 16 and read_picture(path).size == (10, 20)


def test_the_limit_applies_to_pillow_where_it_would_only_warn(tmp_path, monkeypatch):
    """Between one and two times the limit Pillow only warns: the same limit as pypng's is enforced instead."""
    path = write_image(tmp_path / "wide.png", (20, 10))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 150)
    for read in (read_picture, picture_size, lambda p: load_image(p, 3)):
        with pytest.raises(DataError, match=r"wide.png: 20x10 image .*over the limit of 150"):
            read(path)


@pytest.mark.parametrize("error, reason", [(MemoryError(), "out of memory decoding 20x10 image"),
                                           (ValueError(), r"cannot decode image \(ValueError\)")])
def test_a_decoder_failure_always_has_a_reason(tmp_path, monkeypatch, error, reason):
    path = _png16(tmp_path / "deep.png")

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(png, "Reader", fail)
    with pytest.raises(DataError, match=f"deep.png: {reason}$"):
        read_picture(path)


# ------------------------------------------------------------------ decompression bombs in training data


@pytest.mark.parametrize("limit", [4000, 6000], ids=["pillow-raises", "pillow-warns"])
def test_a_decompression_bomb_in_a_dataset_is_skipped_and_reported(aligned_root, monkeypatch, limit):
    for domain in "AB":  # 100x100 = 10,000 pixels: over twice 4,000 (Pillow raises), under twice 6,000 (it warns)
        write_image(aligned_root / "train" / domain / "bomb.png", (100, 100), seed=7)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)  # the 40x36 (1,440 pixel) images stay readable
    for quick in (True, False):
        report = check(aligned_root, "aligned", quick=quick)
        assert len(report.unreadable) == 2, str(report)
        assert all("bomb.png: " in e and "PIL.Image.MAX_IMAGE_PIXELS" in e for e in report.unreadable)
        assert not report.layout_errors
    with pytest.warns(UserWarning, match="bomb.png: skipped"):
        ds = AlignedData(root=aligned_root, load_size=32, crop_size=32, num_workers=0).train_dataset()
    assert len(ds) == 6 and all(a.name != "bomb.png" for a, _ in ds.pairs)


@pytest.mark.parametrize("side", ["A", "B"])
def test_a_bomb_on_one_side_of_a_pair_drops_the_pair_with_one_warning(aligned_root, monkeypatch, side):
    other = "B" if side == "A" else "A"
    write_image(aligned_root / "train" / side / "bomb.png", (100, 100), seed=7)
    write_image(aligned_root / "train" / other / "bomb.png", seed=8)  # a readable partner
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)
    with pytest.warns(UserWarning) as record:
        ds = AlignedData(root=aligned_root, load_size=32, crop_size=32, num_workers=0).train_dataset()
    about = [str(w.message) for w in record if "bomb.png" in str(w.message)]
    assert len(about) == 1, about
    assert about[0].startswith(f"{aligned_root / 'train' / side / 'bomb.png'}: skipped, ")
    assert "PIL.Image.MAX_IMAGE_PIXELS" in about[0]  # why: over the pixel limit
    assert about[0].endswith(f"; so is its pair {aligned_root / 'train' / other / 'bomb.png'}")
    assert len(ds) == 6 and all(a.name == b.name != "bomb.png" for a, b in ds.pairs)


@pytest.mark.parametrize("reader", ["extractor", "latent_plot"])
def test_a_labels_csv_with_a_byte_order_mark_is_read(tmp_path, reader):
    """Excel's "CSV UTF-8" starts the file with a BOM, which would otherwise be part of the first column's name."""
    from translate.latent.extractor import read_labels
    from translate.latent.plot import read_labels as plot_labels

    write_image(tmp_path / "a.png")
    path = tmp_path / "labels.csv"
    path.write_bytes("\ufefffile,smile\r\na.png,1\r\n".encode())
    if reader == "extractor":
        table = read_labels(path)
        assert [f.name for f in table.files] == ["a.png"] and table.targets["smile"].tolist() == [1.0]
    else:
        assert plot_labels(tmp_path, "smile") == {"a.png": "1"}


# ------------------------------------------------------------------ dataset tools: all or nothing


@pytest.fixture
def flat_pairs(tmp_path):
    for i in range(4):
        write_image(tmp_path / "src" / "A" / f"{i}.png", (24, 20), seed=i)
        write_image(tmp_path / "src" / "B" / f"{i}.png", (24, 20), seed=50 + i)
    return tmp_path / "src"


def _run(tool: str, src: Path, out: Path) -> None:
    """Run ``tool`` on ``src`` (A/B pairs; for separate, side-by-side AB images)."""
    if tool == "split":
        split(src, out, (0.5, 0.5, 0.0))
    elif tool == "combine":
        combine(src, out)
    else:
        separate(src, out)


def test_an_aborted_sketch_leaves_no_partial_dataset(tmp_path, monkeypatch):
    import importlib

    sketch_module = importlib.import_module("translate.data.sketch")  # the package exports the function

    for i in range(3):
        write_image(tmp_path / "photos" / f"{i}.png", (48, 40), seed=i)
    out, real, calls = tmp_path / "out", sketch_module.save_image, []

    def save_once(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(sketch_module, "save_image", save_once)
        with pytest.raises(KeyboardInterrupt):
            sketch_module.sketch(tmp_path / "photos", out, size=32, ratios=(0.67, 0.33, 0.0))
    assert not out.exists() and not _partials(out)
    assert sum(sketch_module.sketch(tmp_path / "photos", out, size=32, ratios=(0.67, 0.33, 0.0)).values()) == 3


def _partials(out: Path) -> list[Path]:
    return list(out.parent.glob(f".{out.name}.partial-*"))


@pytest.mark.parametrize("abort", [OSError("disk full"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
@pytest.mark.parametrize("tool", ["split", "combine", "separate"])
def test_an_aborted_tool_leaves_no_partial_dataset(tmp_path, flat_pairs, monkeypatch, tool, abort):
    src, out = flat_pairs, tmp_path / "out"
    if tool == "separate":
        src = tmp_path / "ab"
        combine(flat_pairs, src)  # its input, written before the failure is armed
    name = "atomic_write_bytes" if tool == "split" else "atomic_write"
    real, calls = getattr(tools, name), []

    def write_once(*args, **kwargs):
        calls.append(args[0])
        if len(calls) > 1:
            raise abort
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(tools, name, write_once)
        with pytest.raises(type(abort)):
            _run(tool, src, out)
    assert len(calls) == 2 and not out.exists() and not _partials(out)
    out.mkdir()  # an empty output folder is still accepted
    _run(tool, src, out)
    assert check(out, "aligned").ok and not _partials(out)


def test_a_dead_runs_partial_folder_is_removed_a_live_ones_kept(tmp_path, flat_pairs):
    out = tmp_path / "out"
    dead = tmp_path / ".out.partial-4194305"  # above Linux's highest pid: no such process
    live = tmp_path / f".out.partial-{os.getppid()}"
    for folder in (dead, live):
        write_image(folder / "train" / "A" / "x.png")
    split(flat_pairs, out, (0.5, 0.5, 0.0))
    assert not dead.exists() and (live.exists() or os.name != "posix")
    assert check(out).ok and not (out / "train" / "A" / "x.png").exists()


# ------------------------------------------------------------------ archive bombs


def _bomb(path: Path, size: int = 5 << 20) -> Path:
    """An archive holding ``size`` zero bytes: a few KB on disk."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("horse2zebra/trainA/zeros.png", bytes(size))
    else:
        with tarfile.open(path, "w:gz") as t:
            info = tarfile.TarInfo("facades/train/zeros.jpg")
            info.size = size
            t.addfile(info, io.BytesIO(bytes(size)))
    return path


def _refuse_extraction(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("nothing may be read or extracted from a refused archive")

    monkeypatch.setattr(zipfile.ZipFile, "testzip", never)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", never)
    monkeypatch.setattr(tarfile.TarFile, "extractall", never)


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_an_archive_bomb_is_refused_before_extraction(tmp_path, monkeypatch, suffix):
    archive = _bomb(tmp_path / f"bomb{suffix}")
    assert archive.stat().st_size < 50 << 10
    monkeypatch.setattr(download_module, "EXPANSION_FLOOR", 1 << 20)  # 5 MB > max(100 x ~5 KB, 1 MB)
    _refuse_extraction(monkeypatch)
    with pytest.raises(DataError, match=rf"bomb{suffix}: its members declare 5.0 MB uncompressed, over 100x the "
                                        r"archive's [0-9.]+ KB"):
        extract(archive, tmp_path / "t")
    assert not (tmp_path / "t").exists() and not list(tmp_path.glob(".t.*"))
    name = "horse2zebra" if suffix == ".zip" else "facades"
    with pytest.raises(DataError, match="decompression bomb"):
        download(name, tmp_path / "d", archive=archive)
    assert archive.exists() and not (tmp_path / "d" / name).exists()  # the user's own file is kept
    monkeypatch.undo()  # the default floor (1 GiB) accepts a small archive, however much it expands
    assert (extract(archive, tmp_path / "t") / ("trainA" if suffix == ".zip" else "train")).is_dir()


def test_free_space_is_checked_before_extraction(tmp_path, monkeypatch):
    archive = _bomb(tmp_path / "horse2zebra.zip", size=3 << 20)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=100 << 20))  # < 3 MB + 256 MB spare
    _refuse_extraction(monkeypatch)
    with pytest.raises(DataError, match=r"horse2zebra.zip: extracting needs 3.0 MB but .* has 100.0 MB free.*"
                                        r"archive is kept"):
        download("horse2zebra", tmp_path / "d", archive=archive)
    assert archive.exists() and not (tmp_path / "d" / "horse2zebra").exists()
    assert not list((tmp_path / "d").glob(".*"))


def test_a_zip_member_larger_than_declared_is_a_corrupt_archive(tmp_path):
    """zipfile stops a member at its declared size and fails its CRC: a lying header cannot write more."""
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data/x.bin", bytes(range(256)) * 40)
    data = bytearray(archive.read_bytes())
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 100)  # uncompressed size: 100 rather than 10,240
    struct.pack_into("<I", data, central + 24, 100)
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError, match="liar.zip: corrupt archive"):
        extract(archive, tmp_path / "t")
    assert not (tmp_path / "t").exists() and not list(tmp_path.glob(".t.*"))
