"""Dataset tools: combine, split and check on generated images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import write_image
from translate.data import AlignedData
from translate.datasets import check, combine, split
from translate.datasets.__main__ import main
from translate.errors import DataError


@pytest.fixture
def flat_pairs(tmp_path):
    for i in range(10):
        write_image(tmp_path / "src" / "A" / f"{i:02d}.png", (24, 20), seed=i)
        write_image(tmp_path / "src" / "B" / f"{i:02d}.png", (24, 20), seed=50 + i)
    return tmp_path / "src"


def test_split_then_combine_then_check(flat_pairs, tmp_path):
    counts = split(flat_pairs, tmp_path / "split", (0.6, 0.2, 0.2), seed=3)
    assert counts == {"train": 6, "val": 2, "test": 2}
    again = split(flat_pairs, tmp_path / "split2", (0.6, 0.2, 0.2), seed=3)
    assert again == counts and sorted(p.name for p in (tmp_path / "split2" / "val" / "A").iterdir()) == sorted(
        p.name for p in (tmp_path / "split" / "val" / "A").iterdir())  # deterministic by seed
    assert check(tmp_path / "split").ok  # A/B folder layout
    # A/<split> + B/<split> -> side-by-side AB images the aligned dataset reads.
    for s in ("train", "val", "test"):
        for d in "AB":
            (tmp_path / "ab_src" / d / s).mkdir(parents=True)
            for f in (tmp_path / "split" / s / d).iterdir():
                f.rename(tmp_path / "ab_src" / d / s / f.name)
    assert combine(tmp_path / "ab_src", tmp_path / "ab") == 10
    first = sorted((tmp_path / "ab" / "train").iterdir())[0]
    ab = np.asarray(Image.open(first))
    a = np.asarray(Image.open(tmp_path / "ab_src" / "A" / "train" / first.name).convert("RGB"))
    assert ab.shape == (20, 48, 3) and np.array_equal(ab[:, :24], a)
    report = check(tmp_path / "ab")
    assert report.ok and report.counts == {"train": 6, "val": 2, "test": 2}, str(report)
    data = AlignedData(root=tmp_path / "ab", load_size=20, crop_size=16, num_workers=0)
    assert data.train_dataset().layout == "ab" and len(data.train_dataset()) == 6


def test_check_finds_problems(flat_pairs, tmp_path):
    split(flat_pairs, tmp_path / "d", (0.5, 0.5, 0.0))
    (tmp_path / "d" / "train" / "A" / "zz.png").write_bytes(b"junk")
    victim = next((tmp_path / "d" / "val" / "B").iterdir())
    victim.write_bytes(victim.read_bytes()[:80])  # truncated
    leak = next((tmp_path / "d" / "train" / "A").glob("0*.png"))
    (tmp_path / "d" / "val" / "A" / "leak.png").write_bytes(leak.read_bytes())
    report = check(tmp_path / "d")
    text = str(report)
    assert not report.ok
    assert "zz.png: not an image" in text and f"{victim.name}: cannot decode image" in text
    assert "A/B name mismatch" in text and "the same image is in train and val" in text
    assert main(["check", str(tmp_path / "d")]) == 1
    assert main(["check", str(tmp_path / "nowhere")]) == 1


def test_unaligned_and_single_checks(tmp_path):
    for d in ("trainA", "trainB", "testA"):
        for i in range(2):
            write_image(tmp_path / "u" / d / f"{d}{i}.png", seed=hash(d) % 100 + i)
    assert check(tmp_path / "u", "unaligned").counts == {"trainA": 2, "trainB": 2, "testA": 2}
    Image.new("L", (8, 8)).save(tmp_path / "single.png")
    (tmp_path / "s").mkdir()
    (tmp_path / "single.png").rename(tmp_path / "s" / "x.png")
    report = check(tmp_path / "s", "single")
    assert report.ok and report.modes == {"L": 1}


def test_bad_arguments(flat_pairs, tmp_path):
    with pytest.raises(DataError, match="summing to 1"):
        split(flat_pairs, tmp_path / "x", (0.5, 0.2, 0.1))
    (flat_pairs / "B" / "00.png").unlink()
    with pytest.raises(DataError, match="A/B name mismatch"):
        combine(flat_pairs, tmp_path / "y")
    assert main(["split", str(flat_pairs), str(tmp_path / "z"), "--ratios", "0.5", "0.5", "0.5"]) == 2
