"""The noise and export tools the user can trust: a bad number is one line and exit code 2 before any work,
a truncation that would make black images is refused, and an export that cannot be written leaves nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from translate.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _cli(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", module, *args], check=False, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# ------------------------------------------------------------------------------------ generate: its numbers
def _generate_cfg(tmp_path: Path, **changes):
    base = OmegaConf.load(ROOT / "conf" / "generate.yaml")
    base.pop("defaults"), base.pop("hydra")
    return OmegaConf.merge(base, {"checkpoint": str(tmp_path / "nothing.pt"), "output": str(tmp_path / "out")},
                           changes)


@pytest.mark.parametrize("changes, message", [
    ({"n": "abc"}, "n='abc' is not allowed: expected an integer >= 1"),
    ({"n": 0}, "n=0 is out of range"),
    ({"batch_size": 2.5}, "batch_size=2.5 is not allowed"),
    ({"seed": 10**20}, "seed=100000000000000000000 is out of range: expected an integer from 0 to 2**63 - 1"),
    ({"seed": -1}, "seed=-1 is out of range"),
    ({"truncation": float("nan")}, "truncation=nan is out of range: expected a number >= -2 and <= 2"),
    ({"truncation": 1e308}, "truncation=1e+308 is out of range"),
    ({"truncation": "abc"}, "truncation='abc' is not allowed"),
    ({"truncation": [0.7, float("inf")]}, "truncation[1]=inf is out of range"),
], ids=["n-text", "n-zero", "batch-fraction", "seed-huge", "seed-negative", "psi-nan", "psi-huge", "psi-text",
        "psi-level-inf"])
def test_generate_refuses_bad_numbers_before_any_work(tmp_path, changes, message):
    from translate.generate import run

    with pytest.raises(ConfigError) as info:
        run(_generate_cfg(tmp_path, **changes))  # before the (missing) checkpoint is even looked at
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_generate_cli_bad_numbers_exit_2_in_one_line(tmp_path):
    line = _one_error_line(_cli("translate.generate", f"checkpoint={tmp_path / 'nothing.pt'}",
                                f"output={tmp_path / 'out'}", "n=abc", cwd=ROOT))
    assert "n='abc'" in line and not (tmp_path / "out").exists()
