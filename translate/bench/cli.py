"""Command line of ``python -m translate.bench``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from translate.bench import __doc__ as USAGE


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("infer", "train", "serve"):
        print(USAGE, file=sys.stderr)
        return 2
    if argv[0] in ("infer", "serve"):
        if argv[0] == "infer":
            from translate.bench.infer import INFER_DEFAULTS as defaults
            from translate.bench.infer import bench_infer as bench
            from translate.bench.infer import print_table
        else:
            from translate.bench.serve import SERVE_DEFAULTS as defaults
            from translate.bench.serve import bench_serve as bench
            from translate.bench.serve import print_table
        settings = OmegaConf.to_container(OmegaConf.from_dotlist(argv[1:]))
        unknown = set(settings) - set(defaults)
        if unknown:
            print(f"error: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(defaults)}",
                  file=sys.stderr)
            return 2
        report = bench(**settings)
    else:
        from translate.bench.train import TRAIN_DEFAULTS, bench_train, print_table

        ours = [a for a in argv[1:] if a.startswith("bench.")]
        overrides = [a for a in argv[1:] if not a.startswith("bench.")]
        settings = OmegaConf.to_container(OmegaConf.from_dotlist([a.removeprefix("bench.") for a in ours]))
        unknown = set(settings) - set(TRAIN_DEFAULTS)
        if unknown:
            print(f"error: unknown setting(s) bench.{', bench.'.join(sorted(unknown))}; known: "
                  f"{', '.join('bench.' + k for k in TRAIN_DEFAULTS)}", file=sys.stderr)
            return 2
        report = bench_train(overrides, **settings)
    output = Path(report["settings"]["output"])
    output.write_text(json.dumps(report, indent=2))  # first: the results survive a display problem
    print_table(report)
    print(f"wrote {output}")
    return 0
