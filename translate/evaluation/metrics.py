"""Image-quality metrics for validation and evaluation, on images in [-1, 1] (as the networks produce them).

Paired: L1 (in [-1, 1] units like the training loss), PSNR and SSIM (kornia, on [0, 1] images) and LPIPS
(torchmetrics) when its backbone weights are on disk. Unpaired: FID and KID (torchmetrics) of generated images
against real target-domain images, on Inception features when the weights are on disk, or on any feature
extractor given. Nothing here downloads: metrics whose weights are missing are skipped with one message.
"""

from __future__ import annotations

import os
import re
import sys
import urllib.parse
import warnings
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path

import kornia
import torch
from torch import nn

from translate.core.download import download_file
from translate.core.errors import ConfigError, DataError, first_line
from translate.core.runtime import eval_mode, training_mode
from translate.data.files import to_uint8
from translate.models.base import STYLES, takes_style
from translate.models.losses import l1

HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "l1": False, "lpips": False, "fid": False, "kid": False,
                    "diversity": True, "diversity_l1": True, "random_l1": False, "miou": True, "pixel_acc": True}
# An exact reproduction has infinite PSNR; in a mean over images it counts as this (the PSNR of an MSE of 1e-10).
PSNR_CAP = 100.0
# torch-fidelity's port of the TF Inception used by the FID paper (torchmetrics' FID and KID use it).
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
LPIPS_BACKBONES = {
    "alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "squeeze": "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
}
_said: set[str] = set()


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        print(message, file=sys.stderr)


def hub_file(url: str) -> Path:
    """Where torch.hub (and torchvision) cache the file of ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


# Metric weights are fetched when missing (metrics.download=auto) with a short timeout, once per process and
# host: a machine without a network loses a few seconds once, never a training run.
DOWNLOADS = ("auto", "never")
DOWNLOAD_TIMEOUT = 5.0  # seconds
DOWNLOAD_ENV = "TRANSLATE_METRICS_DOWNLOAD"  # never: no metric weights are ever fetched (air-gapped machines)
MIRROR_ENV = "TRANSLATE_METRICS_MIRROR"  # a base URL (or file:// folder) with the same file names
_unreachable: set[str] = set()
_failed: set[str] = set()  # URLs whose fetch failed (and said so): the "off" line is not said again


def hub_hash(url: str) -> str | None:
    """The SHA-256 prefix torch hub file names carry (``alexnet-owt-7be5be79.pth``), if any."""
    match = re.search(r"-([0-9a-f]{8,})\.\w+$", url.rsplit("/", 1)[-1])
    return match.group(1) if match else None


def metric_weights(url: str, download: str = "auto", *, timeout: float = DOWNLOAD_TIMEOUT,
                   off: str = "metric weights not fetched") -> Path | None:
    """The torch hub cache file of ``url``: there already, or fetched now (``download=auto``) and checked
    against the SHA-256 prefix in its name; None when it is missing and cannot be fetched, said once in one line
    that starts with ``off`` (what is off without it, e.g. ``LPIPS is off``)."""
    if download not in DOWNLOADS:
        raise ConfigError(f"metrics.download={download!r} is not one of {', '.join(DOWNLOADS)}")
    path = hub_file(url)
    if path.is_file():
        return path
    if download == "never" or os.environ.get(DOWNLOAD_ENV) == "never":
        return None
    mirror = os.environ.get(MIRROR_ENV)
    source = f"{mirror.rstrip('/')}/{path.name}" if mirror else url
    host = urllib.parse.urlsplit(source).netloc or source
    if host in _unreachable:
        return None
    try:
        download_file(source, path, sha256=hub_hash(url), timeout=timeout, progress=False,
                      offline_hint=f"set metrics.download=never or {DOWNLOAD_ENV}=never to stop trying")
    except DataError as e:
        _unreachable.add(host)
        _failed.add(url)
        _say_once(f"{off}: {first_line(e)}")
        return None
    _say_once(f"fetched {path.name} into {path.parent}")
    return path


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


def higher_is_better(key: str) -> bool | None:
    """Whether a larger value of metric ``key`` (``val/ssim``, ``val/BtoA/kid``, ``psnr``) is better; None for a
    metric this module does not make. ``paired_<name>`` (scores against true translations) is ranked as ``<name>``."""
    return HIGHER_IS_BETTER.get(key.rsplit("/", 1)[-1].removeprefix("paired_"))


def _mean(values: list[torch.Tensor], psnr_cap: bool = False) -> float:
    """The mean; for PSNR (``psnr_cap``) exact reproductions count as PSNR_CAP dB unless all images are exact
    (then inf), so one exact image cannot hide the others. NaN stays NaN."""
    v = torch.cat(values) if values else torch.empty(0)
    if not v.numel():
        return float("nan")
    if psnr_cap and not (torch.isinf(v) & (v > 0)).all():
        v = torch.where(torch.isinf(v) & (v > 0), torch.full_like(v, PSNR_CAP), v)
    return float(v.mean())


# ----------------------------------------------------------------- many outputs per input
def dropout_layers(G: nn.Module) -> list[nn.Module]:
    """G's dropout layers (pix2pix's only noise)."""
    return [m for m in G.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]


def dropout_active(G: nn.Module):
    """G's dropout layers in training mode for the block, everything else as it is."""
    return training_mode(dropout_layers(G), True)


