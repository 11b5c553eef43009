"""Plot metrics over steps from a run's ``metrics.jsonl``: ``translate plot RUN [keys=[val/ssim,val/psnr]]
[output=OUT.png]``. Needs matplotlib (``pip install -e ".[plot]"``)."""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

from translate.core.arguments import Arguments, Setting, parse_arguments
from translate.core.atomic import atomic_write
from translate.core.errors import DataError, TranslateError

DEFAULT_KEYS = ("loss/G/l1", "val/l1", "val/psnr", "val/ssim", "val/fid", "val/kid", "val/lpips")


def read_metrics(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Series per key from a ``metrics.jsonl`` (or the run folder holding one), sorted by step. A line that is
    not JSON (a run killed mid-write) is skipped with a warning; a step logged twice (a resumed run repeats the
    steps after its last checkpoint) keeps its latest value."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    series: dict[str, dict[int, float]] = {}
    bad = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            step = int(row.pop("step"))
        except (ValueError, KeyError, TypeError, AttributeError):
            bad.append(n)
            continue
        for key, value in row.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                series.setdefault(key, {})[step] = float(value)
    if bad:
        warnings.warn(f"{path}: skipped {len(bad)} line(s) that are not metrics (line {bad[0]}"
                      f"{', ...' if len(bad) > 1 else ''})", stacklevel=2)
    return {key: sorted(values.items()) for key, values in series.items()}


def plot(metrics: str | Path, out: str | Path, keys: list[str] | None = None) -> Path:
    """One panel per metric key (the default keys that the log has), written atomically to ``out``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DataError('plotting needs matplotlib: pip install -e ".[plot]"') from None
    series = read_metrics(metrics)
    keys = [k for k in (keys or DEFAULT_KEYS) if k in series]
    if not keys:
        raise DataError(f"{metrics}: none of the keys to plot are logged (it has: {', '.join(sorted(series))})")
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), squeeze=False)
    for ax, key in zip(axes[0], keys):
        steps, values = zip(*series[key])
        ax.plot(steps, values, marker="o" if key.startswith("val/") else None, markersize=3)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fmt = Path(out).suffix.lstrip(".") or "png"
    path = atomic_write(out, lambda f: fig.savefig(f, format=fmt, dpi=110))
    plt.close(fig)
    return path


ARGUMENTS = Arguments("translate plot", ("run",), {
    "keys": Setting(None, f"metric keys, e.g. [val/ssim,val/psnr] (null: those of {', '.join(DEFAULT_KEYS)} logged)",
                    kind=list),
    "output": Setting(None, "the image to write (null: <run>/metrics.png)", kind=str),
}, "a run's metrics over steps as a PNG (a run folder or its metrics.jsonl)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(ARGUMENTS.help())
        return 0
    try:
        args = parse_arguments(argv, ARGUMENTS)
        src = Path(args["run"])
        out = args["output"] or (src if src.is_dir() else src.parent) / "metrics.png"
        print(f"wrote {plot(src, out, args['keys'])}")
    except TranslateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
