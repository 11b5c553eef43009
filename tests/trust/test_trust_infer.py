"""Batch inference the user can trust: no write outside ``output``, no temp-file litter, an unwritable output
stops at once, Ctrl-C says how far it got, and skipped files are reported."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import write_image
from omegaconf import OmegaConf
from PIL import Image
from torch import nn

from translate.core.errors import ConfigError, OutputError
from translate.inference.convert import Summary, _plan, run, translate_files
from translate.inference.inputs import collect_inputs
from translate.loading.reference import reference_key_map
from translate.networks import ResnetGenerator, init_weights

ROOT = Path(__file__).resolve().parents[2]


class Counting(nn.Module):
    """A tiny ResNet generator that counts its calls and raises KeyboardInterrupt on call ``interrupt_at``."""

    stride = 4

    def __init__(self, interrupt_at: int | None = None):
        super().__init__()
        torch.manual_seed(0)
        self.inner = init_weights(ResnetGenerator(n_blocks=1, ngf=4))
        self.calls, self.interrupt_at = 0, interrupt_at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return self.inner(x)


def _images(folder: Path, n: int) -> list[Path]:
    return [write_image(folder / f"{i:02d}.png", (16, 12), seed=i) for i in range(n)]


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


FAST = {"quiet": True, "num_workers": 0, "batch_size": 1}


# ------------------------------------------------------------------------------------ item 9: paths escaping
def test_glob_with_dotdot_after_wildcard_stays_inside_output(tmp_path):
    write_image(tmp_path / "root" / "a" / "x.png", (16, 12), seed=1)
    write_image(tmp_path / "outside" / "y.png", (16, 12), seed=2)
    before = _files(tmp_path)
    out = tmp_path / "out" / "deep"  # out/deep/a/../../outside/y.png would be out/outside/y.png
    pattern = str(tmp_path / "root" / "*" / ".." / ".." / "outside" / "*.png")
    found = collect_inputs(pattern)[0]
    assert all(not rel.is_absolute() and ".." not in rel.parts for _, rel in found)
    summary = translate_files(Counting(), pattern, out, **FAST)
    assert summary.converted == 1 and not summary.failed
    assert (out / "y.png").is_file()
    assert {p for p in _files(tmp_path) - before if not p.is_relative_to(out)} == set()


def test_plan_refuses_a_destination_outside_the_output_folder(tmp_path):
    src = write_image(tmp_path / "in" / "a.png")
    summary = Summary()
    jobs = _plan([(src, Path("..") / "escape.png")], tmp_path / "out", None, False, summary)
    assert jobs == [] and len(summary.failed) == 1
    assert "outside the output folder" in summary.failed[0][1]


# ------------------------------------------------------------------------------------ item 6: stale temp files
def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    _images(tmp_path / "in", 1)
    out = tmp_path / "out"
    stale, foreign = out / "sub" / ".tmp-999999-abcdefgh", out / ".tmp-notours.txt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    foreign.write_text("someone else's")
    summary = translate_files(Counting(), tmp_path / "in", out, **FAST)
    assert summary.converted == 1
    assert not stale.exists() and foreign.exists()


# ------------------------------------------------------------------------------------ item 14a: unwritable output
def test_unwritable_output_fails_before_translating(tmp_path, monkeypatch):
    _images(tmp_path / "in", 2)

    def read_only(path, data):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr("translate.inference.convert.atomic_write_bytes", read_only)
    G = Counting()
    with pytest.raises(ConfigError) as info:
        translate_files(G, tmp_path / "in", tmp_path / "out", **FAST)
    message = str(info.value)
    assert G.calls == 0 and "\n" not in message
    assert str(tmp_path / "out") in message and "read-only" in message


def test_cli_output_below_a_file_exits_2_with_one_line(tmp_path):
    net = ResnetGenerator(n_blocks=6, ngf=8, norm="instance")
    torch.save({v: net.state_dict()[k] for k, v in reference_key_map(net).items()}, tmp_path / "latest_net_G.pth")
    _images(tmp_path / "in", 1)
    (tmp_path / "afile").write_text("not a folder")
    env = {**os.environ, "WANDB_MODE": "disabled"}
    env.pop("HYDRA_FULL_ERROR", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "infer.py"), f"checkpoint={tmp_path / 'latest_net_G.pth'}",
         "generator=resnet_6blocks", "generator.ngf=8", f"input={tmp_path / 'in'}",
         f"output={tmp_path / 'afile' / 'x'}", "quiet=true"],
        check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert str(tmp_path / "afile" / "x") in lines[0]


# ------------------------------------------------------------------------------------ item 14b: Ctrl-C
def test_ctrl_c_keeps_complete_outputs_and_says_how_to_resume(tmp_path, capsys):
    _images(tmp_path / "in", 10)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        translate_files(Counting(interrupt_at=3), tmp_path / "in", out, **FAST)
    err = capsys.readouterr().err
    match = re.search(r"interrupted: converted (\d+) of 10; run the same command again", err)
    assert match, err
    done = int(match[1])
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) == done <= 2
    assert not list(out.rglob(".tmp-*"))
    for path in written:
        with Image.open(path) as im:
            im.load()
    again = translate_files(Counting(), tmp_path / "in", out, **FAST)
    assert again.skipped == done and again.converted == 10 - done and not again.failed


# ------------------------------------------------------------------------------------ a disk that fills
@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "the disk is full"),
                                          (errno.EDQUOT, "the disk quota is exceeded")])
def test_a_full_disk_stops_at_the_first_no_space_error(tmp_path, monkeypatch, code, reason):
    """The third output finds the disk full: nothing more is tried, the two before stay whole, one line."""
    import translate.inference.convert

    _images(tmp_path / "in", 10)
    out, tried = tmp_path / "out", []
    write = translate.inference.convert.atomic_write_bytes

    def filling(path, data):
        if not Path(path).name.startswith(".write-probe"):
            tried.append(Path(path))
            if len(tried) == 3:
                raise OSError(code, os.strerror(code), str(path))
        return write(path, data)

    monkeypatch.setattr(translate.inference.convert, "atomic_write_bytes", filling)
    with pytest.raises(OutputError) as info:
        translate_files(Counting(), tmp_path / "in", out, **FAST)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{tried[2]}: cannot write ({reason})")
    assert len(tried) == 3  # nothing tried after the first no-space error
    assert sorted(_files(out)) == tried[:2] and not list(out.rglob(".tmp-*"))
    for path in tried[:2]:
        with Image.open(path) as im:
            im.load()


# ------------------------------------------------------------------------------------ item 14c: ignored files
def _mixed(folder: Path) -> Path:
    _images(folder, 1)
    Image.new("RGB", (8, 8)).save(folder / "anim.gif")
    (folder / "notes.txt").write_text("hello")
    (folder / "gone.png").symlink_to(folder / "missing.png")
    (folder / ".DS_Store").write_bytes(b"\0")
    return folder


def test_collect_inputs_reports_what_it_ignores(tmp_path):
    folder = _mixed(tmp_path / "in")
    for source in (folder, str(folder / "*")):
        found, _, ignored = collect_inputs(source)
        assert [rel.name for _, rel in found] == ["00.png"]
        assert sorted((Path(p).name, why) for p, why in ignored) == [
            ("anim.gif", "not a supported image"), ("gone.png", "broken link"),
            ("notes.txt", "not a supported image")]


def test_run_prints_ignored_files_without_failing(tmp_path, capsys, monkeypatch):
    folder = _mixed(tmp_path / "in")
    from translate.loading.pipeline import Pipeline
    from translate.models.base import Translation

    loaded = Pipeline(Counting(), Translation("G", "A", "B"))
    monkeypatch.setattr("translate.inference.convert.load", lambda *a, **k: loaded)
    cfg = OmegaConf.create({"checkpoint": "x", "generator": None, "direction": "AtoB", "weights": "auto",
                            "input": str(folder), "output": str(tmp_path / "out"), **FAST})
    summary = run(cfg)
    err = capsys.readouterr().err
    assert summary.exit_code == 0 and summary.converted == 1 and len(summary.ignored) == 3
    assert "ignored 3 (2 not a supported image, 1 broken link)" in str(summary) in err
    assert f"ignored: {folder / 'anim.gif'}: not a supported image" in err
    assert f"ignored: {folder / 'gone.png'}: broken link" in err
    assert ".DS_Store" not in err


# ------------------------------------------------------------------------------------ item 11: infer settings
@pytest.mark.parametrize("setting, message", [
    ("jpg_quality=500", "jpg_quality=500 is out of range: expected an integer >= 1 and <= 100"),
    ("resize=0", "resize=0 is out of range: expected an integer >= 1 or one of auto or null"),
    ("batch_size=0", "batch_size=0 is out of range"),
    ("num_workers=-1", "num_workers=-1 is out of range: expected an integer >= 0"),
    ("device=cuda:x", "device='cuda:x' is not a device"),
])
def test_wrong_infer_settings_exit_2_in_one_line(tmp_path, setting, message):
    net = ResnetGenerator(n_blocks=6, ngf=8, norm="instance")
    torch.save({v: net.state_dict()[k] for k, v in reference_key_map(net).items()}, tmp_path / "latest_net_G.pth")
    _images(tmp_path / "in", 1)
    result = subprocess.run(
        [sys.executable, str(ROOT / "infer.py"), f"checkpoint={tmp_path / 'latest_net_G.pth'}",
         "generator=resnet_6blocks", "generator.ngf=8", f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}",
         "quiet=true", setting],
        check=False, cwd=tmp_path, env={**os.environ, "WANDB_MODE": "disabled"}, capture_output=True, text=True,
        timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}"), result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
