"""SPADE (issue 31): the generator as the official code builds it, and its family's order and losses."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.parametrize import is_parametrized

from translate.data.labels import one_hot
from translate.networks.spade import SPADEGenerator, SPADENorm, SPADEResnetBlock


def _maps(n: int, classes: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n, h // 8, w // 8), generator=g).repeat_interleave(8, 1).repeat_interleave(8, 2)
    return one_hot(labels, classes)


def test_spade_scales_and_shifts_the_normalised_activations_by_the_map():
    torch.manual_seed(0)
    norm = SPADENorm(4, 3).eval()
    x = torch.randn(1, 4, 16, 16)
    a, b = _maps(1, 3, 16, 16, seed=1), _maps(1, 3, 16, 16, seed=2)
    out = norm(x, a)
    actv = norm.mlp_shared(a)
    assert torch.allclose(out, norm.param_free_norm(x) * (1 + norm.mlp_gamma(actv)) + norm.mlp_beta(actv))
    assert not torch.allclose(out, norm(x, b))  # another map, another modulation
    coarse = norm(torch.randn(1, 4, 4, 4), a)  # the map is resized nearest-neighbour to the activations
    assert coarse.shape == (1, 4, 4, 4)


def test_the_generator_has_the_codes_blocks_and_takes_any_multiple_of_its_stride():
    G = SPADEGenerator(in_channels=5, ngf=4, hidden=8)
    assert G.stride == 32 and (G.in_channels, G.out_channels) == (5, 3)
    widths = [(b.conv_0.in_channels, b.conv_1.out_channels) for b in (G.head_0, G.G_middle_0, G.G_middle_1, G.up_0,
                                                                     G.up_1, G.up_2, G.up_3)]
    assert widths == [(64, 64), (64, 64), (64, 64), (64, 32), (32, 16), (16, 8), (8, 4)]
    assert G.up_0.learned_shortcut and not G.head_0.learned_shortcut and is_parametrized(G.up_0.conv_0)
    out = G(_maps(2, 5, 64, 96))
    assert out.shape == (2, 3, 64, 96) and out.abs().max() <= 1
    with pytest.raises(ValueError, match="input sides 48x64 must be multiples of 32"):
        G(_maps(1, 5, 48, 64))
    assert SPADEGenerator(in_channels=5, ngf=4, num_upsampling_layers="more").stride == 64
    most = SPADEGenerator(in_channels=5, ngf=4, hidden=8, num_upsampling_layers="most")
    assert most.stride == 128 and most.conv_img.in_channels == 2
    assert SPADEResnetBlock(8, 8, 5, spectral_norm=False).conv_0.weight.shape == (8, 8, 3, 3)


def test_the_family_steps_g_first_and_sums_feature_matching_over_layers():
    from translate.config.compose import build_model, compose
    from translate.models import SPADE

    cfg = compose(["model=spade", "data=labels", "data.root=x", "data.label_nc=5", "generator.ngf=4",
                   "generator.hidden=8", "discriminator.ndf=8", "discriminator.n_layers=3", "model.lambda_vgg=0"])
    assert (cfg.model.lambda_l1, cfg.model.lambda_feat, cfg.gan_loss._target_) == (0.0, 10.0,
                                                                                  "translate.models.losses.HingeGAN")
    assert (cfg.optim.G.lr, cfg.optim.D.lr, list(cfg.optim.G.betas)) == (1e-4, 4e-4, [0.0, 0.9])
    model = build_model(cfg)
    assert isinstance(model, SPADE) and SPADE.phases == ("G", "D") and not SPADE.feature_layers_averaged
    batch = {"A": _maps(2, 5, 64, 64), "B": torch.rand(2, 3, 64, 64) * 2 - 1}
    out = model.generate(batch)
    g, d = model.g_step(batch, out), model.d_step(batch, out)
    assert torch.isfinite(g["loss/G"]) and torch.isfinite(d["loss/D"]) and g["loss/G/feat"] > 0
    assert torch.allclose(g["loss/G"], g["loss/G/gan"] + 10 * g["loss/G/feat"])  # no L1 term


def test_feature_matching_sums_layers_for_spade_and_averages_them_for_pix2pixhd():
    from translate.models.losses import feature_matching

    real = [[torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 1, 1)] for _ in range(2)]
    fake = [[torch.ones(1, 2, 4, 4), torch.full((1, 2, 2, 2), 3.0), torch.full((1, 1, 1, 1), 9.0)] for _ in range(2)]
    assert float(feature_matching(real, fake, average_layers=False)) == pytest.approx((1 + 3) * 2 / 2)
    assert float(feature_matching(real, fake)) == pytest.approx((1 + 3) * 2 / 2 / 2)  # the logits never count


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A randomly initialised VGG19 (the ImageNet weights cannot be had here), saved as torchvision would."""
    from translate.models.perceptual import vgg19_features

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in vgg19_features().state_dict().items()}, path)
    return path


