"""Label and instance maps (issue 31): the three file kinds read to the same classes, bad values are one line
naming the file, boundaries and one-hot encoding, and geometry that never mixes classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from translate.core.errors import DataError
from translate.data.labels import Palette, boundaries, one_hot, read_instance_map, read_label_map, read_palette
from translate.data.transforms import PairedTransform

PALETTE = Palette(("sky", "grass", "road"), ((70, 130, 180), (107, 142, 35), (128, 64, 128)))


def _index_png(path, labels: np.ndarray, mode: str = "L"):
    if mode == "P":
        im = Image.fromarray(labels.astype(np.uint8), "P")
        im.putpalette([c for colour in PALETTE.colours for c in colour])
    elif mode == "I;16":
        im = Image.fromarray(labels.astype(np.uint16))
    else:
        im = Image.fromarray(labels.astype(np.uint8), "L")
    im.save(path)
    return path


def test_index_palette_and_colour_maps_read_to_the_same_classes(tmp_path):
    labels = np.array([[0, 1, 2], [2, 1, 0]])
    colour = tmp_path / "colour.png"
    Image.fromarray(np.asarray(PALETTE.colours, np.uint8)[labels]).save(colour)
    for path in (_index_png(tmp_path / "index.png", labels), _index_png(tmp_path / "palette.png", labels, "P"),
                 _index_png(tmp_path / "deep.png", labels, "I;16")):
        assert torch.equal(read_label_map(path, 3), torch.from_numpy(labels))
    assert torch.equal(read_label_map(colour, 3, palette=PALETTE), torch.from_numpy(labels))
    shown = PALETTE.colourise(torch.from_numpy(labels))
    assert shown.shape == (3, 2, 3) and torch.allclose(shown[:, 0, 1], torch.tensor([107, 142, 35]) / 127.5 - 1)


def test_bad_values_are_one_line_naming_the_file_and_the_value(tmp_path):
    path = _index_png(tmp_path / "map.png", np.array([[0, 1], [7, 255]]))
    with pytest.raises(DataError, match=r"map.png: label 7 is outside data.label_nc=3 \(a don't-care value\?"):
        read_label_map(path, 3)
    with pytest.raises(DataError, match="label 7 is outside data.label_nc=3$"):
        read_label_map(path, 3, dont_care=255)
    fine = read_label_map(_index_png(tmp_path / "ok.png", np.array([[0, 255]])), 3, dont_care=255)
    assert fine.tolist() == [[0, 3]]  # don't care: the extra class label_nc
    colour = tmp_path / "colour.png"
    Image.fromarray(np.array([[[70, 130, 180], [1, 2, 3]]], np.uint8)).save(colour)
    with pytest.raises(DataError, match=r"colour.png: colour \(1, 2, 3\) at \(1, 0\) is not in the palette"):
        read_label_map(colour, 3, palette=PALETTE)
    with pytest.raises(DataError, match="needs the palette"):
        read_label_map(colour, 3)


@settings(max_examples=25, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.integers(0, 2)))
def test_any_index_map_reads_back(tmp_path_factory, labels):
    path = _index_png(tmp_path_factory.mktemp("maps") / "m.png", labels)
    assert torch.equal(read_label_map(path, 3), torch.from_numpy(labels.astype(np.int64)))


def test_boundaries_and_one_hot(tmp_path):
    ids = torch.tensor([[1, 1, 2], [1, 1, 2], [3, 3, 3]])
    edge = boundaries(ids)[0]
    assert edge.tolist() == [[0, 1, 1], [1, 1, 1], [1, 1, 1]]
    assert boundaries(torch.zeros(4, 4, dtype=torch.long)).sum() == 0
    path = tmp_path / "inst.png"
    Image.fromarray(np.array([[1000, 2000]], np.uint16)).save(path)
    assert read_instance_map(path).tolist() == [[1000, 2000]]
    encoded = one_hot(torch.tensor([[0, 2]]), 3)
    assert encoded.shape == (3, 1, 2) and encoded[:, 0, 1].tolist() == [0, 0, 1]


def test_label_maps_follow_their_photo_through_crops_flips_and_resizes():
    """The photo's pixels encode their class: after any crop, flip and resize the map still names them."""
    classes = torch.arange(12).repeat_interleave(5).reshape(1, 60).expand(40, 60) % 4
    photo = (classes * 60).to(torch.uint8).expand(3, 40, 60)
    for train in (True, False):
        transform = PairedTransform(load_size=72, crop_size=64, train=train)
        for seed in range(5):
            torch.manual_seed(seed)
            out, labels = transform(photo, classes, labels=1)
            assert labels.dtype == torch.int64 and set(labels.unique().tolist()) <= {0, 1, 2, 3}
            inside = (out[0] + 1) * 127.5 / 60  # the photo's class, away from the bicubic class borders
            near = (inside - labels).abs() < 0.2
            assert near.float().mean() > 0.75


def test_palette_files(tmp_path):
    path = tmp_path / "palette.txt"
    path.write_text("# name r g b\nsky 70 130 180\ngrass #6b8e23\n")
    palette = read_palette(path)
    assert palette.names == ("sky", "grass") and palette.colours == ((70, 130, 180), (107, 142, 35))
    path.write_text("sky 70 130\n")
    with pytest.raises(DataError, match="line 1: 'sky 70 130' is not 'name r g b'"):
        read_palette(path)


