"""The page in a real browser: Playwright driving the system's headless Chromium against a real server.

Chromium comes from the system package manager (``apt-get install chromium``; ``.ci/run`` installs it when
missing), since ``playwright install`` downloads its own browser. Without a browser these tests are skipped
with the reason. ``TRANSLATE_SCREENSHOT=PATH`` also saves the page's screenshot there (the README's), and
``TRANSLATE_PAGE_CHECKPOINT`` shows that checkpoint in it instead of the tiny test model.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from serving import data_url, pixels, png_header, post, serving

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
    encoded = page.evaluate("""async () => {
        const data = new Uint8Array(await (await fetch(document.getElementById('output').src)).arrayBuffer());
        let text = ''; for (const b of data) text += String.fromCharCode(b); return btoa(text); }""")
    return base64.b64decode(encoded)


def _draw(page, points: list[tuple[float, float]]) -> None:
    box = page.locator("#canvas").bounding_box()
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + points[0][0] * box["width"], y0 + points[0][1] * box["height"])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x0 + x * box["width"], y0 + y * box["height"], steps=8)
    page.mouse.up()


def test_draw_translate_upload_and_a_bad_upload(browser, bicycle_run, tmp_path):
    with serving(bicycle_run) as (url, _):
        page = _open(browser, url)
        assert "A -> B" in page.text_content("#about") and "64×64 px" in page.text_content("#about")
        empty = _shown(page)
        n = _requests(page)
        _draw(page, [(0.2, 0.2), (0.8, 0.3), (0.5, 0.8), (0.2, 0.2)])
        _wait_for(page, n + 1)
        drawing = page.evaluate("document.getElementById('canvas').toDataURL('image/png')")
        shown = _shown(page)
        status, served, _ = post(f"{url}/api/translate", {"image": drawing})
        assert status == 200 and shown == served  # what the page shows is what the API gives for the drawing
        assert shown != empty
        assert page.get_attribute("#download", "href") == page.get_attribute("#output", "src")
        # undo goes back to the empty canvas's output
        n = _requests(page)
        page.click("#undo")
        _wait_for(page, n + 1)
        assert _shown(page) == empty
        # an uploaded photo
        from helpers import write_image

        photo = write_image(tmp_path / "photo.png", (80, 60), seed=3)
        n = _requests(page)
        page.set_input_files("#upload", str(photo))
        _wait_for(page, n + 1)
        uploaded = _shown(page)
        assert uploaded not in (empty, shown)
        assert uploaded == post(f"{url}/api/translate", {"image": data_url(photo.read_bytes()), "resize": 64})[1]
        assert page.text_content("#error") == ""
        # garbage: the reason is shown, the last output stays
        n = _requests(page)
        page.set_input_files("#upload", files=[{"name": "x.png", "mimeType": "image/png", "buffer": b"garbage"}])
        _wait_for(page, n + 1)
        assert "400" in page.text_content("#error") and "not an image" in page.text_content("#error")
        assert _shown(page) == uploaded
        # a few bytes declaring 20000x20000 pixels: over the limit, with the size (not "not an image")
        n = _requests(page)
        page.set_input_files("#upload", files=[{"name": "big.png", "mimeType": "image/png",
                                                "buffer": png_header(20_000, 20_000)}])
        _wait_for(page, n + 1)
        assert "400,000,000 pixels is over the limit" in page.text_content("#error")
        assert _shown(page) == uploaded
        page.close()


def test_style_controls_change_the_output(browser, bicycle_run):
    with serving(bicycle_run) as (url, _):
        page = _open(browser, url)
        mean = _shown(page)
        assert page.is_visible("#newstyle") and page.is_visible("#reference")
        n = _requests(page)
        page.fill("#seed", "7")
        page.dispatch_event("#seed", "change")
        _wait_for(page, n + 1)
        seven = _shown(page)
        assert seven != mean  # (the tiny model's styles differ by a few levels only)
        n = _requests(page)
        page.fill("#truncation", "0")  # the slider: psi 0 is the mean style
        _wait_for(page, n + 1)
        assert page.text_content("#truncation-value") == "0.00"
        difference = np.abs(pixels(_shown(page)).astype(int) - pixels(mean).astype(int))
        assert difference.max() <= 1  # w_avg reached by truncation or taken directly: rounding apart
        page.close()


def test_screenshot(browser, bicycle_run, tmp_path):
    """The README's screenshot: a drawing, its translation and the controls."""
    checkpoint = os.environ.get("TRANSLATE_PAGE_CHECKPOINT") or bicycle_run
    with serving(checkpoint) as (url, _):
        page = _open(browser, url)
        n = _requests(page)
        _draw(page, [(0.15, 0.7), (0.5, 0.15), (0.85, 0.7), (0.15, 0.7)])
        _wait_for(page, n + 1)
        n = _requests(page)
        page.click("#newstyle")
        _wait_for(page, n + 1)
        path = Path(os.environ.get("TRANSLATE_SCREENSHOT") or tmp_path / "page.png")
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
        page.close()
