"""Validation metrics against known values, and best-checkpoint selection."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from translate.checkpoint import load_checkpoint
from translate.metrics import evaluate_paired, l1, psnr, ssim
from translate.train import fit


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
                   "data.crop_size=64", "trainer.max_steps=6", "trainer.val_every=1", "checkpoint.monitor=val/l1",
                   "checkpoint.mode=min")
    result = fit(cfg)
    run = Path(cfg.run_dir)
    vals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "val/l1" in line]
    assert [v["step"] for v in vals] == [1, 2, 3, 4, 5, 6]
    best = min(vals, key=lambda v: v["val/l1"])
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt["step"] == best["step"] and ckpt["best"]["val/l1"] == pytest.approx(best["val/l1"])
    assert result["best/val/l1"] == pytest.approx(best["val/l1"]) and result["best/step"] == best["step"]
    assert {"val/psnr", "val/ssim"} <= vals[0].keys()
