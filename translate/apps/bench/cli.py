"""Command line of ``translate bench``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from translate.apps.bench import __doc__ as USAGE
from translate.apps.bench import infer as infer_bench
from translate.apps.bench import serve as serve_bench
from translate.apps.bench import train as train_bench

# per command: its settings' defaults, the benchmark and the table printer
SIMPLE = {
    "infer": (infer_bench.INFER_DEFAULTS, infer_bench.bench_infer, infer_bench.print_table),
    "serve": (serve_bench.SERVE_DEFAULTS, serve_bench.bench_serve, serve_bench.print_table),
}


MODULES = {"infer": infer_bench, "serve": serve_bench, "train": train_bench}


def mode_help(mode: str) -> str:
    """A benchmark's own help: its module's description and each setting with its default."""
    module = MODULES[mode]
    defaults = {"infer": getattr(module, "INFER_DEFAULTS", {}), "serve": getattr(module, "SERVE_DEFAULTS", {}),
                "train": {f"bench.{k}": v for k, v in getattr(module, "TRAIN_DEFAULTS", {}).items()}}[mode]
    shown = [f"  {k}={'null' if v is None else str(v).lower() if isinstance(v, bool) else v}"
             for k, v in defaults.items()]
    return "\n".join([module.__doc__.strip(), "", "settings (key=default):", *shown])


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if not argv or argv[0] not in ("infer", "train", "serve"):
        print(USAGE, file=sys.stderr)
        return 2
    if argv[1:2] in (["-h"], ["--help"]):
        print(mode_help(argv[0]))
        return 0
    if argv[0] in SIMPLE:
        defaults, bench, print_table = SIMPLE[argv[0]]
        settings = OmegaConf.to_container(OmegaConf.from_dotlist(argv[1:]))
        unknown = set(settings) - set(defaults)
        if unknown:
            print(f"error: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(defaults)}",
                  file=sys.stderr)
            return 2
        report = bench(**settings)
    else:
        TRAIN_DEFAULTS, bench_train, print_table = (train_bench.TRAIN_DEFAULTS, train_bench.bench_train,
                                                    train_bench.print_table)
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
