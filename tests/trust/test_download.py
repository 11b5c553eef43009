"""The dataset downloader against archives served from tmp_path by a local HTTP server (no network)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from helpers import write_image

from translate.core.errors import DataError
from translate.data.__main__ import main
from translate.data.download import download, extract
from translate.data.tools import check


def _facades_tar(path: Path, tmp_path: Path) -> bytes:
    """A reference-style pix2pix archive: facades/{train,val}/N.jpg side-by-side images."""
    for split, n, seed in (("train", 3, 0), ("val", 1, 10)):
        for i in range(n):
            write_image(tmp_path / "src" / "facades" / split / f"{i}.jpg", (64, 32), seed=seed + i)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(tmp_path / "src" / "facades", arcname="facades")
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_download_extracts_a_served_archive(server, tmp_path):
    url, served, _ = server
    _facades_tar(served / "facades.tar.gz", tmp_path)
    target = download("facades", tmp_path / "datasets", mirror=url, progress=False)
    assert target == tmp_path / "datasets" / "facades"
    assert sorted(p.name for p in target.iterdir()) == ["train", "val"]
    assert check(target).ok
    assert not list((tmp_path / "datasets").glob(".facades.extracting"))
    # A second call keeps what is there.
    (served / "facades.tar.gz").unlink()
    assert download("facades", tmp_path / "datasets", mirror=url, progress=False) == target


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    url, served, handler = server
    data = _facades_tar(served / "facades.tar.gz", tmp_path)
    handler.cut_after = len(data) // 3
    with pytest.raises(DataError, match="run the same command again to resume"):
        download("facades", tmp_path / "datasets", mirror=url, progress=False)
    part = tmp_path / "datasets" / ".downloads" / "facades.tar.gz.part"
    assert part.stat().st_size == len(data) // 3 and not (tmp_path / "datasets" / "facades").exists()
    download("facades", tmp_path / "datasets", mirror=url, progress=False)
    assert handler.requests == [None, f"bytes={len(data) // 3}-"]
    assert (tmp_path / "datasets" / ".downloads" / "facades.tar.gz").read_bytes() == data
    assert check(tmp_path / "datasets" / "facades").ok


def test_corrupt_archive_is_reported_and_deleted(server, tmp_path):
    url, served, _ = server
    data = bytearray(_facades_tar(served / "facades.tar.gz", tmp_path))
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # damaged in transit: gzip CRC fails
    (served / "facades.tar.gz").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"facades.tar.gz: corrupt archive .*deleted, run again"):
        download("facades", tmp_path / "datasets", mirror=url, progress=False)
    assert not (tmp_path / "datasets" / ".downloads" / "facades.tar.gz").exists()
    assert not (tmp_path / "datasets" / "facades").exists()


def test_a_full_disk_keeps_the_archive(server, tmp_path, monkeypatch):
    """Only a damaged archive is deleted: an extraction that fails for want of space keeps the download."""
    import errno

    url, served, handler = server
    _facades_tar(served / "facades.tar.gz", tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(tarfile.TarFile, "extractall", full)
        with pytest.raises(DataError, match="cannot extract into .*No space left on device.*archive is kept"):
            download("facades", tmp_path / "datasets", mirror=url, progress=False)
    assert (tmp_path / "datasets" / ".downloads" / "facades.tar.gz").exists()
    assert not list((tmp_path / "datasets").glob(".facades*"))  # no half-extracted folder left
    download("facades", tmp_path / "datasets", mirror=url, progress=False)
    assert handler.requests == [None] and check(tmp_path / "datasets" / "facades").ok  # not downloaded again


def test_a_partial_file_longer_than_the_archive_starts_over(server, tmp_path):
    url, served, _ = server
    data = _facades_tar(served / "facades.tar.gz", tmp_path)
    part = tmp_path / "datasets" / ".downloads" / "facades.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(bytes(len(data) + 10))  # left by another version of the file
    with pytest.raises(DataError, match="did not match the file; deleted"):
        download("facades", tmp_path / "datasets", mirror=url, progress=False)
    assert not part.exists()
    download("facades", tmp_path / "datasets", mirror=url, progress=False)
    assert (tmp_path / "datasets" / ".downloads" / "facades.tar.gz").read_bytes() == data


def test_cyclegan_zip_from_a_local_archive(tmp_path):
    archive = tmp_path / "horse2zebra.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for folder in ("trainA", "trainB", "testA", "testB"):
            img = write_image(tmp_path / "img" / f"{folder}.png", (16, 16))
            z.write(img, f"horse2zebra/{folder}/0.png")
    assert main(["download", "horse2zebra", f"root={tmp_path / 'd'}", f"archive={archive}"]) == 0
    assert check(tmp_path / "d" / "horse2zebra", "unaligned").counts == {
        "trainA": 1, "trainB": 1, "testA": 1, "testB": 1}
    assert archive.exists()  # the user's own file is never deleted


def test_download_errors(tmp_path, capsys):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.txt", "x")
    with pytest.raises(DataError, match="outside the target folder"):
        extract(evil, tmp_path / "t")
    assert not (tmp_path / "outside.txt").exists()
    assert main(["download", "nosuchset", f"root={tmp_path}"]) == 2
    assert "unknown dataset 'nosuchset'" in capsys.readouterr().err
    assert main(["download", "cityscapes"]) == 2
    assert "cityscapes-dataset.com" in capsys.readouterr().err
    # Nothing listening: a clear offline error, quickly.
    assert main(["download", "facades", f"root={tmp_path}", "mirror=http://127.0.0.1:9", "timeout=2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot download http://127.0.0.1:9/facades.tar.gz") and "archive=FILE" in err
    assert err.count("\n") == 1
