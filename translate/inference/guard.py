"""How unlike its training data an input is: an autoencoder's reconstruction error as an out-of-domain score.

An autoencoder trained on a model's input domain (``model=autoencoder``, ``data=single`` on the sketches a
sketch->photo model takes) reconstructs such inputs well and others badly, and encodes them to codes like
those of its val images. ``Guard`` scores images (resized to the guard's training size) by ``guard.score``:

- ``reconstruction``: the mean absolute error of the reconstruction, in pixel units ([0, 2]);
- ``code``: the code's distance from the val images' codes (``models.autoencoder.code_distance``: the root
  mean square of its values' deviations, each in the val codes' standard deviations);
- ``detail``: how far the reconstruction error lies from the one expected for the input's fine detail
  (``models.autoencoder.image_detail``): on its own domain an autoencoder's error grows in proportion to the
  detail (``DetailFit``: the val images' typical ratio), and the score is the distance from that ratio in log
  units, either way: a smooth photo rebuilt badly, or thin lines rebuilt better than the domain's strokes;
- ``all`` (what ``auto``, the default, means): the largest of those the checkpoint allows, each divided by its
  median over the val images (so 1 is a typical in-domain input). A blurry guard rebuilds a photo about as
  badly as a detailed sketch, but codes it like no sketch and rebuilds it far worse than its little detail
  predicts (docs "Out-of-domain guard").

The threshold is ``threshold``, or by default the ``percentile`` of the val images' scores, which training
keeps in the guard's checkpoint (each val code's distance from the other val codes' statistics, so that it is
distributed as a new in-domain input's is). A percentile p needs 100 / (100 - p) - 1 val images to be placed
(99 for the 99th); fewer place it at about their largest, and loading such a guard warns.

- ``infer.py ... guard=RUN`` (or ``guard.checkpoint=RUN guard.action=skip guard.percentile=95``) scores every
  input, lists those above the threshold and writes ``guard.csv`` in the output folder; ``action``: ``warn``
  converts them anyway, ``skip`` does not. ``translate.apps.serve guard=RUN`` shows the warning beside the output.
- ``guard=cycle`` with a CycleGAN checkpoint needs no extra model: the score is the cycle error
  |G_back(G(x)) - x|, its threshold the percentile of the val images' cycle errors (kept by training).
- ``translate guard score RUN input=DIR output=DIR [percentile=99] [threshold=T] [score=S]`` writes
  ``scores.csv`` and, per image, input | reconstruction | error map (``<name>_error.png``).
"""

from __future__ import annotations

import csv
import io
import math
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from PIL import Image

from translate.config.checkpoint import load_checkpoint
from translate.core.arguments import MISSING, Arguments, Setting, parse_arguments
from translate.core.atomic import atomic_write_bytes, make_folder
from translate.core.errors import CheckpointError, ConfigError, TranslateError
from translate.core.schema import check_dataclass
from translate.data.images import read_picture, resize_images, to_model_input
from translate.inference.inputs import collect_inputs, input_folder_holding
from translate.loading.load import load
from translate.models.autoencoder import CODE_STATS, code_distance, codes_of, image_detail
from translate.models.losses import l1
from translate.networks.layers import generator_channels

ACTIONS = ("warn", "skip")
CYCLE = "cycle"  # guard=cycle: a CycleGAN's own cycle error
Score = Literal["auto", "all", "reconstruction", "code", "detail"]
PARTS = ("reconstruction", "code", "detail")  # what a guard can score by; ``all``: the largest, normalised
DETAIL_FLOOR = 2 / 255  # one 8-bit level, added to errors and details before their logarithms


@dataclass
class GuardOptions:
    """``infer.py guard.*`` / ``translate.apps.serve guard.*``; ``guard=RUN`` alone sets ``checkpoint``."""

    checkpoint: str | None = None
    action: Literal["warn", "skip"] = "warn"
    percentile: float = 99.0
    threshold: float | None = None
    score: Score = "auto"

    def __post_init__(self) -> None:
        check_dataclass(vars(self), GuardOptions, "guard")
        if not 0 < self.percentile <= 100:
            raise ConfigError(f"guard.percentile={self.percentile}: a percentile in (0, 100]")

    @classmethod
    def from_config(cls, node: Any) -> GuardOptions:
        if node is None or isinstance(node, (str, Path)):
            return cls(checkpoint=str(node) if node else None)
        node = dict(node)
        unknown = sorted(set(node) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"guard.{unknown[0]} is not a guard setting (checkpoint, action, percentile, "
                              "threshold, score)")
        return cls(**node)


