"""The training loop. ``fit(cfg)`` is what ``train.py`` calls; tests call it directly with a composed config.

``Trainer`` holds one run and reads top to bottom: ``__init__`` sets the run up in phases (runtime, model and
data, optimization, EMA/compile/DDP, outputs, resume); ``run`` is the loop (a ``train_step``, then the periodic
work: log, samples, validation, checkpoint); ``state_dict``/``restore`` are the checkpoint's two directions.
Its parts live in their own modules: ``translate.models.base`` (the model contract), ``translate.training.optimization``
(optimizers, schedules, scalers), ``translate.evaluation.validation`` (metrics, best checkpoint), ``translate.config.checkpoint``
(files), ``translate.training.tracking`` (run folder, W&B), ``translate.data.checks``/``fixed`` (pre-flight checks, fixed
images) and ``translate.core.runtime`` (device, precision, seeding).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from translate.config.checkpoint import (
    BEST,
    FORMAT_VERSION,
    LAST,
    TRAINING_STATE,
    Checkpointer,
    check_structure,
    load_checkpoint,
    load_network_state,
    rng_state,
    set_rng_state,
    weights_finite,
)
from translate.config.compose import build, build_model, check_training_config, resumed_run_dir, to_container
from translate.core.atomic import atomic_write_bytes, json_text
from translate.core.errors import CheckpointError, ConfigError, DataError, NonFiniteLossError, OutputError, first_line
from translate.core.runtime import (
    autocast,
    configure_backends,
    eval_mode,
    precision_dtype,
    resolve_device,
    seed_everything,
)
from translate.data.checks import check_dataset
from translate.data.files import sample_grid
from translate.data.fixed import sample_batch, truth_batches, validation_batches
from translate.data.folders import EpochSampler
from translate.data.modules import close_workers, ignore_stop_signals
from translate.evaluation.validation import BestTracker, FirstImages, Validator
from translate.inference.export import write_model_folder
from translate.loading.load import load
from translate.models.base import Phase, TranslationModel
from translate.training import distributed
from translate.training.ema import averaged
from translate.training.optimization import build_optimization
from translate.training.sizes import fit_sizes_to_networks
from translate.training.tracking import RunFolder, RunLog


class Stopped(KeyboardInterrupt):
    """The run stopped on request (SIGINT or SIGTERM) after a whole step, with a checkpoint of it: result.json
    says ``stopped``. ``metrics``: the last logged metrics and the step reached."""

    def __init__(self, metrics: dict[str, float]):
        super().__init__(f"stopped at step {metrics['step']}")
        self.metrics = metrics


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a request to stop after the current step (so the checkpoint holds a
    whole step); a second SIGINT (Ctrl-C again) interrupts at once. More SIGTERMs change nothing: ``timeout``
    signals the process and then its group, and schedulers escalate with SIGKILL themselves. DataLoader workers
    ignore both signals (``ignore_stop_signals``), so a signal to the whole process group is heard once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if not self.requested:
            self.requested = True
            print("\nStopping after this step and saving a checkpoint (press Ctrl-C again to abort)...",
                  file=sys.stderr)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class LossMeter:
    """The step losses summed since the last log, and when that log was. A loss computed on some steps only (a
    lazy regulariser) is averaged over the steps that had it."""

    def __init__(self, step: int):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.since_step, self.since_time = step, time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def averages(self, step: int) -> dict[str, float]:
        """Mean losses (over steps and processes) and steps per second since the last log; then starts over."""
        now = time.perf_counter()
        metrics = {k: float(distributed.mean(v)) / self.counts[k] for k, v in self.sums.items()}
        metrics["perf/it_per_s"] = (step - self.since_step) / max(now - self.since_time, 1e-9)
        self.sums, self.counts, self.since_step, self.since_time = {}, {}, step, now
        return metrics


class Trainer:
    """One training run. Use through ``fit``."""

    def __init__(self, cfg: DictConfig):
        check_training_config(cfg)  # every type and range, before any work
        self.cfg = cfg
        t = cfg.trainer
        # Runtime: device, processes (under torchrun one per device; rank 0 alone writes), precision.
        self.rank, self.world, self.device = distributed.setup(resolve_device(t.device, "trainer.device"))
        self.is_main = self.rank == 0
        self.amp_dtype = precision_dtype(t.precision, self.device, "trainer.precision")
        self.memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
        configure_backends(self.device, deterministic=t.deterministic, reuse_cpu_memory=t.reuse_cpu_memory)
        seed_everything(int(t.seed))

        # Model and data.
        self.model: TranslationModel = build_model(cfg)
        if cfg.get("augment") is not None:  # what the discriminators see (augment=diffaugment|ada)
            self.model.set_augment(build(cfg.augment).to(self.device))
        self.data = build(cfg.data)
        fit_sizes_to_networks(self.model, self.data)
        self.dataset = self.data.train_dataset()  # first: its errors name a missing folder or split best
        if self.is_main:
            check_dataset(self.data, t.get("check_data", "quick"))
        self.steps_per_epoch = len(self.dataset) // self.world // self.data.batch_size
        self.total_steps = self._total_steps()
        self.sampler = EpochSampler(len(self.dataset), seed=t.seed, shuffle=True, rank=self.rank,
                                    world_size=self.world)
        self.loader = self._loader()

        # Networks and their optimization. ``nets`` are the plain networks by name: state, EMA and samples use
        # these; under DDP the model's attributes hold the wrappers.
        self.model.to(self.device, memory_format=self.memory_format)
        self.nets: dict[str, nn.Module] = self.model.networks()
        self.optimization = build_optimization(cfg, self.model, total_steps=self.total_steps, device=self.device)
        self.ema = self._averaged_generators()
        if t.compile:
            for net in self.nets.values():
                net.compile()  # in place: state_dict keys stay the same
        self.ddp_discriminators = self._wrap_ddp() if self.world > 1 else []
        # Checking each loss before its optimizer step is free on the CPU; elsewhere it syncs, so it is done
        # every log_every steps unless trainer.check_finite=step.
        self.check_every_step = self.device.type == "cpu" or t.check_finite == "step"
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)

        # Progress, outputs and validation.
        self.step = self.epoch = self.batch_in_epoch = 0
        self.wandb_run_id: str | None = None
        self.last_metrics: dict[str, float] = {}
        self.run_dir = Path(cfg.run_dir)
        self.folder = RunFolder(self.run_dir)
        if self.is_main:
            self.folder.remove_stale_temp_files()
        self.checkpointer = Checkpointer(self.run_dir / "checkpoints", keep=int(t.keep_checkpoints),
                                         enabled=self.is_main)
        self.logger = build(cfg.logger)
        self.best = BestTracker(cfg.checkpoint.monitor, cfg.checkpoint.get("mode", "auto"))
        self.resume_rng: dict[str, Any] | int | None = None  # applied when the loop starts (a state or a seed)
        if cfg.resume:
            self.restore(load_checkpoint(cfg.resume), source=cfg.resume)
        self.fixed_batch = self._with_fixed_inputs(sample_batch(self.data, int(t.num_samples)), seed=int(t.seed))
        val = validation_batches(self.data, int(t.val_images), say=self.is_main) if t.val_every else []
        self.val_batches = [self._with_fixed_inputs(b, seed=int(t.seed) + 1 + i) for i, b in enumerate(val)]
        self.validator = self._validator() if self.val_batches and self.is_main else None

    # ------------------------------------------------------------------ set-up steps
    def _total_steps(self) -> int:
        t = self.cfg.trainer
        if self.steps_per_epoch == 0:
            raise DataError(f"{self.data.root}: {len(self.dataset)} training images is fewer than "
                            f"data.batch_size={self.data.batch_size}")
        if t.max_steps:
            return int(t.max_steps)
        if t.max_epochs:
            return int(t.max_epochs) * self.steps_per_epoch
        raise ConfigError("set trainer.max_steps or trainer.max_epochs")

    def _loader(self) -> DataLoader:
        workers = int(self.data.num_workers)
        return DataLoader(
            self.dataset,
            batch_size=self.data.batch_size,
            sampler=self.sampler,
            num_workers=workers,
            drop_last=True,  # equal batches: BatchNorm statistics and step counts stay regular
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
            worker_init_fn=ignore_stop_signals,  # a stop signal to the whole group is the main process's to handle
            # Its own generator, so creating loader iterators never advances the global RNG (exact resume).
            generator=torch.Generator(),
        )

    def _averaged_generators(self) -> dict[str, AveragedModel]:
        """An exponential moving average of each generator (``trainer.ema``), or none."""
        ema = self.cfg.trainer.ema
        if not ema.enabled:
            return {}
        rampup = ema.get("rampup")  # absent from configs saved before it existed: their fixed decay
        return {name: averaged(G, ema.decay, rampup) for name, G in self.model.generators().items()}

    def _wrap_ddp(self) -> list[DistributedDataParallel]:
        """Wrap every network in DistributedDataParallel (gradients averaged across processes); returns the
        discriminators' wrappers (their gradient sync is skipped in the G phase)."""
        cfg = self.cfg
        if self.device.type == "cuda" and "syncbatch" in (cfg.generator.get("norm"), cfg.discriminator.get("norm")):
            for name, net in self.nets.items():
                self.nets[name] = nn.SyncBatchNorm.convert_sync_batchnorm(net)
                self.model.replace_network(name, self.nets[name])
        ids = [self.device.index] if self.device.type == "cuda" else None
        unused = self.model.unused_parameters
        wrapped = {name: DistributedDataParallel(net, device_ids=ids, find_unused_parameters=unused)
                   for name, net in self.nets.items()}
        for name, wrapper in wrapped.items():
            self.model.replace_network(name, wrapper)  # the model's steps now call the wrapper
        # The same initial weights everywhere (DDP broadcast them), but each process its own dropout noise.
        torch.manual_seed(int(cfg.trainer.seed) + self.rank)
        return [wrapped[name] for name in self.model.discriminators()]

    def _with_fixed_inputs(self, batch: dict[str, Any] | None, seed: int) -> dict[str, Any] | None:
        return None if batch is None else self.model.with_fixed_inputs(batch, seed)

    def _validator(self) -> Validator:
        # Paired runs rank by L1/PSNR/SSIM/LPIPS: FID/KID of a few dozen validation images would be noise.
        return Validator(self.model.translations, paired=self.model.paired, metrics=self.cfg.get("metrics") or {},
                         device=self.device, amp_dtype=self.amp_dtype,
                         truth_batches=truth_batches(self.data, int(self.cfg.trainer.val_images)))

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict[str, float]:
        """Train from ``self.step`` to ``total_steps``. Returns the last logged metrics, the best validation
        value (``best/<metric>``, ``best/step``) and the step reached."""
        self._start_outputs()
        if isinstance(self.resume_rng, int):  # a process that the checkpoint has no random state for
            seed_everything(self.resume_rng)
        elif self.resume_rng is not None:
            set_rng_state(self.resume_rng)  # last, after everything that drew random numbers while building
        if self.step >= self.total_steps:
            print(f"Already at step {self.step} of {self.total_steps}: nothing to train", file=sys.stderr)
        bar = tqdm(total=self.total_steps, initial=self.step, desc="train", dynamic_ncols=True,
                   disable=not self.cfg.trainer.progress_bar or not self.is_main, file=sys.stderr)
        meter, stop = LossMeter(self.step), StopRequest()
        try:
            with stop:
                batches = self.batches()
                while self.step < self.total_steps:
                    meter.add(self.train_step(next(batches)))
                    self._count_step()
                    bar.update(1)
                    self._periodic_work(meter, bar, stop)
        except NonFiniteLossError as e:
            raise self._nonfinite_stop(e) from None
        except Stopped:
            raise
        except KeyboardInterrupt:
            print(f"Aborted at step {self.step}; the last checkpoint is {self.checkpointer.last}", file=sys.stderr)
            raise
        finally:
            close_workers(self.loader)
            bar.close()
            if self.is_main:
                self.logger.finish()
        self._check_replicas_agree()
        return {**self.last_metrics, **self.best.as_metrics(), "step": self.step}

    def batches(self) -> Iterator[dict[str, Any]]:
        """Endless batches, epoch after epoch, starting where a resumed run stopped."""
        while True:
            self.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * self.data.batch_size)
            yield from self.loader

    def _count_step(self) -> None:
        self.step += 1
        self.batch_in_epoch += 1
        if self.batch_in_epoch == self.steps_per_epoch:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0

    def _periodic_work(self, meter: LossMeter, bar: tqdm, stop: StopRequest) -> None:
        """After a step: agree on stopping (DDP), then log, samples, validation and checkpoints when due."""
        t, last = self.cfg.trainer, self.step == self.total_steps

        def due(every: int) -> bool:
            return self.step % every == 0 or last

        if self.world > 1:
            # Every process must stop at the same step, or the others would wait forever.
            stop.requested, bad = distributed.any_true(stop.requested, self.nonfinite, device=self.device)
            if bad:
                raise NonFiniteLossError(f"a loss became NaN or infinite by step {self.step}")
        if due(t.log_every):
            self.log_losses(meter, bar)
        if due(t.sample_every):
            self.write_samples()
        if t.val_every and due(t.val_every):
            self.validate_and_keep_best()
        if due(t.checkpoint_every):
            self.save(numbered=True, replicas=True)
        if stop.requested:
            self.save(replicas=True)
            distributed.barrier()
            print(f"Stopped at step {self.step}; checkpoint: {self.checkpointer.last}\nto continue: translate train "
                  f"resume={self.run_dir}", file=sys.stderr)
            raise Stopped({**self.last_metrics, "step": self.step})

    # ------------------------------------------------------------------ one step
    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device, non_blocking=True, memory_format=self.memory_format if v.dim() == 4 else
                        torch.preserve_format) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def _update(self, phase: Phase, loss: torch.Tensor) -> None:
        if self.check_every_step:
            if not torch.isfinite(loss):
                raise NonFiniteLossError(f"loss/{phase} is {loss.item()} at step {self.step + 1}")
        else:
            # On an accelerator, reading the loss would stall the pipeline every step: gather a flag on the
            # device and look at it when metrics are logged.
            self.nonfinite |= ~torch.isfinite(loss.detach())
        self.optimization.step(phase, loss)

    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One iteration: generate, then the model's phases in its reference's order (``model.phases``: D then G
        for pix2pix and CUT, G then D for CycleGAN and BicycleGAN), each updated before the next is computed;
        then schedules and EMA."""
        batch = self._to_device(batch)
        with autocast(self.device, self.amp_dtype):
            out = self.model.generate(batch)
        losses: dict[str, torch.Tensor] = {}
        for phase in self.model.phases:
            losses |= self._phase(phase, batch, out)
        self.optimization.advance_schedules()
        for name, avg in self.ema.items():
            avg.update_parameters(self.nets[name])
        if (p := self.model.augment.probability) is not None:
            losses["augment/p"] = torch.tensor(p)
        return {k: v.detach() for k, v in losses.items()}

    def _phase(self, phase: Phase, batch: dict[str, Any], out: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The losses of ``phase`` (``d_step`` or ``g_step``), backpropagated and stepped. In the G phase D is
        frozen: under DDP it must not wait for gradients it will never get."""
        compute = self.model.g_step if phase == "G" else self.model.d_step
        with contextlib.ExitStack() as frozen:
            if phase == "G":
                for D in self.ddp_discriminators:
                    frozen.enter_context(D.no_sync())
            with autocast(self.device, self.amp_dtype):
                losses = compute(batch, out)
            self._update(phase, losses[f"loss/{phase}"])
        return losses

    # ------------------------------------------------------------------ periodic work
    def log_losses(self, meter: LossMeter, bar: tqdm) -> None:
        if bool(self.nonfinite):
            raise NonFiniteLossError(f"a loss became NaN or infinite between steps {meter.since_step + 1} and "
                                     f"{self.step}")
        metrics = meter.averages(self.step) | self.optimization.learning_rates() | {"epoch": self.epoch}
        self.last_metrics = metrics
        if self.is_main:
            self.folder.log_metrics(metrics, self.step)
            self.logger.log_metrics(metrics, self.step)
        bar.set_postfix({k.removeprefix("loss/"): f"{metrics[k]:.3f}" for k in ("loss/G", "loss/D")})

    def sample_generators(self) -> dict[str, nn.Module]:
        """The generators used for samples, validation and export: the EMA copies when enabled."""
        if self.ema:
            return {name: avg.module for name, avg in self.ema.items()}
        return {name: self.nets[name] for name in self.model.generators()}  # never the DDP wrappers

    @torch.no_grad()
    def write_samples(self) -> Path | None:
        if self.fixed_batch is None or not self.is_main:
            return None
        gens = self.sample_generators()
        with eval_mode(*gens.values()), autocast(self.device, self.amp_dtype):
            columns = self.model.sample_columns(self._to_device(self.fixed_batch), gens)
        path = self.folder.save_grid(columns, self.step, self.model.sample_labels(self.fixed_batch))
        self.logger.log_images("samples", sample_grid(columns), self.step)
        return path

    def validate(self) -> dict[str, float]:
        """Validation metrics of the sample generators on the fixed val batches (see ``Validator``); for paired
        models the first val images with their outputs also go to the logger as a table."""
        if self.validator is None or not self.validator.active:
            return {}
        shown = FirstImages(8)
        result = self.validator(self.sample_generators(), self.val_batches, on_batch=shown)
        if self.model.paired:
            self.logger.log_table("val/images", shown.columns(), self.step)
        return result

    def validate_and_keep_best(self) -> None:
        if self.validator is None:
            return
        metrics = self.validate()
        gens = self.sample_generators()
        with eval_mode(*gens.values()):
            self.model.calibrate(self.val_batches, gens, self.device)
        if metrics:
            self.folder.log_metrics(metrics, self.step)
            self.logger.log_metrics(metrics, self.step)
        self.last_metrics |= metrics
        if self.best.improved(metrics, self.step):
            self.save(name=BEST)

    def _nonfinite_stop(self, error: NonFiniteLossError) -> NonFiniteLossError:
        """The error to end the run with, after keeping what can be kept: no optimizer step has used a
        non-finite loss, but a huge finite one can still overflow the weights, so only a state whose weights
        are all finite is saved, never over a good checkpoint."""
        last = self.checkpointer.last
        if self.check_every_step and self._weights_finite():
            where = f"last finite state saved to {self.save()}"
        elif not self.check_every_step:
            # Found at a log step: optimizer steps may have run on NaN losses since; keep the last checkpoint.
            where = f"the last checkpoint is {last}"
        elif last.exists():
            where = f"the weights are no longer finite; the last good checkpoint is {last}"
        else:
            where = "the weights are no longer finite and no checkpoint was written yet"
        return NonFiniteLossError(f"{error}; training stopped, {where} (try a lower learning rate)")

    def _check_replicas_agree(self) -> None:
        """A cheap end-of-run guard under DDP: every process must hold the same weights."""
        if self.world == 1:
            return
        checksum = torch.stack([p.detach().double().sum() for net in self.nets.values() for p in net.parameters()])
        if not distributed.same_everywhere(checksum):
            raise RuntimeError("the processes' weights diverged: DDP did not keep them in sync")
        distributed.barrier()

    def _start_outputs(self) -> None:
        if self.is_main:
            print(f"run folder: {self.run_dir}", file=sys.stderr)
            self.folder.save_config(to_container(self.cfg))
            self.wandb_run_id = self.logger.start(run_dir=self.run_dir, config=to_container(self.cfg),
                                                  run_id=self.wandb_run_id, step=self.step) or self.wandb_run_id

    # ------------------------------------------------------------------ state
    def _weights_finite(self) -> bool:
        return weights_finite({name: net.state_dict() for name, net in self.nets.items()})

    def save(self, *, numbered: bool = False, name: str = LAST, replicas: bool = False) -> Path:
        """Write the training state. ``replicas``: every process is saving (under torchrun), so each one's random
        streams and ADA tally go in too, and a resume with as many processes continues each exactly."""
        state = self.state_dict()
        if replicas and self.world > 1:
            state["replicas"] = distributed.gather({"rng": rng_state(), "augment": self.model.augment.state_dict()})
        return self.checkpointer.save(state, numbered=numbered, name=name)

    def state_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "config": to_container(self.cfg),
            "step": self.step,
            "total_steps": self.total_steps,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "networks": {name: net.state_dict() for name, net in self.nets.items()},
            "ema": {name: avg.state_dict() for name, avg in self.ema.items()},
            **self.optimization.state_dict(),
            "model_state": self.model.extra_state(),
            "augment": self.model.augment.state_dict(),
            "rng": rng_state(),
            "wandb_run_id": self.wandb_run_id,
            "metrics": self.last_metrics,
            "best": self.best.best,
        }

    def restore(self, ckpt: dict[str, Any], *, source: str | Path) -> None:
        """Continue from checkpoint ``ckpt`` (read from ``source``): weights, optimizers, schedules (replayed
        when the run's length changed), model state, counters, metrics; the RNG state when the loop starts."""
        check_structure(ckpt, source, TRAINING_STATE)
        same_length = ckpt.get("total_steps", self.total_steps) == self.total_steps
        try:
            self._load_networks(ckpt)
            self.optimization.load_state_dict(ckpt, step=ckpt["step"], same_length=same_length)
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{source}: does not fit this configuration ({first_line(e)})") from None
        if not same_length and self.is_main:
            print(f"The run's length changed from {ckpt['total_steps']} to {self.total_steps} steps: the "
                  "learning-rate schedule now follows the new length", file=sys.stderr)
        self.model.load_extra_state(ckpt["model_state"])
        self.resume_rng, augment = self._own_state(ckpt)
        if augment:  # ADA's probability where it left off (a run that had none starts afresh)
            try:
                self.model.augment.load_state_dict(augment)
            except RuntimeError as e:
                raise CheckpointError(f"{source}: its augment state does not fit augment= ({first_line(e)})") from None
        self.step, self.epoch, self.batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        self.wandb_run_id = ckpt.get("wandb_run_id")
        self.last_metrics = dict(ckpt.get("metrics") or {})
        self.best.best = dict(ckpt.get("best") or {})
        if self.is_main:
            self.folder.rewind_metrics(self.step)
            print(f"Resumed from {source} at step {self.step}", file=sys.stderr)

    def _own_state(self, ckpt: dict[str, Any]) -> tuple[dict[str, Any] | int, dict[str, Any] | None]:
        """This process's random state (or a seed for fresh streams) and ADA state. Under torchrun, each
        process's own where the checkpoint holds one per process (``replicas``, from as many processes);
        otherwise rank 0 takes the saved state and the others fresh streams and what of the augmentation's
        state another process may load (``Augment.shared_state``)."""
        if self.world == 1:
            return ckpt["rng"], ckpt.get("augment")
        replicas = ckpt.get("replicas") or []
        if len(replicas) == self.world:
            return replicas[self.rank]["rng"], replicas[self.rank].get("augment")
        if self.is_main:
            print(f"The checkpoint holds the random state of {len(replicas) or 1} process(es), not {self.world}: "
                  "the others' random streams start afresh (not an exact resume)", file=sys.stderr)
            return ckpt["rng"], ckpt.get("augment")
        augment = self.model.augment.shared_state(ckpt.get("augment") or {})
        return int(self.cfg.trainer.seed) + self.rank + self.world * (int(ckpt["step"]) + 1), augment

    def _load_networks(self, ckpt: dict[str, Any]) -> None:
        if set(ckpt["networks"]) != set(self.nets):
            raise ValueError(f"it holds networks {sorted(ckpt['networks'])}, this model has {sorted(self.nets)}")
        for name, net in self.nets.items():
            load_network_state(net, ckpt["networks"][name], name)
        if set(ckpt["ema"]) != set(self.ema):
            raise ValueError("trainer.ema.enabled differs from the checkpoint's run")
        for name, avg in self.ema.items():
            load_network_state(avg, ckpt["ema"][name], f"ema.{name}")


