"""The page in a real browser: Playwright driving the system's headless Chromium against a real server.

Chromium comes from the system package manager (``apt-get install chromium``; ``.ci/run`` installs it when
missing), since ``playwright install`` downloads its own browser. Without a browser these tests are skipped
with the reason. ``TRANSLATE_SCREENSHOTS=DIR`` also saves the page's screenshots there (the docs': a drawing,
an upload, an error, the style row), and ``TRANSLATE_PAGE_CHECKPOINT`` shows that checkpoint in them instead of
the tiny test model.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from serving import pixels, png_header, post, save_random_axes, serving

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.slow
BROWSER_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    path = chromium()
    if path is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium); the page tests need a real browser")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=BROWSER_FLAGS)
        yield browser
        browser.close()


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1100, "height": 760})
    page.goto(url)
    page.wait_for_selector("body[data-ready='true']")
    _wait_for(page, 1)
    return page


def _requests(page) -> int:
    return int(page.evaluate("document.body.dataset.requests || '0'"))


def _wait_for(page, n: int) -> None:
    """Until the page has answered ``n`` requests and none is running or queued."""
    page.wait_for_function(f"Number(document.body.dataset.requests || 0) >= {n} && "
                           "document.body.dataset.busy === 'false'", timeout=60_000)


def _shown(page) -> bytes:
    """The bytes of the image the page shows."""
    return _shown_in(page, "#output")


def _shown_in(page, selector: str) -> bytes:
    """The bytes of the image ``selector`` shows."""
    encoded = page.eval_on_selector(selector, """async (image) => {
        const data = new Uint8Array(await (await fetch(image.src)).arrayBuffer());
        let text = ''; for (const b of data) text += String.fromCharCode(b); return btoa(text); }""")
    return base64.b64decode(encoded)


def _canvas(page) -> str:
    """The canvas as the data URL the page sends."""
    return page.evaluate("document.getElementById('canvas').toDataURL('image/png')")


def _canvas_pixels(page) -> np.ndarray:
    return pixels(base64.b64decode(_canvas(page).split(",", 1)[1]))


def _boxes(page) -> list[dict]:
    """Where the panes and frames are: an error or a warning must not move them."""
    return [page.locator(f"#{i}").bounding_box() for i in ("input-frame", "output-frame", "output-panel", "download")]


def _inside(inner: dict, outer: dict) -> bool:
    return (outer["x"] <= inner["x"] and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
            and outer["y"] <= inner["y"] and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5)


def _photo(path: Path, size: tuple[int, int]) -> Path:
    """A smooth picture (gradients and a disc) of (width, height): resampling it changes little."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    disc = ((x - w * 0.6) ** 2 + (y - h * 0.4) ** 2 < (min(w, h) * 0.3) ** 2)
    image = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.where(disc, 230, 40)], -1)
    Image.fromarray(image.astype(np.uint8)).save(path)
    return path


def _upload(page, path_or_file) -> None:
    n = _requests(page)
    page.set_input_files("#upload", path_or_file)
    _wait_for(page, n + 1)


def _draw(page, points: list[tuple[float, float]]) -> None:
    box = page.locator("#canvas").bounding_box()
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + points[0][0] * box["width"], y0 + points[0][1] * box["height"])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x0 + x * box["width"], y0 + y * box["height"], steps=8)
    page.mouse.up()


def test_draw_undo_and_the_panes(browser, bicycle_run):
    with serving(bicycle_run) as (url, _):
        page = _open(browser, url)
        assert "BicycleGAN" in page.text_content("#title") and "run" in page.text_content("#title")
        assert "A -> B" in page.text_content("#about") and "64×64 px" in page.text_content("#about")
        assert page.text_content("#input-title").startswith("input") and "64×64 px" in page.text_content("#input-title")
        assert page.text_content("#output-title").startswith("output")
        assert "64×64 px" in page.text_content("#output-size")  # the model's resolution, shown smoothly upscaled
        assert page.eval_on_selector("#output", "o => getComputedStyle(o).imageRendering") == "auto"
        empty = _shown(page)
        n = _requests(page)
        _draw(page, [(0.2, 0.2), (0.8, 0.3), (0.5, 0.8), (0.2, 0.2)])
        _wait_for(page, n + 1)
        shown = _shown(page)
        status, served, _ = post(f"{url}/api/translate", {"image": _canvas(page)})
        assert status == 200 and shown == served  # what the page shows is what the API gives for the drawing
        assert shown != empty
        assert page.get_attribute("#download", "href") == page.get_attribute("#output", "src")
        n = _requests(page)
        page.click("#undo")  # back to the empty canvas's output
        _wait_for(page, n + 1)
        assert _shown(page) == empty
        page.close()


