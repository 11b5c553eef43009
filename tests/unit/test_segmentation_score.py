"""The segmentation score of label-map models (issue 31's proof): how maps are read back off inputs, mIoU and
pixel accuracy, and the segmenter trained once and cached."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from translate.data.labels import PALETTES, LabelEncoding
from translate.evaluation.segmentation import SegmentationScore, Segmenter, cached_segmenter


@pytest.mark.parametrize("colour", [False, True])
@pytest.mark.parametrize("dont_care", [None, 255])
def test_inputs_decode_to_the_classes_they_encode(colour, dont_care):
    encoding = LabelEncoding(7, dont_care, instances=True, palette=PALETTES["street_scenes"], colour=colour)
    labels = torch.randint(0, 7, (2, 16, 16), generator=torch.Generator().manual_seed(0))
    if dont_care is not None:
        labels[:, :3, :3] = 7  # don't care is read as class label_nc
    x = torch.stack([encoding.encode(m) for m in labels])
    assert x.shape[1] == (3 if colour else 7 + (dont_care is not None)) + 1
    expected = labels.masked_fill(labels == 7, -1)
    assert torch.equal(encoding.decode(x), expected)


class ReadsTheRedChannel(nn.Module):
    """A stand-in segmenter: the class is the photo's red channel, (red + 1) * 3."""

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        classes = ((photo[:, 0] + 1) * 3).round().long().clamp(0, 3)
        return nn.functional.one_hot(classes, 4).movedim(-1, 1).float()


def test_miou_and_pixel_accuracy_against_the_input_maps():
    encoding = LabelEncoding(4)
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[:, :, 4:] = 1  # left half class 0, right half class 1
    x = encoding.encode(labels[0])[None]
    real = (labels.float() / 3 - 1)[:, None].expand(-1, 3, -1, -1)
    wrong = real.clone()
    wrong[:, 0, :4, 4:] = 1 / 3 * 2 - 1  # the top right quarter segmented as class 2
    score = SegmentationScore(ReadsTheRedChannel(), encoding, torch.device("cpu"))
    score(x, wrong, real)
    result = score.result()
    assert result["real_miou"] == result["real_pixel_acc"] == 1.0
    assert result["pixel_acc"] == 0.75
    # IoU: class 0 1.0, class 1 16/32, class 2 0/16 (present in the predictions only), class 3 absent: left out
    assert result["miou"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert result["class_iou"] == pytest.approx({"class 0": 1.0, "class 1": 0.5, "class 2": 0.0, "class 3": 0.0})


def test_the_segmenter_is_trained_once_and_cached(tmp_path, monkeypatch):
    from helpers import label_dataset

    from translate.data.semantic import LabelData
    from translate.evaluation import segmentation

    monkeypatch.setenv("TRANSLATE_CACHE", str(tmp_path / "cache"))
    root = label_dataset(tmp_path / "data", "folders", n=2, size=(32, 32))
    data = LabelData(root=root, label_nc=4, load_size=32, crop_size=32)
    trained = []
    train = segmentation.train_segmenter
    monkeypatch.setattr(segmentation, "train_segmenter", lambda *a, **k: trained.append(1) or train(*a, **k))
    first = cached_segmenter(data, steps=3, seed=0, device=torch.device("cpu"))
    again = cached_segmenter(data, steps=3, seed=0, device=torch.device("cpu"))
    assert trained == [1] and list((tmp_path / "cache" / "segmenters").glob("*.safetensors"))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(first(x), again(x))
    cached_segmenter(data, steps=4, seed=0, device=torch.device("cpu"))  # other settings: another network
    assert trained == [1, 1]
    assert Segmenter(5)(x).shape == (1, 5, 32, 32)
