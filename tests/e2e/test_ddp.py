"""Multi-process training with torchrun on the CPU (gloo): identical weights, one writer, resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import write_image

from translate.config.checkpoint import load_checkpoint
from translate.data import EpochSampler

ROOT = Path(__file__).resolve().parents[2]


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "train.py"), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_sampler_splits_each_epoch_between_processes():
    parts = []
    for r in range(2):
        s = EpochSampler(9, seed=1, rank=r, world_size=2)
        s.set_epoch(3)
        parts.append([i for i, _ in s])
    assert len(parts[0]) == len(parts[1]) == 4 and not set(parts[0]) & set(parts[1])
    whole = EpochSampler(9, seed=1)
    whole.set_epoch(3)
    assert set(parts[0]) | set(parts[1]) <= {i for i, _ in whole}


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(tmp_path):
    for i in range(8):
        write_image(tmp_path / "data" / "train" / "A" / f"{i}.png", (64, 64), seed=i)
        write_image(tmp_path / "data" / "train" / "B" / f"{i}.png", (64, 64), seed=10 + i)
    run = tmp_path / "run"
    common = ["debug=fast", "data=aligned", f"data.root={tmp_path / 'data'}", "data.load_size=64",
              "data.crop_size=64", "generator=unet_64", "data.batch_size=2", "trainer.progress_bar=false",
              "augment=ada", "augment.initial_p=0.5", "scheduler=constant"]
    # Batch norm and dropout: the ranks see different data and noise, yet must keep identical weights
    # (the loop compares a checksum of every process's weights at the end and fails if they differ).
    proc = _torchrun(*common, "trainer.max_steps=4", f"run_dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt"]  # one writer
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # steps 2 and 4, logged once (rank 0), not once per process
    assert len(list((run / "samples").iterdir())) == 1
    assert load_checkpoint(run)["step"] == 4
    # Resume under DDP, then load the checkpoint in a single process.
    proc = _torchrun(f"resume={run}", "trainer.max_steps=6", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("Resumed from") == 1
    ckpt = load_checkpoint(run)
    assert ckpt["step"] == 6 and all(not k.startswith("module.") for k in ckpt["networks"]["G"])
    # Exact: each process resumed its own random streams (dropout, ADA's draws), as a run that never stopped.
    assert len(ckpt["replicas"]) == 2
    proc = _torchrun(*common, "trainer.max_steps=6", f"run_dir={tmp_path / 'straight'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    straight = load_checkpoint(tmp_path / "straight")
    for name, state in straight["networks"].items():
        assert all(torch.equal(t, ckpt["networks"][name][k]) for k, t in state.items()), name
    from translate.loading.generator import load_generator

    G = load_generator(run)
    assert G(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)


@pytest.mark.slow
def test_torchrun_resumes_a_single_process_checkpoint_with_ada_midway_through_its_interval(tmp_path):
    """One process's checkpoint holds one random state and ADA tally: the second process starts fresh streams and
    ADA's count of D steps from it, so both pool at the same step (else they would wait for each other forever)."""
    from omegaconf import open_dict

    from translate.config.compose import compose
    from translate.training.loop import fit

    for i in range(8):
        write_image(tmp_path / "data" / "train" / "A" / f"{i}.png", (64, 64), seed=i)
        write_image(tmp_path / "data" / "train" / "B" / f"{i}.png", (64, 64), seed=10 + i)
    common = ["debug=fast", "data=aligned", f"data.root={tmp_path / 'data'}", "generator=unet_64",
              "augment=ada", "augment.initial_p=0.5", "augment.interval=3", "trainer.progress_bar=false"]
    cfg = compose([*common, "trainer.max_steps=2"])
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path / "run")
    fit(cfg)  # two D steps of ADA's three counted
    proc = _torchrun(f"resume={tmp_path / 'run'}", "trainer.max_steps=5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the others' random streams start afresh" in proc.stderr
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["step"] == 5 and len(ckpt["replicas"]) == 2
    assert not torch.equal(ckpt["replicas"][0]["rng"]["torch"], ckpt["replicas"][1]["rng"]["torch"])


@pytest.mark.slow
def test_torchrun_trains_a_stylegan_with_r1_and_style_mixing(tmp_path):
    """model=gan under DDP: the R1 penalty's double backward, style mixing (random per process) and the
    tracked w_avg buffer; the loop's end-of-run checksum fails the run if the replicas' weights differ."""
    for i in range(8):
        write_image(tmp_path / "data" / "train" / f"{i}.png", (32, 32), seed=i)
    run = tmp_path / "run"
    proc = _torchrun("debug=fast", "model=gan", "data=single", f"data.root={tmp_path / 'data'}", "data.load_size=32",
                     "data.crop_size=32", "generator=stylegan", "discriminator=stylegan", "generator.n_mlp=2",
                     "generator.z_dim=16", "model.r1_gamma=10", "data.batch_size=2", "trainer.max_steps=3",
                     "trainer.val_every=0", "trainer.progress_bar=false", f"run_dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_checkpoint(run)["step"] == 3 and load_checkpoint(run)["model_state"] == {"d_steps": 3}


@pytest.mark.slow
def test_torchrun_trains_bicycle_gan_with_its_encoder_outside_the_latent_regression(tmp_path):
    """model=bicycle under DDP: E is DDP-wrapped, yet the latent regression reads it through detached weights
    (beside the wrapper); AdaIN's tracked mean w is a buffer. The end-of-run checksum fails if replicas differ."""
    for i in range(8):
        write_image(tmp_path / "data" / "train" / "A" / f"{i}.png", (64, 64), seed=i)
        write_image(tmp_path / "data" / "train" / "B" / f"{i}.png", (64, 64), seed=10 + i)
    run = tmp_path / "run"
    proc = _torchrun("debug=fast", "model=bicycle", "generator=bicycle_unet", "data=aligned",
                     f"data.root={tmp_path / 'data'}", "data.load_size=64", "data.crop_size=64",
                     "generator.num_downs=6", "generator.z_inject=adain", "generator.n_mlp=2", "generator.w_dim=16",
                     "model.encoder.nef=8", "model.encoder.n_blocks=3", "model.lambda_ds=1", "data.batch_size=2",
                     "trainer.max_steps=3", "trainer.val_every=0", "trainer.progress_bar=false", f"run_dir={run}",
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(run)
    assert ckpt["step"] == 3 and ckpt["model_state"] == {"g_steps": 3} and set(ckpt["networks"]) == {"G", "E", "D", "D2"}


def test_torchrun_trains_pix2pixhd_through_its_three_phases(tmp_path):
    """model=pix2pixhd under DDP: a step of the global generator alone, one of the enhancer alone, one of both;
    parameters that sit out a phase are found (find_unused_parameters), and the replicas end equal; with the
    instance-wise feature encoder (trained through G, the maps' instances in the batch)."""
    from helpers import label_dataset

    root = label_dataset(tmp_path / "data", "folders", n=4, size=(64, 64))
    run = tmp_path / "run"
    proc = _torchrun("debug=fast", "model=pix2pixhd", "data=labels", f"data.root={root}", "data.label_nc=4",
                     "data.load_size=64", "data.crop_size=64", "generator.ngf=4", "generator.n_downsample_global=2",
                     "generator.n_blocks_global=1", "generator.n_blocks_local=1", "discriminator.ndf=8",
                     "model.lambda_vgg=0", "model.global_steps=1", "model.fix_global_steps=1", "data.batch_size=1",
                     "model.instance_feat=true", "model.feature_encoder.nef=4", "model.feature_encoder.n_downsample=2",
                     "trainer.max_steps=3", "trainer.val_every=0", "trainer.progress_bar=false", f"run_dir={run}",
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_checkpoint(run)["model_state"] == {"g_steps": 3}
