"""Metric weights fetched when missing (``metrics.download=auto``), against a local server only."""

from __future__ import annotations

import hashlib
import time

import pytest
import torch

from translate.core.errors import ConfigError
from translate.evaluation import metrics
from translate.evaluation.metrics import hub_file, hub_hash, lpips_model, metric_weights


@pytest.fixture
def online(monkeypatch, tmp_path):
    """Downloads allowed (conftest forbids them), an empty torch hub and a fresh memory of dead hosts."""
    monkeypatch.delenv(metrics.DOWNLOAD_ENV, raising=False)
    monkeypatch.delenv(metrics.MIRROR_ENV, raising=False)
    monkeypatch.setattr(metrics, "_unreachable", set())
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield
    torch.hub.set_dir(old)


def _named_by_hash(served, payload: bytes, stem: str = "weights") -> str:
    name = f"{stem}-{hashlib.sha256(payload).hexdigest()[:8]}.pth"
    (served / name).write_bytes(payload)
    return name


def test_hub_names_carry_a_sha256_prefix():
    assert hub_hash(metrics.LPIPS_BACKBONES["alex"]) == "7be5be79"
    assert hub_hash(metrics.INCEPTION_URL) == "6726825d"
    assert hub_hash("https://example.org/plain.pth") is None


def test_a_missing_file_is_fetched_and_checked(server, online):
    url, served, handler = server
    name = _named_by_hash(served, b"weights" * 1000)
    path = metric_weights(f"{url}/{name}")
    assert path == hub_file(f"{url}/{name}") and path.read_bytes() == b"weights" * 1000
    assert metric_weights(f"{url}/{name}") == path and len(handler.requests) == 1  # cached: no second request


def test_a_checksum_failure_keeps_nothing(server, online, capsys):
    url, served, _ = server
    (served / "weights-00000000.pth").write_bytes(b"not those weights")
    assert metric_weights(f"{url}/weights-00000000.pth") is None
    assert not list(hub_file(f"{url}/x").parent.glob("weights-00000000*"))
    assert "SHA-256" in capsys.readouterr().err


def test_a_dead_server_costs_one_short_timeout_per_process(server, online, capsys):
    url, served, handler = server
    name = _named_by_hash(served, b"slow")
    handler.delay = 3.0
    start = time.perf_counter()
    assert metric_weights(f"{url}/{name}", timeout=0.5) is None
    assert time.perf_counter() - start < 2.5
    assert "offline?" in capsys.readouterr().err
    asked = len(handler.requests)
    start = time.perf_counter()
    assert metric_weights(f"{url}/{name}", timeout=0.5) is None  # the host is not asked again
    assert time.perf_counter() - start < 0.2 and len(handler.requests) == asked


def test_never_and_the_environment_switch_fetch_nothing(server, online, monkeypatch):
    url, served, handler = server
    name = _named_by_hash(served, b"w")
    assert metric_weights(f"{url}/{name}", "never") is None
    monkeypatch.setenv(metrics.DOWNLOAD_ENV, "never")
    assert metric_weights(f"{url}/{name}") is None
    assert handler.requests == []
    with pytest.raises(ConfigError, match="metrics.download='sometimes' is not one of auto, never"):
        metric_weights(f"{url}/{name}", "sometimes")


def test_lpips_asks_the_mirror_and_stays_off_when_the_file_is_wrong(server, online, monkeypatch):
    url, served, handler = server
    (served / "alexnet-owt-7be5be79.pth").write_bytes(b"a stand-in that fails the checksum")
    monkeypatch.setenv(metrics.MIRROR_ENV, url)
    assert lpips_model("alex") is None
    assert len(handler.requests) == 1
    assert not hub_file(metrics.LPIPS_BACKBONES["alex"]).exists()
