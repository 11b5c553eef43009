"""Differentiable augmentation in training (issue 32): every family with a discriminator runs it wherever D judges
an image, pairs keep their source's colours, and ADA's probability moves, is logged and resumes exactly."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import fit_killed_at_step
from omegaconf import open_dict

from translate.config.checkpoint import load_checkpoint
from translate.config.compose import compose, resume_config
from translate.models.augment import ADA, DiffAugment
from translate.training.loop import fit

DEMO = ["debug=fast", "trainer.progress_bar=false", "trainer.max_steps=2", "data.num_train=6", "data.num_val=2",
        "data.load_size=64", "data.crop_size=64"]
# family -> (its demo experiment and the augmentation it runs here, the channels before a D input's image)
FAMILIES = {
    "pix2pix": (["experiment=demo", "augment=ada", "augment.initial_p=1"], 3),
    "bicycle": (["experiment=demo_bicycle", "augment=diffaugment", "data.batch_size=2"], 0),  # its D judges images alone
    "cyclegan": (["experiment=demo_day2night", "augment=ada", "augment.initial_p=1"], 0),
    "cut": (["experiment=demo_day2night_cut", "augment=diffaugment"], 0),
    "fastcut": (["experiment=demo_day2night_fastcut", "augment=ada", "augment.initial_p=1"], 0),
    "dcgan": (["experiment=demo_faces", "augment=diffaugment"], 0),
    "stylegan": (["experiment=demo_faces_stylegan", "augment=ada", "augment.initial_p=1", "model.r1_every=1"], 0),
    "spade": (["experiment=demo_labels", "augment=diffaugment", "generator.ngf=4", "generator.hidden=8",
               "model.lambda_vgg=0"], 8),
    "pix2pixhd": (["experiment=demo_labels_pix2pixhd", "augment=ada", "augment.initial_p=1", "model.lambda_vgg=0",
                   "model.global_steps=0", "model.fix_global_steps=0"], 8),
}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_shows_its_discriminators_augmented_images(tmp_path, monkeypatch, family):
    overrides, source_channels = FAMILIES[family]
    calls: list[tuple[int, int, bool]] = []
    for cls in (ADA, DiffAugment):
        original = cls.forward

        def spy(self, x, colour_from=0, _original=original):
            calls.append((x.shape[1], colour_from, x.requires_grad))
            return _original(self, x, colour_from)

        monkeypatch.setattr(cls, "forward", spy)
    cfg = compose([*overrides, *DEMO, f"data.root={tmp_path / 'demo'}"])
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path / "run")
    metrics = fit(cfg)
    assert metrics["step"] == 2 and torch.isfinite(torch.tensor(metrics["loss/G"]))
    assert calls and {c[1] for c in calls} == {source_channels}  # a pair's image alone is recoloured
    assert any(c[2] for c in calls)  # G's adversarial term: gradients flow through the augmentation
    assert any(k.startswith("D_out/") and k.endswith("/real_sign") for k in metrics)


@pytest.mark.slow
@pytest.mark.parametrize("recipe,experiment", [("small_paired", "demo"), ("small_unpaired", "demo_day2night_cut")])
def test_a_recipe_trains_on_its_demo(tmp_path, recipe, experiment):
    cfg = compose([f"experiment={experiment}", f"recipe={recipe}", *DEMO, f"data.root={tmp_path / 'demo'}"])
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path / "run")
    assert fit(cfg)["step"] == 2
    stored = load_checkpoint(tmp_path / "run")["config"]
    assert stored["augment"]["_target_"].endswith("DiffAugment") and stored["gan_loss"] == cfg.gan_loss


def test_an_autoencoders_patchgan_is_augmented_too(tiny_cfg, aligned_root, monkeypatch):
    seen = []
    original = DiffAugment.forward
    monkeypatch.setattr(DiffAugment, "forward", lambda self, x, colour_from=0: seen.append(x.shape) or
                        original(self, x, colour_from))
    fit(tiny_cfg("model=autoencoder", "data=single", f"data.root={aligned_root / 'train' / 'A'}",
                 "model.lambda_gan=1", "augment=diffaugment"))
    assert seen


@pytest.mark.slow
def test_ada_probability_is_logged_saved_and_resumed_exactly(tmp_path, tiny_cfg, aligned_root):
    common = ["model=pix2pix", "generator=unet_64", "data=aligned", f"data.root={aligned_root}", "data.batch_size=2",
              "data.load_size=72", "data.crop_size=64", "augment=ada", "augment.speed_kimg=0.05",
              "augment.interval=1", "augment.initial_p=0.3", "trainer.checkpoint_every=3", "trainer.log_every=1",
              "trainer.sample_every=100"]
    fit(tiny_cfg(*common, "trainer.max_steps=6", run_dir=tmp_path / "full"))
    fit_killed_at_step(tiny_cfg(*common, "trainer.max_steps=6", run_dir=tmp_path / "split"), 4)
    assert fit(resume_config(str(tmp_path / "split"), []))["step"] == 6
    full, split = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "split")
    assert full["augment"]["p"] != 0.3 and torch.equal(full["augment"]["p"], split["augment"]["p"])
    for net in full["networks"]:
        for k, v in full["networks"][net].items():
            assert torch.equal(v, split["networks"][net][k]), (net, k)
    logged = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    ps = [line["augment/p"] for line in logged if "augment/p" in line]
    assert len(set(ps)) > 1  # p moves every D step here (interval 1, 50 images per unit of p)
    from translate.core.errors import ConfigError

    with pytest.raises(ConfigError, match="augment=diffaugment: config groups cannot change when resuming"):
        fit(resume_config(str(tmp_path / "full"), ["augment=diffaugment", "trainer.max_steps=8"]))


def test_a_bad_policy_is_one_line(tiny_cfg, aligned_root):
    from translate.core.errors import ConfigError

    with pytest.raises(ConfigError, match="augment.policy: 'flip' is not one of"):
        fit(tiny_cfg("data=aligned", "generator=unet_64", f"data.root={aligned_root}", "augment=diffaugment",
                     "augment.policy=flip", "data.load_size=64", "data.crop_size=64"))

