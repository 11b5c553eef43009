"""translate evaluate: our and reference checkpoints, paired and unpaired data, metrics.json + grid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict
from PIL import Image

from translate.config.compose import compose
from translate.data import AlignedData
from translate.evaluation.evaluate import run
from translate.evaluation.metrics import l1, ssim
from translate.loading.generator import load_generator
from translate.loading.reference import reference_key_map
from translate.networks import ResnetGenerator
from translate.training.loop import fit

ROOT = Path(__file__).resolve().parents[2]
STAND_IN = "+metrics.features._target_=stand_ins.TinyFeatures"


def _train(tmp: Path, *overrides: str) -> Path:
    cfg = compose(["debug=fast", "logger=none", "trainer.progress_bar=false", "trainer.max_steps=2",
                   "trainer.num_samples=0", "trainer.val_every=0", *overrides])
    with open_dict(cfg):
        cfg.run_dir = str(tmp / "run")
    fit(cfg)
    return tmp / "run"


def _evaluate(*overrides: str) -> dict:
    return run(compose(list(overrides), config_name="evaluate"))


@pytest.mark.slow
def test_pix2pix_checkpoint_on_the_val_split(tmp_path, aligned_root):
    ckpt = _train(tmp_path, "data=aligned", f"data.root={aligned_root}", "generator=unet_64", "data.load_size=64",
                  "data.crop_size=64")
    out = tmp_path / "eval"
    report = _evaluate(f"checkpoint={ckpt}", f"data.root={aligned_root}", f"output={out}", STAND_IN)
    saved = json.loads((out / "metrics.json").read_text())
    assert {"l1", "psnr", "ssim", "fid", "kid"} <= saved.keys() and saved["num_images"] == 2
    assert saved["skipped"] == {"lpips": "backbone weights not cached"}
    assert saved["l1"] == pytest.approx(report["l1"])
    # The same numbers by hand: the training crop size (64) came from the checkpoint, centred, no flip.
    G = load_generator(ckpt)
    val = AlignedData(root=aligned_root, load_size=64, crop_size=64, flip=False, num_workers=0).dataset("val",
                                                                                                        train=False)
    A = torch.stack([val[i]["A"] for i in range(2)])
    B = torch.stack([val[i]["B"] for i in range(2)])
    with torch.no_grad():
        fake = G(A)
    assert saved["l1"] == pytest.approx(float(l1(fake, B).mean()), rel=1e-5)
    assert saved["ssim"] == pytest.approx(float(ssim(fake, B).mean()), rel=1e-5)
    leaks = _evaluate(f"checkpoint={ckpt}", f"data.root={aligned_root}", f"output={tmp_path / 'leaks'}",
                      "metrics.fid=false", "metrics.leaks=true")  # shares of the 2 outputs: 0, 0.5 or 1
    assert leaks["leak_orientation"] in (0.0, 0.5, 1.0) and leaks["leak_colour"] in (0.0, 0.5, 1.0)
    with Image.open(out / "grid.png") as grid:
        assert grid.size == (3 * 64 + 4 * 2, 20 + 2 * 64 + 3 * 2)  # input | output | target, named; 2 rows, 2 px pad


@pytest.mark.slow
def test_cyclegan_checkpoint_gets_fid_and_kid_per_direction(tmp_path, unaligned_root):
    ckpt = _train(tmp_path, "model=cyclegan", "data=unaligned", f"data.root={unaligned_root}",
                  "generator=resnet_6blocks", "data.load_size=36", "data.crop_size=32")
    ab = _evaluate(f"checkpoint={ckpt}", "data=unaligned", f"data.root={unaligned_root}", f"output={tmp_path / 'ab'}",
                   STAND_IN)
    ba = _evaluate(f"checkpoint={ckpt}", "data=unaligned", f"data.root={unaligned_root}", "direction=BtoA",
                   f"output={tmp_path / 'ba'}", STAND_IN)
    assert ab["num_images"] == ba["num_images"] == 2 and ab["direction"] == "AtoB" and ba["direction"] == "BtoA"
    assert ab["fid"] > 0 and ab["fid"] != ba["fid"] and "psnr" not in ab  # no reference images: no PSNR
    assert (tmp_path / "ab" / "grid.png").is_file()


@pytest.mark.slow
def test_cli_with_reference_weights_and_bad_input(tmp_path, aligned_root):
    net = ResnetGenerator(n_blocks=6, ngf=8, norm="instance").eval()
    weights = tmp_path / "latest_net_G.pth"
    torch.save({v: net.state_dict()[k] for k, v in reference_key_map(net).items()}, weights)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "translate.evaluation.evaluate", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})

    ok = cli(f"checkpoint={weights}", "generator=resnet_6blocks", "generator.ngf=8", "generator.norm=instance",
             f"data.root={aligned_root}", "data.crop_size=32", "metrics.fid=false", "output=out")
    assert ok.returncode == 0, ok.stderr
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["num_images"] == 2 and 0 < saved["l1"] < 2 and "fid" not in saved
    missing = cli(f"checkpoint={tmp_path / 'nope.pt'}", f"data.root={aligned_root}", "output=out2")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and "nope.pt" in missing.stderr
    no_split = cli(f"checkpoint={weights}", "generator=resnet_6blocks", "generator.ngf=8", "generator.norm=instance",
                   f"data.root={aligned_root}", "split=test", "output=out3")
    assert no_split.returncode == 2 and "test" in no_split.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3" / "metrics.json").exists()
    no_root = cli(f"checkpoint={weights}", "generator=resnet_6blocks", "generator.ngf=8", "generator.norm=instance")
    assert no_root.returncode == 2 and "data.root" in no_root.stderr.strip().splitlines()[-1], no_root.stderr
    assert not list((tmp_path / "runs" / "evaluate").glob("*"))  # no empty run folder left by any call above


@pytest.mark.slow
def test_a_run_is_evaluated_on_its_own_data_without_data_root(tmp_path, aligned_root):
    ckpt = _train(tmp_path, "data=aligned", f"data.root={aligned_root}", "generator=unet_64", "data.load_size=64",
                  "data.crop_size=64")
    own = _evaluate(f"checkpoint={ckpt}", f"output={tmp_path / 'own'}", STAND_IN)
    given = _evaluate(f"checkpoint={ckpt}", f"data.root={aligned_root}", f"output={tmp_path / 'given'}", STAND_IN)
    assert own["data"] == str(aligned_root) and own["num_images"] == 2 and own["l1"] == given["l1"]
