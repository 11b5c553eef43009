"""Noise -> image: DCGAN, the anime-face tutorial's networks, StyleGAN's parts (mapping, AdaIN, noise, mixing,
truncation), noisy labels, the model on the loop, the face demo, generation and export."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_image
from PIL import Image

from translate.core.errors import ConfigError
from translate.models.losses import LSGAN, VanillaGAN
from translate.networks import (
    DCGANDiscriminator,
    DCGANGenerator,
    StyleDiscriminator,
    StyleGenerator,
    TutorialDiscriminator,
    TutorialGenerator,
)
from translate.networks.latent import MinibatchStdDev
from translate.networks.stylegan import AdaIN, EqualLinear, MappingNetwork, NoiseInput
from translate.training.loop import fit

ROOT = Path(__file__).resolve().parents[2]
GAN = ["model=gan", "data=single"]


def tiny_style(**kwargs) -> StyleGenerator:
    torch.manual_seed(0)
    return StyleGenerator(**{"size": 32, "z_dim": 16, "n_mlp": 2, "ngf": 4, "max_channels": 16, **kwargs})


@pytest.fixture
def faces_root(tmp_path) -> Path:
    """root/{train,val}/NNN.png: 8 and 4 small random images."""
    root = tmp_path / "faces"
    for split, n, first in (("train", 8, 0), ("val", 4, 50)):
        for i in range(n):
            write_image(root / split / f"{i:03d}.png", seed=first + i)
    return root


# ---------------------------------------------------------------------------------------------- networks
@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("pair", [(DCGANGenerator, DCGANDiscriminator), (TutorialGenerator, TutorialDiscriminator)],
                         ids=["dcgan", "tutorial"])
def test_latent_generators_make_images_of_their_size(pair, size):
    G, D = pair[0](size=size, ngf=8), pair[1](size=size, ndf=8)
    images = G(torch.randn(2, G.z_dim))
    assert images.shape == (2, 3, size, size) and images.abs().max() <= 1
    assert D(images).shape == (2, 1)


def test_dcgan_follows_radford():
    G, D = DCGANGenerator(size=64, ngf=64), DCGANDiscriminator(size=64, ndf=64)
    convs = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == [512, 256, 128, 64, 3] and all(m.bias is None for m in convs)
    assert isinstance(G.net[-1], torch.nn.Tanh) and isinstance(G.net[2], torch.nn.ReLU)
    assert not isinstance(D.net[1], torch.nn.BatchNorm2d) and D.net[1].negative_slope == 0.2  # no BN on the first
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.std().item() - 0.02) < 0.002


def test_the_tutorial_networks_are_as_written():
    G, D = TutorialGenerator(size=64), TutorialDiscriminator(size=64)
    assert G.dense[0].out_features == 128 * 16 * 16
    kernels = [m.kernel_size for m in G.net if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert kernels == [(5, 5), (4, 4), (4, 4), (5, 5), (8, 8)]
    sides = []
    x = torch.zeros(1, 3, 64, 64)
    for m in D.features:
        x = m(x)
        sides.append(x.shape[-1])
    assert sides[-1] == 5 and 30 in sides and 13 in sides  # 64 -> 30 -> 13 -> 5
    assert D.head[1].p == 0.4


def test_the_tutorial_networks_start_from_keras_glorot_weights():
    """Keras' defaults, as the tutorial trained: Glorot-uniform weights, zero biases; init=dcgan N(0, 0.02)."""
    torch.manual_seed(0)
    G = TutorialGenerator(size=64, ngf=32)
    with torch.no_grad():
        for m in (G.dense[0], G.net[0], G.net[2]):
            fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(m.weight)
            bound = (6 / (fan_in + fan_out)) ** 0.5
            assert 0.95 * bound < float(m.weight.abs().max()) <= bound
            assert float(m.weight.std()) == pytest.approx(bound / 3**0.5, rel=0.05)  # uniform, not normal
            assert float(m.bias.abs().max()) == 0
    D = TutorialDiscriminator(size=64, init="dcgan")
    assert float(D.features[0].weight.std()) == pytest.approx(0.02, rel=0.15)
    from omegaconf import OmegaConf

    from translate.core.schema import check_target_node

    with pytest.raises(ConfigError, match="generator.init"):
        check_target_node(OmegaConf.create({"init": "he"}), "generator", TutorialGenerator)


