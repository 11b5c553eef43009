"""Autoencoders (``model=autoencoder``, ``model=vae``): the network, the KL term, training, calibration,
resume and sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from translate.config.checkpoint import load_checkpoint
from translate.config.compose import build_model, compose, resume_config
from translate.core.errors import ConfigError
from translate.models.autoencoder import reconstruction_error
from translate.models.losses import gaussian_kl
from translate.networks.autoencoder import Autoencoder, Decoder
from translate.training.loop import fit

AE = ["model=autoencoder", "data=single", "generator.ngf=8", "generator.n_downs=3", "generator.latent_dim=16",
      "generator.max_channels=32"]


def blobs(root: Path, n: int, seed: int, size: int = 32) -> Path:
    """Smooth images (a coloured rectangle on a coloured ground): something a bottleneck can learn."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image = np.empty((size, size, 3), np.uint8)
        image[:] = rng.integers(0, 256, 3)
        x0, y0 = rng.integers(0, size // 2, 2)
        image[y0 : y0 + size // 2, x0 : x0 + size // 2] = rng.integers(0, 256, 3)
        Image.fromarray(image).save(root / f"{i:03d}.png")
    return root


@pytest.fixture
def blob_root(tmp_path) -> Path:
    blobs(tmp_path / "blobs" / "train", 200, 0)
    blobs(tmp_path / "blobs" / "val", 4, 1)
    return tmp_path / "blobs"


def test_the_network_keeps_only_its_bottleneck():
    dense = Autoencoder(size=32, ngf=8, n_downs=3, latent_dim=5)
    x = torch.randn(2, 3, 32, 32)
    code, log_var = dense.encode(x)
    assert code.shape == (2, 5) and log_var is None and dense(x).shape == x.shape
    assert dense.decode(code).shape == x.shape and dense.z_dim == 5
    spatial = Autoencoder(size=32, ngf=8, n_downs=3, latent_dim=4, dense=False, variational=True)
    mean, log_var = spatial.encode(torch.randn(1, 3, 40, 56))  # any multiple of 8
    assert mean.shape == log_var.shape == (1, 4, 5, 7)
    assert spatial(torch.randn(1, 3, 40, 56)).shape == (1, 3, 40, 56) and spatial.z_dim == 4 * 4 * 4
    assert Decoder(spatial)(torch.randn(3, spatial.z_dim)).shape == (3, 3, 32, 32)
    with pytest.raises(ValueError, match="size=30 is not a multiple of 2\\*\\*n_downs=8"):
        Autoencoder(size=30, n_downs=3)


def test_the_kl_term_matches_the_closed_form():
    mean, log_var = torch.tensor([[0.5, -1.0, 0.0]]), torch.tensor([[0.2, -0.7, 0.0]])
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(mean, (0.5 * log_var).exp()),
                                                 torch.distributions.Normal(0.0, 1.0)).sum()
    assert torch.allclose(gaussian_kl(mean, log_var), expected[None])
    assert gaussian_kl(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0.0  # the prior itself


def test_beta_needs_a_variational_encoder():
    cfg = compose([*AE, "data.root=/tmp", "data.crop_size=32", "model.beta=1"])
    with pytest.raises(ConfigError, match="model.beta weighs the KL term"):
        build_model(cfg)


@pytest.mark.slow
def test_reconstruction_falls_and_the_val_errors_are_kept(tiny_cfg, blob_root):
    cfg = tiny_cfg(*AE, f"data.root={blob_root}", "data.batch_size=8", "data.max_size=null", "trainer.max_steps=120",
                   "trainer.val_every=4")
    fit(cfg)
    val = [m["val/l1"] for m in _metrics(cfg.run_dir) if "val/l1" in m]
    assert len(val) == 30 and val[-1] < 0.9 * val[0]  # unseen images, 200 to learn from
    errors = load_checkpoint(Path(cfg.run_dir) / "checkpoints" / "last.pt")["model_state"]["val_errors"]
    assert errors.shape == (4,) and errors.min() > 0  # one per val image, from the last validation


def _metrics(run_dir) -> list[dict]:
    import json

    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_the_vae_logs_its_kl_and_its_decoder_samples(tmp_path, tiny_cfg, blob_root):
    from omegaconf import OmegaConf

    from translate.latent.generate import run as generate

    cfg = tiny_cfg("model=vae", *AE[1:], f"data.root={blob_root}", "data.batch_size=4", "trainer.max_steps=4",
                   "trainer.val_every=2")
    fit(cfg)
    logged = [m for m in _metrics(cfg.run_dir) if "loss/G/kl" in m]
    assert logged and logged[0]["loss/G/kl"] > 0
    out = tmp_path / "samples"
    gen = OmegaConf.merge(compose([f"checkpoint={cfg.run_dir}", f"output={out}", "n=4"], config_name="generate"))
    summary = generate(gen)
    assert summary.written == 4 and (out / "grid.png").is_file()
    with Image.open(out / "seed0_00000.png") as im:
        assert im.size == (32, 32)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["autoencoder", "vae"])
def test_resume_is_exact(tmp_path, tiny_cfg, blob_root, model):
    from helpers import fit_killed_at_step

    common = [f"model={model}", *AE[1:], f"data.root={blob_root}", "data.batch_size=2",
              "trainer.checkpoint_every=3", "trainer.sample_every=100", "trainer.val_every=2", "trainer.max_steps=8"]
    fit(tiny_cfg(*common, run_dir=tmp_path / "full"))
    fit_killed_at_step(tiny_cfg(*common, run_dir=tmp_path / "split"), 4)
    fit(resume_config(str(tmp_path / "split"), []))
    a, b = (load_checkpoint(tmp_path / r / "checkpoints" / "last.pt") for r in ("full", "split"))
    for k, v in a["networks"]["G"].items():
        assert torch.equal(v, b["networks"]["G"][k]), k
    assert torch.equal(a["model_state"]["val_errors"], b["model_state"]["val_errors"])


def test_the_score_is_the_mean_absolute_error():
    G = torch.nn.Identity()
    x = torch.zeros(2, 3, 4, 4)
    assert torch.equal(reconstruction_error(G, x), torch.zeros(2))
    assert torch.allclose(reconstruction_error(G, x, torch.ones(2, 3, 4, 4)), torch.ones(2))


def test_two_principal_axes_hold_the_most_variance():
    from translate.latent.plot import project_2d

    g = torch.Generator().manual_seed(0)
    codes = torch.randn(200, 6, generator=g) * torch.tensor([5.0, 3.0, 0.1, 0.1, 0.1, 0.1])
    points, share = project_2d(codes)
    assert points.shape == (200, 2) and share[0] > share[1] > 0.2 and sum(share) > 0.99


@pytest.mark.slow
def test_the_latent_plot_colours_val_codes_by_a_label(tmp_path, tiny_cfg, blob_root):
    from translate.latent.plot import main

    cfg = tiny_cfg("model=vae", *AE[1:], f"data.root={blob_root}", "data.batch_size=4", "trainer.max_steps=2",
                   "trainer.val_every=2")
    fit(cfg)
    rows = ["file,size"] + [f"val/{i:03d}.png,{'small' if i % 2 else 'large'}" for i in range(4)]
    (blob_root / "labels.csv").write_text("\n".join(rows) + "\n")
    assert main([cfg.run_dir, "label=size", f"output={tmp_path / 'latents.png'}"]) == 0
    with Image.open(tmp_path / "latents.png") as im:
        assert im.size[0] > 300
    assert main([cfg.run_dir, "label=colour"]) == 2  # no such column: one line, exit 2