def test_the_vgg_loss_weights_its_five_layers_and_stays_out_of_the_checkpoint(vgg_file, tmp_path, monkeypatch, capsys):
    from translate.config.compose import build_model, compose
    from translate.core.errors import ConfigError
    from translate.models.perceptual import SLICES, load_vgg_loss

    loss = load_vgg_loss(vgg_file)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert float(loss(x, x)) == 0 and float(loss(x, -x)) > 0 and len(loss.slices) == len(SLICES) == 5
    assert not any(p.requires_grad for p in loss.parameters())
    base = ["model=spade", "data=labels", "data.root=x", "data.label_nc=5", "generator.ngf=4", "generator.hidden=8",
            "discriminator.ndf=8", "discriminator.n_layers=3"]
    model = build_model(compose([*base, f"model.vgg_weights={vgg_file}"]))
    batch = {"A": _maps(1, 5, 64, 64), "B": torch.rand(1, 3, 64, 64) * 2 - 1}
    g = model.g_step(batch, model.generate(batch))
    assert g["loss/G/vgg"] > 0 and torch.allclose(g["loss/G"], g["loss/G/gan"] + 10 * g["loss/G/feat"] + 10 * g["loss/G/vgg"])
    assert not any("vgg" in k or "slices" in k for k in model.state_dict())  # frozen ImageNet weights: not ours
    # no weights at hand: off, in one line; a named file that is missing or is not VGG19: refused in one line
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    quiet = build_model(compose(base))
    assert "VGG loss is off" not in capsys.readouterr().err  # building the model (as loading does) reads no VGG
    assert "loss/G/vgg" not in quiet.g_step(batch, model.generate(batch))
    assert "loss/G/vgg" not in quiet.g_step(batch, model.generate(batch))
    assert capsys.readouterr().err.count("VGG loss is off: no VGG19 weights in") == 1  # said once, at the first step
    with pytest.raises(ConfigError, match="model.vgg_weights=.*gone.pth: no such file"):
        build_model(compose([*base, f"model.vgg_weights={tmp_path / 'gone.pth'}"]))
    with pytest.raises(ConfigError, match="model.vgg_weights=.*nothing.pth: no such file"):
        load_vgg_loss(tmp_path / "nothing.pth")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="other.pth: not VGG19 weights"):
        load_vgg_loss(tmp_path / "other.pth")


def test_the_generator_exports_to_onnx_with_its_spectral_norm_baked_in(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from translate.inference.export import export_generator
    from translate.networks.layers import baked

    torch.manual_seed(0)
    G = SPADEGenerator(in_channels=5, ngf=4, hidden=8).eval()
    x = _maps(1, 5, 64, 96)
    with torch.no_grad():
        y = G(x)
        assert torch.equal(baked(G)(x), y) and is_parametrized(G.up_0.conv_0)  # the original keeps its own
    session = ort.InferenceSession(str(export_generator(G, tmp_path / "spade.onnx", "onnx", 17)))
    for maps in (x, _maps(2, 5, 64, 64, seed=3)):
        with torch.no_grad():
            expected = G(maps).numpy()
        out = session.run(None, {session.get_inputs()[0].name: maps.numpy()})[0]
        assert out.shape == expected.shape and abs(out - expected).max() < 1e-4


def test_the_discriminator_has_the_codes_layers():
    """SPADE's n_layers_D=4 NLayerDiscriminator: 4x4 convs to 64, 128, 256 (stride 2) and 512 (stride 1), then
    the logits, padded by 2, spectral norm on the hidden ones; two scales."""
    from torch import nn

    from translate.config.compose import build_model, compose

    model = build_model(compose(["model=spade", "data=labels", "data.root=x", "data.label_nc=5", "model.lambda_vgg=0"]))
    assert len(model.D.discriminators) == 2
    convs = [m for m in model.D.discriminators[0].modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.stride[0]) for c in convs] == [(64, 2), (128, 2), (256, 2), (512, 1), (1, 1)]
    assert convs[0].in_channels == 5 + 3 and all(c.padding == (2, 2) for c in convs)  # the map beside the image
    assert [is_parametrized(c) for c in convs] == [False, True, True, True, False]  # spectral norm: hidden only