@dataclass
class Guard:
    """An autoencoder (or a CycleGAN's way there and back) and its threshold; ``scores`` of [N, C, H, W]
    images in [-1, 1] by ``parts`` (one of ``PARTS``, or several: the largest, each over its val median in
    ``medians``). ``code_stats``: the val codes' ``code_mean`` and ``code_spread`` (``code``); ``detail_fit``:
    the val images' error against detail (``detail``); ``val_scores``: the val images' scores."""

    G: torch.nn.Module
    size: int
    channels: int
    threshold: float
    action: str = "warn"
    source: str = ""
    parts: tuple[str, ...] = ("reconstruction",)
    code_stats: dict[str, torch.Tensor] = field(default_factory=dict)
    detail_fit: DetailFit | None = None
    medians: dict[str, float] = field(default_factory=dict)
    val_scores: torch.Tensor = field(default_factory=lambda: torch.zeros(0))  # the threshold's percentile of them
    load_size: int = 0  # > size: its val images were resized to this, then centre-cropped (resize_and_crop)

    @property
    def score(self) -> str:
        """The ``guard.score`` this guard scores by (``all`` for several parts)."""
        return self.parts[0] if len(self.parts) == 1 else "all"

    def prepared(self, x: torch.Tensor) -> torch.Tensor:
        """Images as the guard's val images were when its threshold was set: its size and channels, and with
        ``load_size`` the same zoom (resized to it, the centre ``size`` kept), so that scores compare."""
        if x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif self.channels == 1 and x.shape[1] >= 3:
            x = x[:, :3].mean(1, keepdim=True)
        else:
            x = x[:, : self.channels]
        if self.load_size <= self.size:
            return resize_images(x, (self.size, self.size))
        top = (self.load_size - self.size) // 2
        x = resize_images(x, (self.load_size, self.load_size))
        return x[..., top:top + self.size, top:top + self.size]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        prepared = self.prepared(x)
        return prepared, self.G(prepared).float()

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.scores_of(*self.reconstruct(x))

    @torch.no_grad()
    def scores_of(self, prepared: torch.Tensor, rebuilt: torch.Tensor) -> torch.Tensor:
        """The score of prepared images and their reconstructions: [N]."""

        raw = {}
        for part in self.parts:
            if part == "reconstruction":
                raw[part] = l1(rebuilt, prepared)
            elif part == "code":
                raw[part] = code_distance(codes_of(self.G, prepared), self.code_stats["code_mean"],
                                          self.code_stats["code_spread"])
            else:
                raw[part] = self.detail_fit.distance(l1(rebuilt, prepared), image_detail(prepared))
        return combined(raw, self.medians)

    def flagged(self, score: float) -> bool:
        return score > self.threshold


@dataclass(frozen=True)
class DetailFit:
    """The val images' typical log((error + floor) / (detail + floor)) (their median; floor: ``DETAIL_FLOOR``):
    an autoencoder's reconstruction error grows in proportion to the fine detail it smooths away (a line
    fitted to log error against log detail on the docs' sketch guard has slope 1.03), so a fixed slope of 1
    and one median keep the fit stable on a few val images of alike detail."""

    log_ratio: float

    @classmethod
    def of(cls, errors: torch.Tensor, details: torch.Tensor) -> DetailFit:
        return cls(float((_logs(errors) - _logs(details)).median()))

    def distance(self, errors: torch.Tensor, details: torch.Tensor) -> torch.Tensor:
        """Per image, |log error - the log error typical of its detail|: 0 on the line, 0.69 at twice or half."""
        return (_logs(errors) - _logs(details) - self.log_ratio).abs()


def _logs(values: torch.Tensor) -> torch.Tensor:
    return (values.double() + DETAIL_FLOOR).log()


