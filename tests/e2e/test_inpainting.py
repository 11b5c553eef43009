"""Inpainting through infer.py: the hole mask from a folder or the input's transparency, the same model input
as data=corrupt's mask trains on, and the pixels outside the holes kept exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from translate.core.errors import ConfigError
from translate.data.inpainting import composited, inpainting_input, mask_file
from translate.inference.convert import translate_files
from translate.networks.generators import UnetGenerator


def photo(path: Path, seed: int = 0, size: int = 40) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def hole(size: int = 40) -> np.ndarray:
    holes = np.zeros((size, size), bool)
    holes[8:20, 10:30] = True
    return holes


@pytest.fixture
def inpainter() -> torch.nn.Module:
    torch.manual_seed(0)
    return UnetGenerator(in_channels=4, out_channels=3, num_downs=5, ngf=4).eval()


def read(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.copy()


def test_the_input_is_the_grey_filled_image_and_its_mask():
    x = torch.rand(3, 4, 4) * 2 - 1
    holes = torch.zeros(1, 4, 4)
    holes[..., :2, :] = 1
    made = inpainting_input(x, holes)
    assert made.shape == (4, 4, 4)
    assert torch.equal(made[:3, :2], torch.zeros(3, 2, 4)) and torch.equal(made[:3, 2:], x[:, 2:])
    assert torch.equal(made[3], holes[0] * 2 - 1)
    out = torch.full((3, 4, 4), 0.5)
    kept = composited(out, made)
    assert torch.equal(kept[:, :2], out[:, :2]) and torch.equal(kept[:, 2:], x[:, 2:])


def test_a_mask_is_found_by_name_in_any_format(tmp_path):
    (tmp_path / "masks" / "sub").mkdir(parents=True)
    Image.new("L", (4, 4)).save(tmp_path / "masks" / "sub" / "a.jpg")
    assert mask_file(tmp_path / "masks", Path("sub/a.png")) == tmp_path / "masks" / "sub" / "a.jpg"
    assert mask_file(tmp_path / "masks", Path("b.png")) is None


def test_infer_fills_only_the_holes_of_a_mask_folder(inpainter, tmp_path):
    pixels = photo(tmp_path / "in" / "a.png")
    (tmp_path / "masks").mkdir()
    Image.fromarray(hole().astype(np.uint8) * 255).save(tmp_path / "masks" / "a.png")
    summary = translate_files(inpainter, tmp_path / "in", tmp_path / "out", quiet=True, mask=str(tmp_path / "masks"))
    assert summary.converted == 1 and not summary.failed
    out = np.asarray(read(tmp_path / "out" / "a.png"))
    assert np.array_equal(out[~hole()], pixels[~hole()])  # outside the holes: the input, exactly
    assert np.abs(out[hole()].astype(int) - pixels[hole()]).mean() > 10  # inside: the model's


def test_transparent_pixels_are_the_holes_and_the_output_is_opaque(inpainter, tmp_path):
    pixels = photo(tmp_path / "rgb.png")
    alpha = np.where(hole(), 0, 255).astype(np.uint8)
    (tmp_path / "in").mkdir()
    Image.fromarray(np.dstack([pixels, alpha]), "RGBA").save(tmp_path / "in" / "erased.png")
    summary = translate_files(inpainter, tmp_path / "in", tmp_path / "out", quiet=True)
    assert summary.converted == 1
    out = read(tmp_path / "out" / "erased.png")
    assert out.mode == "RGB"
    assert np.array_equal(np.asarray(out)[~hole()], pixels[~hole()])


def test_inputs_without_holes_fail_one_by_one_with_the_reason(inpainter, tmp_path):
    photo(tmp_path / "in" / "plain.png")
    photo(tmp_path / "in" / "other.png", seed=1)
    (tmp_path / "masks").mkdir()
    Image.new("L", (12, 12), 255).save(tmp_path / "masks" / "other.png")  # the wrong size
    summary = translate_files(inpainter, tmp_path / "in", tmp_path / "out", quiet=True)
    assert summary.converted == 0 and "needs the holes: give mask=DIR" in summary.failed[0][1]
    summary = translate_files(inpainter, tmp_path / "in", tmp_path / "out2", quiet=True, mask=str(tmp_path / "masks"))
    reasons = sorted(reason for _, reason in summary.failed)
    assert "no mask of that name" in reasons[1] and "the mask is 12x12, its image" in reasons[0]


def test_mask_for_a_model_that_does_not_inpaint_is_a_config_error(tmp_path):
    photo(tmp_path / "in" / "a.png")
    with pytest.raises(ConfigError, match="does not inpaint"):
        translate_files(UnetGenerator(num_downs=5, ngf=4).eval(), tmp_path / "in", tmp_path / "out", quiet=True,
                        mask=str(tmp_path))
    with pytest.raises(ConfigError, match="no such folder"):
        translate_files(UnetGenerator(in_channels=4, num_downs=5, ngf=4).eval(), tmp_path / "in", tmp_path / "o",
                        quiet=True, mask=str(tmp_path / "none"))


def test_the_page_api_fills_the_transparent_holes_of_an_upload(inpainter, tmp_path):
    pytest.importorskip("uvicorn")
    import io

    from serving import post

    from translate.apps.serve import ModelService, ServeOptions, free_port, serving_in_thread
    from translate.loading.pipeline import Pipeline
    from translate.models.base import Translation

    pixels = photo(tmp_path / "rgb.png")
    erased = io.BytesIO()
    Image.fromarray(np.dstack([pixels, np.where(hole(), 0, 255).astype(np.uint8)]), "RGBA").save(erased, "PNG")
    service = ModelService(Pipeline(inpainter, Translation("G", "A", "B")), "test",
                           ServeOptions(port=free_port()))
    with serving_in_thread(service) as url:
        status, body, _ = post(f"{url}/api/translate", erased.getvalue(), "image/png")
        refused, reason, _ = post(f"{url}/api/translate", (tmp_path / "rgb.png").read_bytes(), "image/png")
    assert status == 200
    with Image.open(io.BytesIO(body)) as out:
        filled = np.asarray(out.convert("RGB"))
    assert np.array_equal(filled[~hole()], pixels[~hole()])
    assert np.abs(filled[hole()].astype(int) - pixels[hole()]).mean() > 10
    assert refused == 400 and b"holes erased to transparency" in reason
