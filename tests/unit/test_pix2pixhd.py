"""pix2pixHD (issue 31): the generator as the official code builds it, and coarse-to-fine training in one run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from translate.data.labels import one_hot
from translate.networks.pix2pixhd import Pix2PixHDGenerator


def _maps(n: int, classes: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n, h // 8, w // 8), generator=g).repeat_interleave(8, 1).repeat_interleave(8, 2)
    return one_hot(labels, classes)


def _convs(module: torch.nn.Module) -> list[tuple[int, int, int, int]]:
    return [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0]) for m in module.modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]


def test_the_global_generator_has_the_codes_layers():
    G = Pix2PixHDGenerator(in_channels=36, ngf=64, n_local_enhancers=0)
    convs = _convs(G.global_body)
    assert convs[:5] == [(36, 64, 7, 1), (64, 128, 3, 2), (128, 256, 3, 2), (256, 512, 3, 2), (512, 1024, 3, 2)]
    assert convs[5:23] == [(1024, 1024, 3, 1)] * 18  # nine residual blocks of two 3x3 convs
    assert convs[23:] == [(1024, 512, 3, 2), (512, 256, 3, 2), (256, 128, 3, 2), (128, 64, 3, 2)]
    assert _convs(G.global_head) == [(64, 3, 7, 1)] and G.stride == 16
    assert round(sum(p.numel() for p in G.parameters()) / 1e6, 1) == 182.5  # the code's label2city_512p G


def test_the_local_enhancer_adds_its_front_end_to_the_global_features():
    torch.manual_seed(0)
    G = Pix2PixHDGenerator(in_channels=5, ngf=4, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=1,
                           n_blocks_local=1).eval()
    assert G.stride == 8 and _convs(G.global_body)[0] == (5, 8, 7, 1)  # the global at ngf * 2
    assert _convs(G.fronts[0]) == [(5, 4, 7, 1), (4, 8, 3, 2)]
    assert _convs(G.backs[0])[-2:] == [(8, 4, 3, 2), (4, 3, 7, 1)]
    x = _maps(2, 5, 32, 48)
    expected = G.backs[0](G.fronts[0](x) + G.global_body(G.downsample(x)))
    assert torch.equal(G(x), expected) and G(x).shape == (2, 3, 32, 48)
    G.coarse.fill_(1)  # the global phase: G(x) is the global output, upsampled
    coarse = F.interpolate(G.global_output(G.downsample(x)), size=(32, 48), mode="bilinear")
    assert torch.equal(G(x), coarse)


def test_a_frozen_global_generator_gets_no_gradients():
    G = Pix2PixHDGenerator(in_channels=5, ngf=4, n_downsample_global=2, n_blocks_global=1, n_blocks_local=1)
    G(_maps(1, 5, 32, 32), train_global=False).mean().backward()
    assert all(p.grad is None for p in G.global_body.parameters())
    assert all(p.grad is not None for p in G.fronts.parameters())


SMALL = ("generator.ngf=4", "generator.n_downsample_global=2", "generator.n_blocks_global=1",
         "generator.n_blocks_local=1")


def _model(*extra: str, generator: tuple[str, ...] = SMALL):
    from translate.config.compose import build_model, compose

    cfg = compose(["model=pix2pixhd", "data=labels", "data.root=x", "data.label_nc=5", *generator,
                   "discriminator.ndf=8", "model.lambda_vgg=0", *extra])
    return cfg, build_model(cfg)


def test_the_family_has_the_codes_losses_and_settings():
    from translate.models import Pix2PixHD

    cfg, model = _model()
    assert isinstance(model, Pix2PixHD) and Pix2PixHD.phases == ("G", "D") and Pix2PixHD.feature_layers_averaged
    assert cfg.gan_loss._target_ == "translate.models.losses.LSGAN" and cfg.discriminator.padding == 2
    assert (cfg.optim.G.lr, list(cfg.optim.G.betas), cfg.model.lambda_l1, cfg.model.lambda_feat) == (
        2e-4, [0.5, 0.999], 0.0, 10.0)
    assert (cfg.generator.ngf, cfg.generator.n_local_enhancers) == (4, 1)  # the 1024p script's netG local
    batch = {"A": _maps(2, 5, 32, 32), "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    g = model.g_step(batch, model.generate(batch))
    assert torch.allclose(g["loss/G"], g["loss/G/gan"] + 10 * g["loss/G/feat"])


def test_coarse_to_fine_global_then_enhancer_then_both():
    _, model = _model("model.global_steps=2", "model.fix_global_steps=1")
    batch = {"A": _maps(2, 5, 32, 32), "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    stages = []
    for _ in range(4):
        stage = model.stage()
        out = model.generate(batch)
        stages.append((stage, int(model.G.coarse)))  # set by the step: until then G(x) shows what was trained
        model.zero_grad(set_to_none=True)
        model.g_step(batch, out)["loss/G"].backward()
        model.d_step(batch, out)
        trained = {part: any(p.grad is not None for p in getattr(model.G, part).parameters())
                   for part in ("global_body", "global_head", "fronts")}
        stages[-1] += (tuple(out["fake"].shape[-2:]), trained)
    on = {"global_body": True, "global_head": True, "fronts": False}
    assert stages[0] == stages[1] == ("global", 1, (16, 16), on)  # half resolution, the global alone
    assert stages[2] == ("local", 0, (32, 32), {"global_body": False, "global_head": False, "fronts": True})
    assert stages[3] == ("joint", 0, (32, 32), {"global_body": True, "global_head": False, "fronts": True})
    assert model.extra_state() == {"g_steps": 4}
    model.load_extra_state({"g_steps": 1})  # a resume inside the global phase
    assert model.stage() == "global" and int(model.G.coarse) == 1


def test_phases_need_an_enhancer_and_a_global_phase_checkpoint_is_not_exported(tmp_path):
    from translate.core.errors import ConfigError
    from translate.inference.export import export_generator

    with pytest.raises(ConfigError, match="generator.n_local_enhancers >= 1"):
        _model("generator.n_local_enhancers=0", "model.global_steps=10")
    with pytest.raises(ConfigError, match="generator.n_local_enhancers >= 1"):
        _model("model.global_steps=10", generator=("generator=unet_64",))
    _, model = _model("model.global_steps=10")
    with pytest.raises(ConfigError, match="still in its global phase"):
        export_generator(model.G, tmp_path / "g.onnx")


def test_the_family_takes_another_generator_without_phases():
    _, model = _model(generator=("generator=unet_64", "generator.ngf=4"))
    batch = {"A": _maps(2, 5, 64, 64), "B": torch.rand(2, 3, 64, 64) * 2 - 1}
    out = model.generate(batch)
    assert out["fake"].shape == (2, 3, 64, 64) and torch.isfinite(model.g_step(batch, out)["loss/G"])


# ---------------------------------------------------------------- the instance-wise feature encoder


def test_region_means_average_each_object_of_each_image():
    from translate.networks.pix2pixhd import region_means

    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 6, 5, generator=g)
    regions = torch.randint(0, 4, (2, 6, 5), generator=g)
    pooled, means, pixel_region = region_means(x, regions)
    for n in range(2):
        for r in regions[n].unique():
            inside = regions[n] == r
            expected = x[n][:, inside].mean(1)
            assert torch.allclose(pooled[n][:, inside], expected[:, None].expand(-1, int(inside.sum())), atol=1e-6)
    assert len(means) == sum(len(regions[n].unique()) for n in range(2)) == int(pixel_region.max()) + 1


def test_the_generator_keeps_each_classes_feature_statistics_and_draws_styles_from_them():
    G = Pix2PixHDGenerator(in_channels=4, ngf=4, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=0,
                           feat_nc=2, feat_classes=3, feature_momentum=0.5)
    assert G.nz == 6 and _convs(G.global_body)[0] == (6, 4, 7, 1)  # the map's 4 channels and 2 features
    G.observe(torch.tensor([[1.0, 2.0], [3.0, 2.0], [5.0, 5.0]]), torch.tensor([0, 0, 2]))
    assert torch.equal(G.feature_mean, torch.tensor([[2.0, 2.0], [0.0, 0.0], [5.0, 5.0]]))  # the objects' mean
    assert torch.equal(G.feature_var[0], torch.tensor([1.0, 0.0])) and G.feature_seen.tolist() == [1, 0, 1]
    G.observe(torch.tensor([[4.0, 4.0]]), torch.tensor([0]))  # the second batch: an average of the two
    assert torch.equal(G.feature_mean[0], torch.tensor([3.0, 3.0]))
    G.observe(torch.tensor([[7.0, 7.0]]), torch.tensor([0]))  # from then on a moving average at the momentum
    assert torch.equal(G.feature_mean[0], torch.tensor([5.0, 5.0]))
    labels = torch.tensor([[[0, 2], [1, 0]]])
    x = torch.cat([one_hot(labels, 3), torch.zeros(1, 1, 2, 2)], 1)
    feats = G.class_features(x, None)
    assert torch.equal(feats[0, :, 0, 1], G.feature_mean[2]) and torch.equal(feats[0, :, 1, 1], G.feature_mean[0])
    z = torch.ones(1, 6)
    assert torch.allclose(G.class_features(x, z)[0, :, 0, 0], G.feature_mean[0] + G.feature_var[0].sqrt())
    assert torch.allclose(G.class_features(x, z, truncation=0.0), feats)
    with pytest.raises(ValueError, match=r"z must be \[N, 6\]"):
        G(x, torch.ones(1, 5))


def test_instance_features_are_learned_with_g_and_only_g_sees_them():
    from translate.core.errors import ConfigError

    feature = ("model.instance_feat=true", "model.feature_encoder.n_downsample=2", "model.feature_encoder.nef=4")
    _, model = _model(*feature)
    assert set(model.auxiliaries()) == {"E"} and _convs(model.D)[0][0] == 5 + 3  # D: the map and the image alone
    labels = torch.randint(0, 5, (2, 4, 4)).repeat_interleave(8, 1).repeat_interleave(8, 2)
    instances = torch.randint(0, 3, (2, 32, 32))
    batch = {"A": one_hot(labels, 5), "B": torch.rand(2, 3, 32, 32) * 2 - 1, "labels": labels, "instances": instances}
    out = model.generate(batch)
    model.g_step(batch, out)["loss/G"].backward()
    assert all(p.grad is not None for p in model.E.parameters())  # E learns through G's loss, as in the code
    assert int(model.G.feature_seen.sum()) == len(labels.unique())  # the step taught the class statistics
    assert model.d_step(batch, out)["loss/D"].isfinite()
    assert model.G(batch["A"], torch.randn(2, model.G.nz)).shape == (2, 3, 32, 32)
    with pytest.raises(ConfigError, match="needs a generator that takes features"):
        _model(*feature, generator=("generator=unet_64",))
