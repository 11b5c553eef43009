"""Image-quality metrics for validation, on images in [-1, 1] (as the networks produce them).

PSNR and SSIM come from kornia and are computed on [0, 1] images; L1 is in [-1, 1] units like the training loss.
"""

from __future__ import annotations

import kornia
import torch
from torch import nn

HIGHER_IS_BETTER = {"val/psnr": True, "val/ssim": True, "val/l1": False}


def _unit(x: torch.Tensor) -> torch.Tensor:
    return ((x.float() + 1) / 2).clamp(0, 1)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image ([N] tensor); inf for identical images."""
    return torch.stack([kornia.metrics.psnr(_unit(p), _unit(t), 1.0) for p, t in zip(pred, target)])


def ssim(pred: torch.Tensor, target: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """Mean structural similarity per image ([N] tensor); 1 for identical images."""
    size = min(window_size, *pred.shape[-2:])
    size -= 1 - size % 2  # an odd window that fits the image
    return kornia.metrics.ssim(_unit(pred), _unit(target), size).flatten(1).mean(1)


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred.float() - target.float()).abs().flatten(1).mean(1)


@torch.no_grad()
def evaluate_paired(G: nn.Module, batches, *, device: torch.device, source: str = "A", target: str = "B"
                    ) -> dict[str, float]:
    """Average L1, PSNR and SSIM of ``G(source)`` against ``target`` over ``batches`` (G in eval mode).

    PSNR is averaged over images with finite values (an exact reproduction has infinite PSNR).
    """
    was_training = G.training
    G.eval()
    totals = {"val/l1": [], "val/psnr": [], "val/ssim": []}
    try:
        for batch in batches:
            x, y = batch[source].to(device), batch[target].to(device)
            out = G(x)
            totals["val/l1"].append(l1(out, y).cpu())
            totals["val/psnr"].append(psnr(out, y).cpu())
            totals["val/ssim"].append(ssim(out, y).cpu())
    finally:
        G.train(was_training)
    result = {}
    for key, values in totals.items():
        v = torch.cat(values) if values else torch.empty(0)
        if key == "val/psnr" and torch.isfinite(v).any():
            v = v[torch.isfinite(v)]
        result[key] = float(v.mean()) if v.numel() else float("nan")
    return result