# ---------------------------------------------------------------------- fit
def default_run_dir() -> Path:
    return Path("runs") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def prepare_config(cfg: DictConfig) -> DictConfig:
    """A resolved copy of ``cfg`` with an absolute ``run_dir``: the given one; when resuming without one, the
    folder resumed from (never a path stored in the checkpoint); else ``runs/<date_time>``."""
    cfg = cfg.copy()
    with open_dict(cfg):
        if not cfg.get("run_dir"):
            cfg.run_dir = str(resumed_run_dir(cfg.resume) if cfg.get("resume") else default_run_dir())
        cfg.run_dir = str(Path(cfg.run_dir).resolve())
    OmegaConf.resolve(cfg)
    return cfg


def fit(cfg: DictConfig) -> dict[str, float]:
    """Train the model described by ``cfg`` and return the last logged metrics.

    ``cfg.run_dir`` is where everything is written (the Hydra run folder under ``train.py``). With
    ``cfg.resume`` set to a checkpoint or run folder, training continues from it exactly. ``result.json`` in
    the run folder records how the run ended, for sweep summaries: ``completed``; ``stopped`` (on SIGINT or
    SIGTERM, after a whole step and its checkpoint); ``interrupted`` (aborted at once: the last checkpoint is
    older); ``failed`` (with the error).
    """
    cfg = prepare_config(cfg)
    main = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 writes result.json and train.log
    with RunLog(Path(cfg.run_dir) if main else None):
        return _fit(cfg, main)


