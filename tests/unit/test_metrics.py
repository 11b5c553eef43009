"""Validation metrics against known values (L1, PSNR, SSIM, LPIPS, FID, KID), and best-checkpoint selection."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torchvision
from stand_ins import TinyFeatures

from translate.config.checkpoint import load_checkpoint
from translate.core.errors import ConfigError
from translate.evaluation import metrics
from translate.evaluation.metrics import evaluate_paired, l1, psnr, ssim
from translate.training.loop import fit


def test_identical_images():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.isinf(psnr(x, x)).all()
    assert torch.allclose(ssim(x, x), torch.ones(2))
    assert torch.equal(l1(x, x), torch.zeros(2))


def test_known_noise_level():
    target = torch.zeros(1, 3, 16, 16)  # 0.5 in [0, 1] units
    pred = target + 0.2  # +0.1 in [0, 1] units: MSE 0.01 -> 20 dB
    assert psnr(pred, target).item() == pytest.approx(20.0, abs=1e-4)
    assert l1(pred, target).item() == pytest.approx(0.2)
    noisy = (target + 0.5 * torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert ssim(noisy, target).item() < 0.5 < ssim(pred, target).item()


def test_psnr_mean_counts_exact_images_as_the_cap():
    """One exact reproduction among worse images must not drop out of the mean (it would leave only the worst)."""
    target = torch.zeros(2, 3, 16, 16)
    pred = target.clone()
    pred[1] += 0.2  # 20 dB
    mean = evaluate_paired(torch.nn.Identity(), [{"A": pred, "B": target}], device="cpu")["val/psnr"]
    assert mean == pytest.approx((metrics.PSNR_CAP + 20.0) / 2, abs=1e-3)
    nan = torch.full((1,), float("nan"))
    assert math.isnan(metrics._mean([torch.tensor([20.0]), nan], psnr_cap=True))  # NaN outputs are not hidden


def test_metric_files_are_strict_json():
    from translate.core.atomic import json_text

    text = json_text({"val/psnr": float("inf"), "val/fid": float("nan"), "rows": [1.0, float("-inf")]})
    assert json.loads(text) == {"val/psnr": None, "val/fid": None, "rows": [1.0, None]}


def test_evaluate_paired_uses_eval_mode_and_restores_it():
    G = torch.nn.Sequential(torch.nn.Dropout(0.5))
    G.train()
    batch = {"A": torch.rand(2, 3, 16, 16) * 2 - 1}
    batch["B"] = batch["A"].clone()
    metrics = evaluate_paired(G, [batch], device=torch.device("cpu"))
    assert metrics["val/l1"] == 0 and metrics["val/ssim"] == pytest.approx(1.0) and math.isinf(metrics["val/psnr"])
    assert G.training


@pytest.mark.slow
def test_best_checkpoint_follows_the_monitored_metric(tiny_cfg, aligned_root):
    cfg = tiny_cfg("data=aligned", "generator=unet_64", f"data.root={aligned_root}", "data.load_size=64",
                   "data.crop_size=64", "trainer.max_steps=6", "trainer.val_every=1", "checkpoint.monitor=val/l1")
    result = fit(cfg)  # checkpoint.mode=auto: lower L1 is better
    run = Path(cfg.run_dir)

    def strict(name: str):
        raise ValueError(f"{name} in metrics.jsonl")

    lines = [json.loads(line, parse_constant=strict) for line in (run / "metrics.jsonl").read_text().splitlines()]
    vals = [v for v in lines if "val/l1" in v]
    assert [v["step"] for v in vals] == [1, 2, 3, 4, 5, 6]
    best = min(vals, key=lambda v: v["val/l1"])
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt["step"] == best["step"] and ckpt["best"]["val/l1"] == pytest.approx(best["val/l1"])
    assert result["best/val/l1"] == pytest.approx(best["val/l1"]) and result["best/step"] == best["step"]
    assert {"val/psnr", "val/ssim"} <= vals[0].keys()


def test_best_checkpoint_mode_must_fit_the_metric(tiny_cfg, aligned_root, capsys):
    base = ("data=aligned", "generator=unet_64", f"data.root={aligned_root}", "data.load_size=64",
            "data.crop_size=64", "trainer.max_steps=1")
    with pytest.raises(ConfigError, match="checkpoint.mode=max would keep the worst val/l1 .lower is better"):
        fit(tiny_cfg(*base, "checkpoint.monitor=val/l1", "checkpoint.mode=max"))
    with pytest.raises(ConfigError, match="checkpoint.monitor=val/mine: .*set checkpoint.mode=min or max"):
        fit(tiny_cfg(*base, "checkpoint.monitor=val/mine"))
    cfg = tiny_cfg(*base, "checkpoint.monitor=val/mine", "checkpoint.mode=min")
    fit(cfg)
    err = capsys.readouterr().err
    assert "checkpoint.monitor=val/mine is not among the validation metrics (" in err and "best.pt is not kept" in err
    assert not (Path(cfg.run_dir) / "checkpoints" / "best.pt").exists()


# ----------------------------------------------------------------- LPIPS, FID, KID
@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(metrics, "_said", set())
    monkeypatch.setattr(metrics, "_failed", set())
    return tmp_path / "torch_home"


def test_lpips_is_off_without_weights_and_says_so_once(torch_home, capsys):
    assert metrics.lpips_model("alex") is None
    assert metrics.lpips_model("alex") is None
    err = capsys.readouterr().err
    assert err.count("LPIPS is off") == 1 and "alexnet-owt-7be5be79.pth" in err
    assert metrics.lpips_model(None) is None
    with pytest.raises(ConfigError, match="metrics.lpips='resnet'"):
        metrics.lpips_model("resnet")


def test_lpips_with_cached_backbone(torch_home):
    # A randomly initialised AlexNet where torchvision caches the ImageNet one: the real code path, no download.
    path = metrics.hub_file(metrics.LPIPS_BACKBONES["alex"])
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.alexnet().state_dict(), path)
    net = metrics.lpips_model("alex")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.allclose(metrics.lpips(net, x, x), torch.zeros(2), atol=1e-6)
    assert (metrics.lpips(net, x, y) > 0).all()
    result = evaluate_paired(torch.nn.Identity(), [{"A": x, "B": y}], device="cpu", lpips_net=net)
    assert result["val/lpips"] == pytest.approx(float(metrics.lpips(net, x, y).mean()))


def test_fid_and_kid_with_a_stand_in_extractor():
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(48, 3, 32, 32, generator=gen) * 2 - 1
    d = metrics.DistributionMetrics(TinyFeatures())
    d.update(real, real=True)
    d.update(real, real=False)
    assert d.compute()["fid"] == pytest.approx(0, abs=1e-6)  # identical sets
    # Real features survive reset(): the fake side alone is replaced.
    d.reset()
    d.update(torch.rand(48, 3, 32, 32, generator=gen) * 2 - 1, real=False)  # new draws, same distribution
    near = d.compute()
    d.reset()
    d.update(real * 0.2, real=False)  # washed-out images: far from the real ones
    far = d.compute()
    assert d.num_real == 48 and far["fid"] > 10 * near["fid"] > 0 and far["kid"] > 10 * abs(near["kid"])
    assert metrics.DistributionMetrics(TinyFeatures()).compute() == pytest.approx(
        {"fid": float("nan"), "kid": float("nan")}, nan_ok=True)


def test_distribution_metrics_follow_the_extractor_device():
    """torchmetrics must not probe an extractor already on the GPU with a CPU image (meta stands in for the GPU
    here), and compute() must not wait on other processes (only rank 0 validates under torchrun)."""
    class OnItsDevice(TinyFeatures):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert x.device == self.conv1.weight.device, f"input on {x.device}, weights on {self.conv1.weight.device}"
            return super().forward(x)

    d = metrics.DistributionMetrics(OnItsDevice().to("meta"), device="meta")
    assert d.fid.real_features_sum.shape == (16,) and d.fid.real_features_sum.device.type == "meta"
    assert not d.fid.sync_on_compute and not d.kid.sync_on_compute


def test_kid_leaves_the_training_rng_alone():
    d = metrics.DistributionMetrics(TinyFeatures())
    d.update(torch.rand(6, 3, 16, 16) * 2 - 1, real=True)
    d.update(torch.rand(6, 3, 16, 16) * 2 - 1, real=False)
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    first = d.compute()
    assert torch.equal(torch.rand(3), expected) and d.compute() == first  # and KID is reproducible


def test_inception_weights_missing_or_bad(torch_home, tmp_path, capsys):
    assert metrics.inception_features() is None
    assert "FID/KID are off" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="no such file"):
        metrics.inception_features(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ConfigError, match="not usable Inception weights"):
        metrics.inception_features(bad)


@pytest.mark.slow
def test_inception_from_a_weights_file(tmp_path, monkeypatch):
    """metrics.inception_weights=PATH: torch-fidelity's Inception loads the file (here random weights)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fi

    with monkeypatch.context() as mp:  # build it once without weights, to write a file of the right layout
        mp.setattr(fi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, **kw: None)
        mp.setattr(fi, "load_state_dict_from_url", lambda *a, **kw: None)
        mp.setattr(torch, "load", lambda *a, **kw: None)
        layout = fi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).state_dict()
    path = tmp_path / "inception.pth"
    torch.save(layout, path)
    net = metrics.inception_features(path)
    images = (torch.rand(3, 3, 40, 40) * 255).to(torch.uint8)
    assert net(images).shape == (3, 2048)


