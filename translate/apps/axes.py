"""``translate axes``: find attribute axes for a checkpoint (a noise GAN's latent space, or a style
code's: ``translate.latent.style_axes``), save them beside it, and optionally report how well they edit
(``translate.latent.report``)."""

from __future__ import annotations

import sys

from translate.config.compose import hydra_command
from translate.core.runtime import resolve_device
from translate.latent import style_axes
from translate.latent.axes import (
    Axes,
    axes_folder,
    build_extractor,
    find_axes,
    latent_space,
    sample_scores,
    summary_table,
)
from translate.latent.report import report
from translate.latent.sampling import Sampler
from translate.loading.load import load
from translate.models.gan import LATENT


def run(cfg) -> Axes:
    """The ``translate axes`` app."""
    loaded = load(cfg.checkpoint, weights=cfg.weights)
    if loaded.translation.source != LATENT:
        return style_axes.run(cfg, loaded)
    G = loaded.module
    sampler = Sampler(G, seed=int(cfg.seed), noise=cfg.noise, device=resolve_device(cfg.device, "device"))
    space = latent_space(sampler, cfg.space)
    folder = axes_folder(cfg.checkpoint)
    extractor, held_out = build_extractor(cfg, folder)
    names = list(cfg.attributes or extractor.score_names)
    samples = sample_scores(sampler, extractor, int(cfg.samples), seed=int(cfg.seed), batch_size=int(cfg.batch_size))
    axes = find_axes(samples, names, space=space, method=cfg.method, base=list(cfg.base or []),
                     untangle_method=cfg.untangle, seed=int(cfg.seed))
    axes.info["extractor"] = {"kind": str(cfg.extractor), "held_out": held_out}
    if cfg.report:
        axes.info["report"] = report(sampler, extractor, axes, samples, cfg)
    path = axes.save(folder)
    print(summary_table(axes), file=sys.stderr)
    print(f"wrote {path} and {folder / 'axes.json'}", file=sys.stderr)
    return axes


def main() -> None:
    """``translate axes``: Hydra reads the ``key=value`` overrides from ``sys.argv``."""
    hydra_command("axes", run)


if __name__ == "__main__":  # python -m translate.apps.axes is translate axes
    from translate.apps.cli import main as translate_command

    sys.exit(translate_command(["axes", *sys.argv[1:]]))
