"""Dataset tools: sketch, combine, separate, split and check on generated images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import write_image
from PIL import Image

from translate.core.errors import DataError
from translate.data import AlignedData
from translate.data.__main__ import main
from translate.data.sketch import EdgeStyle, edge_map, sketch
from translate.data.tools import check, combine, separate, split


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
    assert data.train_dataset().side_by_side and len(data.train_dataset()) == 6


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
    assert main(["split", str(flat_pairs), str(tmp_path / "z"), "ratios=[0.5,0.5,0.5]"]) == 2


def test_split_counts_give_every_asked_split_an_image():
    from translate.data.tools import split_counts

    assert split_counts(10, (0.6, 0.2, 0.2)) == [6, 2, 2]
    assert split_counts(5, (0.9, 0.1, 0)) == [4, 1, 0]  # rounding alone would give val nothing
    assert split_counts(4, (0.8, 0.1, 0.1)) == [2, 1, 1]
    assert split_counts(7, (1 / 3, 1 / 3, 1 / 3)) == [3, 2, 2] and sum(split_counts(101, (0.7, 0.2, 0.1))) == 101
    assert split_counts(1, (0.5, 0.5, 0)) == [1, 0, 0]


def test_tools_never_mix_into_an_existing_dataset(flat_pairs, tmp_path):
    """A second run into the same folder would leave images of two splits side by side: refused, and nothing
    already there is touched."""
    split(flat_pairs, tmp_path / "split", (0.6, 0.2, 0.2), seed=3)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "split").rglob("*"))
    with pytest.raises(DataError, match="split: already exists and is not empty"):
        split(flat_pairs, tmp_path / "split", (0.6, 0.2, 0.2), seed=4)
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "split").rglob("*")) == before
    combine(flat_pairs, tmp_path / "ab")
    with pytest.raises(DataError, match="ab: already exists and is not empty"):
        combine(flat_pairs, tmp_path / "ab")
    with pytest.raises(DataError, match="split: already exists and is not empty"):
        separate(tmp_path / "ab", tmp_path / "split")
    assert main(["split", str(flat_pairs), str(tmp_path / "split")]) == 2


def test_names_that_would_collide_are_refused(tmp_path):
    _square_photo(tmp_path / "photos" / "a" / "b_c.png", seed=1)
    _square_photo(tmp_path / "photos" / "a_b" / "c.png", seed=2)
    with pytest.raises(DataError, match=r"would be written as 'a_b_c', like .*b_c.png; rename one"):
        sketch(tmp_path / "photos", tmp_path / "out", size=32)
    assert not (tmp_path / "out").exists()
    write_image(tmp_path / "ab" / "train" / "x.png", (32, 16))
    write_image(tmp_path / "ab" / "train" / "x.jpg", (32, 16), seed=1)
    with pytest.raises(DataError, match="would be written as 'x'"):
        separate(tmp_path / "ab", tmp_path / "sep")


# ----------------------------------------------------------------- sketch, separate
def _square_photo(path, size=48, seed=0):
    """A bright square on a dark background (plus mild noise): its edges are known."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), 40, np.uint8)
    img[12:36, 12:36] = 220
    img = np.clip(img + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


@pytest.mark.parametrize("style", ["canny", "xdog"])
def test_edge_map_draws_dark_lines_on_the_edges_only(style):
    img = torch.full((1, 3, 48, 48), 40 / 255)
    img[..., 12:36, 12:36] = 220 / 255
    drawing = edge_map(img, EdgeStyle(style))
    assert drawing.shape == (1, 1, 48, 48) and 0 <= drawing.min() and drawing.max() <= 1
    ink = 1 - drawing[0, 0]
    assert ink[20:28, 20:28].max() < 0.05 and ink[:5, :5].max() < 0.05  # flat regions stay white
    border = torch.zeros(48, 48, dtype=torch.bool)
    border[9:39, 9:39] = True
    border[15:33, 15:33] = False
    assert ink[border].sum() > 0.9 * ink.sum() > 0  # nearly all ink lies within 3 px of the square's outline
    thick = 1 - edge_map(img, EdgeStyle(style, thickness=3))[0, 0]
    assert thick.sum() > 1.5 * ink.sum()


def test_sketch_writes_a_checked_split_dataset(tmp_path):
    for i in range(5):
        _square_photo(tmp_path / "photos" / ("sub" if i % 2 else "") / f"p{i}.png", seed=i)
    counts = sketch(tmp_path / "photos", tmp_path / "ab", size=32, crops=3, ratios=(0.6, 0.2, 0.2), seed=1)
    assert counts == {"train": 9, "val": 3, "test": 3}  # 3 / 1 / 1 photos, 3 crops each
    report = check(tmp_path / "ab")
    assert report.ok and report.sizes == {(64, 32): 15}, str(report)
    photo_of = {s: {p.stem.rsplit("_", 1)[0] for p in (tmp_path / "ab" / s).iterdir()} for s in ("train", "val", "test")}
    assert not (photo_of["train"] & photo_of["val"]) and not (photo_of["train"] & photo_of["test"])  # split by photo
    ab = np.asarray(Image.open(next((tmp_path / "ab" / "train").iterdir())))
    assert (ab[:, :32] == ab[:, :32, :1]).all() and ab[:, :32].max() == 255  # the sketch half is gray on white
    # Deterministic by seed; the folders layout holds the same pairs.
    again = sketch(tmp_path / "photos", tmp_path / "ab2", size=32, crops=3, ratios=(0.6, 0.2, 0.2), seed=1)
    assert again == counts and sorted(p.name for p in (tmp_path / "ab2" / "val").iterdir()) == sorted(
        p.name for p in (tmp_path / "ab" / "val").iterdir())
    assert main(["sketch", str(tmp_path / "photos"), str(tmp_path / "f"), "size=32", "layout=folders",
                 "style=xdog", "ratios=[0.6,0.4,0]"]) == 0
    assert check(tmp_path / "f").ok and len(list((tmp_path / "f" / "val" / "A").iterdir())) == 2
    data = AlignedData(root=tmp_path / "ab", load_size=32, crop_size=32, num_workers=0)
    assert len(data.train_dataset()) == 9


def test_sketch_bad_input(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        sketch(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        sketch(tmp_path / "empty", tmp_path / "out")
    _square_photo(tmp_path / "photos" / "a.png")
    with pytest.raises(DataError, match="must not be inside"):
        sketch(tmp_path / "photos", tmp_path / "photos" / "out")
    with pytest.raises(DataError, match="edge style 'hed'"):
        EdgeStyle("hed")
    (tmp_path / "photos" / "broken.png").write_bytes(b"not a png")
    assert main(["sketch", str(tmp_path / "photos"), str(tmp_path / "out")]) == 2  # names the file, no traceback


def test_separate_ab_into_folders_and_unaligned(flat_pairs, tmp_path):
    split(flat_pairs, tmp_path / "split", (0.6, 0.4, 0.0))
    for s in ("train", "val"):  # A/<split>, B/<split> -> AB images
        for d in "AB":
            (tmp_path / "ab_src" / d / s).mkdir(parents=True)
            for f in (tmp_path / "split" / s / d).iterdir():
                f.rename(tmp_path / "ab_src" / d / s / f.name)
    combine(tmp_path / "ab_src", tmp_path / "ab")
    assert separate(tmp_path / "ab", tmp_path / "back") == {"train": 6, "val": 4}
    name = next((tmp_path / "ab_src" / "B" / "val").iterdir()).name
    assert np.array_equal(np.asarray(Image.open(tmp_path / "back" / "val" / "B" / name)),
                          np.asarray(Image.open(tmp_path / "ab_src" / "B" / "val" / name).convert("RGB")))
    assert check(tmp_path / "back").ok
    separate(tmp_path / "ab", tmp_path / "u", layout="unaligned", swap=True)
    assert check(tmp_path / "u", "unaligned").counts == {"trainA": 6, "trainB": 6, "valA": 4, "valB": 4}
    assert np.array_equal(np.asarray(Image.open(tmp_path / "u" / "valA" / name)),
                          np.asarray(Image.open(tmp_path / "back" / "val" / "B" / name)))  # swapped: A is B
    assert main(["separate", str(tmp_path / "nothing"), str(tmp_path / "v")]) == 2


def test_sketch_region_holdout_keeps_val_pixels_out_of_training(tmp_path):
    # A photo whose columns are numbered: every crop shows which columns it came from.
    cols = np.tile(np.arange(100, dtype=np.uint8)[None, :, None] * 2, (40, 1, 3))
    Image.fromarray(cols).save(tmp_path / "ramp.png")
    (tmp_path / "photos").mkdir()
    (tmp_path / "ramp.png").rename(tmp_path / "photos" / "ramp.png")
    counts = sketch(tmp_path / "photos", tmp_path / "ds", size=16, crops=4, ratios=(0.7, 0.3, 0.0), holdout="region",
                    layout="folders")
    assert counts == {"train": 4, "val": 4, "test": 0}
    seen = {s: [np.asarray(Image.open(f))[..., 0] for f in (tmp_path / "ds" / s / "B").iterdir()]
            for s in ("train", "val")}
    # Train crops come from columns 0-69, val crops from 70-99 (a pixel of resampling blur at the cut).
    assert max(im.max() for im in seen["train"]) <= 2 * 70 and min(im.min() for im in seen["val"]) >= 2 * 69


def test_the_tools_take_key_value_settings_and_refuse_the_rest_in_one_line(tmp_path, capsys):
    assert main(["split", "a", "b", "--ratios", "0.5"]) == 2
    assert "--ratios: settings are key=value (ratios=...)" in capsys.readouterr().err
    assert main(["split", "a", "b", "ratio=[0.5,0.5,0]"]) == 2
    assert "ratio: not a setting of translate datasets split (did you mean ratios?)" in capsys.readouterr().err
    assert main(["split", "a", "b", "ratios=[0.5,0.5]"]) == 2
    assert "ratios=[0.5,0.5]: 3 values" in capsys.readouterr().err
    assert main(["check", "d", "mode=paired"]) == 2
    assert "mode=paired: one of aligned, unaligned, single" in capsys.readouterr().err
    assert main(["sketch", "photos"]) == 2 and "usage: translate datasets sketch SRC OUT" in capsys.readouterr().err
    assert main(["sketch", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "thickness=1" in shown and "line width in pixels" in shown and "style=canny" in shown
    assert main([]) == 2 and "tools:" in capsys.readouterr().err