def style_outputs(G: nn.Module, x: torch.Tensor, styles: torch.Tensor | int, *, seed: int = 0,
                  truncation: float = 1.0) -> list[torch.Tensor]:
    """G's outputs for ``x``, one per style: codes [K, nz] for a generator with a style code (pulled towards the
    mean style by ``truncation``); a count K for one without (K passes with its dropout on, drawn from ``seed``
    in a forked RNG: pix2pix with noise)."""
    if isinstance(styles, torch.Tensor):
        return [G(x, z.to(x).expand(len(x), -1), truncation=truncation) for z in styles]
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []), dropout_active(G):
        torch.manual_seed(seed)
        return [G(x) for _ in range(styles)]


def pairwise_distance(outputs: list[torch.Tensor], lpips_net: nn.Module | None = None) -> torch.Tensor:
    """Per input, the mean distance between its outputs of different styles (LPIPS with ``lpips_net``, else
    L1): [N]; 0 when all are equal."""
    pairs = [(a, b) for i, a in enumerate(outputs) for b in outputs[i + 1:]]
    if not pairs:
        raise ConfigError("diversity needs at least 2 outputs per input")
    distance = l1 if lpips_net is None else (lambda a, b: lpips(lpips_net, a, b))
    return torch.stack([distance(a.float(), b.float()) for a, b in pairs]).mean(0)


def style_metrics(outputs: list[torch.Tensor], target: torch.Tensor, lpips_net: nn.Module | None) -> dict[str, torch.Tensor]:
    """Per input: ``diversity`` (LPIPS between outputs, or L1 without LPIPS weights), ``diversity_l1`` and
    ``random_l1`` (each output's L1 to the target, averaged over the styles)."""
    result = {"diversity_l1": pairwise_distance(outputs)}
    result["diversity"] = result["diversity_l1"] if lpips_net is None else pairwise_distance(outputs, lpips_net)
    result["random_l1"] = torch.stack([l1(o.float(), target) for o in outputs]).mean(0)
    return result


