"""Sweeps: Hydra multirun with a failing job, the sweep summary, Optuna with resumable storage, W&B sweeps."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import write_image

from translate.config.compose import compose

ROOT = Path(__file__).resolve().parents[2]
COMMON = ["debug=fast", "data=aligned", "data.load_size=64", "data.crop_size=64", "trainer.progress_bar=false"]


@pytest.fixture
def data_root(tmp_path) -> Path:
    for i in range(4):
        write_image(tmp_path / "data" / "train" / "A" / f"{i}.png", (64, 64), seed=i)
        write_image(tmp_path / "data" / "train" / "B" / f"{i}.png", (64, 64), seed=10 + i)
    return tmp_path / "data"


def _multirun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_multirun_records_a_failing_job_and_goes_on(tmp_path, data_root):
    sweep = tmp_path / "sweep"
    proc = _multirun(*COMMON, f"data.root={data_root}", "generator=unet_64,unet_256", "model.lambda_l1=1,100",
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "failed: ConfigError: data.crop_size=64 is not a multiple of 256" in proc.stderr
    summary = json.loads((sweep / "summary.json").read_text())
    jobs = summary["jobs"]
    assert len(jobs) == 4 and [j["status"] for j in jobs] == ["completed", "completed", "failed", "failed"]
    assert all(j["metrics"]["step"] == 4 for j in jobs[:2])
    assert jobs[0]["objective"] <= jobs[1]["objective"]  # best first
    assert "generator=unet_256" in jobs[2]["overrides"] and "crop_size" in jobs[2]["error"]
    assert (sweep / "summary.csv").read_text().startswith("job,overrides,status,error,objective (loss/G)")
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]  # a folder per job


@pytest.mark.slow
def test_optuna_sweep_runs_and_resumes_from_storage(tmp_path, data_root):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    db = tmp_path / "study.db"
    args = ["hparams_search=optuna_pix2pix", *COMMON, f"data.root={data_root}", "generator=unet_64",
            f"hydra.sweeper.storage=sqlite:///{db}"]
    first = _multirun(*args, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path / 's1'}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert len(json.loads((tmp_path / "s1" / "summary.json").read_text())["jobs"]) == 2
    assert "Best value" in first.stdout + first.stderr
    # A second invocation continues the same study from the SQLite storage.
    second = _multirun(*args, "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={tmp_path / 's2'}", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from trials").fetchone()[0] == 3


def test_wandb_sweep_parameters_are_valid_overrides():
    spec = yaml.safe_load((ROOT / "sweeps" / "wandb_pix2pix.yaml").read_text())
    assert "${args_no_hyphens}" in spec["command"] and spec["program"] == "train.py"
    overrides = []
    for key, p in spec["parameters"].items():
        value = p["values"][0] if "values" in p else p["min"]
        overrides.append(f"{key}={value}")
    cfg = compose(["~experiment", "data.root=x", *overrides])
    assert cfg.gan_loss._target_.endswith("VanillaGAN")
    assert spec["metric"]["name"] in ("loss/G/l1", "loss/G")


@pytest.mark.slow
def test_submitit_local_launcher(tmp_path, data_root):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    proc = _multirun("hydra/launcher=submitit_local", *COMMON, f"data.root={data_root}", "generator=unet_64",
                     "model.lambda_l1=1,100", f"hydra.sweep.dir={sweep}", "hydra.launcher.timeout_min=5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = json.loads((sweep / "summary.json").read_text())["jobs"]
    assert [j["status"] for j in jobs] == ["completed", "completed"]


def test_slurm_launcher_preset_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from translate.config.compose import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=["hydra/launcher=slurm_gpu"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher") and cfg.hydra.launcher.gpus_per_node == 1
