"""Evaluate a generator on a dataset split: ``translate evaluate checkpoint=PATH [data.root=DIR]``.

Any checkpoint infer.py takes (ours, reference ``.pth``, safetensors). Writes ``metrics.json`` (``l1``, ``psnr``,
``ssim``, ``lpips``, ``fid``, ``kid``: whichever apply and are available, plus what was skipped and why) and
``grid.png`` (input | output | target rows) into the run folder. ``run(cfg)`` is the library entry point.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from translate.config.compose import build, hydra_command, to_container
from translate.config.stored import check_rendering
from translate.core.atomic import atomic_write_bytes, json_text
from translate.core.errors import ConfigError
from translate.core.runtime import precision_dtype, resolve_device
from translate.data import AlignedData, UnalignedData
from translate.data.files import sample_grid, save_image
from translate.data.fixed import truth_batches
from translate.data.semantic import LabelData
from translate.evaluation.metrics import dropout_layers, higher_is_better
from translate.evaluation.segmentation import SegmentationScore, cached_segmenter
from translate.evaluation.validation import FirstImages, Validator
from translate.loading.load import load
from translate.loading.pipeline import Pipeline, results_folder
from translate.models.base import Translation, fixed_latents, takes_style, to_rgb
from translate.models.gan import LATENT
from translate.networks.layers import generator_channels


def _collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in ("A", "B")}


def _data_node(cfg: DictConfig, loaded: Pipeline) -> dict[str, Any]:
    """``cfg.data`` when it names a folder (``data.root=DIR``), else the data the run trained on, from its stored
    (checked) config: ``checkpoint=RUN`` alone evaluates on the run's own data."""
    if cfg.data.get("root") is not None:
        return OmegaConf.to_container(cfg.data)
    if loaded.config is None:
        raise ConfigError(f"data.root: {cfg.checkpoint} holds reference weights, which name no training data; "
                          "give the dataset folder (data.root=DIR)")
    check_rendering(loaded.config, cfg.checkpoint)  # a demo renders only where it already is, or into the cache
    sizes = {k: cfg.data.get(k) for k in ("load_size", "crop_size", "num_workers")}
    return {**OmegaConf.to_container(loaded.config.data), **sizes}


def _evaluation_data(cfg: DictConfig, loaded: Pipeline):
    """The data module of ``cfg.data`` (or the run's own, ``_data_node``) at the checkpoint's training size (ours)
    or 256, centred, no flips, with each domain's channel count taken from the generator."""
    data_cfg = _data_node(cfg, loaded)
    data_cfg["crop_size"] = data_cfg.get("crop_size") or loaded.size
    data_cfg["load_size"] = data_cfg.get("load_size") or data_cfg["crop_size"]
    data_cfg["flip"] = False
    trained = loaded.config.data if loaded.config is not None else {}
    if "label_nc" in data_cfg and "encoding" in trained:  # how the model reads maps is the model's, not the data's
        data_cfg["encoding"] = trained["encoding"]
    channels = dict(zip((loaded.translation.source, loaded.translation.target), generator_channels(loaded.module)))
    data_cfg["input_nc"], data_cfg["output_nc"] = channels["A"], channels["B"]
    data = build(OmegaConf.create(data_cfg))
    if not isinstance(data, (AlignedData, UnalignedData, LabelData)):
        raise ConfigError("evaluation needs target images: data=aligned or data=labels (paired) or data=unaligned "
                          "(FID/KID)")
    return data