@torch.no_grad()
def evaluate_paired(G: nn.Module, batches: Iterable[dict[str, torch.Tensor]], *, device: torch.device | str,
                    source: str = "A", target: str = "B", lpips_net: nn.Module | None = None,
                    distribution: DistributionMetrics | None = None, autocast=nullcontext, prefix: str = "val/",
                    on_batch=None, styles: torch.Tensor | int | None = None,
                    truncation: float = 1.0) -> dict[str, float]:
    """Average L1, PSNR, SSIM (and LPIPS with ``lpips_net``; FID/KID with ``distribution``) of ``G(source)``
    against ``target`` over ``batches``, with G in eval mode. ``autocast`` wraps G only: metrics run in fp32.
    ``on_batch(x, out, y)`` sees every batch (for grids and tables). In the PSNR mean an exact reproduction
    counts as PSNR_CAP dB (inf when every image is exact). Many outputs per input (``style_metrics``): for a
    generator with a style code over the batch's fixed codes (``batch["styles"]``), or ``styles`` (codes, or
    a count: dropout passes for a generator without one), with ``truncation`` for the codes."""
    totals: dict[str, list[torch.Tensor]] = {"l1": [], "psnr": [], "ssim": []}
    if lpips_net is not None:
        totals["lpips"] = []
    if distribution is not None:
        distribution.reset()
    with eval_mode(G):
        for batch in batches:
            x, y = batch[source].to(device), batch[target].to(device)
            with autocast():
                out = G(x)
            out = out.float()
            totals["l1"].append(l1(out, y).cpu())
            totals["psnr"].append(psnr(out, y).cpu())
            totals["ssim"].append(ssim(out, y).cpu())
            if lpips_net is not None:
                totals["lpips"].append(lpips(lpips_net, out, y).cpu())
            chosen = styles if styles is not None else batch.get(STYLES) if takes_style(G) else None
            if chosen is not None:
                with autocast():
                    outputs = style_outputs(G, x, chosen.to(device) if isinstance(chosen, torch.Tensor) else chosen,
                                            truncation=truncation)
                for key, value in style_metrics(outputs, y, lpips_net).items():
                    totals.setdefault(key, []).append(value.cpu())
            if distribution is not None:
                if distribution.num_real < distribution.max_real:
                    distribution.update(y, real=True)
                distribution.update(out, real=False)
            if on_batch is not None:
                on_batch(x, out, y[: len(x)])
    result = {f"{prefix}{k}": _mean(v, psnr_cap=k == "psnr") for k, v in totals.items()}
    if distribution is not None:
        distribution.max_real = distribution.num_real  # the real set is complete: encode it only once
        result |= {f"{prefix}{k}": v for k, v in distribution.compute().items()}
    return result


@torch.no_grad()
def evaluate_distribution(G: nn.Module, batches: Iterable[dict[str, torch.Tensor]],
                          distribution: DistributionMetrics | None, *, device: torch.device | str, source: str = "A",
                          target: str = "B", autocast=nullcontext, prefix: str = "val/", on_batch=None) -> dict[str, float]:
    """FID and KID of ``G(batch[source])`` against the real ``batch[target]`` images (other images of the target
    domain, not references), with G in eval mode. Either side of a batch may be empty (unpaired folders of
    different sizes). The real images are encoded on the first call only. ``on_batch(x, out, y)`` as in
    ``evaluate_paired`` (y: the batch's real images, not x's); with no ``distribution``, only that."""
    if distribution is not None:
        distribution.reset()
    with eval_mode(G):
        for batch in batches:
            x, y = batch[source], batch[target]
            if distribution is not None and len(y) and distribution.num_real < distribution.max_real:
                distribution.update(y.to(device), real=True)
            if not len(x):
                continue
            with autocast():
                out = G(x.to(device))
            out = out.float()
            if distribution is not None:
                distribution.update(out, real=False)
            if on_batch is not None:
                on_batch(x, out, y[: len(x)])
    if distribution is None:
        return {}
    distribution.max_real = distribution.num_real
    return {f"{prefix}{k}": v for k, v in distribution.compute().items()}


# ----------------------------------------------------------------- LPIPS
def lpips_model(backbone: str | None, device: torch.device | str = "cpu", download: str = "auto") -> nn.Module | None:
    """torchmetrics' LPIPS with ``backbone`` (alex, vgg, squeeze), or None (said once) when its ImageNet weights
    are neither in the torch hub cache nor fetched (``download``; torchvision would otherwise fetch them with
    no timeout)."""
    if not backbone:
        return None
    if backbone not in LPIPS_BACKBONES:
        raise ConfigError(f"metrics.lpips={backbone!r} is not one of {', '.join(LPIPS_BACKBONES)} or null")
    path = metric_weights(LPIPS_BACKBONES[backbone], download, off="LPIPS is off")
    if path is None:
        path = hub_file(LPIPS_BACKBONES[backbone])
        if LPIPS_BACKBONES[backbone] not in _failed:
            _say_once(f"LPIPS is off: the {backbone} weights are not at {path} (download "
                      f"{LPIPS_BACKBONES[backbone]} there to turn it on)")
        return None
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    return LearnedPerceptualImagePatchSimilarity(net_type=backbone, reduction="mean", normalize=False).to(device)