def test_with_a_style_code_the_generator_starts_from_fc_of_the_code_and_its_mean_is_zero():
    torch.manual_seed(0)
    G = SPADEGenerator(in_channels=5, ngf=4, hidden=8, z_dim=16, crop_size=128, aspect_ratio=2.0).eval()
    assert G.nz == 16 and G.start_size == (2, 4) and G.fc.out_features == 64 * 2 * 4  # the code's sh, sw
    seg = _maps(2, 5, 64, 128)
    z = torch.randn(2, 16)
    assert torch.equal(G(seg), G(seg, torch.zeros(2, 16)))  # G(x): the mean style
    assert not torch.allclose(G(seg, z), G(seg, -z))  # another code, another photo
    assert torch.allclose(G(seg, z, truncation=0.0), G(seg))
    assert G(_maps(1, 5, 96, 96), z[:1]).shape == (1, 3, 96, 96)  # other sizes: fc(z) resized to their grid
    with pytest.raises(ValueError, match=r"z must be \[N, 16\]"):
        G(seg, torch.zeros(2, 8))
    with pytest.raises(ValueError, match="takes no style code"):
        SPADEGenerator(in_channels=5, ngf=4, hidden=8)(seg, z)


def test_the_style_encoder_has_the_codes_layers():
    from translate.networks.spade import ConvEncoder

    E = ConvEncoder(nz=256, ndf=64, size=256)
    convs = [m for m in E.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512]
    assert all(c.stride == (2, 2) and c.kernel_size == (3, 3) and is_parametrized(c) for c in convs)
    assert E.fc_mu.in_features == E.fc_var.in_features == 512 * 4 * 4
    small = ConvEncoder(nz=8, ndf=4, size=32)
    mu, logvar = small(torch.randn(2, 3, 40, 56))  # any photo, resized to 32x32
    assert mu.shape == logvar.shape == (2, 8)
    with pytest.raises(ValueError, match="power of two"):
        ConvEncoder(size=48)


def test_the_style_encoder_trains_with_g_under_a_kl_term_and_d_makes_its_fakes_again():
    from translate.config.compose import build_model, compose

    cfg = compose(["model=spade", "data=labels", "data.root=x", "data.label_nc=5", "data.crop_size=64",
                   "generator.ngf=4", "generator.hidden=8", "discriminator.ndf=8", "model.lambda_vgg=0",
                   "model.style_encoder=true", "model.z_dim=8", "model.encoder.ndf=4", "model.encoder.size=32"])
    model = build_model(cfg)
    assert model.style_encoder() is model.E and set(model.auxiliaries()) == {"E"} and model.G.nz == 8
    batch = {"A": _maps(2, 5, 64, 64), "B": torch.rand(2, 3, 64, 64) * 2 - 1}
    out = model.generate(batch)
    g = model.g_step(batch, out)
    assert torch.allclose(g["loss/G"], g["loss/G/gan"] + 10 * g["loss/G/feat"] + 0.05 * g["loss/G/kld"])
    g["loss/G"].backward()
    assert all(p.grad is not None for p in model.E.parameters())  # E is trained by G's loss
    calls = []
    model.generate = lambda b: calls.append(b) or out  # d_step's own fakes, as the official D step
    model.d_step(batch, {"fake": torch.full_like(batch["B"], float("nan"))})
    assert len(calls) == 1
    styled = model.with_fixed_inputs(batch, seed=0)
    assert styled["styles"].shape == (4, 8) and len(model.sample_columns(styled)) == 2 + 4 + 1
    assert model.sample_labels(styled) == ["input A", "mean style", "style 1", "style 2", "style 3", "style 4",
                                           "target B"]
