"""The typed schema of the settings, checked in one place before any work: every wrong type or range is one
line naming the key, the value and what is allowed.

The allowed values come from the types the code itself uses: the keyword annotations of each ``_target_``'s
constructor (``norm: Norm`` is a ``Literal`` of the norms, ``ngf: Positive`` an ``int >= 1``) and, for the
nodes the loop reads directly (``trainer``, the shared ``data`` keys), the dataclasses below. ``Annotated``
ranges (``Range``) carry the bounds.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from omegaconf import DictConfig, ListConfig

from translate.core.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Bounds of a number: ``low <= x`` (``low < x`` when ``open_low``), ``x <= high`` (``x < high``)."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def holds(self, x: float) -> bool:
        above = self.low is None or (x > self.low if self.open_low else x >= self.low)
        below = self.high is None or (x < self.high if self.open_high else x <= self.high)
        return above and below

    def __str__(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {self.high:g}")
        return " and ".join(parts)


Positive = Annotated[int, Range(1)]
Side = Annotated[int, Range(1, 16384)]  # an image side in pixels
Count = Annotated[int, Range(0)]
Fraction = Annotated[float, Range(0, 1, open_high=True)]
Precision = Literal["fp32", "bf16", "fp16"]
InferencePrecision = Literal["fp32", "bf16", "fp16", "int8"]  # int8: backend=openvino only
Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
Beta = Annotated[float, Range(0, 1, open_high=True)]


@dataclass
class EmaSettings:
    enabled: bool = False
    decay: Annotated[float, Range(0, 1, open_low=True, open_high=True)] = 0.999
    rampup: Annotated[float, Range(0, open_low=True)] | None = 0.05


@dataclass
class TrainerSettings:
    """``conf/trainer/default.yaml``: what each key may hold."""

    max_steps: Positive | None = None
    max_epochs: Positive | None = 200
    device: str = "auto"
    precision: Precision = "fp32"
    channels_last: bool = False
    compile: bool = False
    deterministic: bool = False
    reuse_cpu_memory: bool = True
    seed: Count = 0
    check_data: Literal["quick", "full", "off"] = "quick"
    check_finite: Literal["auto", "step"] = "auto"
    log_every: Positive = 100
    sample_every: Positive = 1000
    num_samples: Count = 4
    checkpoint_every: Positive = 1000
    val_every: Count = 1000
    val_images: Count = 32
    keep_checkpoints: Count = 0
    progress_bar: bool = True
    export_folder: bool = False
    ema: EmaSettings = field(default_factory=EmaSettings)


@dataclass
class DataSettings:
    """The keys every ``data`` node shares (``translate.data.DataModule``)."""

    load_size: Side = 286
    crop_size: Side = 256
    preprocess: Preprocess = "resize_and_crop"
    flip: bool = True
    input_nc: Literal[1, 3] = 3
    output_nc: Literal[1, 3] = 3
    batch_size: Positive = 1
    num_workers: Count = 2
    size_multiple: Positive = 4
    max_size: Positive | None = None
    val_holdout: Fraction = 0.0


@dataclass
class LabelDataSettings(DataSettings):
    """A ``data=labels`` node: the input is a one-hot label map, so ``input_nc`` counts its classes (and the
    don't-care and boundary channels)."""

    label_nc: Annotated[int, Range(1, 1024)] = 1
    input_nc: Annotated[int, Range(1, 1026)] = 1  # type: ignore[assignment]
    encoding: Literal["onehot", "colour"] = "onehot"


@dataclass
class OptimizerSettings:
    """The keys of an ``optim.<group>`` node that every torch optimizer the configs name shares."""

    lr: Annotated[float, Range(0, math.inf, open_low=True, open_high=True)] = 2e-4  # finite, above zero
    weight_decay: Annotated[float, Range(0)] = 0.0
    eps: Annotated[float, Range(0, 1, open_low=True)] = 1e-8
    betas: tuple[Beta, Beta] = (0.5, 0.999)


@dataclass
class CheckpointSettings:
    monitor: str = "val/ssim"
    mode: Literal["auto", "min", "max"] = "auto"


def label_channels(label_nc: int, dont_care: int | None, instances: bool, encoding: str = "onehot") -> int:
    """A label map's input channels: one per class (``label_nc``), one for don't-care when ``dont_care`` names a
    value (or 3, ``encoding=colour``: the map's colours), one for the instance boundaries (``data=labels``;
    conf/data/labels.yaml reads it as a resolver)."""
    classes = 3 if encoding == "colour" else int(label_nc) + (dont_care is not None)
    return classes + bool(instances)


def loop_settings(cfg: Any) -> dict[str, tuple[Any, type]]:
    """The nodes the training loop reads itself, by key, with the dataclass each is checked against: trainer,
    data, checkpoint and every ``optim.<group>`` (those that ``cfg`` has)."""
    data = cfg.get("data")
    data_schema = LabelDataSettings if isinstance(data, (dict, DictConfig)) and "label_nc" in data else DataSettings
    nodes = {key: (cfg.get(key), schema) for key, schema in
             (("trainer", TrainerSettings), ("data", data_schema), ("checkpoint", CheckpointSettings))}
    nodes |= {f"optim.{name}": (node, OptimizerSettings) for name, node in (cfg.get("optim") or {}).items()}
    return {key: (node, schema) for key, (node, schema) in nodes.items() if isinstance(node, (dict, DictConfig))}


def check_dataclass(node: Any, schema: type, key: str) -> None:
    """Check the keys of ``node`` that ``schema`` (a dataclass) declares; other keys are left to their readers."""
    hints = typing.get_type_hints(schema, include_extras=True)
    for f in dataclasses.fields(schema):
        if isinstance(node, (dict, DictConfig)) and f.name in node:
            value, where = node[f.name], f"{key}.{f.name}" if key else f.name
            if dataclasses.is_dataclass(hints[f.name]):
                check_dataclass(value, hints[f.name], where)
            else:
                check_value(where, value, hints[f.name])


def check_target_node(node: DictConfig, key: str, target: Any) -> None:
    """Check the keys of a ``_target_`` node against the keyword annotations of ``target``'s signature."""
    try:
        function = target.__init__ if inspect.isclass(target) else target
        hints = typing.get_type_hints(function, include_extras=True)
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError, NameError):
        return  # no readable signature: the constructor is the judge
    for name, value in node.items():
        if not str(name).startswith("_") and name in parameters and name in hints:
            check_value(f"{key}.{name}", value, hints[name])