def lpips(model: nn.Module, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """LPIPS per image ([N] tensor; 0 for identical images) of [-1, 1] RGB (or gray, repeated) images."""
    pred, target = (x.float().clamp(-1, 1).expand(-1, 3, -1, -1) for x in (pred, target))
    return torch.stack([model.net(p[None], t[None]).flatten()[0] for p, t in zip(pred, target)])


# ----------------------------------------------------------------- FID / KID
class _SharedFeatures(nn.Module):
    """One feature extractor for both FID and KID: the features of the last batch are reused when the other
    metric asks for the same tensor, so each image goes through the network once."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None
        # torchmetrics reads the feature size from here; without it, it probes the network with a CPU image,
        # which fails once the network is on the GPU.
        param = next(net.parameters(), None)
        probe = torch.zeros(1, 3, 299, 299, dtype=torch.uint8, device=param.device if param is not None else "cpu")
        with torch.no_grad():
            self.num_features = int(net(probe).shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._last is not None and self._last[0] is x:
            return self._last[1]
        y = self.net(x)
        self._last = (x, y)
        return y


def inception_features(weights: str | Path | None = None, download: str = "auto") -> nn.Module | None:
    """The FID Inception (2048-d pool features of uint8 images) from ``weights`` or the torch hub cache (fetched
    there with ``download=auto``), or None (said once) when there is no file: FID and KID are then skipped."""
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: no such file (metrics.inception_weights)")
    else:
        path = metric_weights(INCEPTION_URL, download, off="FID/KID are off") or hub_file(INCEPTION_URL)
        if not path.is_file():
            if INCEPTION_URL not in _failed:
                _say_once(f"FID/KID are off: no Inception weights at {path} (download {INCEPTION_URL} there, or "
                          "set metrics.inception_weights=PATH)")
            return None
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
    except ImportError:
        _say_once("FID/KID are off: torch-fidelity is not installed (pip install torch-fidelity)")
        return None
    try:
        return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                  feature_extractor_weights_path=str(path))
    except Exception as e:  # noqa: BLE001 - a damaged or foreign weights file
        raise ConfigError(f"{path}: not usable Inception weights ({first_line(e)[:200]})") from None


class DistributionMetrics:
    """FID and KID (torchmetrics) of generated images against real ones, on the features of ``features``: a
    module taking uint8 [N, 3, H, W] images and returning [N, D] features (the FID Inception by default).

    Real features are kept across ``reset()`` calls, so a fixed real set is encoded once per run.
    """

    def __init__(self, features: nn.Module, *, device: torch.device | str = "cpu"):
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        shared = _SharedFeatures(features.eval())
        # sync_on_compute=False: only rank 0 validates under torchrun; a cross-process gather would wait forever.
        self.fid = FrechetInceptionDistance(feature=shared, reset_real_features=False,
                                            sync_on_compute=False).to(device)
        with warnings.catch_warnings():  # KID keeps its features in memory: a few thousand at most here
            warnings.simplefilter("ignore", UserWarning)
            self.kid = KernelInceptionDistance(feature=shared, reset_real_features=False,
                                               sync_on_compute=False).to(device)
        self.device = device
        self.num_real = self.num_fake = 0
        self.max_real = sys.maxsize  # evaluate_* set it once the real set has been seen

    @staticmethod
    def _uint8(x: torch.Tensor) -> torch.Tensor:
        return to_uint8(x).expand(-1, 3, -1, -1)  # gray images as RGB

    @torch.no_grad()
    def update(self, images: torch.Tensor, *, real: bool) -> None:
        x = self._uint8(images.to(self.device))
        self.fid.update(x, real=real)
        self.kid.update(x, real=real)
        if real:
            self.num_real += len(x)
        else:
            self.num_fake += len(x)

    def reset(self) -> None:
        """Forget the generated images (keep the real ones)."""
        self.fid.reset()
        self.kid.reset()
        self.num_fake = 0

    @torch.no_grad()
    def compute(self) -> dict[str, float]:
        """``fid`` and ``kid`` (KID on subsets of up to 1000 images, with a fixed seed; it never touches the
        training RNG). NaN when either side has fewer than two images."""
        n = min(self.num_real, self.num_fake)
        if n < 2:
            return {"fid": float("nan"), "kid": float("nan")}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.kid.subset_size = min(1000, n)
            kid_mean, _ = self.kid.compute()
        return {"fid": float(self.fid.compute()), "kid": float(kid_mean)}
