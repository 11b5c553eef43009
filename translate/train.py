"""The training loop: optimizers, schedules, precision, EMA, checkpoints, logging, resume.

``fit(cfg)`` is what ``train.py`` calls; tests call it directly with a composed config.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from translate.checkpoint import BEST, FORMAT_VERSION, LAST, atomic_save, load_checkpoint, rng_state, set_rng_state
from translate.config import build, build_model, to_container
from translate import distributed
from translate.data.datasets import EpochSampler
from translate.errors import CheckpointError, ConfigError, DataError, NonFiniteLossError
from translate.fsutil import atomic_write, json_text
from translate.logging import RunFolder, sample_grid
from translate.models.base import TranslationModel
from translate.runtime import reuse_freed_memory

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda but no CUDA device is available (use trainer.device=auto or cpu)")
    return device


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a request to stop after the current step (so the checkpoint
    holds a whole step); a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nStopping after this step and saving a checkpoint (press Ctrl-C again to abort)...", file=sys.stderr)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _spread(n: int, size: int) -> list[int]:
    """``n`` indices spread evenly over ``range(size)``: files are sorted by name, so the first n could all come
    from one source (one photo, one scene)."""
    k = min(n, size)
    return sorted({round(i * (size - 1) / max(k - 1, 1)) for i in range(k)})


class Trainer:
    """Holds the state of one run. Use through ``fit``."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        t = cfg.trainer
        if t.precision not in PRECISIONS:
            raise ConfigError(f"trainer.precision={t.precision!r} is not one of {', '.join(PRECISIONS)}")
        self.device = pick_device(t.device)
        # Under torchrun: one process per device; rank 0 alone writes logs, samples and checkpoints.
        self.rank, self.world, self.device = distributed.setup(self.device)
        self.main = self.rank == 0
        if t.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("trainer.precision=fp16 needs a CUDA device (on CPU use fp32 or bf16)")
        self.amp_dtype = PRECISIONS[t.precision]
        self.memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = not t.deterministic
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if self.device.type == "cpu" and t.reuse_cpu_memory:
            reuse_freed_memory()
        seed_everything(t.seed)

        self.model: TranslationModel = build_model(cfg)
        self.data = build(cfg.data)
        self._check_sizes()
        self.dataset = self.data.train_dataset()  # first: its errors name a missing folder or split best
        if self.main:
            self._check_data(t.get("check_data", "quick"))
        batch_size = self.data.batch_size
        self.steps_per_epoch = len(self.dataset) // self.world // batch_size
        if self.steps_per_epoch == 0:
            raise DataError(
                f"{self.data.root}: {len(self.dataset)} training images is fewer than data.batch_size={batch_size}"
            )
        if t.max_steps:
            self.total_steps = int(t.max_steps)
        elif t.max_epochs:
            self.total_steps = int(t.max_epochs) * self.steps_per_epoch
        else:
            raise ConfigError("set trainer.max_steps or trainer.max_epochs")
        self.sampler = EpochSampler(len(self.dataset), seed=t.seed, shuffle=True, rank=self.rank,
                                    world_size=self.world)
        workers = int(self.data.num_workers)
        self.loader = DataLoader(
            self.dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=workers,
            drop_last=True,  # equal batches: BatchNorm statistics and step counts stay regular
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
            # Its own generator, so creating loader iterators never advances the global RNG (exact resume).
            generator=torch.Generator(),
        )

        self.model.to(self.device, memory_format=self.memory_format)
        # The plain networks by name: state, EMA and samples use these, never the DDP wrappers.
        self.gen_names = list(self.model.generators())
        self.nets: dict[str, nn.Module] = {**self.model.generators(), **self.model.discriminators()}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        for name, nets in self.model.optimizer_groups().items():
            params = [p for net in nets for p in net.parameters()]
            self.optimizers[name] = build(cfg.optim[name])(params)
            self.schedulers[name] = build(cfg.scheduler)(self.optimizers[name], total_steps=self.total_steps)
            # Loss scaling is for fp16 only; a disabled scaler is a pass-through.
            self.scalers[name] = torch.amp.GradScaler(self.device.type, enabled=t.precision == "fp16")
        self.ema: dict[str, AveragedModel] = {}
        if t.ema.enabled:
            for name in self.gen_names:
                net = self.nets[name]
                self.ema[name] = AveragedModel(
                    net, multi_avg_fn=get_ema_multi_avg_fn(t.ema.decay), use_buffers=True
                )
        if t.compile:
            for net in self.nets.values():
                net.compile()  # in place: state_dict keys stay the same
        self.ddp_discriminators: list[DistributedDataParallel] = []
        if self.world > 1:
            self._wrap_ddp(cfg)

        # Checking each loss before its optimizer step is free on the CPU; elsewhere it syncs, so it is done
        # every log_every steps unless trainer.check_finite=step.
        if t.check_finite not in ("auto", "step"):
            raise ConfigError(f"trainer.check_finite={t.check_finite!r} is not one of auto, step")
        self.check_every_step = self.device.type == "cpu" or t.check_finite == "step"
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.wandb_run_id: str | None = None
        self.last_metrics: dict[str, float] = {}
        self.run_dir = Path(cfg.run_dir)
        self.folder = RunFolder(self.run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.logger = build(cfg.logger)
        if cfg.resume:
            self.load(cfg.resume)
        self.paired = hasattr(self.model, "src")  # pix2pix-style: one generator, src -> tgt
        self.fixed_batch = self._fixed_batch(int(t.num_samples))
        self.val_batches = self._val_batches(int(t.val_images)) if t.val_every else []
        self.monitor, self.monitor_max = cfg.checkpoint.monitor, _monitor_max(cfg.checkpoint)
        self._monitor_missing_said = False
        self.best: dict[str, float] = getattr(self, "best", {})

    def _check_data(self, how: str) -> None:
        """``python -m translate.datasets check`` on the dataset before training: layout problems (A/B name
        mismatches, empty folders, images shared between splits) stop the run; unreadable files are reported and
        skipped by the loader."""
        from translate.data import AlignedData, UnalignedData
        from translate.datasets import check

        if how not in ("quick", "full", "off"):
            raise ConfigError(f"trainer.check_data={how!r} is not one of quick, full, off")
        if how == "off":
            return
        mode = "aligned" if isinstance(self.data, AlignedData) else "unaligned" if isinstance(
            self.data, UnalignedData) else "single"
        report = check(self.data.root, mode, quick=how == "quick")
        for line in report.warnings:
            print(f"warning: {line}", file=sys.stderr)
        if report.unreadable:
            print(f"warning: {len(report.unreadable)} unreadable image(s) will be skipped, e.g. "
                  f"{report.unreadable[0]}", file=sys.stderr)
        problems = report.layout_errors
        if problems:
            more = f" (and {len(problems) - 1} more: python -m translate.datasets check {self.data.root})" if len(
                problems) > 1 else ""
            raise DataError(f"{problems[0]}{more}; fix the dataset or set trainer.check_data=off")

    def _wrap_ddp(self, cfg: DictConfig) -> None:
        """Wrap every network in DistributedDataParallel (gradients averaged across processes)."""
        if self.device.type == "cuda" and "syncbatch" in (cfg.generator.get("norm"), cfg.discriminator.get("norm")):
            for name, net in self.nets.items():
                converted = nn.SyncBatchNorm.convert_sync_batchnorm(net)
                if converted is not net:
                    setattr(self.model, name, converted)
                self.nets[name] = converted
        ids = [self.device.index] if self.device.type == "cuda" else None
        discriminators = set(self.model.discriminators())
        for name, net in self.nets.items():
            wrapped = DistributedDataParallel(net, device_ids=ids)
            setattr(self.model, name, wrapped)  # the model's steps now call the wrapper
            if name in discriminators:
                self.ddp_discriminators.append(wrapped)
        # The same initial weights everywhere (DDP broadcast them), but each process its own dropout noise.
        torch.manual_seed(int(cfg.trainer.seed) + self.rank)

    def _check_sizes(self) -> None:
        """Images must fit the generators' stride (e.g. 256 for unet_256): fail now, not in a conv layer."""
        stride = max(getattr(G, "stride", 1) for G in self.model.generators().values())
        self.data.size_multiple = math.lcm(int(self.data.size_multiple), stride)
        if self.data.preprocess.endswith("crop") and self.data.crop_size % stride:
            raise ConfigError(
                f"data.crop_size={self.data.crop_size} is not a multiple of {stride}, which the generator needs "
                f"(pick a crop size that is, or a shallower generator)"
            )
        need = max(getattr(D, "min_size", 1) for D in self.model.discriminators().values())
        if self.data.preprocess.endswith("crop") and self.data.crop_size < need:
            raise ConfigError(
                f"data.crop_size={self.data.crop_size} is too small for the discriminator, which needs at least "
                f"{need} pixels (use fewer layers or scales: discriminator.n_layers / discriminator.num_D)"
            )

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        nets = self.nets
        return {
            "format_version": FORMAT_VERSION,
            "config": to_container(self.cfg),
            "step": self.step,
            "total_steps": self.total_steps,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "networks": {name: net.state_dict() for name, net in nets.items()},
            "ema": {name: avg.state_dict() for name, avg in self.ema.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "scalers": {name: s.state_dict() for name, s in self.scalers.items()},
            "model_state": self.model.extra_state(),
            "rng": rng_state(),
            "wandb_run_id": self.wandb_run_id,
            "metrics": self.last_metrics,
            "best": self.best,
        }

    def load(self, path: str | Path) -> None:
        # On the CPU: RNG states must stay CPU tensors; load_state_dict copies weights to their device.
        ckpt = load_checkpoint(path, map_location="cpu")
        nets = self.nets
        try:
            if set(ckpt["networks"]) != set(nets):
                raise ValueError(f"it holds networks {sorted(ckpt['networks'])}, this model has {sorted(nets)}")
            for name, net in nets.items():
                net.load_state_dict(ckpt["networks"][name])
            if set(ckpt["ema"]) != set(self.ema):
                raise ValueError("trainer.ema.enabled differs from the checkpoint's run")
            for name, avg in self.ema.items():
                avg.load_state_dict(ckpt["ema"][name])
            for group in ("optimizers", "scalers"):
                for name, obj in getattr(self, group).items():
                    obj.load_state_dict(ckpt[group][name])
            if ckpt.get("total_steps", self.total_steps) == self.total_steps:
                for name, sched in self.schedulers.items():
                    sched.load_state_dict(ckpt["schedulers"][name])
            else:
                self._replay_schedules(ckpt["step"])
                if self.main:
                    print(f"The run's length changed from {ckpt['total_steps']} to {self.total_steps} steps: the "
                          f"learning-rate schedule now follows the new length", file=sys.stderr)
        except (RuntimeError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0]
            raise CheckpointError(f"{path}: does not fit this configuration ({first})") from None
        self.model.load_extra_state(ckpt["model_state"])
        self.step, self.epoch, self.batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        self.wandb_run_id = ckpt.get("wandb_run_id")
        self.last_metrics = dict(ckpt.get("metrics") or {})
        self.best = dict(ckpt.get("best") or {})
        self._resume_rng = ckpt["rng"]
        if self.main:
            print(f"Resumed from {path} at step {self.step}", file=sys.stderr)

    def _replay_schedules(self, steps: int) -> None:
        """Put the freshly built schedules (for the new run length) at ``steps``, from the base rates."""
        import warnings

        for name, sched in self.schedulers.items():
            for group in self.optimizers[name].param_groups:
                group["lr"] = group["initial_lr"]
            fresh = build(self.cfg.scheduler)(self.optimizers[name], total_steps=self.total_steps)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": intended here
                for _ in range(steps):
                    fresh.step()
            self.schedulers[name] = fresh

    def weights_finite(self) -> bool:
        nets = self.nets.values()
        return all(bool(torch.isfinite(t).all()) for net in nets for t in net.state_dict().values()
                   if t.is_floating_point())

    def save(self, *, numbered: bool = False, name: str = LAST) -> Path:
        if not self.main:
            return self.ckpt_dir / name
        if not self.weights_finite():
            raise NonFiniteLossError(f"the weights became NaN or infinite by step {self.step}")
        state = self.state_dict()
        path = atomic_save(state, self.ckpt_dir / name)
        keep = int(self.cfg.trainer.keep_checkpoints)
        if numbered and keep > 0:
            atomic_save(state, self.ckpt_dir / f"step_{self.step:07d}.pt")
            for old in sorted(self.ckpt_dir.glob("step_*.pt"))[:-keep]:
                old.unlink(missing_ok=True)
        return path

    # ----------------------------------------------------------------- steps
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v.to(self.device, non_blocking=True, memory_format=self.memory_format)
            if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()
        }

    def _update(self, name: str, loss: torch.Tensor) -> None:
        if self.check_every_step:
            if not torch.isfinite(loss):
                raise NonFiniteLossError(f"loss/{name} is {loss.item()} at step {self.step + 1}")
        else:
            # On an accelerator, reading the loss would stall the pipeline every step: gather a flag on the
            # device and look at it when metrics are logged.
            self.nonfinite |= ~torch.isfinite(loss.detach())
        opt, scaler = self.optimizers[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One pix2pix/CycleGAN iteration in the reference order: generate, update D, update G."""
        batch = self._to_device(batch)
        with self._autocast():
            out = self.model.generate(batch)
            d_losses = self.model.d_step(batch, out)
        self._update("D", d_losses["loss/D"])
        # In the G step D is frozen: under DDP it must not wait for gradients it will never get.
        with contextlib.ExitStack() as frozen:
            for D in self.ddp_discriminators:
                frozen.enter_context(D.no_sync())
            with self._autocast():
                g_losses = self.model.g_step(batch, out)
            self._update("G", g_losses["loss/G"])
        for scheduler in self.schedulers.values():
            scheduler.step()
        for name, avg in self.ema.items():
            avg.update_parameters(self.nets[name])
        return {k: v.detach() for k, v in {**d_losses, **g_losses}.items()}

    # ----------------------------------------------------------------- outputs
    def _fixed_batch(self, n: int) -> dict[str, Any] | None:
        if n <= 0:
            return None
        dataset = self.data.sample_dataset()
        items = [dataset[(i, i)] for i in _spread(n, len(dataset))]
        # One grid needs one size: with preprocess none/scale_width, keep the images shaped like the first.
        shape = {k: v.shape for k, v in items[0].items() if isinstance(v, torch.Tensor)}
        items = [it for it in items if all(it[k].shape == s for k, s in shape.items())]
        return {k: torch.stack([it[k] for it in items]) for k in shape}

    def _val_batches(self, n: int) -> list[dict[str, Any]]:
        """Fixed validation batches (A and B) from the val split; none without one."""
        if n <= 0:
            return []
        try:
            dataset = self.data.val_dataset()
        except DataError:
            if self.main:
                print(f"No '{self.data.val_split}' split: validation metrics are off (data.val_holdout=0.05 "
                      "validates on 5% of the training images instead)", file=sys.stderr)
            return []
        items = [dataset[(i, i)] for i in _spread(n, len(dataset))]
        batches, size = [], max(1, int(self.data.batch_size))
        for k in range(0, len(items), size):
            group = [it for it in items[k : k + size] if it["A"].shape == items[k]["A"].shape]
            batches.append({key: torch.stack([it[key] for it in group]) for key in ("A", "B")})
        return batches

    def _metric_models(self) -> None:
        """LPIPS (paired) or the FID/KID feature extractor (unpaired), built on the first validation: each is
        skipped, said once, when its weights are not on disk."""
        from translate.metrics import DistributionMetrics, inception_features, lpips_model

        m = self.cfg.get("metrics") or {}
        self._lpips, self._distributions = None, {}
        if self.paired:
            self._lpips = lpips_model(m.get("lpips", "alex"), self.device)
        elif m.get("fid", True):
            features = build(m["features"]) if m.get("features") else inception_features(m.get("inception_weights"))
            if features is not None:
                features = features.to(self.device)
                self._distributions = {d: DistributionMetrics(features, device=self.device) for d in ("AtoB", "BtoA")}

    def validate(self) -> dict[str, float]:
        """Validation metrics of the sample generators on the fixed val batches. Paired: val/l1, val/psnr,
        val/ssim (+ val/lpips); unpaired: val/fid, val/kid and val/BtoA/* when a feature extractor is available.
        The first val images with their outputs also go to the logger as a table."""
        if not self.val_batches:
            return {}
        from translate.metrics import evaluate_paired, evaluate_unpaired

        if not hasattr(self, "_distributions"):
            self._metric_models()
        gens = self.sample_generators()
        if self.paired:
            shown: dict[str, list[torch.Tensor]] = {"input": [], "output": [], "target": []}

            def keep(x: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
                if sum(len(t) for t in shown["input"]) < 8:
                    for key, t in zip(shown, (x, out, y)):
                        shown[key].append(t.cpu())

            result = evaluate_paired(gens["G"], self.val_batches, device=self.device, source=self.model.src,
                                     target=self.model.tgt, lpips_net=self._lpips, autocast=self._autocast,
                                     on_batch=keep)
            self.logger.log_table("val/images", {k: torch.cat(v)[:8] for k, v in shown.items()}, self.step)
            return result
        if not self._distributions:
            return {}
        return evaluate_unpaired(gens, self.val_batches, self._distributions, device=self.device,
                                 autocast=self._autocast)

    def _improved(self, value: float) -> bool:
        if value != value:  # NaN never improves
            return False
        best = self.best.get(self.monitor)
        return best is None or (value > best if self.monitor_max else value < best)

    def sample_generators(self) -> dict[str, nn.Module]:
        """The generators used for samples and export: the EMA copies when enabled."""
        if self.ema:
            return {name: avg.module for name, avg in self.ema.items()}
        return {name: self.nets[name] for name in self.gen_names}

    @torch.no_grad()
    def write_samples(self) -> Path | None:
        if self.fixed_batch is None or not self.main:
            return None
        gens = self.sample_generators()
        modes = {name: g.training for name, g in gens.items()}
        for g in gens.values():
            g.eval()
        try:
            with self._autocast():
                columns = self.model.sample_rows(self._to_device(self.fixed_batch), gens)
        finally:
            for name, g in gens.items():
                g.train(modes[name])
        path = self.folder.save_grid(columns, self.step)
        self.logger.log_images("samples", sample_grid(columns), self.step)
        return path

    # ----------------------------------------------------------------- loop
    def batches(self) -> Iterator[dict[str, Any]]:
        """Endless batches, epoch after epoch, starting where a resumed run stopped."""
        while True:
            self.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * self.data.batch_size)
            for batch in self.loader:
                yield batch

    def fit(self) -> dict[str, float]:
        t = self.cfg.trainer
        if self.main:
            self.folder.save_config(to_container(self.cfg))
            self.wandb_run_id = self.logger.start(
                run_dir=self.run_dir, config=to_container(self.cfg), run_id=self.wandb_run_id
            ) or self.wandb_run_id
        if getattr(self, "_resume_rng", None) is not None:
            set_rng_state(self._resume_rng)  # last, after everything that drew random numbers while building
        sums: dict[str, torch.Tensor] = {}
        count = 0
        tick, tick_step = time.perf_counter(), self.step
        bar = tqdm(total=self.total_steps, initial=self.step, desc="train", dynamic_ncols=True,
                   disable=not t.progress_bar or not self.main, file=sys.stderr)
        stop = StopRequest()
        try:
            with stop:
                if self.step >= self.total_steps:
                    print(f"Already at step {self.step} of {self.total_steps}: nothing to train", file=sys.stderr)
                batches = self.batches()
                while self.step < self.total_steps:
                    losses = self.train_step(next(batches))
                    self.step += 1
                    self.batch_in_epoch += 1
                    if self.batch_in_epoch == self.steps_per_epoch:
                        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                    for k, v in losses.items():
                        sums[k] = sums.get(k, 0) + v
                    count += 1
                    bar.update(1)
                    last = self.step == self.total_steps
                    if self.world > 1:
                        # Every process must stop at the same step, or the others would wait forever.
                        stop.requested, bad = distributed.any_true(stop.requested, self.nonfinite, device=self.device)
                        if bad:
                            raise NonFiniteLossError(f"a loss became NaN or infinite by step {self.step}")
                    if self.step % t.log_every == 0 or last:
                        if bool(self.nonfinite):
                            raise NonFiniteLossError(
                                f"a loss became NaN or infinite between steps {tick_step + 1} and {self.step}"
                            )
                        now = time.perf_counter()
                        metrics = {k: float(distributed.mean(v)) / count for k, v in sums.items()}
                        metrics |= {f"lr/{n}": s.get_last_lr()[0] for n, s in self.schedulers.items()}
                        metrics["perf/it_per_s"] = (self.step - tick_step) / max(now - tick, 1e-9)
                        metrics["epoch"] = self.epoch
                        self.last_metrics = metrics
                        if self.main:
                            self.folder.log_metrics(metrics, self.step)
                            self.logger.log_metrics(metrics, self.step)
                        bar.set_postfix({k.removeprefix("loss/"): f"{metrics[k]:.3f}" for k in ("loss/G", "loss/D")})
                        sums, count, tick, tick_step = {}, 0, now, self.step
                    if self.step % t.sample_every == 0 or last:
                        self.write_samples()
                    if t.val_every and (self.step % t.val_every == 0 or last) and self.main and self.val_batches:
                        val = self.validate()
                        self.folder.log_metrics(val, self.step)
                        self.logger.log_metrics(val, self.step)
                        self.last_metrics |= val
                        if self.monitor in val and self._improved(val[self.monitor]):
                            self.best = {self.monitor: val[self.monitor], "step": self.step}
                            self.save(name=BEST)
                        elif self.monitor not in val and not self._monitor_missing_said:
                            self._monitor_missing_said = True
                            print(f"checkpoint.monitor={self.monitor} is not among the validation metrics "
                                  f"({', '.join(sorted(val)) or 'none'}): best.pt is not kept", file=sys.stderr)
                    if self.step % t.checkpoint_every == 0 or last:
                        self.save(numbered=True)
                    if stop.requested:
                        self.save()
                        distributed.barrier()
                        print(f"Stopped at step {self.step}; checkpoint: {self.ckpt_dir / LAST}", file=sys.stderr)
                        raise KeyboardInterrupt
        except NonFiniteLossError as e:
            # No optimizer step has used a non-finite loss, but a huge finite one can still overflow the
            # weights: save only a state whose weights are all finite, never over a good checkpoint.
            if self.check_every_step and self.weights_finite():
                where = f"last finite state saved to {self.save()}"
            elif not self.check_every_step:
                # Found at a log step: optimizer steps may have run on NaN losses since; keep the last checkpoint.
                where = f"the last checkpoint is {self.ckpt_dir / LAST}"
            elif (self.ckpt_dir / LAST).exists():
                where = f"the weights are no longer finite; the last good checkpoint is {self.ckpt_dir / LAST}"
            else:
                where = "the weights are no longer finite and no checkpoint was written yet"
            raise NonFiniteLossError(f"{e}; training stopped, {where} (try a lower learning rate)") from None
        except KeyboardInterrupt:
            if not stop.requested or not (self.ckpt_dir / LAST).exists():
                print(f"Aborted at step {self.step}; the last checkpoint is {self.ckpt_dir / LAST}", file=sys.stderr)
            raise
        finally:
            bar.close()
            if self.main:
                self.logger.finish()
        if self.world > 1:
            # A cheap end-of-run guard: every process must hold the same weights.
            checksum = torch.stack([p.detach().double().sum() for net in self.nets.values() for p in net.parameters()])
            if not distributed.same_everywhere(checksum):
                raise RuntimeError("the processes' weights diverged: DDP did not keep them in sync")
            distributed.barrier()
        best = {f"best/{k}": v for k, v in self.best.items()}
        return {**self.last_metrics, **best, "step": self.step}


def _monitor_max(checkpoint: DictConfig) -> bool:
    """Whether best.pt keeps the largest value of ``checkpoint.monitor``: ``checkpoint.mode`` auto follows the
    metric (val/ssim, val/psnr: max; val/l1, val/lpips, val/fid, val/kid: min); min/max must agree with it."""
    from translate.metrics import higher_is_better

    monitor, mode = checkpoint.monitor, checkpoint.get("mode", "auto")
    known = higher_is_better(monitor)
    if mode not in ("auto", "min", "max"):
        raise ConfigError(f"checkpoint.mode={mode!r} is not one of auto, min, max")
    if mode == "auto":
        if known is None:
            raise ConfigError(f"checkpoint.monitor={monitor}: not a metric whose direction is known; set "
                              "checkpoint.mode=min or max")
        return known
    if known is not None and known != (mode == "max"):
        raise ConfigError(f"checkpoint.mode={mode} would keep the worst {monitor} ({'higher' if known else 'lower'} "
                          "is better); use checkpoint.mode=auto")
    return mode == "max"


def default_run_dir() -> Path:
    return Path("runs") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def fit(cfg: DictConfig) -> dict[str, float]:
    """Train the model described by ``cfg`` and return the last logged metrics.

    ``cfg.run_dir`` is where everything is written (the Hydra run folder under ``train.py``). With
    ``cfg.resume`` set to a checkpoint or run folder, training continues from it exactly.
    """
    cfg = cfg.copy()
    with open_dict(cfg):
        if not cfg.get("run_dir"):
            if cfg.get("resume"):
                stored = load_checkpoint(cfg.resume)["config"].get("run_dir")
                cfg.run_dir = stored or str(default_run_dir())
            else:
                cfg.run_dir = str(default_run_dir())
        cfg.run_dir = str(Path(cfg.run_dir).resolve())
    OmegaConf.resolve(cfg)
    if not math.isfinite(float(cfg.trainer.ema.decay)) or not 0 < float(cfg.trainer.ema.decay) < 1:
        raise ConfigError(f"trainer.ema.decay={cfg.trainer.ema.decay} must be between 0 and 1")
    result_path = Path(cfg.run_dir) / "result.json"
    main = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 writes result.json
    try:
        metrics = Trainer(cfg).fit()
    except KeyboardInterrupt:
        if main:
            write_result(result_path, "interrupted")
        raise
    except Exception as e:
        if main:
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            write_result(result_path, "failed", error=f"{type(e).__name__}: {first}")
        raise
    finally:
        distributed.teardown()
    if main:
        write_result(result_path, "completed", metrics)
    return metrics


def write_result(path: Path, status: str, metrics: dict[str, float] | None = None, error: str | None = None) -> None:
    """``result.json`` in the run folder: how the run ended and its last metrics (read by sweep summaries)."""
    record = {"status": status, "metrics": metrics or {}, "error": error}  # inf/NaN metrics: null
    atomic_write(path, lambda f: f.write(json_text(record, indent=2).encode()))
