"""Measure the BicycleGAN demo against pix2pix on the random-colour sketch demo, and draw its figures.

    python examples/bicycle_demo.py BICYCLE_RUN PIX2PIX_RUN [--val 64] [--styles 16] [--out docs]

BICYCLE_RUN is ``python train.py experiment=demo_bicycle``; PIX2PIX_RUN ``python train.py experiment=demo
data.random_colours=true`` (the same data; pix2pix's only noise is its dropout). On ``--val`` held-out scenes
(the demo's val split, rendered larger: the training images are the same) it prints, per model:

- ``l1``: the mean style's (pix2pix: dropout off) L1 to the target;
- ``random_l1``: the L1 to the target of outputs of random codes (pix2pix: of dropout passes);
- ``diversity``: mean pairwise L1 between the ``--styles`` outputs of one sketch (LPIPS when its weights are
  cached), and the same with truncation psi = 0 (BicycleGAN);
- ``colours``: how many of the 4 shape colours the ``--styles`` outputs of one sketch show (a shape's colour is
  the palette colour nearest in chromaticity to its mean, or none when none is near), averaged over sketches;
- ``reference``: encoding each target with E and decoding its sketch with that code: L1 to the target and the
  share of scenes whose colour comes back right.

Figures: ``bicycle_demo_styles.png`` (sketch | pix2pix, 4 dropout passes | BicycleGAN, 8 codes | target).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from translate.data.demo import RANDOM_COLOURS, render_sketch2photo, scene_colour, shape_mask, sketch2photo_seed
from translate.data.files import save_image
from translate.evaluation.metrics import pairwise_distance, style_outputs
from translate.loading.generator import load_translation
from translate.models.base import fixed_latents, takes_style

ROOT = Path(__file__).resolve().parents[1]
PALETTE = {name: np.asarray(rgb) / np.sum(rgb) for name, rgb in RANDOM_COLOURS.items()}


def to_tensor(image) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 127.5 - 1


def scenes(n: int) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray], list[str]]:
    """Sketches, targets, shape masks and colours of the first ``n`` val scenes of the random-colour demo."""
    seeds = [sketch2photo_seed(i, "val") for i in range(n)]
    pairs = [render_sketch2photo(s, 64, random_colours=True) for s in seeds]
    return (torch.stack([to_tensor(a) for a, _ in pairs]), torch.stack([to_tensor(b) for _, b in pairs]),
            [shape_mask(s, 64) for s in seeds], [scene_colour(s) for s in seeds])


def shape_colour(image: torch.Tensor, mask: np.ndarray, tolerance: float = 0.1) -> str | None:
    """The palette colour nearest in chromaticity to the mean of ``image`` [3, H, W] over ``mask`` (None: none
    within ``tolerance``)."""
    rgb = ((image.permute(1, 2, 0).numpy() + 1) / 2)[mask].mean(0)
    chroma = rgb / max(rgb.sum(), 1e-6)
    name, distance = min(((n, np.abs(chroma - c).sum()) for n, c in PALETTE.items()), key=lambda t: t[1])
    return name if distance < tolerance else None


@torch.no_grad()
def outputs(G, x: torch.Tensor, styles: int, seed: int = 0, truncation: float = 1.0) -> list[torch.Tensor]:
    """``styles`` outputs per sketch: random codes, or dropout passes for a generator without a code."""
    chosen = fixed_latents(styles, G.nz, seed) if takes_style(G) else styles
    return [o.clamp(-1, 1) for o in style_outputs(G.eval(), x, chosen, seed=seed, truncation=truncation)]


def measure(G, E, x, y, masks, colours, styles: int) -> dict:
    with torch.no_grad():
        mean = G.eval()(x).clamp(-1, 1)
    outs = outputs(G, x, styles)
    result = {
        "l1": float((mean - y).abs().mean()),
        "random_l1": float(torch.stack([(o - y).abs().mean() for o in outs]).mean()),
        "diversity": float(pairwise_distance(outs).mean()),
        "colours": float(np.mean([len({shape_colour(o[i], masks[i]) for o in outs} - {None})
                                  for i in range(len(x))])),
        "colours_of_mean_style": float(np.mean([shape_colour(mean[i], masks[i]) is not None for i in range(len(x))])),
    }
    if takes_style(G):
        result["diversity_psi0"] = float(pairwise_distance(outputs(G, x, styles, truncation=0.0)).mean())
    if E is not None:
        with torch.no_grad():
            rebuilt = G(x, E.eval()(y)[0]).clamp(-1, 1)
        result["reference_l1"] = float((rebuilt - y).abs().mean())
        result["reference_colour_right"] = float(np.mean([shape_colour(rebuilt[i], masks[i]) == colours[i]
                                                          for i in range(len(x))]))
    return result


def last_training_l1(run: Path) -> float | None:
    """The last logged cVAE reconstruction loss of a run (loss/G/l1)."""
    run = run if run.is_dir() else run.parent.parent  # a checkpoint file: run/checkpoints/x.pt
    values = [json.loads(line).get("loss/G/l1") for line in (run / "metrics.jsonl").read_text().splitlines()]
    values = [v for v in values if v is not None]
    return values[-1] if values else None


def styles_figure(G_p2p, G_bic, x, y, path: Path, rows: int = 4) -> None:
    from torchvision.utils import make_grid

    p2p, bic = outputs(G_p2p, x[:rows], 4), outputs(G_bic, x[:rows], 8)
    tiles = []
    for i in range(rows):
        tiles += [x[i], *[o[i] for o in p2p], *[o[i] for o in bic], y[i]]
    save_image(make_grid(torch.stack(tiles), nrow=14, padding=2, pad_value=1.0), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bicycle")
    parser.add_argument("pix2pix")
    parser.add_argument("--val", type=int, default=64)
    parser.add_argument("--styles", type=int, default=16)
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    x, y, masks, colours = scenes(args.val)
    bic = load_translation(args.bicycle, weights="G")
    p2p = load_translation(args.pix2pix, weights="G")
    report = {"pix2pix": measure(p2p.module, None, x, y, masks, colours, args.styles),
              "bicycle": measure(bic.module, bic.style_encoder, x, y, masks, colours, args.styles),
              "bicycle_training_l1": last_training_l1(Path(args.bicycle)), "val_scenes": args.val,
              "styles": args.styles, "colours_existing": len(RANDOM_COLOURS)}
    print(json.dumps(report, indent=2))
    styles_figure(p2p.module, bic.module, x, y, Path(args.out) / "bicycle_demo_styles.png")
    print(f"wrote {Path(args.out) / 'bicycle_demo_styles.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