def combined(raw: dict[str, torch.Tensor], medians: dict[str, float]) -> torch.Tensor:
    """One part's scores as they are; several: the largest, each over its val median (``medians``)."""
    if len(raw) == 1:
        return next(iter(raw.values())).float()
    return torch.stack([scores.float() / medians[part] for part, scores in raw.items()]).amax(0)


def load_guard(options: GuardOptions, model: str | None = None, direction: str | None = None) -> Guard | None:
    """The guard ``options`` name (None when none is asked), its threshold set. ``guard=cycle`` scores by the
    cycle error of ``model`` (a CycleGAN checkpoint) in ``direction``."""
    if not options.checkpoint:
        return None
    if options.checkpoint == CYCLE:
        return _cycle_guard(options, model, direction)

    loaded = load(options.checkpoint)
    cfg = loaded.config
    if cfg is None or not str(cfg.model.get("_target_", "")).endswith("Autoencoder"):
        raise ConfigError(f"guard={options.checkpoint}: a guard is a model=autoencoder (or vae) run trained on the "
                          "model's input domain (data=single on its inputs), or guard=cycle for a CycleGAN")
    state = checked_statistics(load_checkpoint(options.checkpoint)["model_state"], options.checkpoint)

    code_stats = {k: state[k].float() for k in CODE_STATS if k in state}
    errors, details = state.get("val_errors", torch.zeros(0)).float(), state.get("val_details", torch.zeros(0))
    detail_fit = DetailFit.of(errors, details) if len(details) > 1 and len(details) == len(errors) else None
    val = {"reconstruction": errors, "code": code_stats.get("val_code_distances"),
           "detail": detail_fit.distance(errors, details) if detail_fit else None}
    parts = _score_parts(options, tuple(p for p in PARTS if val[p] is not None))
    medians = {p: max(float(val[p].median()), 1e-12) for p in parts} if len(errors) else {}
    val_scores = combined({p: val[p] for p in parts}, medians) if len(errors) else errors
    channels = int(getattr(loaded.module, "in_channels", cfg.data.input_nc))
    return Guard(loaded.module.eval(), int(cfg.data.crop_size), channels, _threshold(options, val_scores),
                 options.action, options.checkpoint, parts, code_stats, detail_fit, medians, val_scores,
                 _val_zoom(cfg.data))


def _val_zoom(data: Any) -> int:
    """The side val images were resized to before their centre crop (``data.preprocess=resize_and_crop``), or 0."""
    if data.get("preprocess") == "resize_and_crop" and int(data.get("load_size", 0)) > int(data.crop_size):
        return int(data.load_size)
    return 0


def _score_parts(options: GuardOptions, kept: tuple[str, ...]) -> tuple[str, ...]:
    """What ``guard.score`` scores by, of the parts whose val statistics the checkpoint ``kept``: ``auto`` and
    ``all`` every one, a part's name that one (a ConfigError when the checkpoint lacks it)."""
    if options.score in ("auto", "all"):
        return kept
    if options.score not in kept:
        what = {"code": "code statistics (its generator has no encoder, or it was validated before the guard "
                        "scored codes)",
                "detail": "val image details (it was validated before the guard scored detail)"}[options.score]
        raise ConfigError(f"guard.score={options.score}: guard={options.checkpoint} keeps no {what}; use "
                          "guard.score=reconstruction or auto")
    return (options.score,)


def _cycle_guard(options: GuardOptions, model: str | None, direction: str | None) -> Guard:
    """A CycleGAN's way there and back as the reconstruction: G_back(G(x))."""

    if options.score not in ("auto", "reconstruction"):
        raise ConfigError(f"guard.score={options.score}: guard=cycle scores by the cycle error alone "
                          "(guard.score=reconstruction or auto)")
    there = load(model, direction=direction) if model else None
    cfg = there.config if there else None
    if cfg is None or not str(cfg.model.get("_target_", "")).endswith("CycleGAN"):
        raise ConfigError(f"guard=cycle: the model ({model}) is not a CycleGAN training checkpoint; give "
                          "guard=RUN, an autoencoder trained on its inputs")
    side = there.translation.source
    back = load(model, direction=f"{there.translation.target}to{side}")
    errors = checked_statistics(load_checkpoint(model)["model_state"], model).get(f"val_cycle_errors_{side}",
                                                                                 torch.zeros(0))
    reconstruction = torch.nn.Sequential(there.module, back.module).eval()
    channels = generator_channels(there.module)[0]
    threshold = _threshold(options, errors, f"guard=cycle ({model})")
    return Guard(reconstruction, int(cfg.data.crop_size), channels, threshold, options.action, f"{model} (cycle)",
                 val_scores=errors, load_size=_val_zoom(cfg.data))


