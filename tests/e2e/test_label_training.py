"""Training on label maps (issue 31): the semantic demo through the loop, its maps shown in colour."""

from __future__ import annotations

import numpy as np
from helpers import tiny_overrides
from omegaconf import open_dict
from PIL import Image

from translate.config.compose import compose
from translate.training.loop import fit


def test_pix2pix_trains_on_label_maps_and_shows_them_in_colour(tmp_path):
    cfg = compose(tiny_overrides("data=demo_labels", f"data.root={tmp_path / 'demo'}", "data.num_train=4",
                                 "data.num_val=2", "data.size=32", "generator.num_downs=5", "trainer.max_steps=2",
                                 "trainer.val_every=2", "trainer.sample_every=2"))
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path / "run")
    assert fit(cfg)["step"] == 2 and cfg.data.input_nc == 8
    grid = np.asarray(Image.open(tmp_path / "run" / "samples" / "step_0000002.png").convert("RGB")).astype(int)
    first = grid[22:150, 2:130]  # the input column, under the labels: the map in its palette's colours
    assert (np.abs(first - np.array([135, 190, 235])).sum(-1) < 10).mean() > 0.1  # sky-coloured pixels
