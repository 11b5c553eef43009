"""Dataset tools: ``python -m translate.datasets download|sketch|check|combine|separate|split ...``
(see ``--help``)."""

from translate.datasets.sketch import EdgeStyle, edge_map, sketch
from translate.datasets.tools import Report, check, combine, separate, split

__all__ = ["EdgeStyle", "Report", "check", "combine", "edge_map", "separate", "sketch", "split"]