def test_an_upload_is_shown_on_the_canvas_and_can_be_drawn_over(browser, bicycle_run, tmp_path):
    with serving(bicycle_run) as (url, _):
        page = _open(browser, url)
        photo = _photo(tmp_path / "photo.png", (80, 60))
        _upload(page, str(photo))
        assert page.evaluate("[canvas.width, canvas.height]") == [85, 64]  # shorter side at 64, as resize=64
        assert "85×64 px" in page.text_content("#input-size")
        expected = np.asarray(Image.open(photo).resize((85, 64), Image.BILINEAR)).astype(int)
        assert np.abs(_canvas_pixels(page).astype(int) - expected).mean() < 6  # the upload is what is shown
        uploaded = _shown(page)
        assert uploaded == post(f"{url}/api/translate", {"image": _canvas(page)})[1]  # and what is translated
        assert pixels(uploaded).shape[:2] == (64, 85)
        n = _requests(page)
        _draw(page, [(0.1, 0.5), (0.9, 0.5)])
        _wait_for(page, n + 1)
        over = _shown(page)
        assert over != uploaded and over == post(f"{url}/api/translate", {"image": _canvas(page)})[1]
        # unticked: the canvas takes the upload's own size, with a note naming the option that fits it
        big = _photo(tmp_path / "big.png", (300, 200))
        _upload(page, str(big))
        assert page.evaluate("[canvas.width, canvas.height]") == [96, 64]
        n = _requests(page)
        page.uncheck("#fit")
        _wait_for(page, n + 1)
        assert page.evaluate("[canvas.width, canvas.height]") == [300, 200]
        assert "far from the 64 px" in page.text_content("#note") and "resize=64" in page.text_content("#note")
        assert pixels(_shown(page)).shape[:2] == (200, 300)
        page.close()


def test_errors_and_guard_warnings_show_in_place(browser, bicycle_run, tmp_path):
    with serving(bicycle_run) as (url, service):
        page = _open(browser, url)
        _upload(page, str(_photo(tmp_path / "photo.png", (64, 64))))
        good, boxes = _shown(page), _boxes(page)
        assert page.text_content("#error") == "" and not page.is_visible("#error")
        # garbage: the server's reason, over the output, which stays (dimmed); nothing moves
        _upload(page, [{"name": "x.png", "mimeType": "image/png", "buffer": b"garbage"}])
        assert "400" in page.text_content("#error") and "not an image" in page.text_content("#error")
        assert _shown(page) == good and "stale" in page.get_attribute("#output", "class")
        assert _boxes(page) == boxes
        assert _inside(page.locator("#error").bounding_box(), page.locator("#output-frame").bounding_box())
        # a few bytes declaring 20000x20000 pixels: over the limit, with the size (not "not an image")
        _upload(page, [{"name": "big.png", "mimeType": "image/png", "buffer": png_header(20_000, 20_000)}])
        assert "400,000,000 pixels is over the limit" in page.text_content("#error")
        assert _boxes(page) == boxes
        # the canvas still holds the last good input: drawing on it goes on from there
        n = _requests(page)
        _draw(page, [(0.1, 0.5), (0.9, 0.5)])
        _wait_for(page, n + 1)
        assert page.text_content("#error") == "" and _shown(page) != good
        # a guard that flags the input: its warning sits over the (current, not dimmed) output
        service.guard = SimpleNamespace(source="guard", threshold=0.5, scores=lambda x: torch.tensor([0.9]),
                                        flagged=lambda score: score > 0.5)
        _upload(page, str(_photo(tmp_path / "again.png", (64, 64))))
        assert page.text_content("#error") == "" and "stale" not in (page.get_attribute("#output", "class") or "")
        assert "looks unlike the model's training inputs (score 0.9000 > 0.5000)" in page.text_content("#guard")
        assert _boxes(page) == boxes
        assert _inside(page.locator("#guard").bounding_box(), page.locator("#output-frame").bounding_box())
        page.close()