# What a guard's checkpoint keeps of its val images: per image scores (never negative), and the val codes'
# mean and spread (the spread above zero). A file is untrusted: a NaN here would disarm the guard.
SCORES = ("val_errors", "val_details", "val_code_distances", "val_cycle_errors_A", "val_cycle_errors_B")


def checked_statistics(state: dict[str, Any], source: Any) -> dict[str, Any]:
    """``state`` (a checkpoint's ``model_state``) once its guard statistics are whole: finite floating-point
    tensors, scores one per val image and never negative, code spreads above zero. Anything else is one
    CheckpointError naming the field, never a guard that silently flags nothing."""
    for key in (*SCORES, "code_mean", "code_spread"):
        if key not in state:
            continue
        value = state[key]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise CheckpointError(f"{source}: model_state.{key} is not a tensor of numbers")
        if not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{source}: model_state.{key} holds NaN or infinite values; the guard's statistics "
                                  "are broken (validate the guard again)")
        if key in SCORES and (value.dim() != 1 or bool((value < 0).any())):
            raise CheckpointError(f"{source}: model_state.{key} must be one score >= 0 per val image")
        if key == "code_spread" and not bool((value > 0).all()):
            raise CheckpointError(f"{source}: model_state.code_spread must be above zero everywhere")
    return state


def _threshold(options: GuardOptions, errors: torch.Tensor, name: str | None = None) -> float:
    """``options.threshold``, else the ``options.percentile`` of the val ``errors``."""
    if options.threshold is not None:
        if not math.isfinite(float(options.threshold)):
            raise ConfigError(f"guard.threshold={options.threshold}: a finite number")
        return float(options.threshold)
    if not len(errors):
        raise ConfigError(f"{name or 'guard=' + str(options.checkpoint)}: its checkpoint holds no validation errors "
                          "(it was never validated, or predates the guard); set guard.threshold=T or train it "
                          "with a val split")
    least = math.ceil(100 / (100 - options.percentile)) - 1 if options.percentile < 100 else 0
    if len(errors) < least:
        warnings.warn(f"{name or 'guard=' + str(options.checkpoint)}: {len(errors)} val scores place the "
                      f"{options.percentile:g}th percentile only as about their largest, which about 1 in "
                      f"{len(errors) + 1} new in-domain inputs exceed; validate the guard on {least} or more images "
                      "(trainer.val_images) or set guard.threshold", stacklevel=3)
    return float(np.percentile(errors.numpy(), options.percentile))


# ----------------------------------------------------------------------------------------------- records
def write_scores(path: Path, rows: dict[str, tuple[float, bool]], threshold: float, extra: dict[str, str] | None = None,
                 keep_existing: bool = True) -> Path:
    """``file,score,threshold,flagged[,action]`` for every scored input, merged with the rows an earlier run of
    the same command wrote (a resumed conversion keeps them), written atomically."""
    merged: dict[str, dict[str, str]] = {}
    if keep_existing and path.is_file():
        with open(path, newline="") as f:
            merged = {row["file"]: row for row in csv.DictReader(f)}
    for file, (score, flagged) in rows.items():
        merged[file] = {"file": file, "score": f"{score:.6f}", "threshold": f"{threshold:.6f}",
                        "flagged": str(int(flagged)), **(extra or {})}
    buffer = io.StringIO()
    columns = ["file", "score", "threshold", "flagged", *(extra or {})]
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(merged[k] for k in sorted(merged))
    return atomic_write_bytes(path, buffer.getvalue().encode())


def error_map(prepared: torch.Tensor, rebuilt: torch.Tensor) -> np.ndarray:
    """input | reconstruction | per-pixel error (black 0 -> red -> yellow at the image's largest error), as one
    uint8 RGB picture."""
    def rgb(x: torch.Tensor) -> np.ndarray:
        x = x.expand(3, -1, -1) if x.shape[0] == 1 else x
        return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()

    error = (rebuilt - prepared).abs().mean(0)
    e = (error / error.max().clamp_min(1e-6)).numpy()
    heat = np.stack([np.clip(2 * e, 0, 1), np.clip(2 * e - 1, 0, 1), np.zeros_like(e)], -1)
    return np.concatenate([rgb(prepared), rgb(rebuilt), (heat * 255).round().astype(np.uint8)], 1)


