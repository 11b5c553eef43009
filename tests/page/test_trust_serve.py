"""The page the user can trust (issue 28): no request makes a tensor over the pixel limit, another web page cannot
drive the server, no answer shows a path, and bad bodies or clients that leave cost one line at most."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from omegaconf import OmegaConf
from serving import (
    data_url,
    get_json,
    png_bytes,
    png_header,
    post,
    send,
    serving,
)

from translate.apps.serve import BadRequest, ServeOptions, decode_image

pytest.importorskip("uvicorn")
pytestmark = pytest.mark.slow


def _gray(height: int, width: int) -> bytes:
    return png_bytes(np.full((height, width), 128, np.uint8))


def _no_model_calls(service) -> list:
    """Make the model lock refuse to be taken: a refused request must never reach it."""
    calls = []
    service.call = lambda *args: calls.append(args) or pytest.fail("the request reached the model")
    return calls


def _error(body: bytes) -> str:
    return json.loads(body)["error"]


# ------------------------------------------------------------------------- item 2: every tensor within the limit
def test_resize_cannot_take_the_output_over_the_pixel_limit(p2p_run):
    """A 1x16 strip resized to 64 on its shorter side would be 64x1024: 16 times a 4,096-pixel limit."""
    with serving(p2p_run, max_pixels=64 * 64) as (url, service):
        calls = _no_model_calls(service)
        status, body, _ = post(f"{url}/api/translate?resize=64", _gray(1, 16), "image/png")
        assert status == 400 and "16x1 image becomes 1024x64" in _error(body) and "4,096" in _error(body)
        status, body, _ = post(f"{url}/api/translate", {"image": data_url(_gray(16, 1)), "resize": 64})
        assert status == 400 and "1x16 image becomes 64x1024" in _error(body)
        assert calls == []
        del service.call  # the model again: a square within the limit is translated
        assert post(f"{url}/api/translate", {"image": data_url(_gray(16, 16)), "resize": 64})[0] == 200


def test_padding_to_the_network_stride_counts_toward_the_limit(p2p_run):
    """256x16 is 4,096 pixels, but the U-Net needs 64-pixel multiples: 256x64 is what it would run on."""
    with serving(p2p_run, max_pixels=64 * 64) as (url, service):
        _no_model_calls(service)
        status, body, _ = post(f"{url}/api/translate", _gray(16, 256), "image/png")
        assert status == 400 and "256x16 image becomes 256x64" in _error(body) and "stride 64" in _error(body)


def test_extreme_aspect_ratios_are_refused_before_any_work(p2p_run, bicycle_run):
    with pytest.raises(BadRequest, match=r"1x64 image: 64:1 is beyond the aspect limit of 16:1"):
        decode_image(_gray(64, 1), 3, 10_000)
    assert decode_image(_gray(1, 16), 3, 10_000).shape == (1, 3, 1, 16)
    with serving(p2p_run) as (url, service):
        _no_model_calls(service)
        status, body, _ = post(f"{url}/api/translate", _gray(1, 64), "image/png")
        assert status == 400 and "aspect limit of 16:1" in _error(body)
    with serving(bicycle_run) as (url, service):  # a reference photo is an image the server decodes too
        _no_model_calls(service)
        status, body, _ = post(f"{url}/api/translate", {"image": data_url(_gray(64, 64)),
                                                        "reference": data_url(_gray(64, 1))})
        assert status == 400 and _error(body).startswith("reference: 1x64 image: 64:1 is beyond the aspect limit")


# ------------------------------------------------------------------------- item 3: only this server's own page
def test_only_the_documented_content_types_are_accepted(p2p_run):
    payload = json.dumps({"image": data_url(_gray(64, 64))}).encode()
    with serving(p2p_run) as (url, _):
        for content_type in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x"):
            status, body = send(f"{url}/api/translate", "POST", payload, content_type=content_type)
            assert status == 415 and "application/json" in _error(body), content_type
        status, body = send(f"{url}/api/translate", "POST", payload)  # no Content-Type at all
        assert status == 415 and "no Content-Type" in _error(body)
        assert send(f"{url}/api/translate", "POST", payload, content_type="application/json; charset=utf-8")[0] == 200
        assert send(f"{url}/api/translate", "POST", _gray(64, 64), content_type="image/png")[0] == 200


def test_the_host_header_must_name_this_server(p2p_run):
    with serving(p2p_run) as (url, _):
        port = url.rsplit(":", 1)[1]
        for path, method in (("/", "GET"), ("/api/info", "GET"), ("/api/translate", "POST")):
            status, body = send(url + path, method, _gray(64, 64), host=f"evil.example:{port}",
                                content_type="image/png")
            assert status == 400 and "Host evil.example" in _error(body) and "allowed_hosts" in _error(body)
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "127.0.0.1"):
            assert send(f"{url}/api/info", host=host)[0] == 200, host
    with serving(p2p_run, allowed_hosts=["page.example"]) as (url, _):
        assert send(f"{url}/api/info", host="page.example")[0] == 200
        assert send(f"{url}/api/info", host="evil.example")[0] == 400


def test_requests_from_another_origin_are_refused(p2p_run):
    with serving(p2p_run) as (url, _):
        for origin in ("http://evil.example", "null", f"http://localhost:{int(url.rsplit(':', 1)[1]) + 1}"):
            status, body = send(f"{url}/api/translate", "POST", _gray(64, 64), content_type="image/png",
                                origin=origin)
            assert status == 403 and "Origin" in _error(body), origin
        assert send(f"{url}/api/translate", "POST", _gray(64, 64), content_type="image/png", origin=url)[0] == 200
    with serving(p2p_run, allowed_hosts=["page.example"]) as (url, _):
        status, _ = send(f"{url}/api/translate", "POST", _gray(64, 64), content_type="image/png",
                         origin="https://page.example")
        assert status == 200


def test_allowed_hosts_is_a_setting_of_the_page():
    assert ServeOptions.from_config(OmegaConf.create({"allowed_hosts": ["a.example"]})).allowed_hosts == ["a.example"]
    assert "allowed_hosts" in OmegaConf.load(Path(__file__).parents[2] / "conf" / "serve.yaml")
    with pytest.raises(Exception, match="allowed_hosts"):
        ServeOptions(allowed_hosts="a.example")


def test_no_answer_shows_a_path(p2p_run):
    with serving(p2p_run) as (url, service):
        service.guard = SimpleNamespace(source=f"{p2p_run.parent}/guard_run (cycle)", threshold=0.5)
        text = json.dumps(get_json(f"{url}/api/info"))
        assert str(p2p_run.parent) not in text and "/" not in text.replace("->", ""), text
        assert "guard_run (cycle)" in text and "data" in text  # the names are kept

        def fails(*_):
            raise RuntimeError(f"cannot open {p2p_run}/checkpoints/last.pt: boom")

        service.call = fails
        status, body, _ = post(f"{url}/api/translate", _gray(64, 64), "image/png")
        assert status == 500 and "last.pt: boom" in _error(body) and str(p2p_run) not in _error(body)


# ------------------------------------------------------------------------- item 8: bad input costs one line
def test_an_image_over_the_limit_says_so_whatever_its_size(p2p_run):
    """Past Pillow's own bomb limit (2 x 89 M pixels) the header is refused before its size is read."""
    with serving(p2p_run) as (url, _):
        for width, height in ((3000, 3000), (20_000, 20_000)):
            status, body, _ = post(f"{url}/api/translate", {"image": data_url(png_header(width, height))})
            assert status == 400 and "over the limit of 4,194,304 pixels" in _error(body), (width, height)
            assert f"{width * height:,}" in _error(body) or f"{width}x{height}" in _error(body)


def test_a_deeply_nested_body_is_a_400_in_one_line(p2p_run, capfd):
    with serving(p2p_run) as (url, _):
        status, body, _ = post(f"{url}/api/translate", b"[" * 200_000 + b"]" * 200_000)
        assert status == 400 and "nested too deeply" in _error(body)
        status, body, _ = post(f"{url}/api/translate", b'{"image": ' * 200_000)
        assert status == 400
    assert "Traceback" not in capfd.readouterr().err


def test_a_client_that_leaves_logs_no_traceback(p2p_run, capfd):
    with serving(p2p_run) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(f"POST /api/translate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/png\r\n"
                      "Content-Length: 100000\r\n\r\n".encode() + b"x" * 100)
            time.sleep(0.3)
        time.sleep(0.5)
        assert post(f"{url}/api/translate", _gray(64, 64), "image/png")[0] == 200  # the server lives on
    err = capfd.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