def test_examples_are_the_runs_validation_images(browser, bicycle_run):
    from translate.evaluation.evaluate import validation_inputs
    from translate.loading.load import load

    expected = validation_inputs(load(bicycle_run), 6)
    assert len(expected) == 2  # the tiny run's val split
    with serving(bicycle_run) as (url, _):
        page = _open(browser, url)
        assert page.locator("#examples button").count() == 2 and page.is_visible("#examples-box")
        n = _requests(page)
        page.click("#examples button >> nth=1")
        _wait_for(page, n + 1)
        truth = ((expected[1].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        assert np.abs(_canvas_pixels(page).astype(int) - truth.astype(int)).max() <= 1
        assert _shown(page) == post(f"{url}/api/translate", {"image": _canvas(page)})[1]
        page.close()


def test_the_style_row_shows_several_styles_and_picks_one(browser, bicycle_run):
    with serving(bicycle_run) as (url, _):
        page = _open(browser, url)
        mean = _shown(page)
        thumbs = [_shown_in(page, f"#styles button:nth-child({i + 1}) img") for i in range(5)]
        assert len(set(thumbs)) == 5 and mean not in thumbs
        drawing = _canvas(page)
        assert thumbs[2] == post(f"{url}/api/translate", {"image": drawing, "seed": 3})[1]
        n = _requests(page)
        page.click("#styles button >> nth=2")
        _wait_for(page, n + 1)
        assert page.input_value("#seed") == "3" and _shown(page) == thumbs[2]
        assert "chosen" in page.get_attribute("#styles button >> nth=2", "class")
        n = _requests(page)
        page.fill("#truncation", "0")  # the slider: psi 0 is the mean style
        _wait_for(page, n + 1)
        assert page.text_content("#truncation-value") == "0.00"
        difference = np.abs(pixels(_shown(page)).astype(int) - pixels(mean).astype(int))
        assert difference.max() <= 1  # w_avg reached by truncation or taken directly: rounding apart
        n = _requests(page)
        page.click("#reset")
        _wait_for(page, n + 1)
        assert page.text_content("#truncation-value") == "1.00" and _shown(page) == thumbs[2]
        page.close()


def test_attribute_sliders_show_their_values_and_reset(browser, gan_run):
    from translate.latent.sampling import Sampler
    from translate.loading.load import load

    save_random_axes(gan_run, ("age", "smile"), Sampler(load(gan_run).module).z_dim)
    with serving(gan_run) as (url, _):
        page = _open(browser, url)
        assert not page.is_visible("#input-panel") and page.locator("#styles img").count() == 5
        plain = _shown(page)
        sliders = page.locator("#axes input")
        assert sliders.count() == 2 and page.locator("#axes output").all_text_contents() == ["0", "0"]
        n = _requests(page)
        page.fill("#axes input[data-axis='smile']", "1.5")
        _wait_for(page, n + 1)
        assert page.locator("#axes output").all_text_contents() == ["0", "+1.50"]
        edited = _shown(page)
        assert edited != plain and edited == post(f"{url}/api/generate", {"seed": 0, "edits": {"smile": 1.5}})[1]
        n = _requests(page)
        page.click("#reset")
        _wait_for(page, n + 1)
        assert page.locator("#axes output").all_text_contents() == ["0", "0"] and _shown(page) == plain
        assert page.input_value("#axes input[data-axis='smile']") == "0"
        page.close()


def test_screenshots(browser, bicycle_run, tmp_path):
    """The docs' screenshots: a drawing, an upload, an error and the style row."""
    checkpoint = os.environ.get("TRANSLATE_PAGE_CHECKPOINT") or bicycle_run
    folder = Path(os.environ.get("TRANSLATE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    with serving(checkpoint) as (url, _):
        page = _open(browser, url)
        n = _requests(page)
        _draw(page, [(0.15, 0.7), (0.5, 0.15), (0.85, 0.7), (0.15, 0.7)])
        _wait_for(page, n + 1)
        page.screenshot(path=str(folder / "page_drawing.png"), full_page=True)
        if page.locator("#examples button").count():
            n = _requests(page)
            page.click("#examples button >> nth=0")
            _wait_for(page, n + 1)
        else:
            _upload(page, str(_photo(tmp_path / "photo.png", (120, 90))))
        page.screenshot(path=str(folder / "page_upload.png"), full_page=True)
        _upload(page, [{"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture"}])
        page.screenshot(path=str(folder / "page_error.png"), full_page=True)
        n = _requests(page)
        page.click("#styles button >> nth=1")
        _wait_for(page, n + 1)
        page.screenshot(path=str(folder / "page_styles.png"), full_page=True)
        assert all((folder / f"page_{k}.png").stat().st_size > 10_000 for k in ("drawing", "upload", "error", "styles"))
        page.close()


@pytest.fixture(scope="module")
def spade_run(tmp_path_factory) -> Path:
    """A 2-step SPADE run on 64 px label maps of 4 classes with instance maps and a style encoder."""
    from helpers import label_dataset
    from serving import train_tiny

    tmp = tmp_path_factory.mktemp("spade_run")
    root = label_dataset(tmp / "data", "folders", size=(64, 64))
    return train_tiny(tmp, "model=spade", "data=labels", f"data.root={root}", "data.label_nc=4", "data.instances=true",
                      "data.load_size=64", "data.crop_size=64", "generator.ngf=4", "generator.hidden=8",
                      "discriminator.ndf=8", "discriminator.n_layers=2", "model.lambda_vgg=0",
                      "model.style_encoder=true", "model.z_dim=8", "model.encoder.ndf=4", "model.encoder.size=32")


def _painted_classes(page, colours: list[str]) -> np.ndarray:
    """The canvas's pixels as class indices; every pixel must be one of the palette's colours exactly."""
    rgb = _canvas_pixels(page).astype(int)
    table = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours])
    match = (rgb[:, :, None, :] == table[None, None]).all(-1)
    assert match.any(-1).all(), "a painted pixel is not a palette colour (anti-aliased?)"
    return match.argmax(-1)


def test_a_label_model_gets_a_paint_by_class_canvas(browser, spade_run):
    from serving import get_json

    with serving(spade_run) as (url, _):
        info = get_json(f"{url}/api/info")
        names, colours = info["labels"]["names"], info["labels"]["colours"]
        assert names == ["class 0", "class 1", "class 2", "class 3"] and info["examples"] == 2
        page = _open(browser, url)
        assert page.locator("#palette button").count() == 4 and page.is_visible("#fill")
        assert (_painted_classes(page, colours) == 0).all()
        n = _requests(page)
        page.click("#palette button >> nth=2")
        _draw(page, [(0.0, 0.5), (0.999, 0.5)])  # a band of class 2 across the middle, edge to edge
        _wait_for(page, n + 1)
        n = _requests(page)
        page.click("#palette button >> nth=3")
        page.click("#fill")
        _draw(page, [(0.5, 0.1), (0.5, 0.1)])  # the top region (class 0, above the band) filled with class 3
        _wait_for(page, n + 1)
        classes = _painted_classes(page, colours)
        js = np.array(page.evaluate("Array.from(paint.map)")).reshape(64, 64)
        assert np.array_equal(classes, js)  # what is shown is the map painted ...
        assert (classes[30:34] == 2).all() and (classes[:5] == 3).all() and (classes[-5:] == 0).all()
        assert set(np.unique(classes)) == {0, 2, 3}
        assert _shown(page) == post(f"{url}/api/translate", {"image": _canvas(page)})[1]  # ... and what is translated
        n = _requests(page)
        page.click("#examples button >> nth=0")  # a validation map: its classes, exactly
        _wait_for(page, n + 1)
        stripes = (np.arange(64)[None, :] * 4 // 64).repeat(64, 0)
        assert np.array_equal(_painted_classes(page, colours), stripes)
        n = _requests(page)
        page.click("#undo")
        _wait_for(page, n + 1)
        assert np.array_equal(_painted_classes(page, colours), classes)
        page.close()


def test_a_label_model_with_a_style_encoder_paints_in_many_styles_and_copies_a_reference(browser, spade_run, tmp_path):
    import base64

    with serving(spade_run) as (url, _):
        page = _open(browser, url)
        assert page.locator("#palette button").count() == 4 and page.is_visible("#reference-controls")
        mean = _shown(page)
        thumbs = [_shown_in(page, f"#styles button:nth-child({i + 1}) img") for i in range(5)]
        assert len(set(thumbs)) == 5 and mean not in thumbs
        painted = _canvas(page)
        assert thumbs[1] == post(f"{url}/api/translate", {"image": painted, "seed": 2})[1]  # the map, in style 2
        photo = _photo(tmp_path / "ref.png", (64, 64))
        reference = "data:image/png;base64," + base64.b64encode(photo.read_bytes()).decode()
        n = _requests(page)
        page.set_input_files("#reference", str(photo))
        _wait_for(page, n + 1)
        expected = post(f"{url}/api/translate", {"image": painted, "reference": reference})[1]
        assert _shown(page) == expected and expected != mean
        page.close()