def _jsonl(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_cyclegan_validates_with_fid_kid_and_keeps_best(tiny_cfg, unaligned_root):
    cfg = tiny_cfg("model=cyclegan", "generator=resnet_6blocks", "data=unaligned", f"data.root={unaligned_root}",
                   "trainer.max_steps=3", "trainer.val_every=1", "+metrics.features._target_=stand_ins.TinyFeatures")
    assert cfg.checkpoint.monitor == "val/kid" and cfg.checkpoint.mode == "auto"  # model=cyclegan's choice
    result = fit(cfg)
    run = Path(cfg.run_dir)
    vals = [row for row in _jsonl(run) if "val/kid" in row]
    assert [v["step"] for v in vals] == [1, 2, 3]
    assert {"val/fid", "val/BtoA/fid", "val/BtoA/kid"} <= vals[0].keys()
    assert all(math.isfinite(v["val/fid"]) for v in vals)
    best = min(vals, key=lambda v: v["val/kid"])
    assert load_checkpoint(run / "checkpoints" / "best.pt")["step"] == best["step"] == result["best/step"]


@pytest.mark.slow
def test_cyclegan_without_features_trains_and_says_why(tiny_cfg, unaligned_root, capsys, monkeypatch):
    monkeypatch.setattr(metrics, "_said", set())
    monkeypatch.setattr(metrics, "_failed", set())
    cfg = tiny_cfg("model=cyclegan", "generator=resnet_6blocks", "data=unaligned", f"data.root={unaligned_root}",
                   "trainer.max_steps=2", "trainer.val_every=1")
    assert fit(cfg)["step"] == 2
    assert capsys.readouterr().err.count("FID/KID are off") == 1
    assert not (Path(cfg.run_dir) / "checkpoints" / "best.pt").exists()
