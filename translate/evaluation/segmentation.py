"""How well a generated photo keeps its label map, measured as the SPADE and pix2pixHD papers measure it: a
segmentation network trained on real photos labels the generated ones, and its labels are scored against the
input maps (mean IoU over the classes, pixel accuracy). The same network on the real photos gives the ceiling.

The papers use a pretrained DRN or UperNet; those cannot be downloaded here and do not know our demo's classes,
so the segmenter is a small U-Net trained on the evaluation data's own training photos (their maps are the
truth) on first use, then cached under ``$TRANSLATE_CACHE/segmenters/`` keyed by the data and the settings:
every model evaluated on that data is scored by the same network. Its weights are a safetensors file.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from translate.core.atomic import atomic_write_bytes
from translate.data.demo import cache_dir
from translate.data.labels import LabelEncoding

FORMAT = 1  # bump when the segmenter's network or training changes: old cached weights are then not used


def _block(fin: int, fout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(fin, fout, 3, padding=1, bias=False), nn.BatchNorm2d(fout), nn.ReLU(),
                         nn.Conv2d(fout, fout, 3, padding=1, bias=False), nn.BatchNorm2d(fout), nn.ReLU())


class Segmenter(nn.Module):
    """A small U-Net: photo [N, 3, H, W] in [-1, 1] -> class logits [N, classes, H, W] (sides multiples of 8)."""

    def __init__(self, classes: int, width: int = 16, in_channels: int = 3):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.downs = nn.ModuleList([_block(in_channels, widths[0])] +
                                   [_block(widths[i], widths[i + 1]) for i in range(3)])
        self.ups = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(3)])
        self.merges = nn.ModuleList([_block(2 * widths[i], widths[i]) for i in range(3)])
        self.head = nn.Conv2d(widths[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, down in enumerate(self.downs):
            x = down(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for i in reversed(range(3)):
            x = self.merges[i](torch.cat([self.ups[i](x), skips[i]], 1))
        return self.head(x)


def segmenter_path(root: Path, classes: int, size: int, steps: int, seed: int) -> Path:
    """Where the segmenter of this data and these settings is cached (the key: the training files' names and
    sizes, the settings, FORMAT)."""
    files = sorted(p for p in (root / "train").rglob("*") if p.is_file()) if (root / "train").is_dir() else []
    listing = [(str(p.relative_to(root)), p.stat().st_size) for p in files]
    key = json.dumps([FORMAT, str(root.resolve()), listing, classes, size, steps, seed])
    return cache_dir() / "segmenters" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.safetensors"


def _batches(loader: DataLoader) -> Iterator[dict[str, torch.Tensor]]:
    while True:
        yield from loader


def train_segmenter(dataset, classes: int, ignore: int | None, *, steps: int, seed: int,
                    device: torch.device, batch_size: int = 8) -> Segmenter:
    """A segmenter trained on ``dataset``'s photos (``B``) against their maps (``labels``): Adam 1e-3, cross
    entropy (``ignore``: the don't-care class, left out), ``steps`` steps of ``batch_size``."""
    torch.manual_seed(seed)
    net = Segmenter(classes).to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=len(dataset) >= batch_size,
                        generator=torch.Generator().manual_seed(seed))
    for step, batch in zip(range(steps), _batches(loader)):
        logits = net(batch["B"].to(device))
        loss = F.cross_entropy(logits, batch["labels"].to(device), ignore_index=-100 if ignore is None else ignore)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 500 == 0:
            print(f"segmenter step {step}/{steps}: loss {loss.item():.3f}", file=sys.stderr)
    return net.eval()


def cached_segmenter(data, *, steps: int, seed: int, device: torch.device) -> Segmenter:
    """The segmenter for label data ``data`` (a ``LabelData``), trained on its train split on first use."""
    classes = data.label_nc
    path = segmenter_path(Path(data.root), classes, int(data.crop_size), steps, seed)
    net = Segmenter(classes)
    if path.is_file():
        net.load_state_dict(load_file(path))
        return net.to(device).eval()
    print(f"training the segmentation network on {data.root}/train ({steps} steps; cached in {path})",
          file=sys.stderr)
    ignore = classes if data.dont_care is not None else None  # the don't-care index (read as the last class)
    net = train_segmenter(data.dataset(data.train_split), classes, ignore, steps=steps, seed=seed, device=device)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    atomic_write_bytes(path, save(state))
    return net


class SegmentationScore:
    """An ``on_batch`` collector (``Validator``): the segmenter's labels for each output and each real photo,
    scored against the input maps (read back off the inputs by ``encoding.decode``; don't-care is left out)."""

    def __init__(self, segmenter: Segmenter, encoding: LabelEncoding, device: torch.device):
        self.segmenter, self.encoding, self.device = segmenter, encoding, device
        classes = encoding.label_nc
        metrics = {"miou": lambda: MulticlassJaccardIndex(classes, average="macro"),
                   "pixel_acc": lambda: MulticlassAccuracy(classes, average="micro"),
                   "class_iou": lambda: MulticlassJaccardIndex(classes, average="none")}
        self.metrics = {f"{prefix}{name}": make().to(device) for prefix in ("", "real_") for name, make in
                        metrics.items()}

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        labels = self.encoding.decode(x.float()).to(self.device)
        keep = labels >= 0  # don't care: not scored
        for prefix, images in (("", out), ("real_", y)):
            if len(images) != len(x):
                continue
            predicted = self.segmenter(images.float().to(self.device)).argmax(1)
            for name in ("miou", "pixel_acc", "class_iou"):
                self.metrics[prefix + name].update(predicted[keep], labels[keep])

    def result(self) -> dict[str, float | dict[str, float]]:
        """``miou``, ``pixel_acc`` and ``class_iou`` (class name -> IoU) of the outputs, and ``real_miou``,
        ``real_pixel_acc``, ``real_class_iou`` of the real photos."""
        names = self.encoding.colours.names
        result: dict[str, float | dict[str, float]] = {}
        for key, metric in self.metrics.items():
            value = metric.compute()
            result[key] = dict(zip(names, value.tolist(), strict=False)) if key.endswith("class_iou") else float(value)
        return result