def test_sizes_that_are_not_powers_of_two_are_refused():
    with pytest.raises(ConfigError, match="size=48"):
        DCGANGenerator(size=48)
    with pytest.raises(ConfigError, match="size=40"):
        StyleGenerator(size=40)


# ---------------------------------------------------------------------------------------------- StyleGAN parts
def test_mapping_network_keeps_the_width_and_uses_equalised_rates():
    net = MappingNetwork(z_dim=32, n_mlp=8, lr_mul=0.01)
    linears = [m for m in net.modules() if isinstance(m, EqualLinear)]
    assert len(linears) == 8 and all(m.weight.shape == (32, 32) for m in linears)
    # Stored N(0, 1/lr_mul), used at lr_mul / sqrt(fan_in): the effective weights have He's scale.
    assert abs(linears[0].weight.std().item() * 0.01 - 1.0) < 0.1
    assert net(torch.randn(4, 32)).shape == (4, 32)


def test_mapping_network_keeps_the_spread_of_w_through_its_layers():
    # He's gain sqrt(2) before each LeakyReLU keeps the variance: without it eight layers shrink w's spread
    # about 14-fold (0.52 per layer), and moving along an axis in w hardly changes the image.
    torch.manual_seed(0)
    w = MappingNetwork(z_dim=256, n_mlp=8)(torch.randn(512, 256))
    assert 0.5 < w.pow(2).mean().sqrt().item() < 2.0


def test_adain_output_has_the_style_scale_and_bias():
    adain = AdaIN(channels=3, w_dim=8)
    with torch.no_grad():
        adain.affine.weight.normal_()
    w = torch.randn(2, 8)
    x = torch.randn(2, 3, 16, 16) * 5 + 3  # statistics of its own, removed by the normalisation
    y = adain(x, w)
    scale, bias = adain.style(w)
    assert torch.allclose(y.mean((2, 3)), bias.flatten(1), atol=1e-4)
    assert torch.allclose(y.std((2, 3), unbiased=False), scale.abs().flatten(1), atol=1e-3)


def test_noise_input_is_scaled_per_channel_and_fixed_or_random():
    noise = NoiseInput(2, 8, torch.Generator().manual_seed(0))
    x = torch.zeros(1, 2, 8, 8)
    assert torch.equal(noise(x, "random"), x)  # weight 0 at the start
    with torch.no_grad():
        noise.weight[:, 0] = 1.0  # channel 1 stays 0
    a, b = noise(x, "random"), noise(x, "random")
    assert not torch.equal(a, b) and torch.equal(a[:, 1], x[:, 1])
    assert torch.equal(noise(x, "fixed"), noise(x, "fixed")) and torch.equal(noise(x, "none"), x)


def test_truncation_psi_zero_is_one_image_and_psi_one_is_untruncated():
    G = tiny_style().eval()
    with torch.no_grad():
        G.w_avg.normal_()
        z = torch.randn(4, 16)
        average = G(z, truncation=0.0, noise="fixed")
        assert torch.allclose(average, average[:1].expand_as(average), atol=1e-5)
        plain = G.synthesis(G.per_layer(G.map(z)), "fixed")
        assert torch.equal(G(z, truncation=1.0, noise="fixed"), plain)
        assert not torch.allclose(G(z, truncation=0.5, noise="fixed"), plain)
        # One psi per level: 0 on the coarse levels pulls only those to the average.
        ws = G.truncate(G.per_layer(G.map(z)), [0.0, 0.0, 1.0, 1.0])
        assert torch.allclose(ws[:, :4], G.w_avg.expand(4, 4, -1)) and torch.allclose(ws[:, 4:], G.per_layer(G.map(z))[:, 4:], atol=1e-6)
    with pytest.raises(ConfigError, match="3 values for 4 levels"):
        G.truncate(G.per_layer(G.map(z)), [1.0, 1.0, 1.0])


