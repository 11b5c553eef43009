"""The dataset check before training (``translate datasets check`` over the run's data): each layout
problem stops the run in one line, before any step."""

from __future__ import annotations

import sys

from translate.core.errors import ConfigError, DataError
from translate.data.modules import AlignedData, DataModule, UnalignedData
from translate.data.semantic import LabelData, find_samples
from translate.data.tools import check

CHECK_MODES = ("quick", "full", "off")


def check_dataset(data: DataModule, how: str) -> None:
    """Layout problems (A/B name mismatches, empty folders, images shared between splits) stop the run;
    unreadable files are reported and skipped by the loader. ``how``: quick (headers), full (decode all), off."""
    if how not in CHECK_MODES:
        raise ConfigError(f"trainer.check_data={how!r} is not one of {', '.join(CHECK_MODES)}")
    if how == "off":
        return
    if isinstance(data, LabelData):  # label maps: every map with its photo (and instance map), in its layout
        for split in (data.train_split, data.val_split):
            if data.has_split(split) or split == data.train_split:
                find_samples(data.root, split, data.layout, data.instances)
        return
    mode = "aligned" if isinstance(data, AlignedData) else "unaligned" if isinstance(data, UnalignedData) else "single"
    splits = (data.train_split, data.val_split) if mode == "single" else None
    report = check(data.root, mode, quick=how == "quick", splits=splits)
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    if report.unreadable:
        print(f"warning: {len(report.unreadable)} unreadable image(s) will be skipped, e.g. {report.unreadable[0]}",
              file=sys.stderr)
    problems = report.layout_errors
    if problems:
        more = (f" (and {len(problems) - 1} more: translate datasets check {data.root})"
                if len(problems) > 1 else "")
        raise DataError(f"{problems[0]}{more}; fix the dataset or set trainer.check_data=off")
