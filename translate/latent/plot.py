"""The encoder as dimensionality reduction: ``translate codes RUN [label=NAME] [output=PNG]``.

Encodes the val images of an autoencoder or VAE run (its own data config; ``data_root=DIR`` points elsewhere)
to their codes (the VAE's means), projects them onto their two principal axes when the code has more than
two values, and scatters them, coloured by a label column of a ``labels.csv`` in the data folder (``file``
relative to it, e.g. the face demo's ``hair_colour``) when one is named. Needs matplotlib.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import open_dict

from translate.config.compose import build
from translate.core.arguments import Arguments, Setting, parse_arguments
from translate.core.atomic import atomic_write
from translate.core.errors import ConfigError, DataError, TranslateError
from translate.data.files import read_csv
from translate.loading.load import load


@torch.no_grad()
def encode_val(checkpoint: str | Path, data_root: str | None = None, max_images: int = 2000,
               batch_size: int = 64) -> tuple[torch.Tensor, list[str], Path]:
    """(codes [N, D], image paths relative to the data folder, the data folder) of the run's val images."""


    loaded = load(checkpoint)
    G = loaded.module
    if not hasattr(G, "encode") or loaded.config is None:
        raise ConfigError(f"{checkpoint}: not an autoencoder run (model=autoencoder or model=vae)")
    cfg = loaded.config.data.copy()
    if data_root:
        with open_dict(cfg):
            cfg.root = data_root
    data = build(cfg)
    dataset = data.val_dataset()
    root = Path(data.root)
    codes, paths = [], []
    n = min(len(dataset), max_images)
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        x = torch.stack([it["A"] for it in items])
        codes.append(G.encode(x)[0].flatten(1).float())
        paths += [str(Path(it["A_path"]).resolve().relative_to(root.resolve())) for it in items]
    return torch.cat(codes), paths, root


def project_2d(codes: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """The codes on their two principal axes (as they are when 2-D) and the share of variance each holds."""
    centred = codes - codes.mean(0)
    if codes.shape[1] <= 2:
        variance = centred.var(0)
        return centred, (variance / variance.sum()).tolist()
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    share = (s**2 / (s**2).sum())[:2].tolist()
    return centred @ v[:2].T, share


def read_labels(root: Path, name: str) -> dict[str, str]:
    path = root / "labels.csv"
    if not path.is_file():
        raise DataError(f"{path}: no such file (label={name} needs a labels.csv with a file column)")
    rows = read_csv(path)
    if not rows or name not in rows[0] or "file" not in rows[0]:
        columns = ", ".join(rows[0]) if rows else "none"
        raise DataError(f"{path}: no column {name!r} (columns: {columns})")
    return {r["file"]: r[name] for r in rows}


def plot_latents(points: torch.Tensor, share: list[float], out: str | Path, labels: list[str] | None = None,
                 label_name: str = "", title: str = "") -> Path:
    """The scatter, written atomically: categories get a legend, numbers a colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    x, y = points[:, 0].numpy(), points[:, 1].numpy()
    if labels is None:
        ax.scatter(x, y, s=8, alpha=0.7)
    elif all(_is_number(v) for v in labels):
        dots = ax.scatter(x, y, c=[float(v) for v in labels], s=8, alpha=0.8, cmap="viridis")
        fig.colorbar(dots, ax=ax, label=label_name)
    else:
        for value in sorted(set(labels)):
            chosen = [i for i, v in enumerate(labels) if v == value]
            ax.scatter(x[chosen], y[chosen], s=8, alpha=0.8, label=value)
        ax.legend(title=label_name, fontsize=8, markerscale=2)
    ax.set_xlabel(f"axis 1 ({100 * share[0]:.0f} % of the variance)")
    ax.set_ylabel(f"axis 2 ({100 * share[1]:.0f} %)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return path


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def run(settings: dict[str, Any]) -> Path:
    checkpoint = settings["checkpoint"]
    codes, paths, root = encode_val(checkpoint, settings.get("data_root"), int(settings.get("max_images", 2000)))
    points, share = project_2d(codes)
    label = settings.get("label")
    labels = None
    if label:
        table = read_labels(root, str(label))
        missing = [p for p in paths if p not in table]
        if missing:
            raise DataError(f"{root / 'labels.csv'}: no row for {missing[0]} (and {len(missing) - 1} more)")
        labels = [table[p] for p in paths]
    out = settings.get("output") or Path(str(checkpoint)) / "latents.png"
    title = f"{len(codes)} val codes of {Path(str(checkpoint)).name} ({codes.shape[1]} values each)"
    return plot_latents(points, share, out, labels, str(label or ""), title)


ARGUMENTS = Arguments("translate codes", ("run",), {
    "label": Setting(None, "colour the points by this column of the data folder's labels.csv", kind=str),
    "output": Setting(None, "the PNG to write (null: <run>/latents.png)", kind=str),
    "data_root": Setting(None, "encode the val images of this folder instead of the run's own data", kind=str),
    "max_images": Setting(2000, "encode at most this many val images"),
}, "an autoencoder's codes of its val images in 2-D")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        print(f"{__doc__}\n{ARGUMENTS.help()}")
        return 0
    try:
        args = parse_arguments(argv, ARGUMENTS)
        path = run({"checkpoint": args.pop("run"), **args})
    except TranslateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ImportError:
        print('error: the latent plot needs matplotlib: pip install -e ".[plot]"', file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