def test_w_avg_is_tracked_in_training_only():
    G = tiny_style(style_mixing=0.0)
    z = torch.randn(64, 16)
    G.eval()(z)
    assert torch.equal(G.w_avg, torch.zeros(16))
    G.train()
    for _ in range(3):
        G(z)
    mean_w = G.mapping(z).mean(0)
    expected = mean_w * (1 - 0.995**3)  # three moves of 1 - beta from zero towards the same mean
    assert torch.allclose(G.w_avg, expected, atol=1e-6)


def _level_outputs(G: StyleGenerator, ws: torch.Tensor) -> list[torch.Tensor]:
    outputs = []
    handles = [layer.register_forward_hook(lambda m, i, o: outputs.append(o)) for layer in G.layers]
    try:
        G.synthesis(ws, "fixed")
    finally:
        for h in handles:
            h.remove()
    return outputs


def test_style_mixing_takes_coarse_levels_from_one_latent_only():
    """Changing the latent of the fine levels leaves every coarse layer's output untouched and changes the
    fine ones: what a mixing grid's rows and columns show."""
    G = tiny_style().eval()
    with torch.no_grad():
        for layer in G.layers:  # non-zero noise weights, so 'fixed' noise matters too
            layer.noise.weight.normal_()
        a, b = G.per_layer(G.map(torch.randn(1, 16))), G.per_layer(G.map(torch.randn(1, 16)))
        cut = 4  # levels 4x4 and 8x8 from a
        mixed = torch.cat([a[:, :cut], b[:, cut:]], 1)
        ours, theirs, base = _level_outputs(G, mixed), _level_outputs(G, b), _level_outputs(G, a)
    for i in range(cut):
        assert torch.equal(ours[i], base[i])
    for i in range(cut, len(ours)):
        assert not torch.allclose(ours[i], base[i]) and not torch.allclose(ours[i], theirs[i])


def test_training_mixes_two_latents_at_a_random_crossover(monkeypatch):
    G = tiny_style(style_mixing=1.0).train()
    seen = []
    monkeypatch.setattr(G, "synthesis", lambda ws, noise="random": seen.append(ws) or torch.zeros(1))
    crossovers = set()
    for _ in range(30):
        G(torch.randn(2, 16))
        ws = seen[-1]
        switch = [i for i in range(1, G.num_layers) if not torch.equal(ws[:, i], ws[:, i - 1])]
        assert len(switch) == 1  # one crossover: two latents, one after the other
        crossovers.add(switch[0])
    assert len(crossovers) > 3  # a random crossover layer
    G0 = tiny_style(style_mixing=0.0).train()
    monkeypatch.setattr(G0, "synthesis", lambda ws, noise="random": seen.append(ws) or torch.zeros(1))
    G0(torch.randn(2, 16))
    assert all(torch.equal(seen[-1][:, i], seen[-1][:, 0]) for i in range(G0.num_layers))


def test_style_discriminator_judges_whole_images_with_minibatch_stddev():
    D = StyleDiscriminator(size=32, ndf=4, max_channels=16)
    x = torch.randn(4, 3, 32, 32)
    assert D(x).shape == (4, 1)
    same = x[:1].expand(4, -1, -1, -1)
    feats = D.mbstd(torch.randn(4, 2, 4, 4))
    assert feats.shape == (4, 3, 4, 4)
    assert torch.equal(D.mbstd(same)[:, -1], torch.full((4, 32, 32), D.mbstd(same)[0, -1, 0, 0].item()))
    assert D.mbstd(same)[0, -1, 0, 0] < 1e-3  # identical images: no spread


