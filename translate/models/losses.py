"""GAN objectives, gradient penalty, feature matching and the variational pieces (a Gaussian code's KL to the prior,
the reparameterisation trick).

Each objective turns discriminator logits into named loss tensors. Logits may be a tensor or a list of
tensors (one per scale of a multi-scale discriminator); the scales' losses are summed, as BicycleGAN's and
pix2pixHD's reference code sum them. Losses are computed in float32
even under autocast, so fp16/bf16 logits never overflow the loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from translate.core.errors import ConfigError

Logits = torch.Tensor | Sequence[torch.Tensor]


def _scales(logits: Logits) -> list[torch.Tensor]:
    return [t.float() for t in logits] if isinstance(logits, (list, tuple)) else [logits.float()]


def _sum_over_scales(fn: Callable[[torch.Tensor], torch.Tensor], logits: Logits) -> torch.Tensor:
    terms = [fn(t) for t in _scales(logits)]
    return torch.stack(terms).sum()


class GANObjective:
    """Base class. ``d_loss`` returns the real and fake terms; ``g_loss`` the generator's adversarial term."""

    #: Weight of the discriminator's gradient penalty; 0 means none is computed.
    gp_weight: float = 0.0
    #: The output between "real" and "fake" (ADA's overfitting heuristic counts reals above it); None for a
    #: critic, whose outputs' offset is arbitrary.
    decision: float | None = 0.0

    def d_loss(self, real: Logits, fake: Logits) -> dict[str, torch.Tensor]:
        return {"real": _sum_over_scales(self.d_real, real), "fake": _sum_over_scales(self.d_fake, fake)}

    def g_loss(self, fake: Logits) -> torch.Tensor:
        return _sum_over_scales(self.g_fake, fake)

    def d_real(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_fake(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_fake(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


LabelRange = tuple[float, float]


def check_label_range(name: str, value) -> LabelRange | None:
    """``[low, high]`` with 0 <= low <= high <= 1, or None; a ConfigError naming ``gan_loss.<name>`` otherwise."""
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"gan_loss.{name}={value!r}: give [low, high], e.g. [0.8, 1.0], or null") from None
    if not 0 <= low <= high <= 1:
        raise ConfigError(f"gan_loss.{name}=[{low:g}, {high:g}]: needs 0 <= low <= high <= 1")
    return low, high


class LabelTargets(GANObjective):
    """Objectives that regress D's output on a target label (1 real, 0 fake). ``real_label_range`` /
    ``fake_label_range`` replace those by labels drawn uniformly from [low, high] for every image and step in
    D's loss (noisy, soft labels: e.g. real 0.8-1.0, fake 0.0-0.2 as the DCGAN anime-face tutorial); G's target
    stays 1 (its non-saturating loss). Labels come from the training RNG, so resume stays exact."""

    def __init__(self, real_label_range: list[float] | None = None, fake_label_range: list[float] | None = None):
        self.real_label_range = check_label_range("real_label_range", real_label_range)
        self.fake_label_range = check_label_range("fake_label_range", fake_label_range)

    @staticmethod
    def labels(logits: torch.Tensor, value: float, drawn: LabelRange | None) -> torch.Tensor:
        """One target per image (broadcast over any patch dimensions)."""
        if drawn is None:
            return torch.full_like(logits, value)
        low, high = drawn
        shape = (logits.shape[0],) + (1,) * (logits.dim() - 1)
        u = torch.rand(shape, device=logits.device, dtype=logits.dtype)
        return (low + (high - low) * u).expand_as(logits)

    def regress(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_real(self, logits):
        return self.regress(logits, self.labels(logits, 1.0, self.real_label_range))

    def d_fake(self, logits):
        return self.regress(logits, self.labels(logits, 0.0, self.fake_label_range))

    def g_fake(self, logits):
        return self.regress(logits, torch.ones_like(logits))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(real_label_range={self.real_label_range}, "
                f"fake_label_range={self.fake_label_range})")


class VanillaGAN(LabelTargets):
    """The original GAN objective: binary cross-entropy on logits (non-saturating for G). The reference
    halves D's loss, (real + fake) / 2, which the models apply uniformly for every objective."""

    def regress(self, logits, target):
        return F.binary_cross_entropy_with_logits(logits, target)


class LSGAN(LabelTargets):
    """Least-squares GAN: MSE against 1 for real and 0 for fake."""

    decision = 0.5

    def regress(self, logits, target):
        return F.mse_loss(logits, target)


class HingeGAN(GANObjective):
    """Hinge loss (SAGAN/BigGAN): D minimises relu(1 - real) + relu(1 + fake); G minimises -fake."""

    def d_real(self, logits):
        return F.relu(1.0 - logits).mean()

    def d_fake(self, logits):
        return F.relu(1.0 + logits).mean()

    def g_fake(self, logits):
        return -logits.mean()


class WGANGP(GANObjective):
    """Wasserstein GAN with gradient penalty (Gulrajani et al.): D minimises fake - real + gp_weight * GP."""

    decision = None  # the critic's outputs can drift by any constant

    def __init__(self, gp_weight: float = 10.0):
        self.gp_weight = float(gp_weight)

    def d_real(self, logits):
        return -logits.mean()

    def d_fake(self, logits):
        return logits.mean()

    def g_fake(self, logits):
        return -logits.mean()

    def __repr__(self) -> str:
        return f"WGANGP(gp_weight={self.gp_weight})"


def gradient_penalty(D: Callable[[torch.Tensor], Logits], real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """(||grad_x D(x)||_2 - 1)^2 at random interpolates of real and fake samples (one alpha per sample)."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = _scales(D(x))
    grads = torch.autograd.grad(
        outputs=[o.sum() for o in out], inputs=x, create_graph=True, retain_graph=True
    )[0]
    norms = grads.float().flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def r1_penalty(D: Callable[[torch.Tensor], Logits], real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): the squared norm of D's gradient at the real images, mean over images; the
    caller weighs it by gamma / 2 (StyleGAN: gamma 10)."""
    x = real.detach().requires_grad_(True)
    out = _scales(D(x))
    grads = torch.autograd.grad(outputs=[o.sum() for o in out], inputs=x, create_graph=True)[0]
    return grads.float().pow(2).flatten(1).sum(1).mean()


def feature_matching(real_feats: list[list[torch.Tensor]], fake_feats: list[list[torch.Tensor]],
                     average_layers: bool = True) -> torch.Tensor:
    """pix2pixHD's discriminator feature-matching loss: L1 between D's intermediate activations on real and
    fake pairs, averaged over layers (the logits excluded) and scales; ``average_layers=False``: summed over the
    layers and averaged over scales, as the SPADE code does."""
    terms = []
    for real_scale, fake_scale in zip(real_feats, fake_feats):
        for r, f in zip(real_scale[:-1], fake_scale[:-1]):
            terms.append(F.l1_loss(f.float(), r.detach().float()))
    if not terms:
        raise ValueError("feature matching needs a discriminator with at least one hidden layer")
    layers = max(len(real_feats[0]) - 1, 1) if average_layers else 1
    return torch.stack(terms).sum() / len(real_feats) / layers


def patch_nce(query: torch.Tensor, key: torch.Tensor, *, num_images: int, temperature: float = 0.07) -> torch.Tensor:
    """CUT's PatchNCE loss (Park et al. 2020): each output patch (a row of ``query``) should pick out the input
    patch at the same location (the same row of ``key``) among the other sampled patches of the same image.

    ``query`` and ``key`` are ``[num_images * P, D]`` unit vectors, image by image; ``key`` is detached (the input
    side is the fixed reference). Logits are cosine similarities over ``temperature``; the positive's own
    position among the negatives is masked out, so an uninformative embedding scores about log(P) (chance) and
    a perfect one near zero. Returns the mean cross-entropy, in float32.
    """
    q, k = query.float(), key.detach().float()
    dim = q.shape[1]
    positive = (q * k).sum(1, keepdim=True)
    q, k = q.view(num_images, -1, dim), k.view(num_images, -1, dim)
    patches = q.shape[1]
    negatives = torch.bmm(q, k.transpose(1, 2))
    same = torch.eye(patches, dtype=torch.bool, device=q.device)[None]
    negatives = negatives.masked_fill(same, -10.0).view(-1, patches)
    logits = torch.cat([positive, negatives], 1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=q.device))


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image [N], in [-1, 1] units like the training loss (a metric as well as a loss)."""
    return (pred.float() - target.float()).abs().flatten(1).mean(1)


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, 1)) per image, summed over every code value (in float32): [N]."""
    terms = 0.5 * (mean.float() ** 2 + log_var.float().exp() - 1.0 - log_var.float())
    return terms.flatten(1).sum(1)


def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A code drawn from N(mean, exp(log_var)) through which gradients reach ``mean`` and ``log_var``."""
    return mean + torch.randn_like(mean) * (0.5 * log_var).exp()
