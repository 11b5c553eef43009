"""Differentiable augmentation of what the discriminators see (``augment=diffaugment|ada|none``).

With little data a discriminator memorises its training images within a few thousand steps; the cure is to
show it real and generated images alike through random transforms that gradients pass through, so G still
learns from D while D never sees the same image twice. The model applies them wherever a discriminator judges
an image (``TranslationModel.judge``): D's real and fake terms, its gradient penalties, G's adversarial terms.
Feature matching compares clean pairs (two independent augmentations of a real and a fake would not match).

- ``DiffAugment`` (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training", as its
  official ``DiffAugment_pytorch.py`` does it): a fixed policy of ``color`` (brightness, saturation, contrast),
  ``translation`` (integer shifts up to 1/8 of the side, zeros shifted in) and ``cutout`` (a zeroed square of
  half the side), every op on every image, with its own draw per image.
- ``ADA`` (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", the official
  ``augment.py``'s ``bgc`` pipeline): x-flip, 90-degree rotations, integer translation, isotropic scaling,
  rotation, anisotropic scaling, fractional translation (one affine warp, reflection padding), then brightness,
  contrast, luma flip, hue rotation and saturation (one colour matrix), each applied to each image with
  probability ``p``. ``p`` follows D: every ``interval`` D steps, r = E[sign(D(real) - decision)] over them; p
  moves by batch * interval / (speed_kimg * 1000) up when r > ``target`` and down when below.

A conditional discriminator's pair (a source image and an output, concatenated) gets one geometric transform on
all its channels, so the pair stays aligned, and the colour transform on the output's channels only
(``colour_from``): a label map or sketch is not recoloured.

The ops are the references' own formulas in tensor operations (kornia's colour adjustments work in other colour
spaces and would not be the same transforms); the warp is torch's ``affine_grid``/``grid_sample``.

Where ADA differs from the official code on purpose: the warp samples bilinearly (the code upsamples with a
wavelet filter first to avoid aliasing); one ``p`` per model (CycleGAN's two discriminators share it);
``speed_kimg`` defaults to 2, not the code's ``ada_kimg`` 500: that suits runs of millions of images, and a
run of a few thousand steps would never move p.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from translate.core.errors import ConfigError
from translate.core.schema import Fraction, Positive, Range

Share = Annotated[float, Range(0, 1)]

POLICIES = ("color", "translation", "cutout")


class Augment(nn.Module):
    """No augmentation (``augment=none``): what the others extend. ``forward(x, colour_from)`` transforms a batch
    [N, C, H, W] (the colour ops on channels ``colour_from:``); ``observe`` hears D's verdict on real images."""

    def forward(self, x: torch.Tensor, colour_from: int = 0) -> torch.Tensor:
        return x

    def observe(self, real_sign: torch.Tensor, images: int) -> None:
        """One D step's verdict on its ``images`` (augmented) real images: ``real_sign``, the mean of
        sign(D(real) - decision) over its outputs (``TranslationModel.verdicts``)."""

    @property
    def probability(self) -> float | None:
        """The adaptive probability (None: not adaptive)."""
        return None

    @property
    def active(self) -> bool:
        """Whether ``forward`` changes anything now."""
        return False

    @staticmethod
    def shared_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Of one process's saved state, what another process may load (torchrun, resuming a checkpoint that
        holds one process's state): all of it unless a subclass keeps per-process counts."""
        return state