def test_dcgan_discriminator_can_see_the_batch_spread():
    D = DCGANDiscriminator(size=32, ndf=4, minibatch_std=True)
    assert isinstance(D.net[-2], MinibatchStdDev) and D.net[-1].in_channels == 4 * 4 + 1
    x = torch.randn(4, 3, 32, 32)
    assert D(x).shape == (4, 1)
    D.eval()
    varied, alike = D(x), D(x[:1].expand(4, -1, -1, -1))
    assert not torch.allclose(varied[:1], alike[:1])  # the same image judged differently in a collapsed batch
    assert DCGANDiscriminator(size=32, ndf=4).net[-1].in_channels == 16


# ---------------------------------------------------------------------------------------------- noisy labels
def test_noisy_labels_draw_targets_from_their_ranges():
    loss = VanillaGAN(real_label_range=[0.8, 1.0], fake_label_range=[0.0, 0.2])
    logits = torch.zeros(1000, 1)
    targets = loss.labels(logits, 1.0, loss.real_label_range)
    assert 0.8 <= targets.min() and targets.max() <= 1.0 and targets.std() > 0.03
    # BCE of logit 0 does not depend on the target; a logit of 3 is closer to 0.9 than to 1.
    strong = torch.full((1000, 1), 3.0)
    noisy, clean = loss.d_real(strong), VanillaGAN().d_real(strong)
    assert noisy > clean
    assert torch.isclose(loss.g_fake(strong), clean)  # G's target stays 1
    fake = loss.d_fake(torch.full((1000, 1), -3.0))
    assert fake > VanillaGAN().d_fake(torch.full((1000, 1), -3.0))
    assert LSGAN(fake_label_range=[0.1, 0.1]).d_fake(torch.full((4, 1), 0.1)) == 0


@pytest.mark.parametrize("bad", [[0.9, 0.8], [0.5, 1.5], [1.0], "x"])
def test_bad_label_ranges_are_refused(bad):
    with pytest.raises(ConfigError, match="gan_loss.real_label_range"):
        VanillaGAN(real_label_range=bad)


# ---------------------------------------------------------------------------------------------- the model on the loop
@pytest.mark.slow
@pytest.mark.parametrize("nets", [["generator=dcgan", "discriminator=dcgan"],
                                  ["generator=tutorial", "discriminator=tutorial", "gan_loss.real_label_range=[0.8,1]"],
                                  ["generator=stylegan", "discriminator=stylegan", "model.r1_gamma=10",
                                   "generator.n_mlp=2", "generator.z_dim=16", "trainer.ema.enabled=true"]],
                         ids=["dcgan", "tutorial", "stylegan"])
def test_a_gan_trains_samples_validates_and_checkpoints(tiny_cfg, faces_root, nets):
    cfg = tiny_cfg(*GAN, *nets, f"data.root={faces_root}", "data.batch_size=2", "trainer.num_samples=4",
                   "trainer.val_every=4", "+metrics.features._target_=translate.latent.attributes.PixelFeatures")
    metrics = fit(cfg)
    assert metrics["step"] == 4 and np.isfinite(metrics["loss/G"]) and np.isfinite(metrics["loss/D"])
    assert "val/fid" in metrics and "val/kid" in metrics
    grid = Image.open(Path(cfg.run_dir) / "samples" / "step_0000004.png")
    assert grid.size == (2 + 2 * 130, 2 + 2 * 130)  # 4 fixed latents as 2 x 2 tiles of 32 px, shown at 128
    assert (Path(cfg.run_dir) / "checkpoints" / "last.pt").is_file()


def test_a_patch_discriminator_is_refused_for_model_gan(tiny_cfg, faces_root):
    with pytest.raises(ConfigError, match="discriminator=dcgan, stylegan or tutorial"):
        fit(tiny_cfg(*GAN, "discriminator=patchgan", f"data.root={faces_root}"))


