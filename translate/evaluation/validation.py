"""Validation shared by training and ``translate evaluate``.

``Validator`` scores a model's translations on batches: paired models by L1, PSNR, SSIM (and LPIPS when its
weights are on disk, FID/KID when asked for), unpaired models by FID and KID against the target domain's real
images, and, where the data knows the true translations of some val images (a rendered demo), by the paired
metrics on those as ``val/paired_*``. Its metric networks are built once, without touching the training RNG.
The primary translation's metrics are ``val/<name>``, the others' ``val/<direction>/<name>``. ``BestTracker``
decides which validation is the best so far (``best.pt``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from translate.config.compose import build
from translate.core.errors import ConfigError
from translate.core.runtime import autocast
from translate.evaluation.leaks import DistributionLeakScore, LeakScore
from translate.evaluation.metrics import (
    DistributionMetrics,
    evaluate_distribution,
    evaluate_paired,
    higher_is_better,
    inception_features,
    lpips_model,
)
from translate.models.base import Translation

OnBatch = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]


class Validator:
    """Metrics of ``translations`` (direction -> Translation) on batches of ``{"A": ..., "B": ...}``.

    ``metrics`` is the ``metrics`` config node: ``lpips`` (backbone or null), ``fid`` (bool),
    ``inception_weights``, ``features`` (a ``_target_`` extractor instead of Inception), ``leaks`` (bool: the
    augmentation leak check, ``evaluation.leaks``, against true photos or, unpaired, real images). ``distribution``:
    whether paired models also get FID/KID (unpaired ones always do, when ``metrics.fid``). ``truth_batches``:
    aligned ``{"A", "B"}`` batches of val images and their true translations, for an unpaired model (each
    translation is scored on them from its source key to its target key, so B -> A runs night to day, as
    ``val/paired_*``). ``styles`` and ``truncation``: the outputs a paired model's diversity is measured over
    (``evaluate_paired``; by default a generator with a style code uses the batch's fixed codes). What is off for
    lack of weights is in ``skipped`` (metric -> reason).
    """

    def __init__(self, translations: dict[str, Translation], *, paired: bool, metrics: DictConfig | dict,
                 device: torch.device, amp_dtype: torch.dtype | None = None, distribution: bool = False,
                 truth_batches: list[dict[str, torch.Tensor]] | None = None,
                 styles: torch.Tensor | int | None = None, truncation: float = 1.0):
        self.translations, self.paired, self.device = translations, paired, device
        self.styles, self.truncation = styles, truncation
        self.leaks = bool(metrics.get("leaks", False))  # do augmentations leak into the outputs? (evaluation.leaks)
        self.truth_batches = [] if paired else list(truth_batches or [])
        self.autocast = functools.partial(autocast, device, amp_dtype)
        self.skipped: dict[str, str] = {}
        # Building the metric networks draws random initial weights: keep that out of the training RNG.
        with torch.random.fork_rng(devices=[]):
            self.lpips = self._lpips(metrics) if paired or self.truth_batches else None
            self.distributions = self._distributions(metrics) if distribution or not paired else {}

    def _lpips(self, metrics) -> nn.Module | None:
        backbone = metrics.get("lpips")
        net = lpips_model(backbone, self.device, metrics.get("download", "auto"))
        if backbone and net is None:
            self.skipped["lpips"] = "backbone weights not cached"
        return net

    def _distributions(self, metrics) -> dict[str, DistributionMetrics]:
        if not metrics.get("fid", True):
            return {}
        features = build(metrics["features"]) if metrics.get("features") else inception_features(
            metrics.get("inception_weights"), metrics.get("download", "auto"))
        if features is None:
            self.skipped["fid"] = self.skipped["kid"] = "no Inception weights (metrics.inception_weights=PATH)"
            return {}
        features = features.to(self.device)
        return {direction: DistributionMetrics(features, device=self.device) for direction in self.translations}

    @property
    def active(self) -> bool:
        """Whether any metric can be computed (unpaired models need a feature extractor, true translations or
        the leak check)."""
        return self.paired or bool(self.distributions) or bool(self.truth_batches) or self.leaks

    def prefix(self, direction: str, base: str = "val/") -> str:
        primary = next(iter(self.translations))
        return base if direction == primary else f"{base}{direction}/"

    def __call__(self, generators: dict[str, nn.Module], batches: Iterable[dict[str, torch.Tensor]], *,
                 prefix: str = "val/", on_batch: OnBatch | None = None) -> dict[str, float]:
        """Every translation's metrics on ``batches`` (iterated once per translation: give a list when there
        are several)."""
        result: dict[str, float] = {}
        for direction, t in self.translations.items():
            G, where = generators[t.generator], self.prefix(direction, prefix)
            leaks = (LeakScore() if self.paired else DistributionLeakScore()) if self.leaks else None
            common = dict(device=self.device, source=t.source, target=t.target, autocast=self.autocast,
                          prefix=where, on_batch=_both(on_batch, leaks))
            if self.paired:
                result |= evaluate_paired(G, batches, lpips_net=self.lpips, styles=self.styles,
                                          truncation=self.truncation, distribution=self.distributions.get(direction),
                                          **common)
            else:
                if direction in self.distributions or leaks is not None:
                    result |= evaluate_distribution(G, batches, self.distributions.get(direction), **common)
                if self.truth_batches:
                    result |= evaluate_paired(G, self.truth_batches, lpips_net=self.lpips,
                                              **(common | {"prefix": f"{where}paired_", "on_batch": None}))
            if leaks is not None:
                found = leaks.result()
                result |= {f"{where}{k}": v for k, v in found.items()}
                if not found:
                    self.skipped["leaks"] = "fewer than 4 real images to compare the outputs with"
        return result


def _both(first: OnBatch | None, second: OnBatch | None) -> OnBatch | None:
    """One ``on_batch`` that calls both (either may be None)."""
    if first is None or second is None:
        return first or second

    def both(x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        first(x, out, y)
        second(x, out, y)

    return both


class FirstImages:
    """An ``on_batch`` collector of the first ``limit`` (input, output, target) images a validation sees, for
    grids and tables. Batches whose target side differs in length (unpaired folders) are passed over."""

    def __init__(self, limit: int):
        self.limit = limit
        self.parts: dict[str, list[torch.Tensor]] = {"input": [], "output": [], "target": []}

    def __call__(self, x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        if len(y) != len(x) or sum(len(t) for t in self.parts["input"]) >= self.limit:
            return
        for key, t in zip(self.parts, (x, out, y)):
            self.parts[key].append(t.detach().float().cpu())

    def columns(self) -> dict[str, torch.Tensor]:
        """input, output and target as [N, C, H, W] (N <= limit); empty when nothing was collected."""
        return {k: torch.cat(v)[: self.limit] for k, v in self.parts.items() if v}


def monitor_higher_is_better(monitor: str, mode: str) -> bool:
    """Whether best.pt keeps the largest value of ``monitor``: ``mode`` auto follows the metric (val/ssim,
    val/psnr: max; val/l1, val/lpips, val/fid, val/kid: min); min/max must agree with it."""
    known = higher_is_better(monitor)
    if mode not in ("auto", "min", "max"):
        raise ConfigError(f"checkpoint.mode={mode!r} is not one of auto, min, max")
    if mode == "auto":
        if known is None:
            raise ConfigError(f"checkpoint.monitor={monitor}: not a metric whose direction is known; set "
                              "checkpoint.mode=min or max")
        return known
    if known is not None and known != (mode == "max"):
        raise ConfigError(f"checkpoint.mode={mode} would keep the worst {monitor} ({'higher' if known else 'lower'} "
                          "is better); use checkpoint.mode=auto")
    return mode == "max"


class BestTracker:
    """The best value of the monitored validation metric so far and its step (``checkpoint.monitor``)."""

    def __init__(self, monitor: str, mode: str = "auto"):
        self.monitor = monitor
        self.maximize = monitor_higher_is_better(monitor, mode)
        self.best: dict[str, Any] = {}
        self._missing_said = False

    def improved(self, metrics: dict[str, float], step: int) -> bool:
        """Record ``metrics`` of ``step``; True when the monitored value is the best so far (NaN never is)."""
        if self.monitor not in metrics:
            if not self._missing_said:
                self._missing_said = True
                print(f"checkpoint.monitor={self.monitor} is not among the validation metrics "
                      f"({', '.join(sorted(metrics)) or 'none'}): best.pt is not kept", file=sys.stderr)
            return False
        value = metrics[self.monitor]
        if value != value:
            return False
        old = self.best.get(self.monitor)
        if old is not None and not (value > old if self.maximize else value < old):
            return False
        self.best = {self.monitor: value, "step": step}
        return True

    def as_metrics(self) -> dict[str, Any]:
        return {f"best/{k}": v for k, v in self.best.items()}