class DiffAugment(Augment):
    """DiffAugment's ``policy`` (a list or comma-separated: color, translation, cutout), in that order."""

    def __init__(self, *, policy: list[str] | str = "color,translation,cutout", translation_ratio: Fraction = 0.125,
                 cutout_ratio: Share = 0.5):
        super().__init__()
        ops = [p.strip() for p in (policy.split(",") if isinstance(policy, str) else policy) if p.strip()]
        if unknown := [p for p in ops if p not in POLICIES]:
            raise ConfigError(f"augment.policy: {unknown[0]!r} is not one of {', '.join(POLICIES)}")
        if not 0 <= translation_ratio < 1 or not 0 <= cutout_ratio <= 1:
            raise ConfigError("augment.translation_ratio must be in [0, 1) and augment.cutout_ratio in [0, 1]")
        self.policy = [p for p in POLICIES if p in ops]
        self.translation_ratio, self.cutout_ratio = float(translation_ratio), float(cutout_ratio)

    @property
    def active(self) -> bool:
        return bool(self.policy)

    def forward(self, x: torch.Tensor, colour_from: int = 0) -> torch.Tensor:
        if "color" in self.policy:
            x = torch.cat([x[:, :colour_from], colour(x[:, colour_from:])], 1) if colour_from else colour(x)
        if "translation" in self.policy:
            x = shift(x, self.translation_ratio)
        if "cutout" in self.policy:
            x = cutout(x, self.cutout_ratio)
        return x


