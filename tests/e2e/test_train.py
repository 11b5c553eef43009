"""The training loop end to end on tiny configs: experiments, exact resume, checkpoints, failures, logging."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import fit_killed_at_step
from omegaconf import open_dict

from translate.config.checkpoint import FORMAT_VERSION, load_checkpoint
from translate.config.compose import resume_config
from translate.core.errors import CheckpointError, ConfigError, NonFiniteLossError
from translate.models import BicycleGAN, NoiseGAN
from translate.training.loop import fit

ROOT = Path(__file__).resolve().parents[2]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    return {f"{net}.{k}": v for net, sd in ckpt["networks"].items() for k, v in sd.items()}


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra",
    [
        ["model=pix2pix", "generator=unet_64", "data=aligned"],
        ["model=cyclegan", "generator=resnet_6blocks", "data=unaligned"],
        ["model=cut", "generator=resnet_6blocks", "data=unaligned"],
        ["model=fastcut", "generator=resnet_6blocks", "data=unaligned"],
        # coarse to fine: checkpoint at step 3, the end of the global phase; killed in the enhancer's phase
        ["model=pix2pixhd", "data=aligned", "generator.n_downsample_global=2", "generator.n_blocks_global=1",
         "generator.n_blocks_local=1", "model.global_steps=3", "model.fix_global_steps=2", "model.lambda_vgg=0"],
    ],
    ids=["pix2pix", "cyclegan", "cut", "fastcut", "pix2pixhd"],
)
def test_resume_is_exact(tmp_path, tiny_cfg, aligned_root, unaligned_root, extra):
    """N steps, resume, N more == 2N uninterrupted steps, bit for bit (CPU, fp32, fixed seed)."""
    root = aligned_root if "data=aligned" in extra else unaligned_root
    # Dropout, batch norm, shuffling over epoch boundaries (6 images / batch 2 = 3 steps an epoch), pools.
    common = [*extra, f"data.root={root}", "data.batch_size=2", "data.load_size=72", "data.crop_size=64",
              "trainer.checkpoint_every=3", "trainer.sample_every=100"]
    full = tiny_cfg(*common, "trainer.max_steps=8", run_dir=tmp_path / "full")
    fit(full)

    # The same run killed during step 4 (after the checkpoint of step 3), then resumed.
    crashed = tiny_cfg(*common, "trainer.max_steps=8", run_dir=tmp_path / "split")
    fit_killed_at_step(crashed, 4)
    assert load_checkpoint(tmp_path / "split")["step"] == 3
    metrics = fit(resume_config(str(tmp_path / "split"), []))
    assert metrics["step"] == 8

    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ca = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    cb = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert torch.equal(ca["rng"]["torch"], cb["rng"]["torch"])
    assert ca["optimizers"]["G"]["state"][0]["exp_avg"].equal(cb["optimizers"]["G"]["state"][0]["exp_avg"])


@pytest.mark.slow
def test_checkpoint_describes_itself(tmp_path, tiny_cfg, aligned_root):
    cfg = tiny_cfg("data=aligned", "generator=unet_64", f"data.root={aligned_root}", "trainer.ema.enabled=true",
                   "trainer.keep_checkpoints=2", "trainer.checkpoint_every=1", "trainer.max_steps=4",
                   "data.load_size=64", "data.crop_size=64")
    fit(cfg)
    run = Path(cfg.run_dir)
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)  # loads with weights_only
    assert ckpt["format_version"] == FORMAT_VERSION
    assert ckpt["step"] == 4 and set(ckpt["networks"]) == {"G", "D"} and set(ckpt["ema"]) == {"G"}
    assert {"optimizers", "schedulers", "scalers", "rng", "config", "epoch", "batch_in_epoch"} <= ckpt.keys()
    assert ckpt["config"]["generator"]["_target_"] == "translate.networks.UnetGenerator"
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*.pt")) == ["step_0000003.pt", "step_0000004.pt"]
    assert not list((run / "checkpoints").glob(".tmp-*"))  # atomic writes leave no temporaries
    # The run folder has the resolved config, JSON-lines metrics and sample grids.
    assert (run / "config.yaml").is_file()
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [line for line in lines if "loss/G" in line]
    assert losses[-1]["step"] == 4 and {"loss/G/gan", "loss/G/l1", "loss/D/real", "loss/D/fake", "lr/G"} <= losses[-1].keys()
    assert lines[-1]["step"] == 4 and {"val/l1", "val/psnr", "val/ssim"} <= lines[-1].keys()  # validation at the end
    assert (run / "samples" / "step_0000004.png").is_file()
    # The rebuilt generator from the checkpoint's config alone gives the EMA weights.
    from omegaconf import OmegaConf

    from translate.config.compose import build

    stored = OmegaConf.create(ckpt["config"])
    G = build(stored.generator)(in_channels=3, out_channels=3)
    ema_sd = {k.removeprefix("module."): v for k, v in ckpt["ema"]["G"].items() if k.startswith("module.")}
    G.load_state_dict(ema_sd)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")))
def test_every_experiment_runs_a_few_steps(tmp_path, aligned_root, unaligned_root, experiment):
    from hydra.utils import get_class

    from translate.config.compose import compose as _compose

    composed = _compose([f"experiment={experiment}"])
    family = get_class(composed.model._target_)
    paired = family.paired
    overrides = [f"experiment={experiment}", "debug=fast", "trainer.progress_bar=false", "trainer.max_steps=2"]
    if experiment.startswith("demo"):
        overrides += ["data.num_train=6", "data.num_val=2", "data.load_size=64", "data.crop_size=64"]
    elif family is NoiseGAN:  # one folder of images, at the 64x64 the presets generate
        overrides += [f"data.root={aligned_root / 'train' / 'A'}", "data.load_size=64", "data.crop_size=64",
                      "data.batch_size=2"]
    elif "label_nc" in composed.data:  # a dataset preset's layout, at its classes; narrowed networks
        from helpers import label_dataset

        root = label_dataset(tmp_path / "data", composed.data.layout, size=(128, 64), label_nc=composed.data.label_nc)
        overrides += [f"data.root={root}", "data.load_size=128", "data.crop_size=64", "generator.ngf=4",
                      "discriminator.ndf=8", "model.lambda_vgg=0"]
        overrides += {"spade": ["generator.hidden=8"],
                      "pix2pixhd": ["generator.n_downsample_global=2", "generator.n_blocks_global=1",
                                    "generator.n_blocks_local=1", "model.global_steps=1",
                                    "model.fix_global_steps=0"]}[experiment.split("_", 1)[1]]
    elif composed.data._target_.endswith("CorruptData"):  # restoration: the B photos of a paired set
        overrides += [f"data.root={aligned_root}", "data.train_split=train/B", "data.val_split=val/B",
                      "data.load_size=128", "data.crop_size=128"]
    else:
        overrides += [f"data.root={aligned_root if paired else unaligned_root}", "data.load_size=256",
                      "data.crop_size=256", "data.val_split=val"]
    if family is BicycleGAN:
        overrides.append("data.batch_size=2")  # one pair per branch (debug=fast's batch of 1 is refused)
    cfg = _compose(overrides)
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path / experiment)
    metrics = fit(cfg)
    assert metrics["step"] == 2 and torch.isfinite(torch.tensor(metrics["loss/G"]))


@pytest.mark.slow
def test_bf16_autocast_on_cpu(tiny_cfg, aligned_root):
    metrics = fit(tiny_cfg("data=aligned", "generator=unet_64", f"data.root={aligned_root}", "trainer.precision=bf16",
                           "data.load_size=64", "data.crop_size=64"))
    assert metrics["step"] == 4


def test_crop_size_must_fit_the_generator(tiny_cfg, aligned_root):
    from translate.core.errors import ConfigError

    with pytest.raises(ConfigError, match="data.crop_size=32 is not a multiple of 64"):
        fit(tiny_cfg("data=aligned", "generator=unet_64", f"data.root={aligned_root}"))


def test_crop_size_must_fit_the_discriminator(tiny_cfg, aligned_root):
    from translate.core.errors import ConfigError

    with pytest.raises(ConfigError, match="data.crop_size=32 is too small for the discriminator, which needs at least 96"):
        fit(tiny_cfg("data=aligned", "generator=resnet_6blocks", "discriminator=multiscale", f"data.root={aligned_root}"))


def test_fp16_on_cpu_is_refused(tiny_cfg, aligned_root):
    from translate.core.errors import ConfigError

    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        fit(tiny_cfg("data=aligned", f"data.root={aligned_root}", "trainer.precision=fp16", "trainer.device=cpu"))


@pytest.mark.slow
def test_non_finite_loss_stops_with_a_checkpoint(tiny_cfg, aligned_root, monkeypatch):
    from translate.models import Pix2Pix

    original, calls = Pix2Pix.g_step, []

    def nan_on_third(self, batch, out):
        calls.append(1)
        losses = original(self, batch, out)
        if len(calls) == 3:
            losses["loss/G"] = losses["loss/G"] * float("nan")
        return losses

    monkeypatch.setattr(Pix2Pix, "g_step", nan_on_third)
    cfg = tiny_cfg("data=aligned", "generator=unet_64", f"data.root={aligned_root}", "trainer.max_steps=50",
                   "data.load_size=64", "data.crop_size=64")
    with pytest.raises(NonFiniteLossError, match=r"loss/G is nan at step 3.*last finite state saved"):
        fit(cfg)
    ckpt = load_checkpoint(Path(cfg.run_dir) / "checkpoints" / "last.pt")
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for sd in ckpt["networks"].values() for v in sd.values() if v.is_floating_point())


@pytest.mark.slow
def test_exploding_weights_never_overwrite_a_good_checkpoint(tiny_cfg, aligned_root):
    cfg = tiny_cfg("data=aligned", "generator=unet_64", f"data.root={aligned_root}", "optim.G.lr=1e30",
                   "optim.D.lr=1e30", "trainer.max_steps=50", "data.load_size=64", "data.crop_size=64",
                   "trainer.checkpoint_every=1")
    with pytest.raises(NonFiniteLossError, match="NaN or infinite|no longer finite"):
        fit(cfg)
    last = Path(cfg.run_dir) / "checkpoints" / "last.pt"
    if last.exists():
        ckpt = load_checkpoint(last)
        assert all(torch.isfinite(v).all() for sd in ckpt["networks"].values() for v in sd.values()
                   if v.is_floating_point())


def test_bad_checkpoint_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt: not a readable checkpoint"):
        load_checkpoint(garbage)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a translate training checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="no checkpoints/last.pt"):
        load_checkpoint(tmp_path)


def test_checkpoint_loading_never_runs_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"format_version": 1, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.slow
def test_resume_refuses_group_changes_and_mismatched_models(tmp_path, tiny_cfg, aligned_root):
    cfg = tiny_cfg("data=aligned", "generator=unet_64", f"data.root={aligned_root}", "trainer.max_steps=1",
                   "data.load_size=64", "data.crop_size=64")
    fit(cfg)
    from translate.core.errors import ConfigError

    with pytest.raises(ConfigError, match="config groups cannot change"):
        resume_config(cfg.run_dir, ["generator=resnet_9blocks"])
    other = tiny_cfg("data=aligned", "generator=resnet_6blocks", f"data.root={aligned_root}", "trainer.max_steps=2",
                     run_dir=tmp_path / "other")
    with open_dict(other):
        other.resume = cfg.run_dir
    with pytest.raises(CheckpointError, match="does not fit this configuration"):
        fit(other)


@pytest.mark.slow
def test_wandb_offline_run_writes_its_files(tmp_path, tiny_cfg, aligned_root, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    cfg = tiny_cfg("data=aligned", "generator=unet_64", f"data.root={aligned_root}", "logger=wandb",
                   "trainer.max_steps=2", "data.load_size=64", "data.crop_size=64")
    fit(cfg)
    runs = list((Path(cfg.run_dir) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    # The validation table of input | output | target images (the final step validates).
    tables = list(runs[0].glob("files/media/table/val/images_*.table.json"))
    table = json.loads(tables[0].read_text()) if len(tables) == 1 else {}
    assert table["columns"] == ["index", "input", "output", "target"] and len(table["data"]) == 2  # 2 val pairs
    err = capsys.readouterr().err
    assert "wandb sync" in err


def test_wandb_mode_choice(monkeypatch, tmp_path):
    from translate.training.tracking import choose_wandb_mode

    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert choose_wandb_mode("auto") == "disabled"
    assert choose_wandb_mode("offline") == "offline"
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    assert choose_wandb_mode("auto") == "offline"  # no credentials: never touch the network
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens: offline, quickly
    assert choose_wandb_mode("auto", timeout=0.5) == "offline"


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_bad_data_root_is_one_clear_line(tmp_path):
    proc = _run_cli("data=aligned", "experiment=facades", f"data.root={tmp_path / 'nowhere'}", "logger=none",
                    cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"error: {tmp_path / 'nowhere'}: no 'train' split found" in proc.stderr


@pytest.mark.slow
def test_cli_trains_and_resumes_into_the_same_run(tmp_path, aligned_root):
    common = ["debug=fast", "data=aligned", "generator=unet_64", f"data.root={aligned_root}", "data.load_size=64",
              "data.crop_size=64", "trainer.progress_bar=false"]
    proc = _run_cli(*common, "trainer.max_steps=2", f"run_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = _run_cli(f"resume={tmp_path / 'run'}", "trainer.max_steps=3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Resumed from" in proc.stderr
    assert load_checkpoint(tmp_path / "run")["step"] == 3


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resumes(tmp_path, aligned_root):
    import signal
    import time

    args = ["debug=fast", "data=aligned", "generator=unet_64", f"data.root={aligned_root}", "data.load_size=64",
            "data.crop_size=64", "trainer.progress_bar=false", "trainer.max_steps=100000", "trainer.log_every=1",
            "trainer.checkpoint_every=100000", f"run_dir={tmp_path / 'run'}"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    step = load_checkpoint(tmp_path / "run")["step"]
    assert step >= 3 and f"Stopped at step {step}" in err
    assert err.count("Stopping after this step") == 1  # one Ctrl-C, one line
    assert f"to continue: translate train resume={tmp_path / 'run'}" in err
    proc = _run_cli(f"resume={tmp_path / 'run'}", f"trainer.max_steps={step + 2}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(tmp_path / "run")["step"] == step + 2


def test_the_run_log_keeps_lines_and_a_progress_bars_last_state(tmp_path, capsys):
    from translate.training.tracking import RunLog

    with pytest.raises(ValueError), RunLog(tmp_path):
        print("run folder: here", file=sys.stderr)
        sys.stderr.write("train: 10%\rtrain: 50%\rtrain: 100% 4/4\n")
        print("a line on stdout")
        raise ValueError("bad value\nsecond line")
    assert (tmp_path / "train.log").read_text().splitlines() == [
        "run folder: here", "train: 100% 4/4", "a line on stdout", "error: ValueError: bad value"]
    assert "train: 10%" in capsys.readouterr().err  # the console saw everything
    with RunLog(tmp_path):
        print("resumed")
    assert (tmp_path / "train.log").read_text().splitlines()[-1] == "resumed"  # appended


@pytest.mark.slow
def test_resuming_with_more_steps_stretches_the_schedule(tmp_path, tiny_cfg, aligned_root):
    cfg = tiny_cfg("data=aligned", "generator=unet_64", f"data.root={aligned_root}", "trainer.max_steps=2",
                   "data.load_size=64", "data.crop_size=64", "trainer.log_every=1")
    fit(cfg)
    assert load_checkpoint(cfg.run_dir)["metrics"]["lr/G"] == 0.0  # linear decay reached zero at step 2
    metrics = fit(resume_config(cfg.run_dir, ["trainer.max_steps=8"]))
    # On the new 8-step schedule, step 3 of 8 is still in the constant half: the base rate.
    lines = [json.loads(line) for line in (Path(cfg.run_dir) / "metrics.jsonl").read_text().splitlines()]
    assert [l["lr/G"] for l in lines if l["step"] == 3] == [pytest.approx(2e-4)]
    assert metrics["step"] == 8


def test_images_smaller_than_the_crop_are_skipped(tmp_path):
    from helpers import write_image

    from translate.data import AlignedData

    for i, size in enumerate([(40, 36), (20, 20)]):
        write_image(tmp_path / "d" / "train" / "A" / f"{i}.png", size)
        write_image(tmp_path / "d" / "train" / "B" / f"{i}.png", size)
    ds = AlignedData(root=tmp_path / "d", preprocess="crop", crop_size=32, num_workers=0).train_dataset()
    with pytest.warns(UserWarning, match=r"1.png: size \(20, 20\) is smaller than data.crop_size=32; skipped"):
        item = ds[(1, 0)]
    assert item["A"].shape[-2:] == (32, 32)


def test_training_checks_the_dataset_first(tiny_cfg, aligned_root):
    """The same checks as `translate datasets check`: a val image that is also a training image stops
    the run before any step, with one line; trainer.check_data=off trains anyway."""
    from translate.core.errors import DataError

    leaked = aligned_root / "train" / "A" / "000.png"
    (aligned_root / "val" / "A" / "000.png").write_bytes(leaked.read_bytes())
    overrides = ("data=aligned", "generator=unet_64", f"data.root={aligned_root}", "data.load_size=64",
                 "data.crop_size=64", "trainer.max_steps=1")
    with pytest.raises(DataError, match=r"000.png: the same image is in train and val; .*trainer.check_data=off"):
        fit(tiny_cfg(*overrides))
    assert fit(tiny_cfg(*overrides, "trainer.check_data=off"))["step"] == 1
    with pytest.raises(Exception, match="trainer.check_data='some'"):
        fit(tiny_cfg(*overrides, "trainer.check_data=some"))


def test_validation_on_a_held_out_part_of_train(tmp_path, tiny_cfg, aligned_root, capsys):
    import shutil

    shutil.rmtree(aligned_root / "val")
    overrides = ("data=aligned", "generator=unet_64", f"data.root={aligned_root}", "data.load_size=64",
                 "data.crop_size=64", "trainer.max_steps=2")
    assert "val/ssim" not in fit(tiny_cfg(*overrides))
    assert "No 'val' split: validation metrics are off (data.val_holdout=0.05" in capsys.readouterr().err
    result = fit(tiny_cfg(*overrides, "data.val_holdout=0.34", f"run_dir={tmp_path / 'held'}"))
    assert {"val/l1", "val/psnr", "val/ssim"} <= result.keys() and result["step"] == 2


def test_fixed_images_are_spread_over_the_split():
    from translate.data.fixed import spread as _spread

    assert _spread(4, 10) == [0, 3, 6, 9] and _spread(32, 2) == [0, 1] and _spread(1, 5) == [0] and _spread(3, 0) == []


@pytest.mark.slow
def test_runs_are_found_continued_with_resume_latest_and_failures_leave_nothing(tmp_path, aligned_root):
    """The run folder is named for what runs and printed; resume=latest continues the newest run of that name in
    its own folder; a run that stops on a bad setting, or fails before its first step, leaves no folder."""
    args = ["debug=fast", "logger=none", "trainer.progress_bar=false", "model=pix2pix", "data=aligned",
            f"data.root={aligned_root}", "generator=unet_64", "data.load_size=64", "data.crop_size=64"]
    first = _run_cli(*args, "trainer.max_steps=2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (run,) = (tmp_path / "runs" / "pix2pix_aligned").iterdir()
    assert f"run folder: {run}" in first.stderr and f"done at step 2: run folder {run}" in first.stderr
    assert f"checkpoint: {run / 'checkpoints' / 'last.pt'}" in first.stderr
    again = _run_cli(*args, "trainer.max_steps=3", "resume=latest", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(run)["step"] == 3 and list((tmp_path / "runs" / "pix2pix_aligned").iterdir()) == [run]
    log = (run / "train.log").read_text()  # the run's log: both sessions, what each printed
    assert f"run folder: {run}" in log and "done at step 2" in log and "Resumed from" in log and "done at step 3" in log
    bad = _run_cli(*args, "trainer.max_steps=-3", cwd=tmp_path)
    assert bad.returncode == 2 and list((tmp_path / "runs" / "pix2pix_aligned").iterdir()) == [run]
    failed = _run_cli(*args, "trainer.max_steps=2", f"data.root={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert failed.returncode == 2 and list((tmp_path / "runs" / "pix2pix_aligned").iterdir()) == [run]
    lost = _run_cli(*args, "experiment=facades", "resume=latest", cwd=tmp_path)
    assert lost.returncode == 2 and "resume=latest: no run with a checkpoint in" in lost.stderr


def test_tensorboard_logs_scalars_and_grids_and_a_resume_drops_what_came_after(tiny_cfg, aligned_root, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    common = ("model=pix2pix", "generator=unet_64", "data=aligned", f"data.root={aligned_root}", "data.load_size=72",
              "data.crop_size=64", "logger=tensorboard", "trainer.log_every=1",
              "trainer.sample_every=2", "trainer.val_every=0")
    fit_killed_at_step(tiny_cfg(*common, "trainer.max_steps=4", "trainer.checkpoint_every=2", run_dir=run), 4)
    assert load_checkpoint(run)["step"] == 2  # step 3 was logged, then lost with the crash
    fit(resume_config(str(run), []))  # steps 3 and 4 again
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss/G")] == [1, 2, 3, 4]  # nothing twice
    assert events.Tags()["images"] and events.Images(events.Tags()["images"][0])[0].height > 0
    with pytest.raises(ConfigError, match=r"logger.subdir='\.\./x' must be one folder name"):
        fit(tiny_cfg(*common, "logger.subdir=../x", "trainer.max_steps=1", run_dir=tmp_path / "bad"))
