"""Dataset tools: ``python -m translate.datasets check|combine|split ...`` (see ``--help``)."""

from translate.datasets.tools import Report, check, combine, split

__all__ = ["Report", "check", "combine", "split"]
