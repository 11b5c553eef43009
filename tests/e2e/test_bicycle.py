"""Many outputs per input: BicycleGAN's style-code U-Net (input, all, adain injection), its encoder, the
model's losses and branches, training, resume, validation's diversity and the random-colour demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from translate.core.errors import ConfigError
from translate.evaluation.metrics import pairwise_distance, style_metrics, style_outputs
from translate.models.losses import gaussian_kl
from translate.networks import LatentUnetGenerator, StyleEncoder, UnetGenerator
from translate.training.loop import fit

ROOT = Path(__file__).resolve().parents[2]
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
    assert gaussian_kl(zero, zero).mean() == 0
    mu, logvar = torch.full((1, 2), 2.0), torch.full((1, 2), np.log(0.25))
    # Per dimension 0.5 (sigma^2 + mu^2 - 1 - log sigma^2) = 0.5 (0.25 + 4 - 1 + log 4); two dimensions.
    assert torch.isclose(gaussian_kl(mu, logvar).mean(), torch.tensor(0.25 + 4 - 1 + np.log(4.0), dtype=torch.float32))


# ---------------------------------------------------------------------------------------------- the model
@pytest.fixture
def bicycle(tiny_cfg):
    from translate.config.compose import build_model

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
    assert torch.equal(seen[1], batch["B"][2:])  # D2's real images (after the fakes): the second half's targets
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
    from translate.config.compose import build_model

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
    assert grid.size[0] == 2 + 6 * 130  # input | mean | 3 styles | target, 64 px tiles shown at 128
    strip = np.asarray(grid.convert("L"))[:20]  # their names above them: dark text over each column
    assert all((strip[:, 2 + k * 130 : (k + 1) * 130] < 128).any() for k in range(6))


@pytest.mark.slow
def test_bicycle_resume_is_exact(tmp_path, tiny_cfg, aligned_root):
    from helpers import fit_killed_at_step

    from translate.config.checkpoint import load_checkpoint
    from translate.config.compose import resume_config

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
    from translate.config.compose import compose

    cfg = compose(["~experiment", "model=bicycle", "data.root=x"])
    assert cfg.generator._target_.endswith("LatentUnetGenerator") and cfg.generator.num_downs == 8
    assert (cfg.generator.z_inject, cfg.generator.norm, cfg.model.nz) == ("all", "instance", 8)
    assert (cfg.model.lambda_l1, cfg.model.lambda_kl, cfg.model.lambda_z) == (10, 0.01, 0.5)
    assert cfg.gan_loss._target_.endswith("LSGAN") and cfg.model.init_type == "xavier"
    assert (cfg.discriminator.num_D, cfg.model.conditional_D, cfg.model.encoder.n_blocks) == (2, False, 5)
    shoes = compose(["experiment=sketch2photo_bicycle"])
    assert (shoes.data.batch_size, shoes.data.crop_size, shoes.generator.dropout) == (2, 256, True)


# ---------------------------------------------------------------------------------------------- inference and export
@pytest.fixture(scope="module")
def bicycle_run(tmp_path_factory):
    """A 2-step AdaIN BicycleGAN run on 64x64 random pairs (its weights are what the tools below read)."""
    from helpers import tiny_overrides, write_image
    from omegaconf import open_dict

    from translate.config.compose import compose

    tmp = tmp_path_factory.mktemp("bicycle")
    for split, n, first in (("train", 4, 0), ("val", 2, 10)):
        for i in range(n):
            write_image(tmp / "data" / split / "A" / f"{i}.png", seed=first + i, size=(64, 64))
            write_image(tmp / "data" / split / "B" / f"{i}.png", seed=50 + first + i, size=(64, 64))
    cfg = compose(tiny_overrides(*BICYCLE, "generator.z_inject=adain", f"data.root={tmp / 'data'}",
                                 "trainer.max_steps=2", "trainer.val_every=0"))
    with open_dict(cfg):
        cfg.run_dir = str(tmp / "run")
    fit(cfg)
    with torch.no_grad():  # 2 steps leave G close to its start: spread the weights so codes show in the outputs
        from translate.config.checkpoint import atomic_save, load_checkpoint

        ckpt = load_checkpoint(tmp / "run" / "checkpoints" / "last.pt")
        g = torch.Generator().manual_seed(0)
        for k, v in ckpt["networks"]["G"].items():
            if v.is_floating_point() and "affine" in k:
                v.add_(0.5 * torch.randn(v.shape, generator=g))
        atomic_save(ckpt, tmp / "run" / "checkpoints" / "last.pt")
    return tmp


def _infer_cfg(run, inputs, output, **style):
    from omegaconf import OmegaConf

    base = OmegaConf.load(ROOT / "conf" / "infer.yaml")
    base.pop("defaults"), base.pop("hydra")
    return OmegaConf.merge(base, {"checkpoint": str(run / "run"), "input": str(inputs), "output": str(output),
                                  "quiet": True, "style": style})


@pytest.mark.slow
def test_infer_writes_several_styles_per_input(bicycle_run, tmp_path):
    from translate.inference.convert import run

    inputs = bicycle_run / "data" / "val" / "A"
    summary = run(_infer_cfg(bicycle_run, inputs, tmp_path / "a", samples=3, seed=0))
    assert summary.converted == 6 and summary.exit_code == 0
    images = {p.name: np.asarray(Image.open(p)) for p in sorted((tmp_path / "a").iterdir())}
    assert sorted(images) == [f"{i}_s{k}.png" for i in range(2) for k in range(3)]
    assert not np.array_equal(images["0_s0.png"], images["0_s1.png"])  # distinct outputs per style
    run(_infer_cfg(bicycle_run, inputs, tmp_path / "b", samples=3, seed=0))
    assert all(np.array_equal(images[n], np.asarray(Image.open(tmp_path / "b" / n))) for n in images)  # same seed
    assert run(_infer_cfg(bicycle_run, inputs, tmp_path / "a", samples=3, seed=0)).skipped == 2  # resumes
    run(_infer_cfg(bicycle_run, inputs, tmp_path / "c", samples=3, seed=1))
    assert not np.array_equal(images["0_s0.png"], np.asarray(Image.open(tmp_path / "c" / "0_s0.png")))
    run(_infer_cfg(bicycle_run, inputs, tmp_path / "d", samples=3, truncation=0.0))
    flat = [np.asarray(Image.open(tmp_path / "d" / f"0_s{k}.png")) for k in range(3)]
    assert all(np.array_equal(flat[0], f) for f in flat)  # psi = 0: the mean style for every code
    run(_infer_cfg(bicycle_run, inputs, tmp_path / "e"))
    assert np.array_equal(flat[0], np.asarray(Image.open(tmp_path / "e" / "0.png")))  # no style.*: the mean style


@pytest.mark.slow
def test_infer_reference_styles_grids_and_mixing(bicycle_run, tmp_path):
    from translate.inference.convert import run

    inputs, ref = bicycle_run / "data" / "val" / "A", bicycle_run / "data" / "val" / "B" / "1.png"
    run(_infer_cfg(bicycle_run, inputs, tmp_path / "r", reference=str(ref)))
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["0_ref_1.png", "1_ref_1.png"]
    run(_infer_cfg(bicycle_run, inputs, tmp_path / "g", samples=3, grid=True))
    assert Image.open(tmp_path / "g" / "0_styles.png").size == (2 + 3 * 66, 2 + 66)
    run(_infer_cfg(bicycle_run, inputs, tmp_path / "m", samples=2, mix=2))
    mix = np.asarray(Image.open(tmp_path / "m" / "0_mix.png")).astype(int)
    assert mix.shape[:2] == (2 + 3 * 66, 2 + 3 * 66)
    cell = lambda r, c: mix[2 + 66 * r: 66 * (r + 1), 2 + 66 * c: 66 * (c + 1)]
    assert np.array_equal(cell(1, 1), cell(0, 1)) and np.array_equal(cell(1, 1), cell(1, 0))  # style 0 alone
    assert not np.array_equal(cell(1, 2), cell(0, 2)) and not np.array_equal(cell(1, 2), cell(1, 0))  # a mix


@pytest.mark.slow
@pytest.mark.parametrize(("style", "message"), [
    ({"mix": 9, "samples": 2}, "style.mix=9"),
    ({"mix": 2}, "at least 2 styles"),
    ({"reference": "missing.png"}, "missing.png: no such file"),
    ({"truncation": [1.0, 0.5]}, "2 values for 5 levels"),
])
def test_infer_refuses_bad_style_requests_before_writing(bicycle_run, tmp_path, style, message):
    from translate.inference.convert import run

    with pytest.raises(ConfigError, match=message):
        run(_infer_cfg(bicycle_run, bicycle_run / "data" / "val" / "A", tmp_path / "x", **style))
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_evaluate_measures_diversity_and_truncation_removes_it(bicycle_run, tmp_path):
    from omegaconf import OmegaConf

    from translate.evaluation.evaluate import run

    base = OmegaConf.load(ROOT / "conf" / "evaluate.yaml")
    base.pop("defaults"), base.pop("hydra")
    base = OmegaConf.merge(base, {"checkpoint": str(bicycle_run / "run"), "run_dir": str(tmp_path),
                                  "data": {"_target_": "translate.data.AlignedData", "root": str(bicycle_run / "data"),
                                           "batch_size": 2}})
    free = run(OmegaConf.merge(base, {"style": {"samples": 3}}))
    assert free["diversity"] > 0 and free["random_l1"] > 0
    assert run(OmegaConf.merge(base, {"style": {"samples": 3, "truncation": 0.0}}))["diversity"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_takes_the_latent_as_a_second_input_or_bakes_one_in(bicycle_run, tmp_path, fmt):
    from translate.inference.export import export_generator
    from translate.loading.generator import load_generator
    from translate.models.base import fixed_latents

    G = load_generator(bicycle_run / "run")
    x, z = torch.rand(2, 3, 128, 64) * 2 - 1, torch.randn(2, 8)
    with torch.no_grad():
        expected, baked = G(x, z, truncation=0.5), G(x, fixed_latents(1, 8, 3).expand(2, -1))
    path = export_generator(G, tmp_path / f"g.{fmt}", fmt, truncation=0.5)
    fixed = export_generator(G, tmp_path / f"f.{fmt}", fmt, style=3)
    if fmt == "onnx":
        import onnxruntime as ort

        (ours,) = ort.InferenceSession(str(path)).run(None, {"image": x.numpy(), "latent": z.numpy()})
        (ours_fixed,) = ort.InferenceSession(str(fixed)).run(None, {"image": x.numpy()})
        meta = {p.key: p.value for p in __import__("onnx").load(str(path)).metadata_props}
        assert meta["nz"] == "8" and meta["style"] == "input" and meta["in_channels"] == "3"
    else:
        with torch.no_grad():
            ours, ours_fixed = torch.jit.load(str(path))(x, z).numpy(), torch.jit.load(str(fixed))(x).numpy()
    assert np.abs(ours - expected.numpy()).max() < 1e-4
    assert np.abs(ours_fixed - baked.numpy()).max() < 1e-4
    with pytest.raises(ConfigError, match="style='loud'"):
        export_generator(G, tmp_path / "bad.onnx", "onnx", style="loud")


# ---------------------------------------------------------------------------------------------- style axes
@pytest.mark.slow
def test_style_axes_find_and_edit_attributes_of_the_outputs(bicycle_run, tmp_path):
    from omegaconf import OmegaConf

    from translate.apps.axes import run as axes_run
    from translate.inference.convert import run as infer_run
    from translate.latent.attributes import pixel_attributes

    base = OmegaConf.load(ROOT / "conf" / "axes.yaml")
    base.pop("defaults"), base.pop("hydra")
    cfg = OmegaConf.merge(base, {"checkpoint": str(bicycle_run / "run"), "samples": 96, "inputs": 2,
                                 "sweep_images": 6, "base": ["brightness"]})
    axes = axes_run(cfg)
    assert axes.space == "w" and set(axes.vectors) >= {"brightness", "saturation", "contrast"}
    assert all(abs(float(axes.vectors[n] @ axes.vectors["brightness"])) < 1e-5 for n in axes.vectors if n != "brightness")
    sweeps = axes.info["report"]["sweeps"]
    assert sweeps["brightness"]["spearman"] >= 0.9 and sweeps["brightness"]["change_per_std"]["brightness"] > 0
    assert axes.info["extractor"]["centred_per_input"] and (bicycle_run / "run" / "checkpoints" / "axes.json").is_file()

    def mean_brightness(k: float) -> float:
        out = tmp_path / f"edit{k}"
        cfg = _infer_cfg(bicycle_run, bicycle_run / "data" / "val" / "A", out, samples=4)
        cfg.edit = {"brightness": k}
        infer_run(cfg)
        images = [torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1)[None] for p in sorted(out.iterdir())]
        return float(pixel_attributes(torch.cat(images))["brightness"].mean())

    assert mean_brightness(2.0) > mean_brightness(0.0) > mean_brightness(-2.0)
    bad = _infer_cfg(bicycle_run, bicycle_run / "data" / "val" / "A", tmp_path / "x", samples=2)
    bad.edit = {"smile": 1}
    with pytest.raises(ConfigError, match="edit.smile: no such axis"):
        infer_run(bad)


def test_centred_scores_are_zero_for_the_mean_style():
    from translate.latent.extractor import PixelExtractor
    from translate.latent.style_axes import CentredScores

    G, x = tiny_unet("all"), torch.randn(3, 3, 32, 32)
    scores = CentredScores(PixelExtractor(), G, x)
    with torch.no_grad():
        mean = torch.cat([G(x), G(x)])  # two "codes", both the mean style, on the three inputs
    assert all(v.abs().max() < 1e-6 and v.shape == (2,) for v in scores.scores(mean).values())


def test_the_demo_scenes_expose_their_seeds_and_shape_masks(tmp_path):
    from translate.data.demo import render_sketch2photo, shape_mask, sketch2photo, sketch2photo_seed

    data = sketch2photo(root=tmp_path / "demo", num_train=3, num_val=2, random_colours=True, size=32)
    seed = sketch2photo_seed(1, "val", num_train=3)
    _, photo = render_sketch2photo(seed, 32, random_colours=True)
    assert np.array_equal(np.asarray(photo), np.asarray(Image.open(data.root / "val" / "B" / "00001.png")))
    mask, pixels = shape_mask(seed, 32), np.asarray(photo).astype(float)
    assert 0 < mask.sum() < mask.size
    sky_or_grass = pixels[~mask].mean(0)
    assert np.abs(pixels[mask].mean(0) - sky_or_grass).sum() > 50  # the shapes' colour stands apart
