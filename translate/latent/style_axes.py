"""TL-GAN axes for the style codes of a translation model (``model=bicycle``): directions in its code space
(z, or w in AdaIN mode) that change one attribute of the outputs, for ``infer.py edit.NAME=k``.

``translate axes checkpoint=RUN`` on such a checkpoint runs the same pipeline as for a noise
generator (``translate.latent.axes``), with these differences:

- the attributes are computed from the outputs' pixels, nothing to download: brightness, colour temperature,
  saturation, contrast and edge density (or a trained extractor file, ``extractor=FILE``);
- every code is applied to the same ``inputs`` fixed inputs (val images); an output's attributes are taken
  relative to the mean style's output for the same input (centred per input), then averaged over the inputs,
  so what the input shows (a dark sketch, a busy scene) does not swamp what the style changes;
- the report has the sweeps (and z-vs-w separability in AdaIN mode); there is no real-vs-generated
  distribution for translations.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from translate.core.errors import ConfigError
from translate.core.runtime import resolve_device
from translate.data.fixed import sample_batch
from translate.latent.axes import (
    axes_folder,
    find_axes,
    fit_axis,
    latent_space,
    sample_scores,
    summary_table,
    training_data,
)
from translate.latent.extractor import PixelExtractor, TrainedExtractor
from translate.latent.report import separability, sweeps
from translate.latent.sampling import LatentEdit
from translate.latent.styles import as_code, is_styled, run_with_code
from translate.models.base import fixed_latents, takes_style


@dataclass
class StyleSampler:
    """Outputs of ``G`` for every code and each of ``inputs`` [M, C, H, W] (code-major: [K * M, ...]), with
    ``truncation`` and ``edits`` applied to the codes: the ``Sampler`` interface the axes pipeline uses."""

    G: nn.Module
    inputs: torch.Tensor
    truncation: float = 1.0
    edits: list[LatentEdit] = field(default_factory=list)
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        self.G = self.G.eval().to(self.device)
        self.inputs = self.inputs.to(self.device)
        self.styled = is_styled(self.G)

    @property
    def z_dim(self) -> int:
        return int(self.G.nz)

    def latents(self, n: int, seed: int | None = None) -> torch.Tensor:
        return fixed_latents(n, self.z_dim, self.seed if seed is None else seed).to(self.device)

    def with_edits(self, edits: list[LatentEdit]) -> StyleSampler:
        return replace(self, edits=list(edits))

    @torch.no_grad()
    def images(self, z: torch.Tensor) -> torch.Tensor:
        codes = [as_code(self.G, zk, self.truncation, self.edits) for zk in z.to(self.device)]
        return torch.cat([run_with_code(self.G, self.inputs, c).float() for c in codes])


class CentredScores:
    """An extractor's scores of the outputs of K codes on M inputs, each minus the score of the mean style's
    output for the same input, averaged over the inputs: [K] per score name."""

    def __init__(self, extractor, G: nn.Module, inputs: torch.Tensor):
        self.extractor, self.score_names = extractor, list(extractor.score_names)
        self.attributes = extractor.attributes
        with torch.no_grad():
            self.base = {k: v.float() for k, v in extractor.scores(G.eval()(inputs).float()).items()}
        self.per_code = len(inputs)

    def scores(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        raw = self.extractor.scores(images)
        return {k: (v.float().view(-1, self.per_code) - self.base[k].to(v.device)).mean(1) for k, v in raw.items()}


def fixed_inputs(checkpoint: str | Path, source: str, n: int) -> torch.Tensor:
    """``n`` fixed source images of the run's val split (or train), [-1, 1]."""

    batch = sample_batch(training_data(checkpoint), n)
    if batch is None or source not in batch:
        raise ConfigError(f"{checkpoint}: no images of the run's data to apply the style codes to")
    return batch[source]


def run(cfg, loaded) -> object:
    """``translate axes`` for a translation checkpoint with a style code (see the module docstring)."""

    G = loaded.module
    if not takes_style(G):
        raise ConfigError(f"{cfg.checkpoint}: this generator takes no style code: axes need model=bicycle or "
                          "model=gan")
    device = resolve_device(cfg.device, "device")
    inputs = fixed_inputs(cfg.checkpoint, loaded.translation.source, int(cfg.inputs))
    sampler = StyleSampler(G, inputs, seed=int(cfg.seed), device=device)
    space = latent_space(sampler, cfg.space)
    extractor = PixelExtractor() if cfg.extractor in ("trained", "pixels") else TrainedExtractor.load(Path(cfg.extractor))
    scores = CentredScores(extractor, sampler.G, sampler.inputs)
    names = list(cfg.attributes or scores.score_names)
    print(f"style axes: {cfg.samples} codes x {len(inputs)} inputs, {', '.join(names)}", file=sys.stderr)
    samples = sample_scores(sampler, scores, int(cfg.samples), seed=int(cfg.seed),
                            batch_size=max(1, int(cfg.batch_size) // len(inputs)))
    axes = find_axes(samples, names, space=space, method=cfg.method, base=list(cfg.base or []),
                     untangle_method=cfg.untangle, seed=int(cfg.seed))
    axes.info["extractor"] = {"kind": "pixels" if isinstance(extractor, PixelExtractor) else str(cfg.extractor),
                              "centred_per_input": True, "inputs": len(inputs)}
    if cfg.report:
        raw = {n: fit_axis(samples[space], samples[f"score/{n}"], method=cfg.method, seed=int(cfg.seed)).axis
               for n in axes.vectors}
        z = sampler.latents(int(cfg.sweep_images), seed=int(cfg.seed) + 7)
        axes.info["report"] = {"sweeps": sweeps(sampler, scores, axes, raw, z),
                               "separability": separability(samples, names, int(cfg.seed)) if "w" in samples else {}}
    folder = axes_folder(cfg.checkpoint)
    path = axes.save(folder)
    print(summary_table(axes), file=sys.stderr)
    print(f"wrote {path} and {folder / 'axes.json'}", file=sys.stderr)
    return axes
