"""The page's HTTP API without a browser: a real server on 127.0.0.1, every kind of model, limits, errors and a
burst of parallel requests."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serving import (
    data_url,
    get_json,
    pixels,
    png_bytes,
    post,
    send,
    serving,
)

from translate.apps.serve import BadRequest, ServeOptions, decode_image, load_service, parse_request
from translate.core.errors import ConfigError

pytest.importorskip("uvicorn")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _drawing(size: int = 64) -> bytes:
    image = np.full((size, size, 3), 255, np.uint8)
    image[20:22, 8:56] = 0
    image[8:56, 30:32] = 0
    return png_bytes(image)


def test_requests_are_parsed_strictly():
    r = parse_request({"image": data_url(b"abc"), "seed": 3, "truncation": 0.5, "edits": {"hue": 1},
                       "edit.size": "-2", "resize": 64})
    assert r.image == b"abc" and r.seed == 3 and r.truncation == 0.5 and r.edits == {"hue": 1.0, "size": -2.0}
    for bad, message in [({"seed": "x"}, "seed='x': a number"), ({"truncation": 5}, r"truncation=5: must be in"),
                         ({"image": "%%%"}, "image: not valid base64"), ({"path": "/etc/passwd"}, "path: not a"),
                         ({"resize": 10**6}, "resize"), ({"truncation": "nan"}, "must be in")]:
        with pytest.raises(BadRequest, match=message):
            parse_request(bad)


def test_uploads_are_decoded_within_limits():
    x = decode_image(_drawing(), 3, 10_000)
    assert x.shape == (1, 3, 64, 64) and x.min() == -1 and x.max() == 1
    with pytest.raises(BadRequest, match="64x64 is over the limit of 1,000 pixels"):
        decode_image(_drawing(), 3, 1000)
    with pytest.raises(BadRequest, match="not an image"):
        decode_image(b"GIF89a but not really", 3, 10_000)
    with pytest.raises(BadRequest, match="empty upload"):
        decode_image(b"", 3, 10_000)
    truncated = _drawing()[:60]
    with pytest.raises(BadRequest, match="image: "):
        decode_image(truncated, 3, 10_000)


def test_translation_api(p2p_run):
    with serving(p2p_run) as (url, _):
        info = get_json(f"{url}/api/info")
        assert info["kind"] == "translation" and info["direction"] == "A -> B" and info["input_size"] == 64
        assert info["canvas"] == {"ink": "#000000", "background": "#ffffff", "width": 1, "drawing": False}
        assert get_json(f"{url}/healthz")["status"] == "ok"
        status, body, headers = post(f"{url}/api/translate", {"image": data_url(_drawing())})
        assert status == 200 and headers["content-type"] == "image/png" and pixels(body).shape == (64, 64, 3)
        # The raw image as the body gives the same output; the same drawing twice, the same bytes.
        assert post(f"{url}/api/translate", _drawing(), "image/png")[1] == body
        assert post(f"{url}/api/translate", {"image": data_url(_drawing())})[1] == body
        # Any size: padded to the stride and cropped back, as infer.py does; resize to the model's size.
        odd = png_bytes(np.random.default_rng(0).integers(0, 255, (50, 77, 3), dtype=np.uint8))
        assert pixels(post(f"{url}/api/translate", {"image": data_url(odd)})[1]).shape == (50, 77, 3)
        assert pixels(post(f"{url}/api/translate", {"image": data_url(odd), "resize": 64})[1]).shape[0] == 64
        jpeg = io.BytesIO()
        Image.open(io.BytesIO(_drawing())).save(jpeg, format="JPEG")
        assert post(f"{url}/api/translate", jpeg.getvalue(), "image/jpeg")[0] == 200
        assert post(f"{url}/api/generate", {"seed": 1})[0] == 400


def test_the_page_names_the_run_and_offers_its_validation_images(p2p_run, tmp_path):
    with serving(p2p_run) as (url, service):
        info = get_json(f"{url}/api/info")
        assert info["model"] == "run" and info["family"] == "Pix2Pix" and info["examples"] == 2  # val: 2 pairs
        status, body = send(f"{url}/api/example/1", Host=url.split("//")[1])
        val = pixels(png_bytes(np.asarray(Image.open(p2p_run.parent / "data" / "val" / "A" / "1.png"))))
        assert status == 200 and np.array_equal(pixels(body), val)  # 64 px, centred: the image itself
        status, body = send(f"{url}/api/example/2", Host=url.split("//")[1])
        assert status == 404 and b"there are 2" in body and str(tmp_path) not in body.decode()
    # a run whose data is not on this machine: no examples, and the reason once on the console
    moved = tmp_path / "run"
    shutil.copytree(p2p_run, moved)
    from translate.config.checkpoint import atomic_save, load_checkpoint

    ckpt = load_checkpoint(moved / "checkpoints" / "last.pt")
    ckpt["config"]["data"]["root"] = str(tmp_path / "gone")
    atomic_save(ckpt, moved / "checkpoints" / "last.pt")
    with serving(moved) as (url, service):
        assert get_json(f"{url}/api/info")["examples"] == 0
        assert service.no_examples.startswith("no example inputs: ") and "gone" in service.no_examples


def test_names_of_what_was_loaded():
    from translate.loading.pipeline import source_name

    assert source_name("runs/demo_bicycle/2026-12-05_20-45-20") == "demo_bicycle"
    assert source_name("runs/cyclegan_unaligned/2026-12-05_20-45-20/checkpoints/best.pt") == "cyclegan_unaligned"
    assert source_name("/tmp/shots/bicycle") == "bicycle" and source_name("pretrained:edges2shoes") == "edges2shoes"
    assert source_name("weights/latest_net_G.pth") == "latest_net_G" and source_name("models/sketch2photo") == "sketch2photo"


def test_bad_requests_are_answered_with_the_reason(p2p_run):
    with serving(p2p_run, max_upload_mb=0.05, max_pixels=100 * 100) as (url, _):
        status, body, _ = post(f"{url}/api/translate", {"image": data_url(b"garbage" * 10)})
        assert status == 400 and b"not an image" in body
        status, body, _ = post(f"{url}/api/translate", b"{not json")
        assert status == 400 and b"not JSON" in body
        big = png_bytes(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8))
        status, body, _ = post(f"{url}/api/translate", big, "image/png")
        assert status == 413 and b"request over 0.05 MB" in body
        flat = png_bytes(np.zeros((120, 120, 3), np.uint8))  # small file, too many pixels
        status, body, _ = post(f"{url}/api/translate", flat, "image/png")
        assert status == 400 and b"120x120 is over the limit of 10,000 pixels" in body
        assert post(f"{url}/api/translate", _drawing(), "image/png")[0] == 200  # the server lives on


def test_a_burst_of_parallel_requests_is_answered_correctly(p2p_run):
    drawings = [png_bytes(np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8))
                for i in range(6)]
    with serving(p2p_run, queue=11) as (url, _):  # 12 slots: the one running and 11 waiting
        alone = [post(f"{url}/api/translate", d, "image/png")[1] for d in drawings]
        with ThreadPoolExecutor(12) as pool:
            burst = list(pool.map(lambda d: post(f"{url}/api/translate", d, "image/png"), drawings * 2))
    assert all(status == 200 for status, _, _ in burst)
    assert [body for _, body, _ in burst] == alone * 2


def test_beyond_the_queue_requests_are_refused_not_stacked(p2p_run):
    with serving(p2p_run, queue=0) as (url, service):
        service._lock.acquire()  # the model is busy with a long call
        try:
            with ThreadPoolExecutor(2) as pool:
                waiting = pool.submit(post, f"{url}/api/translate", _drawing(), "image/png")
                import time

                deadline = time.monotonic() + 10
                while service._slots._value > 0 and time.monotonic() < deadline:
                    time.sleep(0.02)
                status, body, headers = post(f"{url}/api/translate", _drawing(), "image/png")
                assert status == 503 and b"busy" in body and headers["retry-after"] == "1"
                service._lock.release()
                assert waiting.result()[0] == 200
        finally:
            if service._lock.locked():
                service._lock.release()


def test_style_codes(bicycle_run):
    with serving(bicycle_run) as (url, _):
        info = get_json(f"{url}/api/info")
        assert info["kind"] == "style" and info["styles"]["reference"] and info["styles"]["per_level"]
        image = data_url(_drawing())
        mean = post(f"{url}/api/translate", {"image": image})[1]
        one, two = (post(f"{url}/api/translate", {"image": image, "seed": s})[1] for s in (1, 2))
        assert one != two and one != mean
        assert post(f"{url}/api/translate", {"image": image, "seed": 1})[1] == one
        assert post(f"{url}/api/translate", {"image": image, "seed": 1, "truncation": 0})[1] == mean
        ref = post(f"{url}/api/translate", {"image": image, "reference": data_url(_drawing())})
        assert ref[0] == 200 and ref[1] != mean
        status, body, _ = post(f"{url}/api/translate", {"image": image, "edits": {"brightness": 1}})
        assert status == 400 and b"no saved axes" in body


def test_noise_generator(gan_run):
    with serving(gan_run) as (url, _):
        info = get_json(f"{url}/api/info")
        assert info["kind"] == "noise" and "canvas" not in info
        a, b = (post(f"{url}/api/generate", {"seed": s})[1] for s in (0, 1))
        assert a != b and post(f"{url}/api/generate", {"seed": 0})[1] == a
        assert post(f"{url}/api/generate", {"seed": 0, "truncation": 0.5})[1] != a
        assert post(f"{url}/api/translate", {"image": data_url(_drawing())})[0] == 400


def test_the_command_refuses_bad_settings_in_one_line(p2p_run, tmp_path):
    run = subprocess.run([sys.executable, "-m", "translate.apps.serve", f"checkpoint={tmp_path / 'none.pt'}"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert run.returncode == 2 and "none.pt" in run.stderr and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-m", "translate.apps.serve", f"checkpoint={p2p_run}", "port=70000"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert run.returncode == 2 and "port" in run.stderr and "Traceback" not in run.stderr
    with pytest.raises(Exception, match="queue"):
        ServeOptions(queue=-1)


def test_the_page_can_run_the_generator_with_openvino(p2p_run, gan_run, tmp_path):
    pytest.importorskip("openvino")
    with serving(p2p_run) as (url, _):
        ours = pixels(post(f"{url}/api/translate", {"image": data_url(_drawing())})[1]).astype(int)
    with serving(p2p_run, backend="openvino", cache=str(tmp_path)) as (url, service):
        assert service.backend == "backend openvino fp32" and list(tmp_path.glob("*.onnx"))
        status, body, _ = post(f"{url}/api/translate", {"image": data_url(_drawing())})
        assert status == 200 and np.abs(pixels(body).astype(int) - ours).max() <= 1
    with pytest.raises(ConfigError, match="the page serves this noise model with backend=torch only"):
        load_service(str(gan_run), ServeOptions(port=0, backend="openvino"))
    with pytest.raises(ConfigError, match="needs calibration=DIR"):
        load_service(str(p2p_run), ServeOptions(port=0, backend="openvino", precision="int8"))
