"""Networks: reference parameter counts and shapes, output shapes, one backward pass, init."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from translate.networks import (
    MultiscaleDiscriminator,
    PatchDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    count_parameters,
    init_weights,
)
from translate.networks.layers import upsampling_conv

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "official_arch.json").read_text())


def _build_reference(name: str) -> torch.nn.Module:
    parts = name.split("_")
    if parts[0] == "G":
        _, arch, size, norm, drop = parts
        kwargs = dict(ngf=64, norm=norm, dropout=drop == "dropout")
        if arch == "unet":
            return UnetGenerator(num_downs={"128": 7, "256": 8}[size], **kwargs)
        return ResnetGenerator(n_blocks={"6blocks": 6, "9blocks": 9}[size], **kwargs)
    norm, in_channels = parts[-1], int(parts[-2].removeprefix("in"))
    if parts[1] == "pixel":
        return PixelDiscriminator(in_channels=in_channels, ndf=64, norm=norm)
    return PatchDiscriminator(in_channels=in_channels, ndf=64, n_layers=3, norm=norm)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_matches_reference_architecture(name):
    net = _build_reference(name)
    ref = REFERENCE[name]
    assert count_parameters(net) == ref["params"]
    ours = sorted(tuple(t.shape) for t in net.state_dict().values())
    theirs = sorted(tuple(s) for s in ref["state_dict"].values())
    assert ours == theirs


def test_every_reference_preset_is_covered():
    presets = {n.split("_")[1] + "_" + n.split("_")[2] for n in REFERENCE if n.startswith("G_")}
    assert presets == {"unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks"}


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize(
    "make,size",
    [
        (lambda n: UnetGenerator(in_channels=3, out_channels=1, num_downs=5, ngf=8, norm=n), 32),
        (lambda n: ResnetGenerator(in_channels=1, out_channels=3, n_blocks=2, ngf=8, norm=n), 36),
        (lambda n: ResnetGenerator(n_blocks=1, ngf=8, norm=n, dropout=True, padding="zero"), 20),
    ],
)
def test_generator_shapes_and_backward(make, size, norm):
    G = init_weights(make(norm))
    in_ch = G.downs[0].conv.in_channels if isinstance(G, UnetGenerator) else G.model[1].in_channels
    x = torch.randn(2, in_ch, size, size)
    y = G(x)
    assert y.shape[-2:] == (size, size)
    assert y.abs().max() <= 1.0  # tanh output
    y.mean().backward()
    assert all(p.grad is not None for p in G.parameters())


def test_unet_skip_carries_activated_features():
    """The reference U-Net's in-place LeakyReLU makes each skip the activated tensor; we reproduce it."""
    G = UnetGenerator(num_downs=5, ngf=4, norm="none", dropout=False)
    x = torch.randn(1, 3, 32, 32)
    skip, _ = G.downs[1](G.downs[0](x)[1])
    expected = torch.nn.functional.leaky_relu(G.downs[0].conv(x), 0.2)
    assert torch.allclose(skip, expected)


def test_patchgan_receptive_field_and_output_size():
    D = PatchDiscriminator(in_channels=6, ndf=8, n_layers=3)
    assert D(torch.randn(1, 6, 256, 256)).shape == (1, 1, 30, 30)
    feats = D.features(torch.randn(1, 6, 64, 64))
    assert len(feats) == 1 and len(feats[0]) == 5


def test_pixel_and_multiscale_discriminators():
    x = torch.randn(2, 6, 64, 64)
    assert PixelDiscriminator(in_channels=6, ndf=8)(x).shape == (2, 1, 64, 64)
    ms = MultiscaleDiscriminator(in_channels=6, ndf=8, n_layers=2, num_D=3)
    outs = ms(x)
    assert [o.shape[-1] for o in outs] == [14, 6, 2]
    feats = ms.features(x)
    assert len(feats) == 3 and all(torch.equal(f[-1], o) for f, o in zip(feats, outs))
    sum(o.mean() for o in outs).backward()


