"""Data: layouts, paired augmentation, resumable sampling, the demo, and bad-input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_image
from PIL import Image

from translate.core.errors import ConfigError, DataError
from translate.data import AlignedData, EpochSampler, PairedTransform, SingleData, UnalignedData
from translate.data.demo import day2night, render_day_night, render_sketch2photo, sketch2photo
from translate.data.files import load_image

SETTINGS = dict(load_size=36, crop_size=32, num_workers=0)


def test_aligned_folders(aligned_root):
    ds = AlignedData(root=aligned_root, **SETTINGS).train_dataset()
    assert len(ds) == 6 and not ds.side_by_side
    item = ds[(0, 123)]
    assert item["A"].shape == (3, 32, 32) and item["B"].shape == (3, 32, 32)
    assert -1 <= item["A"].min() and item["A"].max() <= 1
    assert Path(item["A_path"]).stem == Path(item["B_path"]).stem


def test_aligned_ab_images_split_left_right(tmp_path):
    left = np.zeros((32, 32, 3), np.uint8)
    right = np.full((32, 32, 3), 255, np.uint8)
    (tmp_path / "ab" / "train").mkdir(parents=True)
    Image.fromarray(np.concatenate([left, right], 1)).save(tmp_path / "ab" / "train" / "x.png")
    ds = AlignedData(root=tmp_path / "ab", preprocess="none", flip=False, num_workers=0).train_dataset()
    item = ds[(0, 0)]
    assert ds.side_by_side
    assert torch.all(item["A"] == -1) and torch.all(item["B"] == 1)


def test_paired_augmentation_keeps_A_and_B_aligned(tmp_path):
    """A and B hold the same picture, so after random crop + flip they must still be identical."""
    for i in range(3):
        write_image(tmp_path / "same" / "train" / "A" / f"{i}.png", seed=i)
        write_image(tmp_path / "same" / "train" / "B" / f"{i}.png", seed=i)
    ds = AlignedData(root=tmp_path / "same", load_size=48, crop_size=24, num_workers=0).train_dataset()
    crops = set()
    for seed in range(20):
        item = ds[(seed % 3, seed)]
        assert torch.equal(item["A"], item["B"])
        crops.add(item["A"].sum().item())
    assert len(crops) > 3  # and the augmentation really is random


def test_paired_augmentation_with_grayscale_A(tmp_path):
    for i in range(2):
        write_image(tmp_path / "g" / "train" / "A" / f"{i}.png", seed=i, mode="L")
        rgb = Image.open(tmp_path / "g" / "train" / "A" / f"{i}.png").convert("RGB")
        (tmp_path / "g" / "train" / "B").mkdir(parents=True, exist_ok=True)
        rgb.save(tmp_path / "g" / "train" / "B" / f"{i}.png")
    ds = AlignedData(root=tmp_path / "g", input_nc=1, **SETTINGS).train_dataset()
    for seed in range(8):
        item = ds[(0, seed)]
        assert item["A"].shape[0] == 1 and item["B"].shape[0] == 3
        assert torch.allclose(item["A"][0], item["B"][0], atol=1e-6)


def test_samples_depend_only_on_seed():
    t = PairedTransform(load_size=40, crop_size=32)
    image = torch.randint(0, 255, (3, 36, 36), dtype=torch.uint8)
    torch.manual_seed(0)
    first = t(image)[0]
    torch.manual_seed(0)
    assert torch.equal(first, t(image)[0])


def test_sampler_resumes_mid_epoch():
    s = EpochSampler(10, seed=3)
    s.set_epoch(2)
    whole = list(s)
    s.set_epoch(2, start=4)
    assert list(s) == whole[4:]
    s.set_epoch(3)
    assert [i for i, _ in s] != [i for i, _ in whole]  # reshuffled each epoch
    assert sorted(i for i, _ in whole) == list(range(10))


def test_unaligned_pairs_randomly_and_reproducibly(unaligned_root):
    ds = UnalignedData(root=unaligned_root, **SETTINGS).train_dataset()
    assert len(ds) == 5  # the larger folder
    picks = {ds[(0, seed)]["B_path"] for seed in range(30)}
    assert len(picks) > 1
    assert ds[(0, 7)]["B_path"] == ds[(0, 7)]["B_path"]
    serial = UnalignedData(root=unaligned_root, serial=True, **SETTINGS).train_dataset()
    assert Path(serial[(4, 0)]["B_path"]).name == "000.png"  # 4 % 4 B images


def test_single(tmp_path):
    for i in range(3):
        write_image(tmp_path / "imgs" / f"{i}.jpg", seed=i)
    ds = SingleData(root=tmp_path / "imgs", **SETTINGS).dataset("test", train=False)
    assert len(ds) == 3 and ds[(0, 0)]["A"].shape == (3, 32, 32)


@pytest.mark.parametrize("preprocess,shape", [("resize_and_crop", (32, 32)), ("crop", (32, 32)),
                                              ("scale_width", (36, 40)), ("scale_width_and_crop", (32, 32)),
                                              ("none", (36, 40))])
def test_preprocess_options(aligned_root, preprocess, shape):
    # The images are 40 wide and 36 high; scale_width scales the width to load_size=40.
    ds = AlignedData(root=aligned_root, preprocess=preprocess, load_size=40, crop_size=32, num_workers=0)
    assert ds.train_dataset()[(0, 0)]["A"].shape[-2:] == shape


def test_sizes_round_to_the_multiple(aligned_root):
    ds = AlignedData(root=aligned_root, preprocess="none", size_multiple=12, num_workers=0).train_dataset()
    assert ds[(0, 0)]["A"].shape[-2:] == (36, 36)  # 36 x 40 -> nearest multiples of 12


# ---------------------------------------------------------------- bad input


def test_missing_root_and_split(tmp_path):
    with pytest.raises(DataError, match="no 'train' split found"):
        AlignedData(root=tmp_path / "nope", **SETTINGS).train_dataset()
    with pytest.raises(DataError, match=f"{tmp_path / 'nope' / 'trainA'}: no such folder"):
        UnalignedData(root=tmp_path / "nope", **SETTINGS).train_dataset()
    with pytest.raises(ConfigError, match="data.root is not set"):
        AlignedData(root="???")


def test_empty_folder(tmp_path):
    (tmp_path / "e" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        AlignedData(root=tmp_path / "e", **SETTINGS).train_dataset()


def test_name_mismatch(aligned_root):
    (aligned_root / "train" / "B" / "003.png").rename(aligned_root / "train" / "B" / "zzz.png")
    with pytest.raises(DataError, match=r"A/B name mismatch, 1 A images without a B and 1 B images without an A"):
        AlignedData(root=aligned_root, **SETTINGS).train_dataset()


def test_corrupt_files_are_skipped_with_a_summary(aligned_root):
    (aligned_root / "train" / "A" / "bad.png").write_bytes(b"this is not a png")
    (aligned_root / "train" / "B" / "bad.png").write_bytes(b"")
    with pytest.warns(UserWarning) as record:
        ds = AlignedData(root=aligned_root, **SETTINGS).train_dataset()
    messages = [str(w.message) for w in record]
    assert any("bad.png: skipped, not an image" in m for m in messages)
    assert any("bad.png: skipped, empty file" in m for m in messages)
    assert any("skipped 1 of 7 pairs" in m for m in messages)
    assert len(ds) == 6


def test_truncated_file_is_skipped_while_training(aligned_root):
    path = aligned_root / "train" / "A" / "000.png"
    path.write_bytes(path.read_bytes()[:60])  # the header survives, the pixels do not
    ds = AlignedData(root=aligned_root, **SETTINGS).train_dataset()
    with pytest.warns(UserWarning, match="000.png: cannot decode image"):
        item = ds[(0, 0)]
    assert Path(item["A_path"]).name == "001.png"  # the next sample is used instead


def test_load_image_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_image(tmp_path / "x.png", 3)
    write_image(tmp_path / "y.png")
    with pytest.raises(DataError, match="y.png: 4 channels requested"):
        load_image(tmp_path / "y.png", 4)


def test_wrong_channel_count_is_a_config_error(aligned_root):
    with pytest.raises(ConfigError, match="data.input_nc=4"):
        AlignedData(root=aligned_root, input_nc=4)


def test_special_images_load(tmp_path):
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (8, 6), (10, 20, 30, 40)).save(rgba)
    assert load_image(rgba, 3).shape == (3, 6, 8)
    wide = tmp_path / "16bit.png"
    Image.fromarray(np.full((4, 5), 65535, np.uint16)).save(wide)
    assert load_image(wide, 1).max() == 255
    exif = tmp_path / "rotated.jpg"
    im = Image.new("RGB", (8, 4))
    info = im.getexif()
    info[0x0112] = 6  # rotate 90 degrees on display
    im.save(exif, exif=info)
    assert load_image(exif, 3).shape == (3, 8, 4)


# ---------------------------------------------------------------- demo


def test_demo_is_deterministic_and_learnable():
    a1, b1 = render_sketch2photo(5, 32)
    a2, b2 = render_sketch2photo(5, 32)
    assert np.array_equal(np.asarray(a1), np.asarray(a2)) and np.array_equal(np.asarray(b1), np.asarray(b2))
    sketch = np.asarray(a1).astype(float)
    assert set(np.unique(sketch)) - {255.0} and (sketch == 255).mean() > 0.5  # dark lines on white
    assert not np.array_equal(np.asarray(render_day_night(1, 32, False)), np.asarray(render_day_night(1, 32, True)))


def test_demo_night_is_darker_than_day():
    day = np.mean([np.asarray(render_day_night(i, 32, False)).mean() for i in range(4)])
    night = np.mean([np.asarray(render_day_night(i, 32, True)).mean() for i in range(4)])
    assert night < 0.6 * day


def test_demo_data_is_written_once(tmp_path):
    data = sketch2photo(root=str(tmp_path / "s2p"), size=32, num_train=4, num_val=2, load_size=32, crop_size=32,
                        num_workers=0)
    assert len(data.train_dataset()) == 4 and len(data.sample_dataset()) == 2
    stamp = (tmp_path / "s2p" / "train" / "A" / "00000.png").stat().st_mtime_ns
    sketch2photo(root=str(tmp_path / "s2p"), size=32, num_train=4, num_val=2)
    assert (tmp_path / "s2p" / "train" / "A" / "00000.png").stat().st_mtime_ns == stamp
    d2n = day2night(root=str(tmp_path / "d2n"), size=32, num_train=3, num_val=1, load_size=32, crop_size=32)
    assert len(d2n.train_dataset()) == 3
    assert not list(tmp_path.glob(".*"))  # no temporary folders left behind


def test_val_holdout_stands_in_for_a_missing_val_split(aligned_root, unaligned_root):
    """data.val_holdout: without a val split, a fixed part of train validates and is left out of training."""
    import shutil

    settings = dict(load_size=32, crop_size=32, num_workers=0)
    with_val = AlignedData(root=aligned_root, val_holdout=0.34, **settings)
    assert not with_val.holding_out() and len(with_val.train_dataset()) == 6  # a val split wins
    shutil.rmtree(aligned_root / "val")
    with pytest.raises(DataError, match="no 'val' split"):
        AlignedData(root=aligned_root, **settings).val_dataset()
    data = AlignedData(root=aligned_root, val_holdout=0.34, **settings)
    train, val = data.train_dataset(), data.val_dataset()
    assert len(train) == 4 and len(val) == 2 and not set(train.pairs) & set(val.pairs)
    assert sorted(train.pairs + val.pairs) == sorted(AlignedData(root=aligned_root, **settings).train_dataset().pairs)
    assert val.pairs == AlignedData(root=aligned_root, val_holdout=0.34, **settings).val_dataset().pairs  # fixed
    assert val.transform.train is False and train.transform.train is True
    assert data.sample_dataset().pairs == val.pairs
    assert len(AlignedData(root=aligned_root, val_holdout=0.01, **settings).val_dataset()) == 1  # at least one

    for folder in ("valA", "valB"):
        shutil.rmtree(unaligned_root / folder)
    udata = UnalignedData(root=unaligned_root, val_holdout=0.25, **settings)
    utrain, uval = udata.train_dataset(), udata.val_dataset()
    assert (len(utrain.files_A), len(utrain.files_B), len(uval.files_A), len(uval.files_B)) == (4, 3, 1, 1)
    assert not set(utrain.files_A) & set(uval.files_A) and not set(utrain.files_B) & set(uval.files_B)
    with pytest.raises(ConfigError, match="data.val_holdout=1"):
        AlignedData(root=aligned_root, val_holdout=1, **settings)


def test_transparent_and_float_images_load_as_seen(tmp_path):
    """A transparent background is white (as cut-out product photos are shown), not the black PIL keeps under
    it; a float image in [0, 1] is scaled, not read as black."""
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[:2, :, 3] = 200, 255  # top half opaque red-ish, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png")
    x = load_image(tmp_path / "cut.png", 3)
    assert x[:, :2].tolist() == [[[200] * 4] * 2, [[0] * 4] * 2, [[0] * 4] * 2] and (x[:, 2:] == 255).all()
    Image.fromarray(np.full((4, 4), 0.5, np.float32), "F").save(tmp_path / "f.tif")
    assert (load_image(tmp_path / "f.tif", 1) == 128).all()


def test_sample_grids_name_their_columns():
    from translate.data.files import sample_grid

    columns = [torch.zeros(2, 3, 32, 32) for _ in range(3)]
    plain, named = sample_grid(columns), sample_grid(columns, ["input A", "G(A)", "target B"])
    assert named.shape[-1] == plain.shape[-1] and named.shape[-2] == plain.shape[-2] + 20
    assert torch.equal(named[:, 20:], plain)
    strip = named[:, :20].mean(0)
    assert all((strip[:, 2 + k * 34 : (k + 1) * 34] < 0).any() for k in range(3))  # text over each column
    with pytest.raises(ValueError, match="2 labels for 3 columns"):
        sample_grid(columns, ["a", "b"])
