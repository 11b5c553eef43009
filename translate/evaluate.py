"""Evaluate a generator on a dataset split: ``python -m translate.evaluate checkpoint=PATH data.root=DIR``.

Any checkpoint infer.py takes (ours, reference ``.pth``, safetensors). Writes ``metrics.json`` (``l1``, ``psnr``,
``ssim``, ``lpips``, ``fid``, ``kid``: whichever apply and are available, plus what was skipped and why) and
``grid.png`` (input | output | target rows) into the run folder. ``run(cfg)`` is the library entry point.
"""

from __future__ import annotations

import math
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.utils.data import DataLoader

from translate.checkpoint import load_checkpoint
from translate.config import build, to_container
from translate.errors import ConfigError
from translate.fsutil import atomic_write, json_text
from translate.logging import sample_grid
from translate.metrics import DistributionMetrics, evaluate_paired, inception_features, lpips_model
from translate.models.base import to_rgb

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _stored_config(path: Path) -> DictConfig | None:
    """The training config inside one of our checkpoints (None for reference weights)."""
    if path.is_dir() or path.suffix == ".pt":
        return OmegaConf.create(load_checkpoint(path)["config"])
    return None


def _collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in ("A", "B")}


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.checkpoint`` on ``cfg.data`` (split ``cfg.split``); write and return the metrics."""
    from translate.data import AlignedData, UnalignedData
    from translate.generator_io import load_generator

    path = Path(cfg.checkpoint).expanduser()
    stored = _stored_config(path) if path.exists() else None
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"precision={cfg.precision!r} is not one of {', '.join(PRECISIONS)}")
    data_cfg = OmegaConf.to_container(cfg.data)
    size = int(stored.data.crop_size) if stored is not None else 256
    data_cfg["crop_size"] = data_cfg.get("crop_size") or size
    data_cfg["load_size"] = data_cfg.get("load_size") or data_cfg["crop_size"]
    data_cfg["flip"] = False
    if stored is not None:  # channel counts the model was trained with
        data_cfg["input_nc"], data_cfg["output_nc"] = int(stored.data.input_nc), int(stored.data.output_nc)
    data = build(OmegaConf.create(data_cfg))
    direction = cfg.direction or (stored.model.get("direction", "AtoB") if stored is not None else "AtoB")
    if direction not in ("AtoB", "BtoA"):
        raise ConfigError(f"direction={direction!r} is not one of AtoB, BtoA")
    src, tgt = ("A", "B") if direction == "AtoB" else ("B", "A")
    generator = dict(cfg.generator) if cfg.get("generator") else None
    G = load_generator(path, generator=generator, direction=direction, weights=cfg.weights,
                       in_channels=data_cfg["input_nc"] if src == "A" else data_cfg["output_nc"],
                       out_channels=data_cfg["output_nc"] if src == "A" else data_cfg["input_nc"])
    device = _device(cfg.device)
    G.to(device)
    if not isinstance(data, (AlignedData, UnalignedData)):
        raise ConfigError("evaluation needs target images: data=aligned (paired) or data=unaligned (FID/KID)")
    dataset = data.dataset(cfg.split, train=False)
    paired = isinstance(data, AlignedData)
    if paired:
        n_src = n_tgt = len(dataset)
    else:  # unpaired: each folder's images once (the dataset cycles the shorter folder)
        n_src, n_tgt = (len(dataset.files_A), len(dataset.files_B))[:: 1 if src == "A" else -1]
    if cfg.max_images:
        n_src, n_tgt = min(n_src, int(cfg.max_images)), min(n_tgt, int(cfg.max_images))
    indices = range(max(n_src, n_tgt))
    loader = DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=int(data.batch_size),
                        num_workers=int(data.num_workers), collate_fn=_collate)
    dtype = PRECISIONS[cfg.precision]

    def autocast():
        return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()

    def batches():
        seen = 0
        for b in loader:
            k = len(b["A"])
            # Unpaired: past the end of one folder its images repeat; drop them from that side.
            ns, nt = max(0, min(k, n_src - seen)), max(0, min(k, n_tgt - seen))
            seen += k
            yield {src: b[src][:ns], tgt: b[tgt][:nt]}

    m = cfg.metrics
    skipped: dict[str, str] = {}
    lpips_net = lpips_model(m.lpips, device) if paired else None
    if paired and m.lpips and lpips_net is None:
        skipped["lpips"] = "backbone weights not cached"
    distribution = None
    if m.fid:
        features = build(m.features) if m.get("features") else inception_features(m.inception_weights)
        if features is None:
            skipped["fid"] = skipped["kid"] = "no Inception weights (metrics.inception_weights=PATH)"
        else:
            distribution = DistributionMetrics(features.to(device), device=device)
    shown: dict[str, list[torch.Tensor]] = {"input": [], "output": [], "target": []}

    def keep(x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        if len(y) == len(x) and sum(len(t) for t in shown["input"]) < int(cfg.grid_images):
            for key, t in zip(shown, (x, out, y)):
                shown[key].append(t.cpu())

    print(f"evaluating {path} ({direction}) on {data.root}/{cfg.split}: {n_src} images", file=sys.stderr)
    if paired:
        result = evaluate_paired(G, batches(), device=device, source=src, target=tgt, lpips_net=lpips_net,
                                 distribution=distribution, autocast=autocast, prefix="", on_batch=keep)
    else:  # the "targets" are other images of the target domain, not references: distribution metrics only
        result = {}
        if distribution is not None:
            with torch.no_grad():
                for b in batches():
                    if len(b[tgt]):
                        distribution.update(b[tgt].to(device), real=True)
                    if len(b[src]):
                        with autocast():
                            out = G(b[src].to(device))
                        distribution.update(out.float(), real=False)
                        keep(b[src], out.float().cpu(), b[tgt][: len(b[src])])
            result = distribution.compute()
    # JSON has no inf/NaN: PSNR of an exact reproduction (inf) and metrics without enough images are null.
    metrics = {k: v if math.isfinite(v) else None for k, v in result.items()}
    run_dir = Path(cfg.run_dir or "runs/evaluate")
    report = {
        **metrics,
        "num_images": n_src,
        "checkpoint": str(path),
        "data": str(data.root),
        "split": cfg.split,
        "direction": direction,
        "skipped": skipped,
        "config": to_container(cfg),
    }
    text = json_text(report, indent=2, default=str)
    atomic_write(run_dir / "metrics.json", lambda f: f.write(text.encode()))
    if shown["input"]:
        columns = [to_rgb(torch.cat(v)[: int(cfg.grid_images)]) for v in shown.values()]
        from translate.data.io import save_image

        save_image(sample_grid(columns), run_dir / "grid.png")
    summary = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
    print(f"{summary}\nwrote {run_dir / 'metrics.json'}", file=sys.stderr)
    return report


def main() -> None:
    import hydra

    from translate.config import run_cli

    conf = str(Path(__file__).resolve().parent.parent / "conf")

    @hydra.main(version_base="1.3", config_path=conf, config_name="evaluate")
    def _main(cfg: DictConfig) -> None:
        run_cli(run, cfg)

    _main()


if __name__ == "__main__":
    main()
