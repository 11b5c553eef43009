"""pix2pixHD's generator (Wang et al. 2018, "High-Resolution Image Synthesis and Semantic Manipulation with
Conditional GANs"), as the official code (NVIDIA/pix2pixHD, ``models/networks.py``) builds it.

- The global generator (the code's ``GlobalGenerator``): a 7x7 stem (reflection padding), ``n_downsample_global``
  3x3 stride-2 convolutions doubling the width, ``n_blocks_global`` residual blocks, as many 3x3 transposed
  convolutions back, a 7x7 convolution to the image and tanh; instance norm and ReLU after every convolution
  but the last.
- The local enhancer (``LocalEnhancer``, ``n_local_enhancers`` >= 1): the global generator at 1/2^k of the input
  (the input average-pooled, 3x3 stride 2) without its output layers, at width ``ngf * 2^k``; then per enhancer
  a front end (7x7 stem, one stride-2 conv) on the input at its own scale, whose features are *added* to the
  coarser output, ``n_blocks_local`` residual blocks and one transposed convolution up; the outermost ends with
  the 7x7 convolution to the image and tanh.

Training coarse to fine (``models.pix2pixhd``) uses two more ways to call it: ``G(x, global_only=True)`` (the
global generator with its own output layers, on the input average-pooled to 1/2^k) and ``G(x,
train_global=False)`` (the global part without gradients, the code's ``niter_fix_global``). While ``coarse`` is set (the model sets it during its
global phase), ``G(x)`` is the global generator's output upsampled to the input's size, so samples, validation
and inference in that phase show what is being trained.

With instance-wise features (``feat_nc`` > 0, the code's ``--instance_feat``/``--label_feat``): the input is
the map and ``feat_nc`` feature channels, constant over each object. In training the model fills them from the
photo with ``FeatureEncoder`` (the code's ``Encoder``) and ``region_means`` (its instance-wise average pooling);
without a photo they come from what the generator has seen of each class's features (``observe``): their mean
(``G(x)``), or the mean plus a style code [N, ``nz``] times their spread, one draw per class (``G(x, z)``), so
one map yields many photos through the same style options as SPADE's.

Where we differ on purpose: the global generator keeps its output layers inside the enhancer (the code drops
them when it builds the enhancer and loads them from a separate run); ``norm`` and ``padding`` take our choices.
Features without a photo come from a running mean and variance per class kept during training (the code
clusters the features of every training object afterwards, 10 k-means centres per class, in a separate script,
and draws a centre per object; here a style draws one feature per class).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from translate.core.schema import Count, Positive
from translate.networks.generators import ResnetBlock
from translate.networks.layers import Norm, Padding, keeps_arguments, norm_layer


def _stem(fin: int, fout: int, norm: Norm) -> list[nn.Module]:
    return [nn.ReflectionPad2d(3), nn.Conv2d(fin, fout, 7), norm_layer(norm, fout), nn.ReLU()]


def _down(fin: int, fout: int, norm: Norm) -> list[nn.Module]:
    return [nn.Conv2d(fin, fout, 3, stride=2, padding=1), norm_layer(norm, fout), nn.ReLU()]


def _up(fin: int, fout: int, norm: Norm) -> list[nn.Module]:
    return [nn.ConvTranspose2d(fin, fout, 3, stride=2, padding=1, output_padding=1), norm_layer(norm, fout), nn.ReLU()]


def _to_image(fin: int, fout: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(fin, fout, 7), nn.Tanh())


def _blocks(width: int, n: int, norm: Norm, padding: Padding) -> list[nn.Module]:
    return [ResnetBlock(width, norm=norm, dropout=False, padding=padding) for _ in range(n)]


def region_means(x: torch.Tensor, regions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Instance-wise average pooling: ``x`` [N, C, H, W] averaged over each region of ``regions`` [N, H, W] (ids,
    per image). Returns the pooled map [N, C, H, W], each region's mean [R, C] and each pixel's region [N*H*W]."""
    n, c, h, w = x.shape
    ids = regions.long() + torch.arange(n, device=x.device).view(n, 1, 1) * (int(regions.max()) + 1)
    _, pixel_region = torch.unique(ids.flatten(), return_inverse=True)
    count = int(pixel_region.max()) + 1
    flat = x.permute(0, 2, 3, 1).reshape(-1, c)
    sums = flat.new_zeros(count, c).index_add_(0, pixel_region, flat)
    means = sums / torch.bincount(pixel_region, minlength=count).to(flat).unsqueeze(1)
    return means[pixel_region].view(n, h, w, c).permute(0, 3, 1, 2), means, pixel_region