def check_value(key: str, value: Any, annotation: Any) -> None:
    allowed, ranges = _unwrap(annotation)
    if not any(_matches(value, kind) for kind in allowed):
        raise ConfigError(f"{key}={value!r} is not allowed: expected {_describe(allowed, ranges)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for r in ranges:
            if not r.holds(value):
                raise ConfigError(f"{key}={value!r} is out of range: expected {_describe(allowed, ranges)}")
    if isinstance(value, (list, tuple, ListConfig)):
        _check_items(key, value, allowed)


def _check_items(key: str, value: Any, allowed: list[Any]) -> None:
    """The items of a list against ``list[X]``, ``tuple[X, ...]`` or ``tuple[X, Y]`` (whose length is fixed)."""
    for kind in allowed:
        args = [a for a in typing.get_args(kind) if a is not Ellipsis]
        if typing.get_origin(kind) not in (list, tuple) or not args:
            continue
        fixed = typing.get_origin(kind) is tuple and Ellipsis not in typing.get_args(kind)
        if fixed and len(value) != len(args):
            raise ConfigError(f"{key}={list(value)!r} is not allowed: expected {len(args)} values")
        for i, item in enumerate(value):
            check_value(f"{key}[{i}]", item, args[i] if fixed else args[0])
        return


def _unwrap(annotation: Any) -> tuple[list[Any], list[Range]]:
    """The plain types (and Literals) a value may have, and the ranges that bound it."""
    ranges: list[Range] = []
    if typing.get_origin(annotation) is Annotated:
        annotation, *extra = typing.get_args(annotation)
        ranges += [e for e in extra if isinstance(e, Range)]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        kinds = []
        for arg in typing.get_args(annotation):
            sub, sub_ranges = _unwrap(arg)
            kinds += sub
            ranges += sub_ranges
        return kinds, ranges
    return [annotation], ranges


def _matches(value: Any, kind: Any) -> bool:
    origin = typing.get_origin(kind)
    if kind is type(None):
        return value is None
    if origin is Literal:
        return value in typing.get_args(kind)
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if origin in (list, tuple) or kind in (list, tuple):
        return isinstance(value, (list, tuple, ListConfig))
    return True  # callables, modules, Any: checked where they are used


def _describe(kinds: list[Any], ranges: list[Range]) -> str:
    bounds = " and ".join(map(str, ranges))
    names = []
    for kind in kinds:
        if typing.get_origin(kind) is Literal:
            names.append("one of " + ", ".join(map(str, typing.get_args(kind))))
        elif kind is type(None):
            names.append("null")
        elif kind in (int, float) and bounds:
            names.append(f"{'an integer' if kind is int else 'a number'} {bounds}")
        else:
            names.append(getattr(kind, "__name__", str(kind)))
    return " or ".join(names)