def _collectors(cfg: DictConfig, data, shown: FirstImages, device: torch.device):
    """What each evaluated batch is shown to: the grid's first images (label maps in their classes' colours), for
    label-map data the segmentation score (``metrics.segmentation``); and the scores among them, whose ``result()``
    joins the metrics (the augmentation leak check, ``metrics.leaks``, is the Validator's)."""
    encoding = data.label_encoding() if isinstance(data, LabelData) else None
    scores: list[Any] = []
    if encoding is not None and cfg.metrics.get("segmentation", "auto") not in (False, "off", None):
        segmenter = cached_segmenter(data, steps=int(cfg.metrics.get("segmenter_steps", 1000)),
                                     seed=int(cfg.metrics.get("segmenter_seed", 0)), device=device)
        scores.append(SegmentationScore(segmenter, encoding, device))

    def collect(x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        if encoding is None:
            shown(x, out, y)
        else:
            labels = encoding.decode(x.float())
            shown(encoding.colours.colourise(labels.masked_fill(labels < 0, encoding.label_nc)).to(x), out, y)
        for score in scores:
            score(x, out, y)

    return collect, scores


def validation_inputs(loaded: Pipeline, n: int) -> list[torch.Tensor]:
    """Up to ``n`` source images [C, H, W] of the run's validation split (its training split when it has none),
    centred at the training size as validation sees them: the page's example inputs. Nothing for weights that name
    no data and for a generator from noise; a DataError or CheckpointError when the run's data is not here."""
    if loaded.config is None or loaded.translation.source not in ("A", "B"):
        return []
    check_rendering(loaded.config, loaded.name or "the run")  # a demo renders only where it already is
    node = {**OmegaConf.to_container(loaded.config.data), "flip": False, "num_workers": 0}
    dataset = build(OmegaConf.create(node)).sample_dataset()
    return [dataset[i][loaded.translation.source] for i in range(min(n, len(dataset)))]


def _batches(cfg: DictConfig, data, translation: Translation) -> tuple[Iterator[dict[str, torch.Tensor]], int]:
    """The split's batches (unpaired: each folder's images once, the shorter side's batches running empty) and
    the number of source images."""
    dataset = data.dataset(cfg.split, train=False)
    src, tgt = translation.source, translation.target
    if not isinstance(data, UnalignedData):
        n_src = n_tgt = len(dataset)
    else:  # the unpaired dataset cycles the shorter folder
        n_src, n_tgt = (len(dataset.files_A), len(dataset.files_B))[:: 1 if src == "A" else -1]
    if cfg.max_images:
        n_src, n_tgt = min(n_src, int(cfg.max_images)), min(n_tgt, int(cfg.max_images))
    loader = DataLoader(torch.utils.data.Subset(dataset, range(max(n_src, n_tgt))), batch_size=int(data.batch_size),
                        num_workers=int(data.num_workers), collate_fn=_collate)

    def batches():
        seen = 0
        for b in loader:
            k = len(b["A"])
            ns, nt = max(0, min(k, n_src - seen)), max(0, min(k, n_tgt - seen))
            seen += k
            yield {src: b[src][:ns], tgt: b[tgt][:nt]}

    return batches(), n_src


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.checkpoint`` on ``cfg.data`` (split ``cfg.split``); write and return the metrics."""
    device = resolve_device(cfg.device)
    amp_dtype = precision_dtype(cfg.precision, device)
    generator = dict(cfg.generator) if cfg.get("generator") else None
    loaded = load(cfg.checkpoint, generator=generator, direction=cfg.direction, weights=cfg.weights)
    if loaded.translation.source == LATENT:
        raise ConfigError(f"{cfg.checkpoint}: a model=gan checkpoint generates from noise; its distribution against "
                          "real images is measured by translate axes (report=true) and val/fid in training")
    data = _evaluation_data(cfg, loaded)
    direction = next(d for d in ("AtoB", "BtoA") if (loaded.translation.source == "A") == (d == "AtoB"))
    batches, n_src = _batches(cfg, data, loaded.translation)
    # Data that knows the true translations of its val images (the rendered day -> night demo) is scored on them.
    truth = truth_batches(data, int(cfg.max_images or 1_000_000)) if cfg.split == data.val_split else []
    styles, truncation = evaluation_styles(loaded.module, cfg.get("style") or {})
    validator = Validator({direction: loaded.translation}, paired=not isinstance(data, UnalignedData), metrics=cfg.metrics,
                          device=device, amp_dtype=amp_dtype, distribution=True, truth_batches=truth,
                          styles=styles, truncation=truncation)
    shown = FirstImages(int(cfg.grid_images))
    collect, scores = _collectors(cfg, data, shown, device)
    print(f"evaluating {cfg.checkpoint} ({direction}) on {data.root}/{cfg.split}: {n_src} images", file=sys.stderr)
    result = validator({loaded.translation.generator: loaded.module.to(device)}, batches, prefix="", on_batch=collect)
    for score in scores:
        result |= score.result()
    report = {**result, "num_images": n_src, "checkpoint": str(cfg.checkpoint), "data": str(data.root),
              "split": cfg.split, "direction": direction, "skipped": validator.skipped, "config": to_container(cfg)}
    _write_report(report, shown, Path(cfg.output or _evaluation_folder(cfg)))
    return report


def _evaluation_folder(cfg: DictConfig) -> Path:
    """``<run>/evaluate/<split>_<date_time>`` (``results_folder``): every evaluation of a run kept beside it."""
    return results_folder(cfg.checkpoint, "evaluate") / f"{cfg.split}_{time.strftime('%Y-%m-%d_%H-%M-%S')}"


def evaluation_styles(G, style) -> tuple[torch.Tensor | int | None, float]:
    """What diversity is measured over (``style.samples`` outputs per input, at least 2): codes drawn from
    ``style.seed`` for a generator with a style code, dropout passes for one without (pix2pix with noise)."""
    samples, truncation = int(style.get("samples", 0)), float(style.get("truncation", 1.0))
    if not samples:
        return None, truncation
    if samples < 2:
        raise ConfigError(f"style.samples={samples}: diversity needs at least 2 outputs per input")
    if not takes_style(G):
        if not dropout_layers(G):
            raise ConfigError("style.samples: this generator takes no style code and has no dropout to vary")
        return samples, truncation
    return fixed_latents(samples, int(G.nz), int(style.get("seed", 0))), truncation


def _write_report(report: dict[str, Any], shown: FirstImages, run_dir: Path) -> None:
    """metrics.json (strict JSON: an exact reproduction's PSNR and metrics without enough images are null) and
    grid.png (input | output | target rows)."""
    atomic_write_bytes(run_dir / "metrics.json", json_text(report, indent=2, default=str).encode())
    columns = shown.columns()
    if columns:
        save_image(sample_grid([to_rgb(c) for c in columns.values()], list(columns)), run_dir / "grid.png")
    metrics = {k: v for k, v in report.items() if higher_is_better(k) is not None}
    summary = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
    print(f"{summary}\nwrote {run_dir / 'metrics.json'}" + (" and grid.png" if columns else ""), file=sys.stderr)


def main() -> None:
    """``translate evaluate``: Hydra reads the ``key=value`` overrides from ``sys.argv``."""
    hydra_command("evaluate", run)


if __name__ == "__main__":  # python -m translate.evaluation.evaluate is translate evaluate
    from translate.apps.cli import main as translate_command

    sys.exit(translate_command(["evaluate", *sys.argv[1:]]))