def score_folder(guard: Guard, inputs: str | Path, output: str | Path) -> dict[str, tuple[float, bool]]:
    """Score every image of ``inputs``; write ``scores.csv`` and one error map per image (``error_map_names``)
    into ``output``, which must lie outside the input folders: nothing is ever written over an input.
    Unreadable files are reported and skipped."""
    found, scanned, _ = collect_inputs(inputs)
    inside = input_folder_holding(output, scanned)
    if inside is not None:
        raise ConfigError(f"output={output} is inside the input folder {inside}; choose another folder (scores "
                          "and error maps are never written among the inputs)")
    out, names = make_folder(output), error_map_names([rel for _, rel in found])
    rows: dict[str, tuple[float, bool]] = {}
    for src, rel in found:
        try:
            x = to_model_input(read_picture(src), guard.channels)[None]
        except TranslateError as e:
            print(f"skipped: {e}", file=sys.stderr)
            continue
        prepared, rebuilt = guard.reconstruct(x)
        score = float(guard.scores_of(prepared, rebuilt)[0])
        rows[str(rel)] = (score, guard.flagged(score))
        buffer = io.BytesIO()
        Image.fromarray(error_map(prepared[0], rebuilt[0])).save(buffer, format="PNG")
        atomic_write_bytes(out / names[rel], buffer.getvalue())
    write_scores(out / "scores.csv", rows, guard.threshold, keep_existing=False)
    return rows


def error_map_names(inputs: list[Path]) -> dict[Path, Path]:
    """Each input's error map, a name of its own: ``a.png`` -> ``a_error.png``; inputs that share a folder and a
    stem (``a.png``, ``a.jpg``) keep their extension in it (``a.png_error.png``); a name still taken gets a
    number (``_2``)."""
    shared = Counter((rel.parent, rel.stem.lower()) for rel in inputs)
    taken: set[tuple[Path, str]] = set()
    names = {}
    for rel in inputs:
        base = rel.stem if shared[rel.parent, rel.stem.lower()] == 1 else rel.name
        name, n = f"{base}_error.png", 1
        while (rel.parent, name.lower()) in taken:
            n += 1
            name = f"{base}_{n}_error.png"
        taken.add((rel.parent, name.lower()))
        names[rel] = rel.with_name(name)
    return names


SCORE_ARGUMENTS = Arguments("translate guard score", ("run",), {
    "input": Setting(MISSING, "the images: a file, folder, glob or list file"),
    "output": Setting("anomaly_scores", "the folder for scores.csv and the error maps"),
    "percentile": Setting(99.0, "the threshold: this percentile of the guard's own validation scores"),
    "threshold": Setting(None, "a fixed threshold instead of the percentile", kind=float),
    "score": Setting("auto", "which error scores an image (as infer.py's guard.score)", get_args(Score)),
}, "score images (a file, folder or glob) by how unlike the guard run's training images they are")


def main(argv: list[str] | None = None) -> int:
    """``translate guard score RUN input=DIR [output=DIR] [percentile=99] [threshold=T] [score=auto]``."""

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]) or argv[:1] == ["score"] and argv[1:2] in (["-h"], ["--help"]):
        print(SCORE_ARGUMENTS.help())
        return 0
    if argv[:1] != ["score"]:
        print(SCORE_ARGUMENTS.usage(), file=sys.stderr)
        return 2
    try:
        args = parse_arguments(argv[1:], SCORE_ARGUMENTS)
        guard = load_guard(GuardOptions(args["run"], percentile=args["percentile"], threshold=args["threshold"],
                                        score=args["score"]))
        output = args["output"]
        rows = score_folder(guard, args["input"], output)
    except TranslateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    flagged = sum(f for _, f in rows.values())
    print(f"scored {len(rows)}: {flagged} above the threshold {guard.threshold:.4f}; wrote {output}/scores.csv "
          "and the error maps", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