@pytest.mark.slow
def test_gan_resume_is_exact(tmp_path, tiny_cfg, faces_root):
    """StyleGAN with style mixing, lazy R1 (a step counter in the model's state) and EMA, killed and resumed."""
    from helpers import fit_killed_at_step

    from translate.config.checkpoint import load_checkpoint
    from translate.config.compose import resume_config

    common = [*GAN, "generator=stylegan", "discriminator=stylegan", "generator.n_mlp=2", "generator.z_dim=16",
              "model.r1_gamma=10", "model.r1_every=2", "trainer.ema.enabled=true", f"data.root={faces_root}",
              "data.batch_size=2", "trainer.checkpoint_every=3", "trainer.sample_every=100", "trainer.max_steps=8"]
    fit(tiny_cfg(*common, run_dir=tmp_path / "full"))
    fit_killed_at_step(tiny_cfg(*common, run_dir=tmp_path / "split"), 4)
    fit(resume_config(str(tmp_path / "split"), []))
    a, b = (load_checkpoint(tmp_path / r / "checkpoints" / "last.pt") for r in ("full", "split"))
    assert a["model_state"] == b["model_state"] == {"d_steps": 8}
    for name in a["networks"]:
        for k, v in a["networks"][name].items():
            assert torch.equal(v, b["networks"][name][k]), f"{name}.{k}"
    for k, v in a["ema"]["G"].items():
        assert torch.equal(v, b["ema"]["G"][k]), k


# ---------------------------------------------------------------------------------------------- the face demo
def test_the_face_demo_saves_what_it_drew(tmp_path):
    from translate.data.faces import ATTRIBUTES, HAIR_COLOURS, faces

    data = faces(root=str(tmp_path / "f"), num_train=300, num_val=10, load_size=64, crop_size=64)
    with open(data.root / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 310 and set(rows[0]) == {"file", *ATTRIBUTES}
    assert all((data.root / r["file"]).is_file() for r in rows)
    assert Image.open(data.root / rows[0]["file"]).size == (64, 64)
    assert {r["hair_colour"] for r in rows} == set(HAIR_COLOURS)
    # The correlated pairs: glasses with short hair, an open mouth with a smile.
    short = [int(r["glasses"]) for r in rows if float(r["hair_length"]) < 0.3]
    long = [int(r["glasses"]) for r in rows if float(r["hair_length"]) > 0.7]
    assert np.mean(short) > np.mean(long) + 0.2
    again = faces(root=str(tmp_path / "g"), num_train=300, num_val=10)
    assert (again.root / "labels.csv").read_text() == (data.root / "labels.csv").read_text()
    assert (again.root / "train" / "00007.png").read_bytes() == (data.root / "train" / "00007.png").read_bytes()


def test_drawn_attributes_show_in_the_pixels():
    from translate.data.faces import render_face

    base = {"hair_colour": "black", "hair_length": 0.9, "eye_colour": "blue", "skin_tone": 0.2, "smile": 0,
            "mouth_open": 0, "glasses": 0, "background": 0.5, "head_size": 0.5, "head_x": 0.5, "head_y": 0.5}
    black, blonde = render_face(base, 64), render_face(base | {"hair_colour": "blonde"}, 64)
    assert blonde.mean() > black.mean() + 0.05
    short = render_face(base | {"hair_length": 0.0}, 64)
    assert np.abs(short - black).mean() > 0.02
    glasses = render_face(base | {"glasses": 1}, 64)
    diff = np.abs(glasses - black).sum(-1) > 0.1
    assert diff.any() and diff[40:].sum() == 0  # only around the eyes, never the lower face


def test_pixel_features_take_any_size():
    from translate.latent.attributes import PixelFeatures, pixel_attributes

    feats = PixelFeatures()(torch.randint(0, 256, (2, 3, 50, 70), dtype=torch.uint8))
    assert feats.shape == (2, 71) and torch.isfinite(feats).all()
    bright = pixel_attributes(torch.ones(1, 3, 16, 16))
    dark = pixel_attributes(-torch.ones(1, 3, 16, 16))
    assert bright["brightness"] > 0.99 and dark["brightness"] < 0.01 and bright["edge_density"] == 0


# ---------------------------------------------------------------------------------------------- generate and export
@pytest.fixture
def stylegan_run(tmp_path_factory):
    """A 2-step StyleGAN run on random images (its weights are what the tools below read)."""
    from helpers import tiny_overrides
    from omegaconf import open_dict

    from translate.config.compose import compose

    tmp = tmp_path_factory.mktemp("stylegan")
    root = tmp / "images"
    for i in range(4):
        write_image(root / f"{i}.png", seed=i)
    cfg = compose(tiny_overrides(*GAN, "generator=stylegan", "discriminator=stylegan", "generator.n_mlp=2",
                                 "generator.z_dim=16", f"data.root={root}", "trainer.max_steps=2",
                                 "trainer.val_every=0"))
    with open_dict(cfg):
        cfg.run_dir = str(tmp / "run")
    fit(cfg)
    return tmp / "run"


def _generate(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "translate.latent.generate", *args], capture_output=True, text=True, check=False,
                          cwd=cwd, timeout=300)


