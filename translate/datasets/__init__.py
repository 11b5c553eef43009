"""Dataset tools: ``python -m translate.datasets download|sketch|check|combine|separate|split ...``
(see ``--help``)."""

from translate.datasets.download import DATASETS, download, extract
from translate.datasets.sketch import EdgeStyle, edge_map, sketch
from translate.datasets.tools import Report, check, combine, separate, split

__all__ = ["DATASETS", "EdgeStyle", "download", "extract", "Report", "check", "combine", "edge_map", "separate", "sketch", "split"]
