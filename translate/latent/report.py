"""What ``translate axes report=true`` measures about the axes and the generator:

- ``sweeps``: latents moved from -2 to +2 standard deviations along each axis; the mean score of the axis'
  own attribute at each step (Spearman rank correlation with the step: 1 is monotonic) and the change per
  standard deviation of it and of every base attribute; with a base, the same for the raw (untangled-before)
  axis, so the base attribute's change before and after untangling can be compared;
- ``separability``: for each binary or class score, a linear SVM's held-out accuracy from z and from w on the
  same samples (StyleGAN's claim: attributes are more linearly separable in W);
- ``distribution``: categories' class shares among generated vs real images (by the extractor's argmax), their
  KL divergence and which classes are missing; the Fréchet distance between the extractor's features of real
  and generated images, next to the distance between two halves of the real images (the floor for that many
  images).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from scipy.stats import spearmanr

from translate.data.fixed import validation_batches
from translate.latent.axes import Axes, _split, _svm_axis, fit_axis, training_data
from translate.latent.sampling import LatentEdit, Sampler

STEPS = (-2.0, -1.0, 0.0, 1.0, 2.0)


@torch.no_grad()
def sweep(sampler: Sampler, extractor, axis: torch.Tensor, std: float, space: str, z: torch.Tensor,
          names: list[str]) -> dict[str, list[float]]:
    """Mean score of ``names`` over latents ``z`` moved k standard deviations along ``axis``, k in STEPS."""
    means: dict[str, list[float]] = {n: [] for n in names}
    for k in STEPS:
        moved = sampler.with_edits([LatentEdit(axis, k * std, space)])
        scores = extractor.scores(moved.images(z))
        for n in names:
            means[n].append(float(scores[n].float().mean()))
    return means


def _change(means: list[float]) -> float:
    """Change of a mean score per standard deviation (end to end over the sweep)."""
    return (means[-1] - means[0]) / (STEPS[-1] - STEPS[0])


def sweeps(sampler: Sampler, extractor, axes: Axes, raw: dict[str, torch.Tensor], z: torch.Tensor) -> dict:
    base = list(axes.info["base"])
    result = {}
    for name, vector in axes.vectors.items():
        names = [name, *[b for b in base if b != name]]
        after = sweep(sampler, extractor, vector, axes.stds[name], axes.space, z, names)
        entry = {"steps": list(STEPS), "means": {n: [round(v, 4) for v in after[n]] for n in names},
                 "spearman": round(float(spearmanr(STEPS, after[name]).statistic), 4),
                 "change_per_std": {n: round(_change(after[n]), 4) for n in names}}
        if name not in base and base:
            before = sweep(sampler, extractor, raw[name], axes.stds[name], axes.space, z, names)
            entry["change_per_std_before_untangling"] = {n: round(_change(before[n]), 4) for n in names}
        result[name] = entry
    return result


def separability(samples: dict[str, torch.Tensor], names: list[str], seed: int = 0) -> dict:
    """Held-out linear-SVM accuracy of each score's median split from z and from w."""
    result = {}
    for name in names:
        y = samples[f"score/{name}"]
        train, test = _split(len(y), 0.2, seed)
        labels = y > y[train].median()
        if labels[train].all() or not labels[train].any():
            continue
        result[name] = {space: round(_svm_axis(samples[space][train].double(), labels[train],
                                               samples[space][test].double(), labels[test])[1], 4)
                        for space in ("z", "w") if space in samples}
    return result


def _psd_sqrt(c: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(c)
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T


def frechet(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` and ``b`` [N, D] (N >= 2):
    |mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2), by symmetric eigendecompositions (stable for
    the singular covariances of fewer images than features)."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("a Fréchet distance needs at least two images on each side")
    a, b = a.double(), b.double()
    ca, cb = a.T.cov(), b.T.cov()
    root_a = _psd_sqrt(ca)
    cross = torch.linalg.eigvalsh(root_a @ cb @ root_a).clamp_min(0).sqrt().sum()
    mu = a.mean(0) - b.mean(0)
    return float(mu @ mu + ca.trace() + cb.trace() - 2 * cross)


def kl_divergence(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-3) -> float:
    """KL(p || q) of two class-share vectors, with ``eps`` added to every share (a missing class costs
    about log(share / eps), not infinity)."""
    p, q = (p + eps) / (p + eps).sum(), (q + eps) / (q + eps).sum()
    return float((p * (p / q).log()).sum())


def distribution(extractor, real: torch.Tensor, fake: torch.Tensor) -> dict:
    """Real vs generated: class shares, KL and missing classes per category; Fréchet distance of features."""
    result: dict = {"images": {"real": len(real), "generated": len(fake)}, "categories": {}}
    real_classes, fake_classes = extractor.classes(real), extractor.classes(fake)
    for a in extractor.attributes:
        if a.kind != "category":
            continue
        k = len(a.classes)
        p = torch.bincount(real_classes[a.name], minlength=k).double() / len(real)
        q = torch.bincount(fake_classes[a.name], minlength=k).double() / len(fake)
        result["categories"][a.name] = {
            "real": dict(zip(a.classes, [round(float(v), 4) for v in p])),
            "generated": dict(zip(a.classes, [round(float(v), 4) for v in q])),
            "kl": round(kl_divergence(p, q), 4),
            # KL(p || q) <= max log(p_i / q_i): it stays under ln 2 whenever every class is drawn at least half as
            # often as in the real data, so a larger value means some class is missing or badly under-drawn.
            "kl_bound": round(math.log(2), 4),
            "missing": [c for c, v in zip(a.classes, q) if v == 0],
        }
    fr, ff = extractor.features(real), extractor.features(fake)
    half = len(fr) // 2
    if half >= 2:  # the same number of images on each side of both distances
        result["frechet"] = {"real_vs_generated": round(frechet(fr[:half], ff[:half]), 4),
                             "real_vs_real": round(frechet(fr[:half], fr[half : 2 * half]), 4),
                             "images_each": half}
    return result


def real_images(checkpoint: str | Path, n: int) -> torch.Tensor:
    """``n`` real images of the run's val split (or train), [-1, 1]."""

    return torch.cat([b["A"] for b in validation_batches(training_data(checkpoint), n, say=False)])


def report(sampler: Sampler, extractor, axes: Axes, samples: dict[str, torch.Tensor], cfg) -> dict:
    raw = {name: fit_axis(samples[axes.space], samples[f"score/{name}"], method=axes.info["method"],
                          seed=int(cfg.seed)).axis for name in axes.vectors}
    z = sampler.latents(int(cfg.sweep_images), seed=int(cfg.seed) + 7)
    out = {"sweeps": sweeps(sampler, extractor, axes, raw, z),
           "separability": separability(samples, [n for n in axes.vectors if _is_probability(extractor, n)],
                                        int(cfg.seed))}
    real = real_images(cfg.checkpoint, int(cfg.real_images))
    if len(real) >= 4:
        n = len(real)
        fake = torch.cat([sampler.images(c) for c in sampler.latents(n, seed=int(cfg.seed) + 11).split(128)])
        out["distribution"] = distribution(extractor, real, fake)
    return out


def _is_probability(extractor, name: str) -> bool:
    kinds = {a.name: a.kind for a in extractor.attributes}
    return "=" in name or kinds.get(name) == "binary"