def _draw(x: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(len(x), *shape, device=x.device, dtype=x.dtype)


def colour(x: torch.Tensor) -> torch.Tensor:
    """DiffAugment's colour ops, one draw per image: brightness +U(-0.5, 0.5), saturation x U(0, 2) about the
    pixel's channel mean, contrast x U(0.5, 1.5) about the image's mean."""
    x = x + (_draw(x, 1, 1, 1) - 0.5)
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * (_draw(x, 1, 1, 1) * 2) + mean
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (_draw(x, 1, 1, 1) + 0.5) + mean


def shift(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """Integer shifts of up to ``ratio`` of each side (one per image), zeros shifted in."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # the border of zeros is where shifted-in pixels read
    return padded[torch.arange(n, device=x.device).view(n, 1, 1), rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """A square of ``ratio`` of the sides zeroed per image, centred anywhere on it (it may hang over an edge)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device) - ch // 2
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= cy) & (rows < cy + ch) & (cols >= cx) & (cols < cx + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


class ADA(Augment):
    """Adaptive discriminator augmentation (see the module docstring): the ``bgc`` pipeline at probability
    ``p`` (a buffer: saved with the training state), adjusted towards ``target`` every ``interval`` D steps at
    ``speed_kimg`` (thousands of images for p to move by 1)."""

    def __init__(self, *, target: Annotated[float, Range(0, 1, open_low=True, open_high=True)] = 0.6,
                 speed_kimg: Annotated[float, Range(0, open_low=True)] = 2.0, interval: Positive = 4,
                 initial_p: Share = 0.0, max_p: Share = 1.0):
        super().__init__()
        if not 0 < target < 1 or not 0 <= initial_p <= max_p <= 1:
            raise ConfigError("augment: target must be in (0, 1) and 0 <= initial_p <= max_p <= 1")
        self.target, self.speed_kimg, self.interval, self.max_p = float(target), float(speed_kimg), int(interval), float(max_p)
        self.register_buffer("p", torch.tensor(float(initial_p), dtype=torch.float64))
        # Since the last adjustment: the D steps' real_sign summed, images, D steps.
        self.register_buffer("tally", torch.zeros(3, dtype=torch.float64))
        # p and the D steps counted, as Python numbers: read every step without waiting for an accelerator.
        self._p, self._steps = float(initial_p), 0
        self.register_load_state_dict_post_hook(ADA._mirror)

    @staticmethod
    def _mirror(module: ADA, incompatible_keys) -> None:
        """After loading a training state: its p and step count as Python numbers."""
        module._p, module._steps = float(module.p), int(module.tally[2])

    @property
    def probability(self) -> float:
        return self._p

    @property
    def active(self) -> bool:
        return self._p > 0

    @staticmethod
    def shared_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``p`` and the count of D steps since the last adjustment (every process must pool at the same step,
        or they wait for each other forever), without the saving process's sums of real_sign and images, which
        would be pooled once per process."""
        if "tally" not in state:
            return state
        return {**state, "tally": state["tally"] * torch.tensor([0.0, 0.0, 1.0], dtype=state["tally"].dtype)}

    @torch.no_grad()
    def observe(self, real_sign: torch.Tensor, images: int) -> None:
        self.tally += torch.stack([real_sign.detach().to(self.tally), self.tally.new_tensor(float(images)),
                                   self.tally.new_tensor(1.0)])
        self._steps += 1
        if self._steps < self.interval:
            return
        tally = self.tally.clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(tally)  # every replica moves p alike
        heuristic = tally[0] / tally[2]  # each D step's outputs are as many: the mean over all of them
        self.p.copy_((self.p + torch.sign(heuristic - self.target) * tally[1] / (self.speed_kimg * 1000))
                     .clamp(0, self.max_p))
        self.tally.zero_()
        self._p, self._steps = float(self.p), 0  # the one wait for the device, every interval D steps

    def forward(self, x: torch.Tensor, colour_from: int = 0) -> torch.Tensor:
        p = self._p
        if p <= 0:
            return x
        dtype = x.dtype
        x = warp(x, geometric(x, p))  # in fp32 (reals and fakes alike): back to the step's precision after
        image = x[:, colour_from:]
        return torch.cat([x[:, :colour_from], recolour(image, colour_matrix(image, p))], 1).to(dtype)


def _chosen(x: torch.Tensor, p: float, value: torch.Tensor, identity: float) -> torch.Tensor:
    """``value`` ([N] or [N, k]: one draw for all k, as a translation's x and y) where an image draws below ``p``,
    ``identity`` elsewhere."""
    drawn = (torch.rand(len(x), device=x.device) < p).view(-1, *[1] * (value.dim() - 1))
    return torch.where(drawn, value, torch.full_like(value, identity))


def _matrices(rows: list[list[torch.Tensor | float]], like: torch.Tensor) -> torch.Tensor:
    """[N, k, k] matrices from nested rows of [N] tensors and numbers."""
    n = len(like)
    return torch.stack([torch.stack([torch.as_tensor(v, dtype=torch.float32, device=like.device).expand(n)
                                     for v in row], -1) for row in rows], -2)


def _scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    return _matrices([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def _rotate2d(theta: torch.Tensor) -> torch.Tensor:
    c, s = theta.cos(), theta.sin()
    return _matrices([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def _translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    return _matrices([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def geometric(x: torch.Tensor, p: float) -> torch.Tensor:
    """ADA's geometric transforms as one [N, 3, 3] matrix in pixel units about the image centre (output ->
    input coordinates), each transform chosen per image with probability ``p``."""
    n, _, h, w = x.shape
    dev = x.device
    ln2 = math.log(2)
    m = _scale2d(_chosen(x, p, 1 - 2 * torch.randint(0, 2, (n,), device=dev).float(), 1), torch.ones(n, device=dev))
    m = m @ _rotate2d(_chosen(x, p, torch.randint(0, 4, (n,), device=dev).float() * math.pi / 2, 0))
    size = torch.tensor([w, h], dtype=torch.float32, device=dev)
    shift = _chosen(x, p, ((torch.rand(n, 2, device=dev) * 2 - 1) * 0.125 * size).round(), 0)
    m = m @ _translate2d(shift[:, 0], shift[:, 1])
    scale = _chosen(x, p, torch.exp(torch.randn(n, device=dev) * 0.2 * ln2), 1)
    m = m @ _scale2d(scale, scale)
    p_rot = 1 - math.sqrt(1 - min(p, 1.0))  # rotated twice (before and after the anisotropic scaling)
    m = m @ _rotate2d(_chosen(x, p_rot, (torch.rand(n, device=dev) * 2 - 1) * math.pi, 0))
    aniso = _chosen(x, p, torch.exp(torch.randn(n, device=dev) * 0.2 * ln2), 1)
    m = m @ _scale2d(aniso, 1 / aniso)
    m = m @ _rotate2d(_chosen(x, p_rot, (torch.rand(n, device=dev) * 2 - 1) * math.pi, 0))
    frac = _chosen(x, p, torch.randn(n, 2, device=dev) * 0.125 * size, 0)
    return m @ _translate2d(frac[:, 0], frac[:, 1])


def warp(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x`` resampled (bilinear, reflection padding) through pixel-space matrices ``m`` [N, 3, 3]."""
    n, _, h, w = x.shape
    to_unit = torch.diag(torch.tensor([2 / w, 2 / h, 1.0], device=x.device))  # pixels about the centre -> [-1, 1]
    theta = (to_unit @ m @ torch.linalg.inv(to_unit))[:, :2]
    with torch.autocast(x.device.type, enabled=False):  # a bf16 grid would be off by up to 0.6 px at 256
        grid = F.affine_grid(theta.float(), [n, x.shape[1], h, w], align_corners=False)
        return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def colour_matrix(x: torch.Tensor, p: float) -> torch.Tensor:
    """ADA's colour transforms as one [N, 4, 4] matrix on RGB (homogeneous), each chosen with probability ``p``:
    brightness (+N(0, 0.2)), contrast (x lognormal, 0.5 octave), luma flip, hue rotation, saturation (1 octave)."""
    n, dev, ln2 = len(x), x.device, math.log(2)
    eye = torch.eye(4, device=dev).expand(n, 4, 4)
    outer = _luma_outer(dev)
    b = _chosen(x, p, torch.randn(n, device=dev) * 0.2, 0)
    m = eye.clone()
    m[:, :3, 3] = b.unsqueeze(1)
    c = _chosen(x, p, torch.exp(torch.randn(n, device=dev) * 0.5 * ln2), 1)
    m = torch.diag_embed(torch.stack([c, c, c, torch.ones_like(c)], 1)) @ m
    m = luma_flip(_chosen(x, p, torch.randint(0, 2, (n,), device=dev).float(), 0)) @ m
    m = hue_rotation(_chosen(x, p, (torch.rand(n, device=dev) * 2 - 1) * math.pi, 0)) @ m
    s = _chosen(x, p, torch.exp(torch.randn(n, device=dev) * ln2), 1)
    saturation = outer + (eye - outer) * torch.stack([s, s, s, torch.ones_like(s)], 1).unsqueeze(1)
    return saturation @ m


def _luma_outer(device: torch.device) -> torch.Tensor:
    """The projection onto the gray axis (r = g = b), homogeneous [4, 4]."""
    luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)
    return torch.outer(luma, luma)


