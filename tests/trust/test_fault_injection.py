"""kill -9 at random moments: training and batch conversion lose at most one checkpoint interval (or the images
in flight), leave no half-written or temporary file, and a re-run finishes exactly where an uninterrupted run
would have."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import write_image
from PIL import Image

from translate.config.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ["debug=fast", "logger=none", "trainer.progress_bar=false", "model=pix2pix", "generator=unet_64",
         "data=aligned", "data.load_size=72", "data.crop_size=64", "data.batch_size=2", "trainer.max_steps=80",
         "trainer.checkpoint_every=1", "trainer.keep_checkpoints=2", "trainer.log_every=1",
         "trainer.sample_every=1000", "trainer.val_every=0", "trainer.num_samples=0"]


def _start(script: str, *args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(ROOT / script), *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _kill_after(proc: subprocess.Popen, seconds: float) -> bool:
    """kill -9 ``proc`` after ``seconds`` unless it ended first; whether it was killed."""
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def _last_logged_step(run: Path) -> int:
    steps = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except ValueError:
            pass  # a line cut off by the kill
    return max(steps, default=0)


def _kill_when(proc: subprocess.Popen, ready: Callable[[], bool], delay: float) -> bool:
    """kill -9 ``proc`` ``delay`` seconds after ``ready()`` first holds (a point in its progress, whatever the
    machine's speed), unless it ended first; whether it was killed."""
    while proc.poll() is None:
        if ready():
            return _kill_after(proc, delay)
        time.sleep(0.05)
    return False


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": v for n, sd in load_checkpoint(run)["networks"].items() for k, v in sd.items()}


@pytest.mark.slow
def test_training_survives_kill_9_at_random_moments(tmp_path, aligned_root):
    # The same process set-up as the killed runs (one thread each), uninterrupted.
    reference = _start("train.py", *TRAIN, f"data.root={aligned_root}", f"run_dir={tmp_path / 'reference'}",
                       cwd=tmp_path)
    assert reference.wait() == 0, reference.stderr.read()[-2000:]

    run, rng, kills = tmp_path / "killed", random.Random(0), 0
    args = [*TRAIN, f"data.root={aligned_root}", f"run_dir={run}"]
    # Four kills at random steps (every step writes checkpoints), each a random fraction of a step after it.
    targets = sorted(rng.sample(range(5, 75), 4))
    for attempt in range(12):
        resume = [f"resume={run}"] if (run / "checkpoints" / "last.pt").exists() else []
        proc = _start("train.py", *args, *resume, cwd=tmp_path)
        logged = lambda: (run / "metrics.jsonl").exists() and _last_logged_step(run) >= targets[kills]  # noqa: E731
        if kills >= len(targets) or not _kill_when(proc, logged, rng.uniform(0.0, 0.3)):
            proc.wait()
            break
        kills += 1
        if (run / "checkpoints" / "last.pt").exists():
            saved = load_checkpoint(run)["step"]  # every last.pt loads, whenever the kill came
            assert _last_logged_step(run) - saved <= 1, "more than one checkpoint interval was lost"
    proc = _start("train.py", *args, f"resume={run}", cwd=tmp_path)
    assert proc.wait() == 0, proc.stderr.read()[-2000:]
    assert kills >= 2, "the run ended before it could be interrupted: raise max_steps"
    assert load_checkpoint(run)["step"] == 80
    assert not list(run.rglob(".tmp-*")), "temporary files were left behind"
    a, b = _weights(tmp_path / "reference"), _weights(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_batch_conversion_survives_kill_9(tmp_path):
    from translate.loading.reference import reference_key_map
    from translate.networks import ResnetGenerator

    net = ResnetGenerator(n_blocks=6, ngf=8, norm="instance")
    torch.save({v: net.state_dict()[k] for k, v in reference_key_map(net).items()}, tmp_path / "latest_net_G.pth")
    for i in range(150):
        write_image(tmp_path / "in" / f"{i:03d}.png", (96, 96), seed=i)
    args = [f"checkpoint={tmp_path / 'latest_net_G.pth'}", "generator=resnet_6blocks", "generator.ngf=8",
            f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}", "quiet=true", "num_workers=0"]
    rng, kills = random.Random(1), 0
    for target in sorted(rng.sample(range(10, 140), 3)):  # kill when this many outputs exist, whatever the speed
        written = lambda: sum(1 for _ in (tmp_path / "out").glob("*.png")) >= target  # noqa: E731
        if _kill_when(_start("infer.py", *args, cwd=tmp_path), written, rng.uniform(0.0, 0.3)):
            kills += 1
            for path in (tmp_path / "out").glob("*.png"):  # whatever was written is whole
                with Image.open(path) as im:
                    im.load()
    proc = _start("infer.py", *args, cwd=tmp_path)
    assert proc.wait() == 0, proc.stderr.read()[-2000:]
    assert kills >= 1, "the conversion ended before it could be interrupted: add images"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in (tmp_path / "in").iterdir())
    assert not list((tmp_path / "out").rglob(".tmp-*"))
