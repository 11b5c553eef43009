"""``python -m translate.datasets check|combine|split ...``"""

from __future__ import annotations

import argparse
import sys

from translate.datasets.tools import check, combine, split
from translate.errors import TranslateError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m translate.datasets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="validate a dataset; exit 1 on errors")
    p.add_argument("path")
    p.add_argument("--mode", choices=["aligned", "unaligned", "single"], default="aligned")
    p.add_argument("--quick", action="store_true", help="read headers only (no full decode)")
    p = sub.add_parser("combine", help="A/ and B/ folders -> side-by-side AB images")
    p.add_argument("src")
    p.add_argument("out")
    p = sub.add_parser("split", help="flat folder -> train/val/test by ratio")
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--ratios", type=float, nargs=3, default=[0.8, 0.1, 0.1])
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            report = check(args.path, args.mode, quick=args.quick)
            print(report)
            return 0 if report.ok else 1
        if args.command == "combine":
            print(f"wrote {combine(args.src, args.out)} AB images to {args.out}")
            return 0
        counts = split(args.src, args.out, tuple(args.ratios), args.seed)
        print(", ".join(f"{k}: {v}" for k, v in counts.items()))
        return 0
    except TranslateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
