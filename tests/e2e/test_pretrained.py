"""Reference models by name (``translate.loading.pretrained``) against a local HTTP server and local files (no network)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from helpers import write_image
from reference_nets import RefResnet, RefUnet

from translate.config.compose import compose
from translate.core.errors import CheckpointError, DataError
from translate.inference.convert import run as infer_run
from translate.loading import pretrained
from translate.loading.generator import load_translation
from translate.loading.pretrained import MODELS, download, main


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TRANSLATE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "pretrained"


@pytest.fixture(scope="module")
def horse2zebra_file(tmp_path_factory) -> tuple[Path, RefResnet]:
    """A .pth laid out as the reference CycleGAN saves it: resnet_9blocks, ngf 64, instance norm."""
    torch.manual_seed(0)
    net = RefResnet(3, 3, 9, ngf=64, norm="instance").eval()
    path = tmp_path_factory.mktemp("ref") / "horse2zebra.pth"
    torch.save(net.state_dict(), path)
    return path, net


def _serve(served: Path, source: Path, family: str = "cyclegan", name: str = "horse2zebra.pth") -> bytes:
    (served / family).mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    (served / family / name).write_bytes(data)
    return data


def test_list_names_every_model_with_its_architecture(capsys, cache):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night", "horse2zebra",
                 "zebra2horse", "summer2winter_yosemite", "winter2summer_yosemite", "monet2photo", "style_monet",
                 "style_cezanne", "style_ukiyoe", "style_vangogh", "apple2orange", "orange2apple"):
        assert name in out
    assert "unet_256, batch norm, dropout" in out and "resnet_9blocks, instance norm" in out
    assert MODELS["edges2shoes"].url == "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/edges2shoes.pth"
    assert MODELS["cyclegan_sat2map"].url.endswith("/cyclegan/pretrained_models/sat2map.pth")


def test_download_verifies_and_loads_by_name_with_the_right_architecture(server, cache, horse2zebra_file):
    url, served, _ = server
    source, reference = horse2zebra_file
    data = _serve(served, source)
    path = download("horse2zebra", mirror=url, progress=False)
    assert path == cache / "cyclegan" / "horse2zebra.pth" and path.read_bytes() == data
    assert not list(path.parent.glob("*.part"))
    loaded = load_translation("pretrained:horse2zebra")  # no generator flags
    assert loaded.pretrained is MODELS["horse2zebra"] and loaded.norm_mode == "eval"
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(loaded.module(x), reference(x), atol=1e-5)
    zebra = load_translation("pretrained:horse2zebra", direction="BtoA")
    assert zebra.translation.source == "B"


def test_an_interrupted_download_resumes(server, cache, horse2zebra_file):
    url, served, handler = server
    data = _serve(served, horse2zebra_file[0])
    handler.cut_after = len(data) // 2
    with pytest.raises(DataError, match="run the same command again to resume"):
        download("horse2zebra", mirror=url, progress=False)
    assert not (cache / "cyclegan" / "horse2zebra.pth").exists()
    download("horse2zebra", mirror=url, progress=False)
    assert handler.requests == [None, f"bytes={len(data) // 2}-"]
    assert (cache / "cyclegan" / "horse2zebra.pth").read_bytes() == data


def test_a_checksum_mismatch_deletes_the_file(server, cache, horse2zebra_file, monkeypatch):
    url, served, _ = server
    _serve(served, horse2zebra_file[0])
    monkeypatch.setitem(MODELS, "horse2zebra", dataclasses.replace(MODELS["horse2zebra"], sha256="0" * 64))
    with pytest.raises(DataError, match="SHA-256 .* is not the recorded 000000000000"):
        download("horse2zebra", mirror=url, progress=False)
    assert not list((cache / "cyclegan").glob("horse2zebra.pth*"))


def test_a_file_of_another_architecture_is_refused_and_deleted(server, cache, tmp_path):
    url, served, _ = server
    torch.save(RefUnet(3, 3, 7, ngf=8).state_dict(), tmp_path / "unet.pth")
    _serve(served, tmp_path / "unet.pth")
    with pytest.raises(CheckpointError, match="it is not the horse2zebra model") as e:
        download("horse2zebra", mirror=url, progress=False)
    assert "\n" not in str(e.value)
    assert not (cache / "cyclegan" / "horse2zebra.pth").exists()


def test_a_pix2pix_name_knows_its_unet(cache, tmp_path):
    """The pix2pix names load as the reference's unet_256 with batch norm, run in train mode as its test
    script runs them; a file that is another U-Net says which settings it fits."""
    spec = MODELS["edges2shoes"]
    assert spec.generator == {"name": "unet_256", "norm": "batch", "dropout": True} and spec.norm_mode == "train"
    assert spec.canvas is not None
    torch.save(RefUnet(3, 3, 8, ngf=8).state_dict(), tmp_path / "small.pth")
    with pytest.raises(CheckpointError, match="generator=unet_256 generator.ngf=8"):
        download("edges2shoes", archive=tmp_path / "small.pth")


def test_archive_offline_message_and_cli_exit_code(cache, horse2zebra_file, capsys):
    with pytest.raises(DataError, match=r"offline\? Fetch .* by hand and give it as archive=FILE"):
        download("horse2zebra", mirror="http://127.0.0.1:9", progress=False, timeout=2)
    assert main(["download", "horse2zebra", "mirror=http://127.0.0.1:9", "timeout=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot download") and "\n" not in err
    assert main(["download", "horse2zebra", f"archive={horse2zebra_file[0]}"]) == 0
    assert (cache / "cyclegan" / "horse2zebra.pth").read_bytes() == horse2zebra_file[0].read_bytes()
    assert main(["download", "nonesuch"]) == 2
    assert "pretrained:nonesuch is not a known model" in capsys.readouterr().err


def test_infer_runs_a_pretrained_name(cache, horse2zebra_file, tmp_path):
    pretrained.download("horse2zebra", archive=horse2zebra_file[0])
    write_image(tmp_path / "in" / "a.png", (40, 36))
    cfg = compose(["checkpoint=pretrained:horse2zebra", f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}",
                   "quiet=true"], config_name="infer")
    summary = infer_run(cfg)
    assert summary.converted == 1 and (tmp_path / "out" / "a.png").is_file()


def test_export_names_the_file_after_the_model(cache, horse2zebra_file, tmp_path, monkeypatch):
    from translate.inference.export import run as export_run

    pretrained.download("horse2zebra", archive=horse2zebra_file[0])
    monkeypatch.chdir(tmp_path)
    path = export_run(compose(["checkpoint=pretrained:horse2zebra", "format=torchscript"], config_name="export"))
    assert Path(path) == Path("runs/export/horse2zebra/horse2zebra_AtoB.ts") and (tmp_path / path).is_file()


def test_results_of_a_run_go_in_its_folder(p2p_run, tmp_path, monkeypatch):
    """One rule: what evaluate and export find out about a run is written inside its folder, and printed."""
    from translate.inference.export import run as export_run
    from translate.loading.pipeline import results_folder

    assert results_folder(p2p_run, "evaluate") == p2p_run / "evaluate"
    assert results_folder(p2p_run / "checkpoints" / "last.pt", "export") == p2p_run / "export"
    assert results_folder("weights/latest_net_G.pth", "export") == Path("runs/export/latest_net_G")
    monkeypatch.chdir(tmp_path)
    path = export_run(compose([f"checkpoint={p2p_run / 'checkpoints' / 'last.pt'}"], config_name="export"))
    assert Path(path) == p2p_run / "export" / "last_AtoB.onnx" and Path(path).is_file()


# ----------------------------------------------------------------------------------------------- issue 28, item 5
def _training_checkpoint(path: Path) -> Path:
    """A translate training checkpoint whose generator has the reference CycleGAN's architecture (resnet_9blocks,
    ngf 64, instance norm), small enough to pass the size cap."""
    from translate.config.compose import build_model, to_container

    cfg = compose(["model=pix2pix", "data=aligned", "data.root=/data", "generator=resnet_9blocks",
                   "generator.norm=instance", "generator.dropout=false", "discriminator.ndf=8"])
    model = build_model(cfg)
    torch.save({"format_version": 1, "config": to_container(cfg),
                "networks": {name: net.state_dict() for name, net in model.networks().items()}}, path)
    return path


def test_a_pretrained_name_takes_only_a_reference_state_dict(server, cache, tmp_path):
    url, served, _ = server
    _serve(served, _training_checkpoint(tmp_path / "run.pt"))
    with pytest.raises(CheckpointError, match="not a reference cyclegan state dict; deleted"):
        download("horse2zebra", mirror=url, progress=False)
    (tmp_path / "pickle.pth").write_bytes(b"\x80\x04\x95\x00")  # not even weights: also deleted
    _serve(served, tmp_path / "pickle.pth")
    with pytest.raises(CheckpointError, match="deleted, it is not the horse2zebra model"):
        download("horse2zebra", mirror=url, progress=False)
    assert not list((cache / "cyclegan").glob("horse2zebra.pth*"))


@pytest.mark.parametrize("send_length", [True, False])
def test_a_download_over_the_models_size_cap_is_stopped(server, cache, horse2zebra_file, monkeypatch, send_length):
    url, served, handler = server
    handler.send_length = send_length
    _serve(served, horse2zebra_file[0])
    monkeypatch.setattr(pretrained.Pretrained, "max_bytes", property(lambda self: 4 * 2**20))
    with pytest.raises(DataError, match="over the 4.0 MB" if send_length else "passed the 4.0 MB.*stopped and deleted"):
        download("horse2zebra", mirror=url, progress=False)
    assert not list((cache / "cyclegan").glob("horse2zebra.pth*"))


def test_a_download_without_a_length_still_completes_under_the_cap(server, cache, horse2zebra_file):
    url, served, handler = server
    handler.send_length = False
    data = _serve(served, horse2zebra_file[0])
    assert download("horse2zebra", mirror=url, progress=False).read_bytes() == data


def test_a_redirect_from_https_to_http_is_refused():
    import urllib.request

    from translate.core.download import NoDowngrade

    handler, request = NoDowngrade(), urllib.request.Request("https://example.org/m.pth")
    with pytest.raises(DataError, match="not https; refused"):
        handler.redirect_request(request, None, 302, "Found", {}, "http://example.org/m.pth")
    assert handler.redirect_request(request, None, 302, "Found", {}, "https://mirror.org/m.pth") is not None


def test_a_file_changed_after_its_first_verification_is_deleted(server, cache, horse2zebra_file):
    url, served, _ = server
    _serve(served, horse2zebra_file[0])
    path = download("horse2zebra", mirror=url, progress=False)
    assert (path.parent / "horse2zebra.pth.sha256").read_text() == __import__("hashlib").sha256(
        path.read_bytes()).hexdigest()
    assert pretrained.resolve("pretrained:horse2zebra")[1] == path  # unchanged: used
    state = torch.load(path, weights_only=True)
    state[next(iter(state))] += 1  # still a loadable state dict of the right architecture, but not the same file
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="changed since it was first verified"):
        pretrained.resolve("pretrained:horse2zebra")
    assert not path.exists()
