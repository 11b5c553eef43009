"""``translate datasets download|list|check|combine|separate|split|sketch ARGS [key=value ...]``: the dataset tools.

``translate datasets`` lists them; ``translate datasets X --help`` shows X's arguments and settings."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from translate.core.arguments import Arguments, Setting, parse_arguments
from translate.core.errors import TranslateError
from translate.data.download import DATASETS, INSTRUCTIONS_ONLY, MIRROR_ENV, download
from translate.data.sketch import LAYOUTS, EdgeStyle, sketch
from translate.data.tools import check, combine, separate, split

RATIOS = Setting([0.8, 0.1, 0.1], "train, val and test fractions", kind=float)
SEED = Setting(0, "the shuffle's seed")
COMMAND = "translate datasets"


def _list(args: dict[str, Any]) -> int:
    for d in DATASETS.values():
        print(f"{d.name:24s} {d.kind:9s} about {d.about:>7s}  {d.url}")
    for name, how in INSTRUCTIONS_ONLY.items():
        print(f"{name:24s} {'pix2pix':9s} {'':13s}  {how.split(':')[0]}")
    return 0


def _download(args: dict[str, Any]) -> int:
    download(args["name"], args["root"], archive=args["archive"], mirror=args["mirror"], force=args["force"],
             timeout=args["timeout"])
    return 0


def _check(args: dict[str, Any]) -> int:
    report = check(args["path"], args["mode"], quick=args["quick"], layout=args["layout"], instances=args["instances"])
    print(report)
    return 0 if report.ok else 1


def _sketch(args: dict[str, Any]) -> int:
    style = EdgeStyle(args["style"], sigma=args["sigma"], low=args["low"], high=args["high"],
                      threshold=args["threshold"], thickness=args["thickness"])
    counts = sketch(args["src"], args["out"], style=style, size=args["size"] or None, crops=args["crops"],
                    layout=args["layout"], ratios=tuple(args["ratios"]), holdout=args["holdout"], seed=args["seed"])
    print(", ".join(f"{k}: {v}" for k, v in counts.items()) + f" pairs written to {args['out']}")
    return 0


def _combine(args: dict[str, Any]) -> int:
    print(f"wrote {combine(args['src'], args['out'])} AB images to {args['out']}")
    return 0


def _separate(args: dict[str, Any]) -> int:
    counts = separate(args["src"], args["out"], layout=args["layout"], swap=args["swap"])
    print(", ".join(f"{k}: {v}" for k, v in counts.items()) + f" images split into {args['out']}")
    return 0


def _split(args: dict[str, Any]) -> int:
    counts = split(args["src"], args["out"], tuple(args["ratios"]), args["seed"])
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


def _spec(name: str, positional: tuple[str, ...], about: str, **settings: Setting) -> Arguments:
    return Arguments(f"{COMMAND} {name}", positional, settings, about)


TOOLS: dict[str, tuple[Arguments, Callable[[dict[str, Any]], int]]] = {
    "download": (_spec("download", ("name",), "a reference pix2pix/CycleGAN dataset into ROOT/NAME (translate "
                       "datasets list names them)",
                       root=Setting("datasets", "where datasets live"),
                       archive=Setting(None, "a local copy of the archive instead of downloading", kind=str),
                       mirror=Setting(None, f"base URL with the same archive names (or set {MIRROR_ENV})", kind=str),
                       force=Setting(False, "download and extract again"),
                       timeout=Setting(30.0, "seconds to wait for the server")), _download),
    "list": (_spec("list", (), "the datasets download knows"), _list),
    "check": (_spec("check", ("path",), "validate a dataset; exit 1 on errors",
                    mode=Setting("aligned", "the kind of dataset", ("aligned", "unaligned", "single", "labels")),
                    layout=Setting("folders", "mode=labels: the folders' layout", ("folders", "cityscapes", "ade20k")),
                    instances=Setting(False, "mode=labels: instance maps too"),
                    quick=Setting(False, "read image headers only (a truncated file goes unnoticed)")), _check),
    "combine": (_spec("combine", ("src", "out"), "A/ and B/ folders -> side-by-side AB images"), _combine),
    "separate": (_spec("separate", ("src", "out"), "side-by-side AB images -> A/ and B/ folders (or trainA/trainB)",
                       layout=Setting("folders", "folders: <split>/A + <split>/B (paired) | unaligned: <split>A + "
                                      "<split>B (CycleGAN)", ("folders", "unaligned")),
                       swap=Setting(False, "the right half becomes A")), _separate),
    "split": (_spec("split", ("src", "out"), "a flat folder -> train/val/test by ratio", ratios=RATIOS, seed=SEED),
              _split),
    "sketch": (_spec("sketch", ("src", "out"), "photos (searched recursively) -> an aligned sketch->photo dataset",
                     style=Setting("canny", "thin contours | pencil strokes", ("canny", "xdog")),
                     sigma=Setting(1.0, "Gaussian smoothing before edges (larger: fewer)"),
                     low=Setting(0.1, "canny: low hysteresis threshold"),
                     high=Setting(0.2, "canny: high hysteresis threshold"),
                     threshold=Setting(-0.005, "xdog: DoG level where strokes begin"),
                     thickness=Setting(1, "line width in pixels"),
                     size=Setting(256, "square output side; 0 keeps each photo's size"),
                     crops=Setting(0, "random crops per photo (random scale) instead of the centred square"),
                     layout=Setting("AB", "AB: side-by-side files | folders: A/ and B/", tuple(LAYOUTS)),
                     ratios=RATIOS,
                     holdout=Setting("photo", "photo: split the photos | region: split each photo into strips "
                                     "(few large photos)", ("photo", "region")),
                     seed=SEED), _sketch),
}


def overview() -> str:
    width = max(map(len, TOOLS))
    lines = [f"usage: {COMMAND} TOOL ARGS [key=value ...]      {COMMAND} TOOL --help: its settings", "", "tools:"]
    return "\n".join(lines + [f"  {name:<{width}}  {spec.about}" for name, (spec, _) in TOOLS.items()])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(overview(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] not in TOOLS:
        print(f"{COMMAND}: no tool {argv[0]!r} ({', '.join(TOOLS)})", file=sys.stderr)
        return 2
    spec, tool = TOOLS[argv[0]]
    if argv[1:2] in (["-h"], ["--help"]):
        print(spec.help())
        return 0
    try:
        return tool(parse_arguments(argv[1:], spec))
    except TranslateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
