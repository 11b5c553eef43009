"""Sweep summaries: after ``python train.py -m ...``, one table of every job's overrides, status and metrics."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback

from translate.core.atomic import atomic_write_bytes, json_text


def collect(sweep_dir: str | Path, objective: str = "loss/G") -> list[dict[str, Any]]:
    """One row per job folder of a sweep: its number, overrides, status, error and final metrics."""
    rows = []
    for job in sorted(Path(sweep_dir).iterdir(), key=lambda p: (len(p.name), p.name)):
        overrides_file = job / ".hydra" / "overrides.yaml"
        if not overrides_file.is_file():
            continue
        overrides = yaml.safe_load(overrides_file.read_text()) or []
        result_file = job / "result.json"
        result = json.loads(result_file.read_text()) if result_file.is_file() else {"status": "no result"}
        metrics = result.get("metrics") or {}
        rows.append({
            "job": job.name,
            "overrides": " ".join(overrides),
            "status": result.get("status"),
            "error": result.get("error"),
            "objective": value if isinstance(value := metrics.get(objective), (int, float)) else math.nan,
            "metrics": metrics,
        })
    return rows


def write_summary(sweep_dir: str | Path, objective: str = "loss/G") -> list[dict[str, Any]]:
    """Write ``summary.json`` and ``summary.csv`` into the sweep folder, best objective first."""
    rows = collect(sweep_dir, objective)
    rows.sort(key=lambda r: (r["status"] != "completed", r["objective"] if r["objective"] == r["objective"] else math.inf))
    sweep_dir = Path(sweep_dir)
    payload = json_text({"objective": objective, "jobs": rows}, indent=2, default=str)
    atomic_write_bytes(sweep_dir / "summary.json", payload.encode())
    keys = sorted({k for r in rows for k in r["metrics"]})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["job", "overrides", "status", "error", f"objective ({objective})", *keys])
    for r in rows:
        writer.writerow([r["job"], r["overrides"], r["status"], r["error"] or "", r["objective"],
                         *(r["metrics"].get(k, "") for k in keys)])
    atomic_write_bytes(sweep_dir / "summary.csv", buf.getvalue().encode())
    return rows


class SweepSummary(Callback):
    """Hydra callback (registered in ``conf/train.yaml``) that writes the summary when a multirun ends."""

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            rows = write_summary(sweep_dir, config.get("objective", "loss/G"))
            failed = sum(r["status"] != "completed" for r in rows)
            print(f"sweep summary: {len(rows)} jobs, {failed} not completed -> {sweep_dir / 'summary.csv'}")