@pytest.mark.slow
def test_generate_writes_images_grids_and_a_walk(stylegan_run, tmp_path):
    from omegaconf import OmegaConf

    from translate.latent.generate import run

    base = OmegaConf.load(ROOT / "conf" / "generate.yaml")
    base.pop("defaults"), base.pop("hydra")
    cfg = OmegaConf.merge(base, {"checkpoint": str(stylegan_run), "output": str(tmp_path / "out"), "n": 6,
                                 "mix": 2, "interpolate": 3, "truncation": 0.7})
    summary = run(cfg)
    out = tmp_path / "out"
    assert summary.written == 6 and max(p.name for p in out.glob("seed0_*.png")) == "seed0_00005.png"
    assert Image.open(out / "grid.png").size == (2 + 3 * 34, 2 + 2 * 34)  # 6 images as 3 x 2
    assert Image.open(out / "mix.png").size == (2 + 3 * 34, 2 + 3 * 34)  # (2 + 1) x (2 + 1) tiles
    gif = Image.open(out / "interpolate.gif")
    assert gif.n_frames == 12 and gif.size == (6 * 32, 32)  # 4 segments x 3 frames; 6 walks side by side
    first = (out / "seed0_00003.png").read_bytes()
    assert run(cfg).skipped == 6  # re-running resumes
    cfg.overwrite = True
    run(cfg)
    assert (out / "seed0_00003.png").read_bytes() == first  # the same seed, the same images
    cfg.seed, cfg.noise = 1, "fixed"
    run(cfg)
    assert (out / "seed1_00003.png").read_bytes() != first
    assert not list(out.glob(".tmp*")) and not list(out.glob("*.tmp"))


def test_generate_streams_so_memory_stays_flat_however_large_n(tmp_path, monkeypatch):
    """Images are made and written a batch at a time: at most ``batch_size`` latents and images are held at once,
    and the grid keeps only its first images, whatever n is."""
    from translate.latent.generate import GenerateSummary, write_images
    from translate.latent.sampling import Sampler

    held, drawn = [], []
    images, latents = Sampler.images, Sampler.latents
    monkeypatch.setattr(Sampler, "images", lambda self, z: held.append(len(z)) or images(self, z))
    monkeypatch.setattr(Sampler, "latents", lambda self, n, seed=None: drawn.append(n) or latents(self, n, seed))
    torch.manual_seed(0)
    sampler = Sampler(DCGANGenerator(size=32, ngf=4), seed=3)
    summary = GenerateSummary()
    grid = write_images(sampler, 150, tmp_path, batch_size=4, overwrite=False, summary=summary)
    assert summary.written == 150 and len(list(tmp_path.glob("seed3_*.png"))) == 150
    assert sum(held) == 150 and max(held) <= 4 and max(drawn, default=0) <= 4
    assert len(grid) == 64  # the first 64 (8 x 8)
    held.clear()
    again = GenerateSummary()
    write_images(sampler, 150, tmp_path, batch_size=4, overwrite=False, summary=again)
    assert again.skipped == 150 and sum(held) == 64  # a resume makes only what the grid shows