def _fit(cfg: DictConfig, main: bool) -> dict[str, float]:
    result_path = Path(cfg.run_dir) / "result.json"
    try:
        metrics = Trainer(cfg).run()
    except Stopped as stop:
        if main:
            write_result(result_path, "stopped", stop.metrics)
        raise
    except KeyboardInterrupt:
        if main:
            write_result(result_path, "interrupted")
        raise
    except Exception as e:
        if main:
            with contextlib.suppress(OutputError):  # an unwritable run folder must not hide the first error
                write_result(result_path, "failed", error=f"{type(e).__name__}: {first_line(e)}")
        raise
    finally:
        distributed.teardown()
    if main:
        write_result(result_path, "completed", metrics)
        print(finished(Path(cfg.run_dir), metrics), file=sys.stderr)
        if cfg.trainer.get("export_folder"):
            export_run(Path(cfg.run_dir))
    return metrics


def finished(run_dir: Path, metrics: dict[str, float]) -> str:
    """Where a completed run put its results: the folder, its last sample grid and its checkpoints."""
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    best = run_dir / "checkpoints" / BEST
    lines = [f"done at step {int(metrics.get('step', 0))}: run folder {run_dir}"]
    if grids:
        lines.append(f"  samples: {grids[-1]}")
    lines.append(f"  checkpoint: {run_dir / 'checkpoints' / LAST}" + (f" (best: {best})" if best.is_file() else ""))
    return "\n".join(lines)


def export_run(run_dir: Path) -> Path:
    """``trainer.export_folder``: the finished run's generator (from ``best.pt`` when validation kept one, else
    ``last.pt``; its EMA weights when it kept them) as a model folder ``<run>/model``."""
    best = run_dir / "checkpoints" / BEST
    checkpoint = best if best.is_file() else run_dir / "checkpoints" / LAST
    path = write_model_folder(load(checkpoint), str(checkpoint), run_dir / "model")
    print(f"model folder: {path} (translate.load({str(path)!r}))", file=sys.stderr)
    return path


def write_result(path: Path, status: str, metrics: dict[str, float] | None = None, error: str | None = None) -> None:
    """``result.json`` in the run folder: how the run ended and its last metrics (read by sweep summaries)."""
    record = {"status": status, "metrics": metrics or {}, "error": error}  # inf/NaN metrics: null
    atomic_write_bytes(path, json_text(record, indent=2).encode())