@keeps_arguments
class FeatureEncoder(nn.Module):
    """pix2pixHD's feature encoder (the code's ``Encoder``): a photo [N, in_channels, H, W] -> ``feat_nc``
    feature channels at its size (tanh), from a 7x7 stem, ``n_downsample`` stride-2 convolutions, as many
    transposed ones back and a 7x7 convolution; the model pools them per object (``region_means``). Input sides:
    multiples of 2^n_downsample."""

    def __init__(self, *, in_channels: int = 3, feat_nc: Positive = 3, nef: Positive = 16,
                 n_downsample: Positive = 4, norm: Norm = "instance"):
        super().__init__()
        self.in_channels, self.feat_nc = in_channels, int(feat_nc)
        layers = _stem(in_channels, nef, norm)
        for i in range(n_downsample):
            layers += _down(nef * 2**i, nef * 2 ** (i + 1), norm)
        for i in reversed(range(n_downsample)):
            layers += _up(nef * 2 ** (i + 1), nef * 2**i, norm)
        self.layers = nn.Sequential(*layers, _to_image(nef, self.feat_nc))

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        return self.layers(photo)


@keeps_arguments
class Pix2PixHDGenerator(nn.Module):
    """The global generator (``n_local_enhancers=0``, the code's ``netG global``) or the local enhancer around it
    (the code's ``netG local``; ``ngf`` is then the outermost enhancer's width, the global's is ``ngf * 2^k``).
    Input sides must be multiples of ``stride`` = 2^(n_downsample_global + n_local_enhancers). ``feat_nc`` > 0:
    instance-wise feature channels beside the map (see the module docstring), whose first ``feat_classes``
    channels are the one-hot classes; the style code is then [N, feat_classes * feat_nc]."""

    def __init__(self, *, in_channels: int = 36, out_channels: int = 3, ngf: Positive = 64,
                 n_downsample_global: Positive = 4, n_blocks_global: Count = 9, n_local_enhancers: Count = 1,
                 n_blocks_local: Count = 3, norm: Norm = "instance", padding: Padding = "reflect",
                 feat_nc: Count = 0, feat_classes: Count = 0, feature_momentum: float = 0.01):
        super().__init__()
        if feat_nc and not 0 < feat_classes <= in_channels:
            raise ValueError(f"Pix2PixHDGenerator: feat_classes={feat_classes} must be 1 .. in_channels with feat_nc")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.feat_nc, self.feat_classes = int(feat_nc), int(feat_classes) if feat_nc else 0
        self.nz, self.feature_momentum = self.feat_nc * self.feat_classes, float(feature_momentum)
        self.n_local_enhancers = k = int(n_local_enhancers)
        self.stride = 2 ** (n_downsample_global + k)
        width = ngf * 2**k
        fin = in_channels + self.feat_nc
        layers = _stem(fin, width, norm)
        for i in range(n_downsample_global):
            layers += _down(width * 2**i, width * 2 ** (i + 1), norm)
        layers += _blocks(width * 2**n_downsample_global, n_blocks_global, norm, padding)
        for i in reversed(range(n_downsample_global)):
            layers += _up(width * 2 ** (i + 1), width * 2**i, norm)
        self.global_body = nn.Sequential(*layers)
        self.global_head = _to_image(width, out_channels)
        self.fronts, self.backs = nn.ModuleList(), nn.ModuleList()
        for n in range(1, k + 1):  # the code's model{n}_1 (front) and model{n}_2 (back), coarse to fine
            width = ngf * 2 ** (k - n)
            self.fronts.append(nn.Sequential(*_stem(fin, width, norm), *_down(width, 2 * width, norm)))
            back = [*_blocks(2 * width, n_blocks_local, norm, padding), *_up(2 * width, width, norm)]
            self.backs.append(nn.Sequential(*back, *(_to_image(ngf, out_channels) if n == k else [])))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        # Set by the model during its global phase: G(x) is then the global output, upsampled (a buffer, so
        # checkpoints and the EMA copy carry it).
        self.register_buffer("coarse", torch.zeros((), dtype=torch.long))
        # Each class's features as training saw them (running mean and variance over its objects; feat_nc > 0).
        self.register_buffer("feature_mean", torch.zeros(self.feat_classes, self.feat_nc))
        self.register_buffer("feature_var", torch.zeros(self.feat_classes, self.feat_nc))
        self.register_buffer("feature_seen", torch.zeros(self.feat_classes, dtype=torch.long))

    @torch.no_grad()
    def observe(self, means: torch.Tensor, classes: torch.Tensor) -> None:
        """Fold objects' features (``means`` [R, feat_nc], of classes ``classes`` [R]) into each class's running
        mean and variance: an average over the first 1/momentum batches that show the class, then a moving one."""
        count = torch.bincount(classes, minlength=self.feat_classes).to(means)
        batch_mean = means.new_zeros(self.feat_classes, self.feat_nc).index_add_(0, classes, means)
        batch_sq = means.new_zeros(self.feat_classes, self.feat_nc).index_add_(0, classes, means.square())
        present = count > 0
        batch_mean[present] /= count[present].unsqueeze(1)
        batch_var = batch_sq[present] / count[present].unsqueeze(1) - batch_mean[present].square()
        rate = (1.0 / (self.feature_seen[present] + 1).to(means)).clamp(min=self.feature_momentum).unsqueeze(1)
        self.feature_mean[present] += rate * (batch_mean[present] - self.feature_mean[present])
        self.feature_var[present] += rate * (batch_var.clamp(min=0) - self.feature_var[present])
        self.feature_seen[present] += 1

    def class_features(self, x: torch.Tensor, z: torch.Tensor | None, truncation: float = 1.0) -> torch.Tensor:
        """The feature channels for map ``x`` without a photo: each class's mean, or with a style code [N, nz] its
        mean plus ``truncation`` * z times its spread (one draw per class and image)."""
        values = self.feature_mean.to(x).expand(len(x), -1, -1)
        if z is not None:
            if z.dim() != 2 or z.shape[1] != self.nz:
                raise ValueError(f"z must be [N, {self.nz}], got {list(z.shape)}")
            spread = self.feature_var.to(x).sqrt()
            values = values + truncation * z.to(x).view(len(x), self.feat_classes, self.feat_nc) * spread
        return torch.einsum("nchw,ncf->nfhw", x[:, :self.feat_classes], values)

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input at its scale and each coarser one (average-pooled), finest first."""
        scales = [x]
        for _ in range(self.n_local_enhancers):
            scales.append(self.downsample(scales[-1]))
        return scales

    def global_output(self, x: torch.Tensor) -> torch.Tensor:
        """The global generator's image for ``x`` (at its own scale: in the enhancer, the coarsest)."""
        return self.global_head(self.global_body(x))

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None, truncation: float = 1.0, *,
                feats: torch.Tensor | None = None, train_global: bool = True, global_only: bool = False) -> torch.Tensor:
        """The image for ``x``; with instance-wise features, ``feats`` (an encoded photo's) or those of style ``z``
        (None: each class's mean); ``train_global=False``: the global generator without gradients; ``global_only``:
        the global generator's own image, 2^k times smaller (the model's steps call these through ``forward``,
        so a DDP wrapper serves them)."""
        if self.feat_nc:
            x = torch.cat([x, feats if feats is not None else self.class_features(x, z, truncation)], 1)
        elif z is not None or feats is not None:
            raise ValueError("this pix2pixHD generator takes no features or style code (generator.feat_nc=0)")
        if not self.n_local_enhancers:
            return self.global_output(x)
        scales = self.pyramid(x)
        if global_only:
            return self.global_output(scales[-1])
        if not torch.jit.is_tracing() and self.coarse.item():  # exporters refuse a generator in its global phase
            return F.interpolate(self.global_output(scales[-1]), size=x.shape[-2:], mode="bilinear")
        with torch.set_grad_enabled(train_global and torch.is_grad_enabled()):
            out = self.global_body(scales[-1])
        for n, (front, back) in enumerate(zip(self.fronts, self.backs, strict=True), start=1):
            out = back(front(scales[self.n_local_enhancers - n]) + out)
        return out
