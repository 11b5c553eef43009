"""TL-GAN feature axes: directions in a generator's latent space that change one named attribute.

``translate axes checkpoint=RUN [extractor=trained|pixels|FILE] [base=[hair_length]] [method=svm]``

1. an attribute extractor (``translate.latent.extractor``): trained on the run's labelled real images (the face
   demo's ``labels.csv``, or ``labels=FILE``), or pixel statistics;
2. ``samples`` latents are drawn, generated and scored in batches (cached beside the checkpoint);
3. per attribute score, a linear model from the latent (z, or w for StyleGAN) to the score: a regression's
   slope (TL-GAN) or a linear SVM's normal (InterFaceGAN, on the score's median split); the unit vector is the
   axis; R^2 and held-out accuracy say how linear the attribute is in that space;
4. untangle: every axis not in ``base`` is made orthogonal to the base axes (``gram_schmidt``, TL-GAN's; or
   ``conditional``, InterFaceGAN's n1 - (n1.n2) n2 and its multi-condition least-squares solve: the same
   projection computed another way);
5. saved beside the checkpoint: ``axes.safetensors`` (one unit vector per attribute) and ``axes.json`` (space,
   slopes, R^2, accuracy, each axis' latent standard deviation, cosines before and after untangling); with
   ``report=true`` also sweeps along each axis (Spearman), linear separability from z vs w, and how the
   generated attribute distribution compares with the real one (KL of class shares, Fréchet distance on the
   extractor's features next to a real-vs-real baseline);
6. ``translate generate ... edit.smile=+1.5`` moves latents along the axes, in standard deviations.

A translation checkpoint with a style code (``model=bicycle``) gets axes in its code space, for ``infer.py
edit.NAME=k`` (``translate.latent.style_axes``).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from translate.config.checkpoint import load_checkpoint, resolve_checkpoint_path
from translate.config.compose import build, stored_config
from translate.core.atomic import atomic_write_bytes, json_text
from translate.core.errors import ConfigError
from translate.latent.extractor import PixelExtractor, TrainedExtractor, read_labels, train_extractor
from translate.latent.sampling import LatentEdit, Sampler

AXES_FILE = "axes.safetensors"
UNTANGLE = ("gram_schmidt", "conditional")
METHODS = ("regression", "svm")
MAX_EDIT = 100.0  # standard deviations: edits of a few move an attribute; far beyond, images saturate


# ---------------------------------------------------------------------------------------------- sampling
@torch.no_grad()
def sample_scores(sampler: Sampler, extractor, n: int, *, seed: int, batch_size: int = 128) -> dict[str, torch.Tensor]:
    """``n`` latents of ``seed``: ``z`` [n, z_dim], ``w`` (StyleGAN) and every extractor score [n], batched."""
    z = sampler.latents(n, seed=seed)
    parts: dict[str, list[torch.Tensor]] = {}
    for chunk in z.split(batch_size):
        out = {"z": chunk}
        if sampler.styled:
            out["w"] = sampler.G.map(chunk)
        out |= {f"score/{k}": v for k, v in extractor.scores(sampler.images(chunk)).items()}
        for k, v in out.items():
            parts.setdefault(k, []).append(v.float().cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


# ---------------------------------------------------------------------------------------------- fitting
@dataclass
class AxisFit:
    """A unit ``axis``, the regression ``slope`` norm (score per latent unit along it), held-out ``r2`` (regression
    only) and ``accuracy`` (telling scores above the median from those below by the latent), and ``std``: the
    latents' standard deviation along the axis (the unit of edits)."""

    axis: torch.Tensor
    slope: float
    r2: float | None
    accuracy: float
    std: float


