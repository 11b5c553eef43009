"""The noise and export tools the user can trust: a bad number is one line and exit code 2 before any work,
a truncation that would make black images is refused, and an export that cannot be written leaves nothing."""

from __future__ import annotations

import builtins
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from translate.core.errors import ConfigError, OutputError
from translate.loading.reference import reference_key_map
from translate.networks import DCGANGenerator, ResnetGenerator

ROOT = Path(__file__).resolve().parents[2]


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
    from translate.latent.generate import run

    with pytest.raises(ConfigError) as info:
        run(_generate_cfg(tmp_path, **changes))  # before the (missing) checkpoint is even looked at
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_generate_cli_bad_numbers_exit_2_in_one_line(tmp_path):
    line = _one_error_line(_cli("translate.latent.generate", f"checkpoint={tmp_path / 'nothing.pt'}",
                                f"output={tmp_path / 'out'}", "n=abc", cwd=ROOT))
    assert "n='abc'" in line and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------ export: unwritable folders
def _read_only(monkeypatch, folder: Path) -> None:
    """Writes into ``folder`` fail as in a read-only folder (EACCES), also for root, whom chmod does not stop."""
    folder.mkdir(parents=True, exist_ok=True)
    real_open, real_os_open = builtins.open, os.open

    def inside(path) -> bool:
        return isinstance(path, (str, os.PathLike)) and Path(os.path.abspath(path)).parent == folder

    def refuse(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    def guarded_open(file, mode="r", *args, **kwargs):
        if inside(file) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_to_a_read_only_folder_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, fmt):
    from translate.inference.export import export_generator

    folder = tmp_path / "ro"
    (folder / "kept.txt").parent.mkdir()
    (folder / "kept.txt").write_text("kept")
    _read_only(monkeypatch, folder)
    with pytest.raises(OutputError) as info:
        export_generator(DCGANGenerator(size=32, ngf=4), folder / f"g.{fmt}", fmt)
    message = str(info.value)
    assert "\n" not in message and str(folder / f"g.{fmt}") in message and "permission denied" in message
    assert sorted(p.name for p in folder.iterdir()) == ["kept.txt"]


def test_export_cli_unwritable_output_exits_2_in_one_line(tmp_path):
    net = ResnetGenerator(n_blocks=6, ngf=8, norm="instance")
    torch.save({v: net.state_dict()[k] for k, v in reference_key_map(net).items()}, tmp_path / "latest_net_G.pth")
    (tmp_path / "afile").write_text("not a folder")
    line = _one_error_line(_cli("translate.inference.export", f"checkpoint={tmp_path / 'latest_net_G.pth'}",
                                "generator=resnet_6blocks", "generator.ngf=8",
                                f"output={tmp_path / 'afile' / 'g.onnx'}", cwd=ROOT))
    assert line == f"error: {tmp_path / 'afile'}: cannot write (it is a file, not a folder)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "latest_net_G.pth"]


def test_export_refuses_a_truncation_that_would_bake_in_black_images(tmp_path):
    from translate.inference.export import run

    cfg = OmegaConf.load(ROOT / "conf" / "export.yaml")
    cfg.pop("defaults"), cfg.pop("hydra")
    cfg = OmegaConf.merge(cfg, {"checkpoint": str(tmp_path / "nothing.pt"), "truncation": float("nan")})
    with pytest.raises(ConfigError, match="truncation=nan is out of range: expected a number >= -2 and <= 2"):
        run(cfg)  # before the (missing) checkpoint is even looked at