def test_streamed_latents_are_the_seeds_latents_in_any_batch_size():
    """The same seed gives the same images whatever the batch size, and the same as before streaming."""
    from translate.latent.generate import latent_batches
    from translate.models.base import fixed_latents

    for z_dim in (16, 100, 512):
        whole = fixed_latents(37, z_dim, seed=5)
        for batch_size in (1, 4, 37, 64):
            parts = list(latent_batches(37, z_dim, seed=5, batch_size=batch_size))
            assert max(len(p) for p in parts) <= batch_size and torch.equal(torch.cat(parts), whole)


@pytest.mark.slow
def test_generate_refuses_bad_requests_with_one_line(stylegan_run, tmp_path, aligned_root):
    bad = [
        ([f"checkpoint={stylegan_run}", f"output={tmp_path / 'a'}", "truncation=[1,1]"], "2 values for 4 levels"),
        ([f"checkpoint={stylegan_run}", f"output={tmp_path / 'b'}", "noise=loud"], "noise='loud' is not one of"),
        ([f"checkpoint={stylegan_run}", f"output={tmp_path / 'c'}", "mix=2", "mix_level=5"], "mix_level=5"),
        ([f"checkpoint={tmp_path / 'nothing.pt'}", f"output={tmp_path / 'd'}"], "nothing.pt"),
    ]
    for args, message in bad:
        proc = _generate(*args)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert proc.stderr.strip().count("\n") == 0
    assert not (tmp_path / "c").exists()  # refused before anything was written


@pytest.mark.slow
def test_translation_and_noise_tools_refuse_each_others_checkpoints(stylegan_run, tmp_path, aligned_root):
    proc = subprocess.run([sys.executable, "infer.py", f"checkpoint={stylegan_run}", f"input={aligned_root}",
                           f"output={tmp_path / 'o'}"], capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 2 and "generates images from noise" in proc.stderr and "use translate generate checkpoint=" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "translate.evaluation.evaluate", f"checkpoint={stylegan_run}",
                           f"data.root={aligned_root}"], capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 2 and "from noise" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_noise_generator_exports_with_a_latent_input(stylegan_run, tmp_path):
    import onnxruntime as ort

    from translate.inference.export import export_generator
    from translate.latent.generate import load_noise_generator

    G = load_noise_generator(stylegan_run)
    path = export_generator(G, tmp_path / "g.onnx", "onnx", truncation=0.7)
    session = ort.InferenceSession(str(path))
    z = torch.randn(3, 16)
    (ours,) = session.run(None, {"latent": z.numpy()})
    with torch.no_grad():
        theirs = G.eval()(z, truncation=0.7, noise="fixed")
    gap = np.abs(ours - theirs.numpy())  # instance norm of near-flat maps amplifies float rounding a little
    assert ours.shape == (3, 3, 32, 32) and gap.max() < 1e-2 and gap.mean() < 1e-3
    meta = {p.key: p.value for p in __import__("onnx").load(str(path)).metadata_props}
    assert meta["z_dim"] == "16" and meta["size"] == "32"
    with pytest.raises(ConfigError, match="truncation"):
        export_generator(DCGANGenerator(size=32, ngf=4), tmp_path / "d.onnx", "onnx", truncation=0.5)
    ts = export_generator(DCGANGenerator(size=32, ngf=4), tmp_path / "d.ts", "torchscript")
    assert torch.jit.load(str(ts))(torch.randn(2, 100)).shape == (2, 3, 32, 32)  # traced at batch 1
    ts = export_generator(G, tmp_path / "g.ts", "torchscript", truncation=0.7)
    assert torch.allclose(torch.jit.load(str(ts))(z), theirs, atol=1e-5)