@pytest.mark.parametrize("n_layers,num_D", [(3, 1), (2, 1), (3, 3), (1, 2)])
def test_discriminator_min_size_is_tight(n_layers, num_D):
    D = MultiscaleDiscriminator(in_channels=3, ndf=4, n_layers=n_layers, num_D=num_D, norm="instance")
    D(torch.randn(1, 3, D.min_size, D.min_size))  # fits
    with pytest.raises((ValueError, RuntimeError)):
        D(torch.randn(1, 3, D.min_size // 2, D.min_size // 2))


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
@pytest.mark.parametrize("padding", [1, 2])
def test_a_patchgans_min_size_is_exact_for_its_padding(n_layers, padding):
    D = PatchDiscriminator(in_channels=3, ndf=4, n_layers=n_layers, norm="instance", padding=padding)
    assert D(torch.randn(1, 3, D.min_size, D.min_size)).shape[-1] >= 1
    if padding == 1:
        assert D.min_size == 3 * 2**n_layers
    with pytest.raises((ValueError, RuntimeError)):
        D(torch.randn(1, 3, D.min_size - 1, D.min_size - 1))


def test_spectral_norm_is_applied_and_initialised():
    D = PatchDiscriminator(in_channels=3, ndf=8, spectral_norm=True)
    conv = D.stages[0][0]
    assert hasattr(conv, "parametrizations")
    init_weights(D, "normal", 0.02)
    original = conv.parametrizations.weight.original
    assert 0.01 < original.std().item() < 0.03
    D(torch.randn(1, 3, 32, 32)).mean().backward()
    assert original.grad is not None


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_types(init_type):
    G = ResnetGenerator(n_blocks=1, ngf=8, norm="batch")
    init_weights(G, init_type, 0.02)
    conv = G.model[1]
    bn = G.model[2]
    assert torch.count_nonzero(conv.weight) > 0 and bn.bias.abs().sum() == 0
    if init_type == "normal":
        assert abs(conv.weight.std().item() - 0.02) < 0.005


def test_bad_options_fail_clearly():
    with pytest.raises(ValueError, match="norm='group'"):
        UnetGenerator(norm="group")
    with pytest.raises(ValueError, match="padding"):
        ResnetGenerator(padding="circular")
    with pytest.raises(ValueError, match="init_type"):
        init_weights(PixelDiscriminator(), "uniform")


@pytest.mark.parametrize("make", [lambda **kw: UnetGenerator(num_downs=5, ngf=4, **kw),
                                  lambda **kw: ResnetGenerator(n_blocks=1, ngf=4, **kw)], ids=["unet", "resnet"])
def test_a_residual_generator_adds_its_input(make):
    torch.manual_seed(0)
    plain = make(in_channels=4).eval()
    residual = make(in_channels=4, residual=True).eval()
    residual.load_state_dict(plain.state_dict())  # the same parameters: the option adds none
    x = torch.rand(2, 4, 32, 32) * 2 - 1
    assert torch.equal(residual(x), (x[:, :3] + plain(x)).clamp(-1, 1))
    with pytest.raises(ValueError, match="residual=true needs at least as many input channels"):
        make(in_channels=1, residual=True)


def test_resize_upsampling_has_no_checkerboard():
    """A stride-2 transposed convolution turns a flat input into a period-2 pattern (its kernel overlaps
    unevenly); nearest-neighbour up-sampling and a 3x3 convolution keep it flat away from the border."""
    torch.manual_seed(0)
    flat = torch.ones(1, 8, 8, 8)
    for upsample, patterned in (("transposed", True), ("resize", False)):
        up = upsampling_conv(8, 4, upsample=upsample, bias=False, kernel_size=4, padding=1)
        interior = up(flat)[..., 2:-2, 2:-2]
        assert interior.shape[-1] == 12
        assert (interior.std(dim=(-2, -1)).max() > 1e-3) == patterned, upsample
    with pytest.raises(ValueError, match="upsample='bilinear'"):
        upsampling_conv(8, 4, upsample="bilinear", bias=False)


@pytest.mark.parametrize("make", [lambda **kw: UnetGenerator(num_downs=5, ngf=4, **kw),
                                  lambda **kw: ResnetGenerator(n_blocks=1, ngf=4, **kw)], ids=["unet", "resnet"])
def test_resize_upsampling_generators(make):
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    G = make(upsample="resize")
    assert G(x).shape == (2, 3, 32, 32)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules())
    assert len(G.features(x, G.default_feature_layers)) == len(G.default_feature_layers)
