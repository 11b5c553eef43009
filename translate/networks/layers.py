"""Building blocks shared by the generators and discriminators (norm layers, padding, weight init), and the
facts the rest of the framework reads off a built network (channels, stride, smallest input)."""

from __future__ import annotations

import functools
import inspect
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from translate.core.errors import check_choice

Norm = Literal["batch", "instance", "none", "syncbatch"]
Padding = Literal["reflect", "replicate", "zero"]
Upsample = Literal["transposed", "resize"]

NORMS = ("batch", "instance", "none", "syncbatch")
PADDINGS = ("reflect", "replicate", "zero")
UPSAMPLES = ("transposed", "resize")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


def norm_layer(norm: Norm, channels: int) -> nn.Module:
    """A 2-D norm layer as the reference builds it.

    BatchNorm is affine with running statistics; InstanceNorm has neither (so it adds no state_dict keys);
    ``none`` is an identity.
    """
    check_choice("norm", norm, NORMS)
    if norm in ("batch", "syncbatch"):
        # syncbatch is built as BatchNorm2d (same weights and keys); the training loop converts it to
        # SyncBatchNorm when it runs under DDP on GPUs, so statistics span the global batch.
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def upsampling_conv(in_ch: int, out_ch: int, *, upsample: Upsample, bias: bool, **transposed) -> nn.Module:
    """A layer that doubles the sides: the reference's ``ConvTranspose2d(in_ch, out_ch, **transposed)``, or
    ``resize`` (Odena et al. 2016, "Deconvolution and checkerboard artifacts"): nearest-neighbour 2x
    up-sampling, then a 3x3 convolution, whose output pixels all see the same number of input pixels, so it
    cannot paint the checkerboard a stride-2 transposed convolution's uneven overlap starts from."""
    check_choice("upsample", upsample, UPSAMPLES)
    if upsample == "resize":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                             nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=bias))
    return nn.ConvTranspose2d(in_ch, out_ch, stride=2, bias=bias, **transposed)


def conv_bias(norm: Norm) -> bool:
    """Whether a conv feeding a norm layer gets a bias.

    The reference gives such convs a bias only for instance norm (BatchNorm has its own shift; for ``none``
    the reference drops it too). We keep that rule so parameter counts and checkpoints match.
    """
    return norm == "instance"


def padding_layer(padding: Padding, amount: int) -> tuple[list[nn.Module], int]:
    """Explicit padding modules plus the padding to give the conv itself (for zero padding)."""
    check_choice("padding", padding, PADDINGS)
    if padding == "reflect":
        return [nn.ReflectionPad2d(amount)], 0
    if padding == "replicate":
        return [nn.ReplicationPad2d(amount)], 0
    return [], amount


def _init_target(module: nn.Module, name: str) -> torch.Tensor | None:
    """The tensor to initialise: the original weight behind a parametrization (e.g. spectral norm)."""
    parametrizations = getattr(module, "parametrizations", None)
    if parametrizations is not None and name in parametrizations:
        return parametrizations[name].original
    value = getattr(module, name, None)
    return value if isinstance(value, torch.Tensor) else None


@torch.no_grad()
def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear weights as the reference does; norm layers get weight ~ N(1, gain), bias 0."""
    check_choice("init_type", init_type, INIT_TYPES)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = _init_target(m, "weight")
            if weight is not None:
                if init_type == "normal":
                    nn.init.normal_(weight, 0.0, gain)
                elif init_type == "xavier":
                    nn.init.xavier_normal_(weight, gain=gain)
                elif init_type == "kaiming":
                    nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
                else:
                    nn.init.orthogonal_(weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters (what the reference prints)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def generator_channels(G: nn.Module) -> tuple[int, int]:
    """(input, output) channels of a generator: its ``in_channels`` and ``out_channels`` where it declares them
    (a first convolution that also takes a style code has more), else read off its first and last convolutions."""
    if hasattr(G, "in_channels") and hasattr(G, "out_channels"):
        return int(G.in_channels), int(G.out_channels)
    convs = [m for m in G.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    return convs[0].in_channels, convs[-1].out_channels


def baked(net: nn.Module) -> nn.Module:
    """``net`` with every parametrization (spectral norm) replaced by the weight it currently gives, as a new network
    (``net`` itself when it has none): the same outputs in eval mode, without the per-call normalisation that
    exporters cannot express. A parametrized network must keep its arguments (``keeps_arguments``)."""
    if not any(parametrize.is_parametrized(m) for m in net.modules()):
        return net
    # A fresh instance, not a deep copy: a copy shares each parametrized module's class with the original, and
    # removing a parametrization edits that class.
    clone = type(net)(**net.arguments)
    clone.load_state_dict(net.state_dict())
    clone.train(net.training)  # in training mode, reading a spectral-norm weight takes a power-iteration step
    found = [(m, name) for m in clone.modules() for name in list(getattr(m, "parametrizations", {}) or {})]
    for module, name in found:  # collected first: removing one changes the module's class
        parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return clone


def generator_stride(G: nn.Module) -> int:
    """Input sides must be multiples of this (256 for unet_256, 4 for the ResNets; 1 for a network that does
    not declare a ``stride``)."""
    return int(getattr(G, "stride", 1))


def discriminator_min_size(D: nn.Module) -> int:
    """The smallest input side ``D`` takes (1 for a network that does not declare a ``min_size``)."""
    return int(getattr(D, "min_size", 1))


def keeps_arguments(cls: type) -> type:
    """Class decorator for a network that can be saved on its own (a model folder, ``translate.loading.folder``):
    each instance keeps the keyword arguments it was built with, defaults filled in, as ``net.arguments``, so
    that it can be rebuilt from them without the config that made it. ``cls.rebuildable`` says so."""
    init = cls.__init__
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        init(self, *args, **kwargs)
        self.arguments = {name: value for name, value in bound.arguments.items() if name != "self"}

    cls.__init__ = __init__
    cls.rebuildable = True
    return cls


def stride_padding(h: int, w: int, stride: int, minimum: int = 1) -> tuple[int, int]:
    """Rows and columns that take h x w to multiples of ``stride`` of at least ``minimum``."""
    ph, pw = max((-h) % stride, minimum - h), max((-w) % stride, minimum - w)
    return ph + (-(h + ph)) % stride, pw + (-(w + pw)) % stride


def pad_to_stride(x: torch.Tensor, stride: int, minimum: int = 1) -> tuple[torch.Tensor, int, int]:
    """``x`` padded at the bottom and right to a size the generator takes, and its own height and width (to crop
    the output back to)."""
    h, w = x.shape[-2:]
    ph, pw = stride_padding(h, w, stride, minimum)
    if ph == 0 and pw == 0:
        return x, h, w
    # Reflection needs the padding to be smaller than the side; tiny images fall back to replication.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), h, w

