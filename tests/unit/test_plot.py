"""Metric plots from a run's metrics.jsonl."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from translate.training.plot import main, plot, read_metrics


def test_plot_metrics(tmp_path):
    rows = [{"step": s, "loss/G/l1": 1 / s, "epoch": 0} for s in (10, 20, 30)]
    rows += [{"step": 20, "val/ssim": 0.4, "val/psnr": float("inf")}, {"step": 30, "val/ssim": 0.5, "val/psnr": 20.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    series = read_metrics(tmp_path)
    assert series["val/ssim"] == [(20, 0.4), (30, 0.5)] and series["val/psnr"] == [(30, 20.0)]  # inf dropped
    out = plot(tmp_path, tmp_path / "m.png")
    with Image.open(out) as im:
        assert im.width > 2.5 * im.height  # three panels side by side: loss/G/l1, val/psnr, val/ssim
    assert main([str(tmp_path)]) == 0 and (tmp_path / "metrics.png").is_file()
    assert main([str(tmp_path), "keys=[val/fid]"]) == 2
    # A resumed run logs again the steps after its checkpoint (the latest value wins); a run killed mid-write
    # leaves a cut line (skipped, with a warning).
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 20, "val/ssim": 0.45}) + "\n" + '{"step": 40, "val/ss')
    with pytest.warns(UserWarning, match=r"metrics.jsonl: skipped 1 line\(s\) that are not metrics \(line 7\)"):
        series = read_metrics(tmp_path)
    assert series["val/ssim"] == [(20, 0.45), (30, 0.5)]
    (tmp_path / "metrics.jsonl").write_text("not json\n")
    with pytest.warns(UserWarning):
        assert read_metrics(tmp_path) == {}
