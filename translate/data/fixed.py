"""Fixed images for sample grids and validation: the same images at every step of a run, spread over a split."""

from __future__ import annotations

import sys
from typing import Any

import torch

from translate.core.errors import DataError
from translate.data.modules import DataModule


def spread(n: int, size: int) -> list[int]:
    """``n`` indices spread evenly over ``range(size)``: files are sorted by name, so the first n could all come
    from one source (one photo, one scene)."""
    k = min(n, size)
    return sorted({round(i * (size - 1) / max(k - 1, 1)) for i in range(k)})


def sample_batch(data: DataModule, n: int) -> dict[str, torch.Tensor] | None:
    """``n`` fixed inputs for sample grids (val split if there is one, else train); None when ``n`` <= 0. With
    preprocess none/scale_width the images keep their sizes: only those shaped like the first fit one grid."""
    if n <= 0:
        return None
    dataset = data.sample_dataset()
    items = [dataset[(i, i)] for i in spread(n, len(dataset))]
    shape = {k: v.shape for k, v in items[0].items() if isinstance(v, torch.Tensor)}
    items = [it for it in items if all(it[k].shape == s for k, s in shape.items())]
    return {k: torch.stack([it[k] for it in items]) for k in shape}


def validation_batches(data: DataModule, n: int, *, say: bool = True) -> list[dict[str, Any]]:
    """``n`` fixed validation images (A and B, or A alone for one folder) from the val split in batches of ``data.batch_size``; none
    without a val split (said once when ``say``)."""
    if n <= 0:
        return []
    try:
        dataset = data.val_dataset()
    except DataError:
        if say:
            print(f"No '{data.val_split}' split: validation metrics are off (data.val_holdout=0.05 validates on 5% "
                  "of the training images instead)", file=sys.stderr)
        return []
    return _batches(dataset, n, int(data.batch_size))


def truth_batches(data: DataModule, n: int) -> list[dict[str, Any]]:
    """``n`` fixed pairs of a val image and its true translation (``DataModule.truth_dataset``), or none."""
    dataset = data.truth_dataset() if n > 0 else None
    return _batches(dataset, n, int(data.batch_size)) if dataset is not None else []


def _batches(dataset, n: int, batch_size: int) -> list[dict[str, Any]]:
    """``n`` items spread over ``dataset``, stacked in batches of ``batch_size`` (an item shaped unlike its batch's
    first is left out)."""
    items = [dataset[(i, i)] for i in spread(n, len(dataset))]
    batches, size = [], max(1, batch_size)
    for k in range(0, len(items), size):
        group = [it for it in items[k : k + size] if it["A"].shape == items[k]["A"].shape]
        keys = [key for key, value in items[k].items() if isinstance(value, torch.Tensor)]  # images, not paths
        batches.append({key: torch.stack([it[key] for it in group]) for key in keys})
    return batches
