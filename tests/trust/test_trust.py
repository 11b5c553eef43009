"""Trust: a checkpoint never runs code or writes elsewhere, resume works the way people resubmit jobs, and every
fault ends in one clear line with nothing left behind."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from translate.config.checkpoint import load_checkpoint
from translate.config.compose import compose, resume_config
from translate.core.errors import CheckpointError, ConfigError
from translate.loading.generator import load_generator
from translate.training.loop import fit

ROOT = Path(__file__).resolve().parents[2]
TINY = ["debug=fast", "logger=none", "trainer.progress_bar=false", "generator=unet_64", "data.load_size=64",
        "data.crop_size=64", "trainer.num_samples=0", "trainer.val_every=0"]


def _train(root: Path, run_dir: Path, *extra: str) -> Path:
    cfg = compose([*TINY, "data=aligned", f"data.root={root}", "trainer.max_steps=2", *extra])
    with open_dict(cfg):
        cfg.run_dir = str(run_dir)
    fit(cfg)
    return run_dir


def _cli(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


# ------------------------------------------------------------------ 1. a stored config is data
def _hostile_nodes(marker: Path) -> dict[str, dict]:
    """Config nodes that would run code or write ``marker`` if built (targets outside Hydra's own blocklist)."""
    import io
    import pickle

    payload = io.BytesIO()
    pickle.dump(None, payload)
    return {
        "builtins.open": {"_target_": "builtins.open", "file": str(marker), "mode": "w"},
        "pathlib.Path.write_text": {"_target_": "pathlib.Path.write_text", "_args_": [str(marker), "x"]},
        "numpy.save": {"_target_": "numpy.save", "file": str(marker), "arr": [1]},
        "numpy.load": {"_target_": "numpy.load", "file": str(marker), "allow_pickle": True},
        "torch.load": {"_target_": "torch.load", "f": str(marker), "weights_only": False},
        "translate.core.atomic.atomic_write_bytes": {"_target_": "translate.core.atomic.atomic_write_bytes",
                                                "path": str(marker), "data": "x"},
    }


@pytest.mark.slow
@pytest.mark.parametrize("where", ["generator", "model.gan_loss_extra", "optim.G.params"])
def test_a_stored_config_never_builds_foreign_targets(tmp_path, aligned_root, where):
    run = _train(aligned_root, tmp_path / "run")
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    marker = tmp_path / "marker"
    for target, node in _hostile_nodes(marker).items():
        hostile = {**ckpt, "config": copy.deepcopy(ckpt["config"])}
        *parents, key = where.split(".")
        holder = hostile["config"]
        for part in parents:
            holder = holder.setdefault(part, {})
        holder[key] = [node] if key == "params" else node  # a node in a list is built too
        path = tmp_path / f"hostile_{target}.pt"
        torch.save(hostile, path)
        for use in (lambda: load_generator(path), lambda: resume_config(str(path), [])):
            with pytest.raises(CheckpointError, match=rf"has {where}.*_target_='{target}'.*refused"):
                use()
        assert not marker.exists(), target


@pytest.mark.slow
def test_cli_refuses_a_hostile_checkpoint_in_one_line(tmp_path, aligned_root):
    run = _train(aligned_root, tmp_path / "run")
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    marker = tmp_path / "marker"
    ckpt["config"]["generator"] = _hostile_nodes(marker)["builtins.open"]
    torch.save(ckpt, tmp_path / "evil.pt")
    for script, args in (("infer.py", [f"checkpoint={tmp_path / 'evil.pt'}", f"input={aligned_root}/val/A",
                                       f"output={tmp_path / 'out'}"]),
                         ("train.py", [f"resume={tmp_path / 'evil.pt'}"])):
        proc = _cli(script, *args, cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "generator._target_='builtins.open'" in proc.stderr.strip().splitlines()[-1]
    assert not marker.exists()


def test_interpolations_in_a_stored_config_are_refused(tmp_path):
    from translate.config.compose import stored_config

    with pytest.raises(CheckpointError, match="interpolation"):
        stored_config({"generator": {"ngf": "${oc.env:HOME}"}}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="not a mapping"):
        stored_config(["a"], tmp_path / "x.pt")


# ------------------------------------------------------------------ 2. resume writes where it was resumed from
@pytest.mark.slow
def test_a_copied_or_moved_run_resumes_into_its_own_folder(tmp_path, aligned_root):
    original = _train(aligned_root, tmp_path / "original")
    before = (original / "checkpoints" / "last.pt").read_bytes()
    branch = tmp_path / "branch"
    shutil.copytree(original, branch)
    cfg = resume_config(str(branch), ["trainer.max_steps=3"])
    assert cfg.run_dir == str(branch.resolve())
    fit(cfg)
    assert (original / "checkpoints" / "last.pt").read_bytes() == before  # the original is untouched
    assert load_checkpoint(branch)["step"] == 3

    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(str(original), moved)
    fit(resume_config(str(moved / "checkpoints" / "last.pt"), ["trainer.max_steps=3"]))
    assert not original.exists() and load_checkpoint(moved)["step"] == 3
    # An explicit run_dir= still wins.
    fit(resume_config(str(moved), ["trainer.max_steps=4", f"run_dir={tmp_path / 'third'}"]))
    assert load_checkpoint(tmp_path / "third")["step"] == 4


# ------------------------------------------------------------------ 3. resubmitting the same command
@pytest.mark.slow
def test_resubmitting_the_same_command_resumes(tmp_path, aligned_root):
    run = tmp_path / "run"
    common = ["experiment=facades", "trainer.device=cpu", f"data.root={aligned_root}", *TINY]
    first = _cli("train.py", *common, "trainer.max_steps=2", f"run_dir={run}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    again = _cli("train.py", *common, "trainer.max_steps=3", f"resume={run}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert load_checkpoint(run)["step"] == 3
    # A group choice equal to the stored one (logger=none is in TINY via debug=fast) is accepted on its own.
    alone = _cli("train.py", "logger=none", "trainer.max_steps=4", f"resume={run}", cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert load_checkpoint(run)["step"] == 4
    # A real change is refused in one line naming the stored option by its name.
    changed = _cli("train.py", "generator=resnet_6blocks", f"resume={run}", cwd=tmp_path)
    assert changed.returncode == 2 and "Traceback" not in changed.stderr
    last = changed.stderr.strip().splitlines()[-1]
    assert "generator=resnet_6blocks: config groups cannot change when resuming; the run keeps generator=unet_64" in last
    logger = _cli("train.py", "logger=wandb", f"resume={run}", cwd=tmp_path)
    assert logger.returncode == 2 and "the run keeps logger=none" in logger.stderr


@pytest.mark.slow
def test_the_readme_cluster_recipe_resubmits(tmp_path, aligned_root):
    """The documented SLURM script, resubmitted with resume= after a time limit (tiny settings, no torchrun)."""
    readme = (ROOT / "docs" / "guides" / "multi-gpu.md").read_text()
    assert 'RUN=runs/h2z-${RUN_ID:-$SLURM_JOB_ID}' in readme and 'train.py experiment=horse2zebra' in readme
    unaligned = tmp_path / "h2z"
    from helpers import write_image

    for folder in ("trainA", "trainB"):
        for i in range(4):
            write_image(unaligned / folder / f"{i}.png", (64, 64), seed=10 * len(folder) + i + (folder == "trainB"))
    script = ["experiment=horse2zebra", f"data.root={unaligned}", *TINY, "generator=resnet_6blocks"]
    run = tmp_path / "runs" / "h2z-101"
    assert _cli("train.py", *script, "trainer.max_steps=2", f"run_dir={run}", cwd=tmp_path).returncode == 0
    proc = _cli("train.py", *script, "trainer.max_steps=4", f"run_dir={run}", f"resume={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert load_checkpoint(run)["step"] == 4


def test_group_choice_checks_name_the_key(tmp_path, aligned_root):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from translate.config.compose import _check_group_choices

    stored = compose([*TINY, "data=aligned", "data.root=x"])
    choices = OverridesParser.create().parse_overrides(["generator=unet_128"])
    with pytest.raises(ConfigError, match=r"generator=unet_128: .*the run keeps generator=unet_64 \(generator\.num_downs"):
        _check_group_choices(choices, stored, [], None)


# ------------------------------------------------------------------ 6, 7. temp files; full disk, read-only folder
@pytest.mark.slow
def test_resume_removes_only_stale_temp_files(tmp_path, aligned_root):
    run = _train(aligned_root, tmp_path / "run")
    stale = [run / "checkpoints" / ".tmp-999999-abcd1234", run / ".tmp-abcd_123", run / "samples" / ".tmp-999998-zz99zz99"]
    kept = [run / ".tmp-notes.txt", run / "checkpoints" / "tmp-999999-abcd1234"]
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
    fit(resume_config(str(run), ["trainer.max_steps=3"]))
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)


@pytest.mark.slow
def test_a_full_disk_during_a_save_says_so_and_keeps_the_last_checkpoint(tmp_path, aligned_root, monkeypatch):
    import shutil as shutil_module
    from collections import namedtuple

    from translate.core.errors import OutputError

    run = _train(aligned_root, tmp_path / "run", "trainer.checkpoint_every=1")
    good = (run / "checkpoints" / "last.pt").read_bytes()
    real_save, usage = torch.save, namedtuple("usage", "total used free")

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 4160 vs 4054")

    monkeypatch.setattr(torch, "save", disk_full)
    monkeypatch.setattr(shutil_module, "disk_usage", lambda p: usage(10**9, 10**9, 1000))
    with pytest.raises(OutputError, match=r"last\.pt: cannot write \(the disk is full\); the last good checkpoint .* is intact"):
        fit(resume_config(str(run), ["trainer.max_steps=3"]))
    monkeypatch.setattr(torch, "save", real_save)
    assert (run / "checkpoints" / "last.pt").read_bytes() == good
    assert not list((run / "checkpoints").glob(".tmp-*"))


def test_an_unwritable_run_folder_is_one_line(tmp_path, aligned_root):
    (tmp_path / "file").write_text("x")
    proc = _cli("train.py", *TINY, "data=aligned", f"data.root={aligned_root}", f"run_dir={tmp_path / 'file' / 'run'}",
                cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot write (a part of the path is a file, not a folder)" in proc.stderr.strip().splitlines()[-1]


def test_os_errors_are_named(tmp_path):
    import errno

    from translate.core.atomic import write_failure

    assert "read-only" in str(write_failure(tmp_path / "x", OSError(errno.EROFS, "Read-only file system")))
    assert "the disk is full" in str(write_failure(tmp_path / "x", OSError(errno.ENOSPC, "No space left")))


# ------------------------------------------------------------------ 12. malformed checkpoints
@pytest.mark.parametrize("change, message", [
    ({"format_version": "1"}, "format_version is '1', not a whole number"),
    ({"step": "abc"}, "step is str 'abc', expected int"),
    ({"step": -3}, "step is -3, expected a count >= 0"),
    ({"networks": {"G": {"w": "not a tensor"}}}, "networks.G is not a state dict of tensors"),
    ({"config": [1]}, "config is list"),
    ({"replicas": {"rng": 1}}, "replicas is dict"),
    ({"replicas": [{"rng": {"python": [], "numpy": {}}}]}, "replicas[0].rng.torch is missing"),
    ({"replicas": ["x"]}, "replicas[0] is not a process's saved state"),
])
def test_malformed_checkpoints_name_the_field(tmp_path, change, message):
    ckpt = {"format_version": 1, "config": {}, "networks": {"G": {"w": torch.zeros(1)}}, **change}
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"format_version": 1}, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="has no 'config'"):
        load_checkpoint(tmp_path / "bare.pt")


@pytest.mark.slow
def test_resume_needs_the_training_state_and_names_shape_mismatches(tmp_path, aligned_root):
    run = _train(aligned_root, tmp_path / "run")
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    del ckpt["rng"]
    torch.save(ckpt, tmp_path / "no_rng.pt")
    cfg = resume_config(str(tmp_path / "no_rng.pt"), ["trainer.max_steps=3", f"run_dir={tmp_path / 'r1'}"])
    with pytest.raises(CheckpointError, match="no 'rng'"):
        fit(cfg)
    other = compose([*TINY, "data=aligned", f"data.root={aligned_root}", "generator.ngf=16", "trainer.max_steps=3"])
    with open_dict(other):
        other.resume, other.run_dir = str(run), str(tmp_path / "r2")
    with pytest.raises(CheckpointError, match=r"does not fit this configuration \(G\..*weight has shape \[\d+, \d+, 4, 4\] in the "
                                              r"checkpoint and \[\d+, \d+, 4, 4\] in this model\)"):
        fit(other)


# ------------------------------------------------------------------ 13. metrics.jsonl after a crash
@pytest.mark.slow
def test_resume_rewinds_the_metrics_log(tmp_path, aligned_root):
    import json

    run = _train(aligned_root, tmp_path / "run", "trainer.log_every=1", "trainer.checkpoint_every=2",
                 "trainer.max_steps=2")
    log = run / "metrics.jsonl"
    with open(log, "a") as f:  # what a run killed after step 2's checkpoint had logged, the last line cut off
        f.write(json.dumps({"step": 3, "loss/G": 1.0}) + "\n" + '{"step": 4, "loss/G": 1.')
    fit(resume_config(str(run), ["trainer.max_steps=4"]))
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == sorted(steps) and steps.count(3) == 1 and steps.count(4) == 1 and steps[-1] == 4


# ------------------------------------------------------------------ 11. typed settings
@pytest.mark.parametrize("override, message", [
    ("trainer.checkpoint_every=0", "trainer.checkpoint_every=0 is out of range: expected an integer >= 1"),
    ("trainer.log_every=0", "trainer.log_every=0 is out of range"),
    ("trainer.sample_every=0", "trainer.sample_every=0 is out of range"),
    ("trainer.max_steps=abc", "trainer.max_steps='abc' is not allowed: expected an integer >= 1 or null"),
    ("trainer.max_steps=-3", "trainer.max_steps=-3 is out of range"),
    ("generator.ngf=0", "generator.ngf=0 is out of range: expected an integer >= 1"),
    ("data.crop_size=-64", "data.crop_size=-64 is out of range: expected an integer >= 1"),
    ("data.batch_size=0", "data.batch_size=0 is out of range"),
    ("data.input_nc=2", "data.input_nc=2 is not allowed: expected one of 1, 3"),
    ("generator.norm=group", "generator.norm='group' is not allowed: expected one of batch, instance, none, syncbatch"),
    ("trainer.precision=fp8", "trainer.precision='fp8' is not allowed: expected one of fp32, bf16, fp16"),
    ("trainer.ema.decay=1.5", "trainer.ema.decay=1.5 is out of range: expected a number > 0 and < 1"),
    ("discriminator.n_layers=x", "discriminator.n_layers='x' is not allowed"),
    ("trainer.device=cuda:x", "trainer.device='cuda:x' is not a device"),
])
def test_wrong_settings_are_one_line_before_any_work(tmp_path, override, message):
    cfg = compose(["debug=fast", "logger=none", override])
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path / "run")
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        fit(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_wrong_setting_on_the_command_line_exits_2(tmp_path):
    proc = _cli("train.py", "debug=fast", "logger=none", "trainer.max_steps=-3", f"run_dir={tmp_path / 'run'}",
                cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: trainer.max_steps=-3 is out of range: expected an integer >= 1 or null"]
    assert not (tmp_path / "run" / "result.json").exists() or "completed" not in (tmp_path / "run" / "result.json").read_text()