@pytest.mark.parametrize("layout", ["folders", "cityscapes", "ade20k"])
def test_each_layout_gives_one_hot_maps_with_their_photos(tmp_path, layout):
    from helpers import label_dataset

    from translate.data.semantic import LabelData

    root = label_dataset(tmp_path, layout, dont_care=255 if layout == "cityscapes" else None)
    settings = {"folders": {"instances": True}, "cityscapes": {"instances": True, "dont_care": 255},
                "ade20k": {"dont_care": 0}}[layout]
    data = LabelData(root=root, label_nc=4, layout=layout, preprocess="crop", crop_size=40, flip=False, **settings)
    sample = data.val_dataset()[0]
    classes = 4 + ("dont_care" in settings)
    assert data.input_nc == classes + settings.get("instances", False) == sample["A"].shape[0]
    assert torch.equal(sample["A"][:classes].argmax(0), sample["labels"])  # one-hot of the index map
    assert sample["A"][:classes].sum(0).eq(1).all() and sample["B"].shape == (3, 40, 40)
    stripes = (torch.arange(48) * 4 // 48)[None].expand(40, 48)[:, 4:44]  # the centre crop (the corner's
    assert torch.equal(sample["labels"], stripes)  # don't-care pixels are cropped away)
    if settings.get("instances"):
        edges = sample["A"][-1]
        assert edges[19:21].sum() > 0 and edges[5:15, 10:18].sum() == 0  # the instances' border, not inside


def test_a_map_without_its_photo_and_bad_settings_are_one_line(tmp_path):
    from helpers import label_dataset

    from translate.data.semantic import LabelData

    root = label_dataset(tmp_path)
    (root / "val" / "image" / "val1.png").unlink()
    data = LabelData(root=root, label_nc=4, load_size=40, crop_size=40)
    with pytest.raises(DataError, match=r"'val1' has a label map but no photo in .*val/image"):
        data.val_dataset()
    with pytest.raises(DataError, match="train0.png: label 2 is outside data.label_nc=2"):
        LabelData(root=root, label_nc=2, load_size=40, crop_size=40).train_dataset().load(0, 0)
    from translate.core.errors import ConfigError

    with pytest.raises(ConfigError, match="data.input_nc=3: label maps give 4 channels"):
        LabelData(root=root, label_nc=4, input_nc=3)
    with pytest.raises(ConfigError, match="data.layout=ade20k: its class 0 is don't-care"):
        LabelData(root=root, label_nc=4, layout="ade20k")


def test_the_street_scenes_demo_renders_maps_instances_and_photos(tmp_path):
    from translate.core.errors import ConfigError
    from translate.data.scenes import PALETTE, render_scene, street_scenes

    label, photo, instance = render_scene(3, 64)
    labels, ids, rgb = np.array(label), np.array(instance), np.asarray(photo).astype(int)
    assert label.size == photo.size == instance.size == (64, 64) and set(np.unique(labels)) <= set(range(7))
    assert {0, 1, 2, 3, 6} <= set(np.unique(labels).tolist())  # sky, grass, road, buildings, cars
    assert (ids[labels == 0] == 0).all() and len(np.unique(ids[labels == 3])) >= 2  # buildings are instances
    sky, grass = rgb[labels == 0].mean(0), rgb[labels == 1].mean(0)
    assert sky[2] > sky[0] and grass[1] > grass[2]  # blue sky, green grass: the class decides the look
    assert np.array_equal(np.array(render_scene(3, 64)[1]), np.asarray(photo))  # deterministic by seed
    data = street_scenes(root=tmp_path / "demo", num_train=2, num_val=1, instances=True, load_size=64, crop_size=64)
    sample = data.val_dataset()[0]
    assert sample["A"].shape == (len(PALETTE) + 1, 64, 64) and sample["A_view"].shape == (3, 64, 64)
    assert (tmp_path / "demo" / "palette.txt").is_file() and data.palette.names[0] == "sky"
    with pytest.raises(ConfigError, match="data.label_nc=5: the street scenes have 7 classes"):
        street_scenes(root=tmp_path / "demo", num_train=2, num_val=1, label_nc=5)


@pytest.mark.parametrize("layout", ["folders", "cityscapes", "ade20k"])
def test_the_dataset_check_reads_label_map_layouts(tmp_path, layout, capsys):
    from helpers import label_dataset

    from translate.data.__main__ import main

    root = label_dataset(tmp_path / layout, layout)
    instances = ["instances=true"] if layout != "ade20k" else []
    assert main(["check", str(root), "mode=labels", f"layout={layout}", *instances]) == 0
    out = capsys.readouterr().out
    assert "train/label: 2 images" in out and "val/image: 2 images" in out
    if layout == "folders":
        (root / "val" / "image" / "val0.png").unlink()
        assert main(["check", str(root), "mode=labels"]) == 1
        assert "'val0' has a label map but no photo" in capsys.readouterr().out