def _split(n: int, holdout: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held = max(2, int(n * holdout))
    return order[held:], order[:held]


def fit_axis(x: torch.Tensor, y: torch.Tensor, *, method: str = "regression", holdout: float = 0.2,
             seed: int = 0) -> AxisFit:
    """The axis of score ``y`` [N] in latents ``x`` [N, D] (see ``AxisFit``)."""
    if method not in METHODS:
        raise ConfigError(f"method={method!r} is not one of {', '.join(METHODS)}")
    x, y = x.double(), y.double()
    train, test = _split(len(x), holdout, seed)
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    coef = torch.linalg.lstsq(design[train], y[train, None]).solution[:, 0]
    slope, prediction = coef[:-1], design[test] @ coef
    r2 = 1 - float(((y[test] - prediction) ** 2).sum() / ((y[test] - y[test].mean()) ** 2).sum().clamp_min(1e-12))
    median = y[train].median()
    if method == "regression":
        axis = slope / slope.norm().clamp_min(1e-12)
        accuracy = float(((prediction > median) == (y[test] > median)).double().mean())
    else:
        axis, accuracy = _svm_axis(x[train], y[train] > median, x[test], y[test] > median)
        r2 = None
    return AxisFit(axis.float(), float(slope @ axis), r2, accuracy, float((x @ axis).std()))


def _svm_axis(x: torch.Tensor, labels: torch.Tensor, x_test: torch.Tensor, labels_test: torch.Tensor):
    """InterFaceGAN: the unit normal of a linear SVM's separating hyperplane, and its held-out accuracy."""
    from sklearn.svm import LinearSVC

    if labels.all() or not labels.any():
        raise ConfigError("an attribute is the same for every sample: no axis to fit (more samples, or drop it)")
    svm = LinearSVC(C=1.0, max_iter=20_000).fit(x.numpy(), labels.numpy())
    normal = torch.from_numpy(svm.coef_[0]).double()
    accuracy = float((torch.from_numpy(svm.predict(x_test.numpy())) == labels_test).double().mean())
    return normal / normal.norm().clamp_min(1e-12), accuracy


# ---------------------------------------------------------------------------------------------- untangling
def gram_schmidt(vectors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Orthonormal vectors spanning the same space, in order (near-dependent ones dropped)."""
    basis: list[torch.Tensor] = []
    for v in vectors:
        for b in basis:
            v = v - (v @ b) * b
        if v.norm() > 1e-6:
            basis.append(v / v.norm())
    return basis


def conditional_projection(n: torch.Tensor, conditions: list[torch.Tensor]) -> torch.Tensor:
    """InterFaceGAN: n - (n.c) c for one condition; for several, n minus its least-squares fit by the
    conditions (the multi-condition solve), normalised."""
    if not conditions:
        return n
    if len(conditions) == 1:
        c = conditions[0]
        out = n - (n @ c) * c
    else:
        basis = torch.stack(conditions, 1).double()
        out = (n.double() - basis @ torch.linalg.lstsq(basis, n.double()[:, None]).solution[:, 0]).to(n.dtype)
    return out / out.norm().clamp_min(1e-12)


def untangle(axes: dict[str, torch.Tensor], base: list[str], method: str = "gram_schmidt") -> dict[str, torch.Tensor]:
    """Every axis not in ``base`` made orthogonal to all base axes; base axes unchanged."""
    if method not in UNTANGLE:
        raise ConfigError(f"untangle={method!r} is not one of {', '.join(UNTANGLE)}")
    for name in base:
        if name not in axes:
            raise ConfigError(f"base: no axis {name!r} (there are {', '.join(axes)})")
    basis = gram_schmidt([axes[b] for b in base])
    result = {}
    for name, n in axes.items():
        if name in base:
            result[name] = n
        elif method == "gram_schmidt":
            v = n - sum(((n @ b) * b for b in basis), torch.zeros_like(n))
            result[name] = v / v.norm().clamp_min(1e-12)
        else:
            result[name] = conditional_projection(n, [axes[b] for b in base])
    return result


def cosines(axes: dict[str, torch.Tensor], base: list[str]) -> dict[str, dict[str, float]]:
    return {name: {b: round(float(v @ axes[b]), 4) for b in base if b != name} for name, v in axes.items()}


# ---------------------------------------------------------------------------------------------- files
def axes_folder(checkpoint: str | Path) -> Path:
    """The folder of the checkpoint file (a run folder's best.pt or last.pt): axes live beside it."""
    return resolve_checkpoint_path(checkpoint).parent


@dataclass
class Axes:
    """Saved axes: unit vectors by attribute, the latent space they live in, and each one's latent std."""

    vectors: dict[str, torch.Tensor]
    space: str
    stds: dict[str, float]
    info: dict[str, Any]

    def save(self, folder: Path) -> Path:
        atomic_write_bytes(folder / "axes.json", json_text(self.info | {"space": self.space, "std": self.stds},
                                                           indent=2).encode())
        return atomic_write_bytes(folder / AXES_FILE, save({k: v.contiguous() for k, v in self.vectors.items()}))

    def edits(self, amounts: dict[str, Any], G) -> list[LatentEdit]:
        """``{name: k}`` -> edits of k standard deviations along each named axis. A category's axis is named
        ``attribute=class``; ``{attribute: {class: k}}`` (``edit.hair_colour.black=2`` on the command line, where
        ``=`` cannot stand in a key) names it too."""
        if self.space == "w" and not hasattr(G, "mapping"):
            raise ConfigError("these axes live in w: they were fitted for a StyleGAN generator")
        amounts = flat_edits(amounts)
        edits = []
        for name, k in amounts.items():
            if name not in self.vectors:
                raise ConfigError(f"edit.{name}: no such axis (there are {', '.join(sorted(self.vectors))})")
            try:
                k = float(k)
            except (TypeError, ValueError):
                k = math.nan
            if not abs(k) <= MAX_EDIT:  # NaN included: it would make every image black
                raise ConfigError(f"edit.{name}={amounts[name]!r}: a finite number of standard deviations, at most "
                                  f"{MAX_EDIT:g} either way, e.g. +1.5")
            edits.append(LatentEdit(self.vectors[name], k * self.stds[name], self.space))
        return edits


def flat_edits(amounts: Mapping[str, Any]) -> dict[str, Any]:
    """``{"hair_colour": {"black": 2}, "smile": 1}`` -> ``{"hair_colour=black": 2, "smile": 1}``."""
    flat = {}
    for name, value in amounts.items():
        if isinstance(value, Mapping):
            flat.update({f"{name}={category}": k for category, k in value.items()})
        else:
            flat[str(name)] = value
    return flat


def load_axes(checkpoint: str | Path) -> Axes:
    """The axes saved beside ``checkpoint`` (a ConfigError saying how to make them when there are none)."""

    folder = axes_folder(checkpoint)
    if not (folder / AXES_FILE).is_file():
        raise ConfigError(f"{folder}: no {AXES_FILE}; find them first: translate axes checkpoint={checkpoint}")
    try:
        vectors = load_file(folder / AXES_FILE)
        info = json.loads((folder / "axes.json").read_text())
        stds = {k: info["std"][k] for k in vectors}
        space = info["space"]
    except Exception as e:  # noqa: BLE001 - damaged or hand-edited files are one line
        raise ConfigError(f"{folder}: unreadable axes files ({e})") from None
    if space not in ("z", "w"):
        raise ConfigError(f"{folder / 'axes.json'}: space={space!r} is not z or w")
    for name in vectors:
        _check_axis(folder, name, vectors[name], stds[name])
    return Axes(vectors, space, {k: float(v) for k, v in stds.items()}, info)


def _check_axis(folder: Path, name: str, vector: torch.Tensor, std: Any) -> None:
    """A ConfigError naming the axis unless its vector is finite and its spread a finite number > 0 (a NaN, e.g.
    ``null`` where a fit failed, would make every edited image black)."""
    again = "find the axes again: translate axes"
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not 0 < std < math.inf:
        raise ConfigError(f"{folder / 'axes.json'}: axis {name!r}: std={std!r} is not a finite number > 0; {again}")
    if not torch.isfinite(vector).all():
        raise ConfigError(f"{folder / AXES_FILE}: axis {name!r} holds non-finite values; {again}")


# ---------------------------------------------------------------------------------------------- the pipeline
def latent_space(sampler: Sampler, space: str) -> str:
    if space == "auto":
        return "w" if sampler.styled else "z"
    if space not in ("z", "w"):
        raise ConfigError(f"space={space!r} is not one of auto, z, w")
    if space == "w" and not sampler.styled:
        raise ConfigError("space=w needs a StyleGAN generator (the others have no w)")
    return space


def find_axes(samples: dict[str, torch.Tensor], names: list[str], *, space: str, method: str = "regression",
              base: list[str] | None = None, untangle_method: str = "gram_schmidt", seed: int = 0) -> Axes:
    """Steps 3-4 on scored samples (``sample_scores``): fit an axis per score name in ``space``, then make the
    others orthogonal to ``base``."""
    base = list(base or [])
    x = samples[space]
    fits, constant = {}, []
    for name in names:
        if f"score/{name}" not in samples:
            raise ConfigError(f"attributes: no score {name!r} (the extractor gives "
                              f"{', '.join(k.removeprefix('score/') for k in samples if k.startswith('score/'))})")
        if float(samples[f"score/{name}"].double().std()) < 1e-7:  # nothing to fit: no axis changes it
            constant.append(name)
            continue
        fits[name] = fit_axis(x, samples[f"score/{name}"], method=method, seed=seed)
    if constant:
        print(f"no axis for {', '.join(constant)}: the same for every sample", file=sys.stderr)
        if set(constant) & set(base):
            raise ConfigError(f"base: {', '.join(sorted(set(constant) & set(base)))} does not vary over the samples")
        if not fits:
            raise ConfigError("no attribute varies over the samples: nothing to fit")
    raw = {name: f.axis for name, f in fits.items()}
    vectors = untangle(raw, base, untangle_method)
    info = {
        "method": method, "untangle": untangle_method, "base": base, "samples": len(x),
        "attributes": {name: {"slope": round(f.slope, 5), "r2": None if f.r2 is None else round(f.r2, 4),
                              "accuracy": round(f.accuracy, 4)} for name, f in fits.items()},
        "constant": constant,
        "cosines_before": cosines(raw, base),
        "cosines_after": cosines(vectors, base),
    }
    stds = {name: float((x @ v).std()) for name, v in vectors.items()}
    return Axes(vectors, space, stds, info)


def training_data(checkpoint: str | Path):
    """The data module a run trained on, rebuilt from its checkpoint's stored (untrusted, checked) config."""

    cfg = stored_config(load_checkpoint(checkpoint)["config"], checkpoint, builds_data=True)
    with torch.random.fork_rng(devices=[]):
        return build(cfg.data)


def _default_labels(checkpoint: str | Path) -> Path:
    """The labels file of the run's training data (the face demo writes one)."""
    root = Path(training_data(checkpoint).root)
    for name in ("labels.csv", "labels.json"):
        if (root / name).is_file():
            return root / name
    raise ConfigError(f"{root}: no labels.csv or labels.json; give labels=FILE, or extractor=pixels")


def build_extractor(cfg, folder: Path):
    """``extractor=pixels``, a saved extractor file, or ``trained``: trained on the labels (cached as
    ``extractor.safetensors`` beside the checkpoint; ``retrain=true`` trains again)."""

    if cfg.extractor == "pixels":
        return PixelExtractor(), {}
    if cfg.extractor != "trained":
        return TrainedExtractor.load(Path(cfg.extractor)), {}
    cached = folder / "extractor.safetensors"
    if cached.is_file() and not cfg.get("retrain"):
        print(f"attribute extractor: {cached}", file=sys.stderr)
        return TrainedExtractor.load(cached), json.loads(cached.with_suffix(".scores.json").read_text())
    labels = Path(cfg.labels) if cfg.labels else _default_labels(cfg.checkpoint)
    table = read_labels(labels)
    print(f"training the attribute extractor on {len(table.files)} labelled images of {labels}", file=sys.stderr)
    extractor, held_out = train_extractor(table, epochs=int(cfg.extractor_epochs), seed=int(cfg.seed))
    extractor.save(cached)
    atomic_write_bytes(cached.with_suffix(".scores.json"), json_text(held_out, indent=2).encode())
    return extractor, held_out


def summary_table(axes: Axes) -> str:
    lines = [f"{'axis':28} {'R^2':>6} {'acc':>6} {'std':>7}  cosines with base (before -> after)"]
    for name, a in axes.info["attributes"].items():
        before, after = axes.info["cosines_before"][name], axes.info["cosines_after"][name]
        pairs = ", ".join(f"{b} {before[b]:+.2f} -> {after[b]:+.2f}" for b in before)
        r2 = "-" if a["r2"] is None else f"{a['r2']:.3f}"
        lines.append(f"{name:28} {r2:>6} {a['accuracy']:6.3f} {axes.stds[name]:7.3f}  {pairs}")
    return "\n".join(lines)