def luma_flip(flip: torch.Tensor) -> torch.Tensor:
    """[N, 4, 4]: the luma of RGB mirrored (its hue kept) where ``flip`` [N] is 1, the identity where 0."""
    eye = torch.eye(4, device=flip.device)
    return eye - 2 * _luma_outer(flip.device) * flip.view(-1, 1, 1)


def hue_rotation(theta: torch.Tensor) -> torch.Tensor:
    """Rotations of RGB by ``theta`` [N] about the gray axis (Rodrigues), as [N, 4, 4]."""
    a = torch.ones(3, device=theta.device) / math.sqrt(3)
    k = torch.tensor([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]], device=theta.device)
    c, s = theta.cos().view(-1, 1, 1), theta.sin().view(-1, 1, 1)
    r = torch.eye(3, device=theta.device) + s * k + (1 - c) * (k @ k)
    out = torch.eye(4, device=theta.device).repeat(len(theta), 1, 1)
    out[:, :3, :3] = r
    return out


def recolour(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``x`` [N, C, H, W] through colour matrices [N, 4, 4]: RGB as they are; any other channel count as a gray
    pixel (r = g = b) goes through them, averaged (brightness and contrast, the rest cancels out)."""
    n, c, h, w = x.shape
    m = m.to(x.dtype)
    if c == 3:
        return (m[:, :3, :3] @ x.flatten(2) + m[:, :3, 3:]).view(n, c, h, w)
    gain = m[:, :3, :3].sum(2).mean(1).view(n, 1, 1, 1)
    return x * gain + m[:, :3, 3].mean(1).view(n, 1, 1, 1)
