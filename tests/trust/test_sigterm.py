"""A stop signal sent the way schedulers and terminals send it: to the whole process group (``timeout``, SLURM
and Kubernetes send SIGTERM, a terminal's Ctrl-C sends SIGINT), with DataLoader workers running. The run stops
after the current step, keeps a whole checkpoint, records ``stopped`` in result.json, says so once and exits
with code 130, without a traceback; a second signal arriving during the stop (``timeout`` itself signals the
process and then its group) changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from translate.config.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
# Two workers, tiny networks, a log line every step, no checkpoint before the stop.
TRAIN = ["debug=fast", "logger=none", "trainer.progress_bar=false", "data=aligned", "generator=unet_64",
         "generator.num_downs=5", "data.load_size=36", "data.crop_size=32", "data.batch_size=2",
         "data.num_workers=2", "trainer.max_steps=100000", "trainer.log_every=1", "trainer.checkpoint_every=100000",
         "trainer.sample_every=100000", "trainer.val_every=0", "trainer.num_samples=0"]
STOPPING = "Stopping after this step"


def _start(run: Path, root: Path) -> subprocess.Popen:
    """train.py in a process group of its own (its workers join it), as a scheduler starts a job."""
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *TRAIN, f"data.root={root}", f"run_dir={run}"],
                            cwd=run.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_steps(proc: subprocess.Popen, run: Path, steps: int, timeout: float = 120) -> None:
    metrics, deadline = run / "metrics.jsonl", time.monotonic() + timeout
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= steps):
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the run made no progress: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)


def _signal_group(proc: subprocess.Popen, sig: int, times: int) -> str:
    """Send ``sig`` to the run's process group ``times`` times in a row; its stderr once it has ended."""
    for _ in range(times):
        os.killpg(proc.pid, sig)
    try:
        return proc.communicate(timeout=120)[1]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"the run did not end: {proc.communicate()[1][-2000:]}")


def _live_members(pgid: int) -> list[int]:
    """The running processes of group ``pgid`` (zombies have ended: a worker orphaned by the training process
    waits for a PID 1 that may never reap it)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue  # ended meanwhile
        if int(pgrp) == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _group_ended(pgid: int, timeout: float = 30) -> bool:
    """Whether every process of the group (the workers too) has ended within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while _live_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "times"), [(signal.SIGTERM, 1), (signal.SIGTERM, 2), (signal.SIGINT, 1)],
                         ids=["sigterm", "sigterm-twice", "ctrl-c"])
def test_a_signal_to_the_process_group_stops_with_a_checkpoint(tmp_path, aligned_root, sig, times):
    run = tmp_path / "run"
    proc = _start(run, aligned_root)
    _wait_for_steps(proc, run, 2)
    err = _signal_group(proc, sig, times)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "killed by signal" not in err, err[-2000:]
    assert err.count(STOPPING) == 1, err[-2000:]  # the training process alone heard it, once
    step = load_checkpoint(run)["step"]  # whole and loadable
    assert step >= 2 and f"Stopped at step {step}" in err
    assert json.loads((run / "result.json").read_text())["status"] == "stopped"
    assert not list(run.rglob(".tmp-*")), "a temporary file was left behind"
    assert _group_ended(proc.pid), "a DataLoader worker outlived the run"


def test_workers_that_ignore_stop_signals_do_not_hold_up_the_exit():
    """At exit, multiprocessing terminates (SIGTERM) and joins the workers still running: ignoring SIGTERM, they
    would keep the process waiting for ever, unless closed first (the loop closes its loader when it ends)."""
    script = (
        "from torch.utils.data import DataLoader\n"
        "from translate.data.modules import close_workers, ignore_stop_signals\n"
        "loader = DataLoader(list(range(8)), batch_size=2, num_workers=2, persistent_workers=True,\n"
        "                    worker_init_fn=ignore_stop_signals)\n"
        "batches = iter(loader)\n"
        "next(batches)\n"
        "close_workers(loader)  # the loader and its iterator are still referenced at exit\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
