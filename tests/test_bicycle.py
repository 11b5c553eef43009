"""Many outputs per input: BicycleGAN's style-code U-Net (input, all, adain injection), its encoder, the
model's losses and branches, training, resume, validation's diversity and the random-colour demo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from translate.errors import ConfigError
from translate.metrics import pairwise_distance, style_metrics, style_outputs
from translate.models.bicycle import kl_to_prior
from translate.networks import LatentUnetGenerator, StyleEncoder, UnetGenerator
from translate.train import fit

MODES = ["input", "all", "adain"]
# 64x64: the discriminators' half-size PatchGAN needs more than 1x1 features for its instance norm.
BICYCLE = ["model=bicycle", "generator=bicycle_unet", "data=aligned", "data.load_size=72", "data.crop_size=64", "generator.num_downs=6",
           "model.encoder.nef=8", "model.encoder.n_blocks=3", "data.batch_size=2", "generator.n_mlp=2",
           "generator.w_dim=16"]


def tiny_unet(mode: str, **kwargs) -> LatentUnetGenerator:
    torch.manual_seed(0)
    G = LatentUnetGenerator(**{"nz": 4, "z_inject": mode, "num_downs": 5, "ngf": 4, "w_dim": 8, "n_mlp": 2,
                               **kwargs})
    with torch.no_grad():  # away from the zero start of AdaIN's affine and the tiny Xavier init: z must show
        for p in G.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return G.eval()


# ---------------------------------------------------------------------------------------------- networks
@pytest.mark.parametrize("mode", MODES)
def test_the_latent_unet_makes_images_that_depend_on_z(mode):
    G, x = tiny_unet(mode), torch.randn(2, 3, 32, 32)
    z1, z2 = torch.randn(2, 4), torch.randn(2, 4)
    out = G(x, z1)
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1
    assert not torch.allclose(out, G(x, z2), atol=1e-4)
    assert torch.equal(G(x), G(x))  # no code: the mean style, deterministic


@pytest.mark.parametrize("mode", MODES)
def test_truncation_zero_gives_the_mean_style_for_every_code(mode):
    G, x = tiny_unet(mode), torch.randn(2, 3, 32, 32)
    mean = G(x)
    for _ in range(3):
        assert torch.allclose(G(x, torch.randn(2, 4) * 3, truncation=0.0), mean, atol=1e-5)
    z = torch.randn(2, 4)
    assert torch.equal(G(x, z, truncation=1.0), G(x, z))


def test_without_a_code_the_plain_modes_use_z_zero():
    for mode in ("input", "all"):
        G, x = tiny_unet(mode), torch.randn(2, 3, 32, 32)
        assert torch.equal(G(x), G(x, torch.zeros(2, 4)))


def test_the_input_mode_is_the_pix2pix_unet_with_z_channels():
    G = LatentUnetGenerator(nz=8, z_inject="input", num_downs=8, ngf=64, norm="batch", dropout=True)
    ref = UnetGenerator(in_channels=3 + 8, num_downs=8, ngf=64, norm="batch", dropout=True)
    assert sum(p.numel() for p in G.parameters()) == sum(p.numel() for p in ref.parameters())
    everywhere = LatentUnetGenerator(nz=8, z_inject="all", num_downs=8, ngf=64)
    # z joins the input of all 8 encoder levels: 8 more input channels for each level's 4x4 convolution.
    widths = [3, 64, 128, 256, 512, 512, 512, 512]
    extra = sum(8 * 16 * out for out in widths[1:] + [512])
    plain = LatentUnetGenerator(nz=8, z_inject="input", num_downs=8, ngf=64)
    assert sum(p.numel() for p in everywhere.parameters()) - sum(p.numel() for p in plain.parameters()) == extra - 8 * 16 * 64


def test_adain_mode_mixes_coarse_and_fine_styles_per_level():
    G, x = tiny_unet("adain"), torch.randn(1, 3, 32, 32)
    w1, w2 = G.map(torch.randn(1, 4)), G.map(torch.randn(1, 4))
    assert G.num_levels == 4  # every decoder level but the last (which has no norm)
    mixed = torch.cat([w1.expand(2, -1), w2.expand(2, -1)])[None].reshape(1, 4, -1)
    out_mixed = G(x, mixed, input_is_w=True)
    assert not torch.allclose(out_mixed, G(x, w1, input_is_w=True), atol=1e-4)
    assert not torch.allclose(out_mixed, G(x, w2, input_is_w=True), atol=1e-4)
    with pytest.raises(ConfigError, match="2 values for 4 levels"):
        G(x, w1, input_is_w=True, truncation=[0.5, 1.0])
    with pytest.raises(ConfigError, match="z_inject=adain"):
        tiny_unet("input")(x, torch.randn(1, 4), truncation=[0.5, 1.0, 1.0, 1.0])


def test_the_mean_w_is_tracked_in_training_only():
    G = tiny_unet("adain")
    x = torch.randn(2, 3, 32, 32)
    G(x, torch.randn(2, 4))
    assert torch.equal(G.w_avg, torch.zeros(8))
    G.train()(x, torch.randn(2, 4))
    assert G.w_avg.abs().sum() > 0


@pytest.mark.parametrize(("size", "n_blocks"), [(64, 3), (128, 4), (256, 5)])
def test_the_encoder_gives_a_mean_and_log_variance_per_image(size, n_blocks):
    E = StyleEncoder(nz=8, nef=8, n_blocks=n_blocks)
    mu, logvar = E(torch.randn(2, 3, size, size))
    assert mu.shape == logvar.shape == (2, 8)
    widths = [m.out_channels for m in E.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)]
    assert widths == [8 * min(4, n) for n in range(2, n_blocks + 1)]  # nef, 2nef, 3nef, 4nef as the reference


def test_kl_to_the_prior():
    zero = torch.zeros(3, 8)
    assert kl_to_prior(zero, zero) == 0
    mu, logvar = torch.full((1, 2), 2.0), torch.full((1, 2), np.log(0.25))
    # Per dimension 0.5 (sigma^2 + mu^2 - 1 - log sigma^2) = 0.5 (0.25 + 4 - 1 + log 4); two dimensions.
    assert torch.isclose(kl_to_prior(mu, logvar), torch.tensor(0.25 + 4 - 1 + np.log(4.0), dtype=torch.float32))


# ---------------------------------------------------------------------------------------------- the model
@pytest.fixture
def bicycle(tiny_cfg):
    from translate.config import build_model

    def make(*extra: str):
        torch.manual_seed(0)
        return build_model(tiny_cfg(*BICYCLE, *extra))

    return make


def _batch(n: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"A": torch.rand(n, 3, 64, 64, generator=g) * 2 - 1, "B": torch.rand(n, 3, 64, 64, generator=g) * 2 - 1}


def test_the_latent_regression_trains_g_but_not_e(bicycle):
    model = bicycle()
    batch = _batch()
    losses = model.g_step(batch, model.generate(batch))
    assert set(losses) >= {"loss/G/gan", "loss/G/gan2", "loss/G/l1", "loss/G/kl", "loss/G/z", "loss/G"}
    losses["loss/G/z"].backward(retain_graph=True)
    assert all(p.grad is None or not p.grad.any() for p in model.E.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.G.parameters())
    model.zero_grad(set_to_none=True)
    losses["loss/G/l1"].backward()  # the cVAE branch's terms do train E
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.E.parameters())


def test_the_discriminators_see_their_branch_and_only_the_output(bicycle):
    model = bicycle()
    assert model.D.discriminators[0].stages[0][0].in_channels == 3  # B alone, as the reference
    seen = []
    model.D2.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    batch = _batch()
    model.d_step(batch, model.generate(batch))
    assert torch.equal(seen[0], batch["B"][2:])  # D2's real images: the second half's targets
    assert bicycle("model.conditional_D=true").D.discriminators[0].stages[0][0].in_channels == 6


def test_an_odd_batch_is_refused(bicycle):
    with pytest.raises(ConfigError, match="even data.batch_size"):
        bicycle().generate(_batch(3))


def test_the_diversity_term_decays_to_zero(bicycle):
    model = bicycle("model.lambda_ds=2.0", "model.ds_decay_steps=4")
    batch = _batch()
    weights = []
    for _ in range(5):
        weights.append(model.ds_weight())
        losses = model.g_step(batch, model.generate(batch))
    assert weights == [2.0, 1.5, 1.0, 0.5, 0.0] and "loss/G/ds" not in losses
    assert model.extra_state() == {"g_steps": 5}


def test_a_plain_unet_is_refused_for_model_bicycle(tiny_cfg):
    from translate.config import build_model

    with pytest.raises(ConfigError, match="generator=bicycle_unet"):
        build_model(tiny_cfg("model=bicycle", "data=aligned", "generator=unet_64"))


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_every_injection_mode_trains_validates_and_samples(tiny_cfg, aligned_root, mode):
    cfg = tiny_cfg(*BICYCLE, f"data.root={aligned_root}", f"generator.z_inject={mode}",
                   "trainer.val_every=2", "trainer.max_steps=2", "trainer.sample_every=2", "model.num_styles=3")
    metrics = fit(cfg)
    assert metrics["step"] == 2 and np.isfinite(metrics["loss/G"]) and np.isfinite(metrics["loss/D"])
    assert metrics["val/diversity"] > 0 and np.isfinite(metrics["val/random_l1"])
    grid = Image.open(f"{cfg.run_dir}/samples/step_0000002.png")
    assert grid.size[0] == 2 + 6 * 66  # input | mean | 3 styles | target, 64 px tiles


@pytest.mark.slow
def test_bicycle_resume_is_exact(tmp_path, tiny_cfg, aligned_root):
    from conftest import fit_killed_at_step

    from translate.checkpoint import load_checkpoint
    from translate.config import resume_config

    common = [*BICYCLE, f"data.root={aligned_root}", "generator.z_inject=adain", "model.lambda_ds=1",
              "model.ds_decay_steps=10", "trainer.checkpoint_every=3", "trainer.sample_every=100",
              "trainer.max_steps=6", "trainer.ema.enabled=true"]
    fit(tiny_cfg(*common, run_dir=tmp_path / "full"))
    fit_killed_at_step(tiny_cfg(*common, run_dir=tmp_path / "split"), 4)
    fit(resume_config(str(tmp_path / "split"), []))
    a, b = (load_checkpoint(tmp_path / r / "checkpoints" / "last.pt") for r in ("full", "split"))
    assert a["model_state"] == b["model_state"] == {"g_steps": 6}
    for name in ("G", "E", "D", "D2"):
        for k, v in a["networks"][name].items():
            assert torch.equal(v, b["networks"][name][k]), f"{name}.{k}"
    assert torch.equal(a["networks"]["G"]["w_avg"], b["networks"]["G"]["w_avg"])


# ---------------------------------------------------------------------------------------------- diversity
def test_diversity_is_zero_for_equal_outputs_and_grows_with_their_spread():
    x = torch.zeros(2, 3, 8, 8)
    assert pairwise_distance([x, x, x]).eq(0).all()
    near, far = pairwise_distance([x, x + 0.1]), pairwise_distance([x, x + 0.5])
    assert torch.allclose(near, torch.full((2,), 0.1)) and (far > near).all()
    metrics = style_metrics([x, x + 0.2], torch.zeros(2, 3, 8, 8), None)
    assert torch.allclose(metrics["random_l1"], torch.full((2,), 0.1))
    assert torch.equal(metrics["diversity"], metrics["diversity_l1"])  # no LPIPS weights: L1
    with pytest.raises(ConfigError, match="at least 2"):
        pairwise_distance([x])


def test_dropout_passes_give_pix2pix_its_noise_and_leave_the_mode_alone():
    torch.manual_seed(0)
    G = UnetGenerator(num_downs=5, ngf=4, dropout=True, norm="instance").eval()
    # num_downs=5 has no dropout level (the reference puts them in the 8*ngf levels): one of 8 has three.
    assert style_outputs(G, torch.randn(1, 3, 32, 32), 2)[0].shape == (1, 3, 32, 32)
    G = UnetGenerator(num_downs=8, ngf=4, dropout=True, norm="instance").eval()
    x = torch.randn(1, 3, 256, 256)
    a, b = style_outputs(G, x, 2, seed=0)
    assert not torch.equal(a, b)
    assert torch.equal(style_outputs(G, x, 2, seed=0)[0], a)  # seeded: the same passes again
    assert not G.training and all(not m.training for m in G.modules())


def test_the_random_colour_demo_paints_each_scene_in_one_of_four_colours(tmp_path):
    from translate.data.demo import RANDOM_COLOURS, sketch2photo

    data = sketch2photo(root=tmp_path / "demo", num_train=40, num_val=4, random_colours=True, size=32)
    rows = (data.root / "labels.csv").read_text().splitlines()
    assert rows[0] == "file,split,colour" and len(rows) == 45
    colours = [r.split(",")[2] for r in rows[1:]]
    assert set(colours) == set(RANDOM_COLOURS)
    plain = sketch2photo(root=tmp_path / "plain", num_train=4, num_val=1, size=32)
    assert not (plain.root / "labels.csv").exists()
    # The same scenes: the sketches are identical, only the colours differ.
    for i in range(4):
        name = f"train/A/{i:05d}.png"
        assert np.array_equal(np.asarray(Image.open(data.root / name)), np.asarray(Image.open(plain.root / name)))


def test_reference_settings():
    from translate.config import compose

    cfg = compose(["~experiment", "model=bicycle", "data.root=x"])
    assert cfg.generator._target_.endswith("LatentUnetGenerator") and cfg.generator.num_downs == 8
    assert (cfg.generator.z_inject, cfg.generator.norm, cfg.model.nz) == ("all", "instance", 8)
    assert (cfg.model.lambda_l1, cfg.model.lambda_kl, cfg.model.lambda_z) == (10, 0.01, 0.5)
    assert cfg.gan_loss._target_.endswith("LSGAN") and cfg.model.init_type == "xavier"
    assert (cfg.discriminator.num_D, cfg.model.conditional_D, cfg.model.encoder.n_blocks) == (2, False, 5)
    shoes = compose(["experiment=sketch2photo_bicycle"])
    assert (shoes.data.batch_size, shoes.data.crop_size, shoes.generator.dropout) == (2, 256, True)
