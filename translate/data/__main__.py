"""``translate datasets download|sketch|check|combine|split ...``"""

from __future__ import annotations

import argparse
import sys

from translate.core.errors import TranslateError
from translate.data.download import DATASETS, INSTRUCTIONS_ONLY, MIRROR_ENV, download
from translate.data.sketch import LAYOUTS, EdgeStyle, sketch
from translate.data.tools import check, combine, separate, split


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="translate datasets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("download", help="a reference pix2pix/CycleGAN dataset into ROOT/NAME")
    p.add_argument("name", help=f"one of: {', '.join([*DATASETS, *INSTRUCTIONS_ONLY])}")
    p.add_argument("--root", default="datasets", help="where datasets live (default: datasets)")
    p.add_argument("--archive", help="a local copy of the archive instead of downloading")
    p.add_argument("--mirror", help=f"base URL with the same archive names (or set {MIRROR_ENV})")
    p.add_argument("--force", action="store_true", help="download and extract again")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server")
    p = sub.add_parser("list", help="the datasets download knows")
    p = sub.add_parser("check", help="validate a dataset; exit 1 on errors")
    p.add_argument("path")
    p.add_argument("--mode", choices=["aligned", "unaligned", "single"], default="aligned")
    p.add_argument("--quick", action="store_true",
                   help="read image headers only (no full decode: a truncated file goes unnoticed)")
    p = sub.add_parser("combine", help="A/ and B/ folders -> side-by-side AB images")
    p.add_argument("src")
    p.add_argument("out")
    p = sub.add_parser("separate", help="side-by-side AB images -> A/ and B/ folders (or trainA/trainB)")
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--layout", choices=["folders", "unaligned"], default="folders",
                   help="folders: <split>/A + <split>/B (paired) | unaligned: <split>A + <split>B (CycleGAN)")
    p.add_argument("--swap", action="store_true", help="the right half becomes A")
    p = sub.add_parser("split", help="flat folder -> train/val/test by ratio")
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--ratios", type=float, nargs=3, default=[0.8, 0.1, 0.1])
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("sketch", help="photos -> aligned sketch->photo dataset (edge map | photo)")
    p.add_argument("src", help="folder of photos (searched recursively)")
    p.add_argument("out")
    p.add_argument("--style", choices=["canny", "xdog"], default="canny", help="thin contours | pencil strokes")
    p.add_argument("--sigma", type=float, default=1.0, help="Gaussian smoothing before edges (larger: fewer)")
    p.add_argument("--low", type=float, default=0.1, help="canny: low hysteresis threshold")
    p.add_argument("--high", type=float, default=0.2, help="canny: high hysteresis threshold")
    p.add_argument("--threshold", type=float, default=-0.005, help="xdog: DoG level where strokes begin")
    p.add_argument("--thickness", type=int, default=1, help="line width in pixels")
    p.add_argument("--size", type=int, default=256, help="square output side; 0 keeps each photo's size")
    p.add_argument("--crops", type=int, default=0,
                   help="random crops per photo (random scale) instead of the centred square")
    p.add_argument("--layout", choices=LAYOUTS, default="AB", help="AB: side-by-side files | folders: A/ and B/")
    p.add_argument("--ratios", type=float, nargs=3, default=[0.8, 0.1, 0.1], help="train val test fractions")
    p.add_argument("--holdout", choices=["photo", "region"], default="photo",
                   help="photo: split the photos | region: split each photo into strips (few large photos)")
    p.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            for d in DATASETS.values():
                print(f"{d.name:24s} {d.kind:9s} about {d.about:>7s}  {d.url}")
            for name, how in INSTRUCTIONS_ONLY.items():
                print(f"{name:24s} {'pix2pix':9s} {'':13s}  {how.split(':')[0]}")
            return 0
        if args.command == "download":
            download(args.name, args.root, archive=args.archive, mirror=args.mirror, force=args.force,
                     timeout=args.timeout)
            return 0
        if args.command == "check":
            report = check(args.path, args.mode, quick=args.quick)
            print(report)
            return 0 if report.ok else 1
        if args.command == "sketch":
            style = EdgeStyle(args.style, sigma=args.sigma, low=args.low, high=args.high, threshold=args.threshold,
                              thickness=args.thickness)
            counts = sketch(args.src, args.out, style=style, size=args.size or None, crops=args.crops,
                            layout=args.layout, ratios=tuple(args.ratios), holdout=args.holdout,
                            seed=args.seed)
            print(", ".join(f"{k}: {v}" for k, v in counts.items()) + f" pairs written to {args.out}")
            return 0
        if args.command == "combine":
            print(f"wrote {combine(args.src, args.out)} AB images to {args.out}")
            return 0
        if args.command == "separate":
            counts = separate(args.src, args.out, layout=args.layout, swap=args.swap)
            print(", ".join(f"{k}: {v}" for k, v in counts.items()) + f" images split into {args.out}")
            return 0
        counts = split(args.src, args.out, tuple(args.ratios), args.seed)
        print(", ".join(f"{k}: {v}" for k, v in counts.items()))
        return 0
    except TranslateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
