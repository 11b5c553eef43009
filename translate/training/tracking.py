"""Run outputs: the run folder (config, JSON-lines metrics, PNG sample grids, ``train.log``) and an optional W&B or
TensorBoard backend.

Whatever the backend, the run folder gets everything; W&B mirrors it. Nothing here waits on the network:
with no credentials, or no server reachable within a couple of seconds, W&B runs offline.
"""

from __future__ import annotations

import json
import math
import netrc
import os
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
import yaml

from translate.core.atomic import atomic_write_bytes, json_text, make_folder, remove_stale_temp_files, write_failure
from translate.core.errors import ConfigError, first_line
from translate.data.files import sample_grid, save_image, to_uint8

GRID_TILE = 128  # the smallest side of a tile in a saved sample grid: a 64 px demo image is shown at 128


class _Tee:
    """A text stream that also appends each complete line written to it to ``log`` (a progress bar, which redraws
    its line with carriage returns, contributes only the state it had when its line ended)."""

    def __init__(self, stream, log):
        self.stream, self.log, self.pending = stream, log, ""

    def write(self, text: str) -> int:
        self.stream.write(text)
        *lines, self.pending = (self.pending + text).split("\n")
        self.pending = self.pending.rsplit("\r", 1)[-1]
        for line in lines:
            line = line.rsplit("\r", 1)[-1]
            if line.strip() and not self.log.closed:
                self.log.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str):  # isatty, fileno, encoding ... as the console's
        return getattr(self.stream, name)


class RunLog:
    """``with RunLog(run_dir):`` what the run prints on the console, also in ``<run_dir>/train.log`` (appended:
    a resumed run continues its log), and the error that ended it; ``None``: nothing is written (other ranks)."""

    def __init__(self, run_dir: Path | None):
        self.path = None if run_dir is None else Path(run_dir) / "train.log"
        self.file = None

    def __enter__(self) -> RunLog:
        if self.path is not None:
            make_folder(self.path.parent)
            self.file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed in __exit__
            self.saved = sys.stdout, sys.stderr
            sys.stdout, sys.stderr = _Tee(sys.stdout, self.file), _Tee(sys.stderr, self.file)
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self.file is None:
            return
        if isinstance(error, Exception):
            self.file.write(f"error: {type(error).__name__}: {first_line(error)}\n")
        if isinstance(sys.stdout, _Tee) and isinstance(sys.stderr, _Tee):  # unless something replaced them since
            sys.stdout, sys.stderr = self.saved
        self.file.close()


class RunFolder:
    """Writes ``metrics.jsonl`` and ``samples/step_XXXXXXX.png`` under the run folder."""

    def __init__(self, root: str | Path):
        self.root = make_folder(root)
        self.metrics_path = self.root / "metrics.jsonl"

    def remove_stale_temp_files(self) -> int:
        """The temporary files of writes a killed run never finished (checkpoints, samples, config)."""
        return remove_stale_temp_files(self.root, recursive=True)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        try:
            with open(self.metrics_path, "a") as f:
                f.write(json_text({"step": step, **metrics}) + "\n")
        except OSError as e:
            raise write_failure(self.metrics_path, e) from None

    def rewind_metrics(self, step: int) -> None:
        """Keep only whole lines of ``metrics.jsonl`` up to ``step``: a resumed run drops what a crashed run logged
        after its last checkpoint (it is logged again) and a line cut off mid-write."""
        if not self.metrics_path.is_file():
            return
        kept = []
        for line in self.metrics_path.read_text().splitlines(keepends=True):
            try:
                whole = line.endswith("\n") and json.loads(line)["step"] <= step
            except (ValueError, KeyError, TypeError):
                whole = False
            if whole:
                kept.append(line)
        atomic_write_bytes(self.metrics_path, "".join(kept).encode())

    def save_grid(self, columns: list[torch.Tensor], step: int, labels: list[str] | None = None) -> Path:
        """One row per sample, one column per image kind (e.g. input | output | target), named by ``labels``;
        small images are enlarged by a whole factor (each pixel a block) until a tile is ``GRID_TILE`` pixels or
        more."""
        h, w = columns[0].shape[-2:]
        factor = max(1, math.ceil(GRID_TILE / max(1, min(h, w))))
        if factor > 1:
            columns = [F.interpolate(c.float(), scale_factor=factor, mode="nearest") for c in columns]
        grid = sample_grid(columns, labels)
        path = self.root / "samples" / f"step_{step:07d}.png"
        save_image(grid, path)
        return path

    def save_config(self, config: dict[str, Any]) -> None:
        atomic_write_bytes(self.root / "config.yaml", yaml.safe_dump(config, sort_keys=False).encode())


def _hwc_uint8(images: torch.Tensor):
    """[N, C, H, W] in [-1, 1] -> uint8 numpy [N, H, W, 3]."""
    return to_uint8(images).cpu().expand(-1, 3, -1, -1).permute(0, 2, 3, 1).numpy()


class Logger:
    """Backend interface: no-op by default (``logger=none``)."""

    def start(self, *, run_dir: Path, config: dict[str, Any], run_id: str | None, step: int = 0) -> str | None:
        """Begin (or continue, from ``step``) logging the run in ``run_dir``; returns an id to resume with."""
        return None

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def log_images(self, key: str, grid: torch.Tensor, step: int) -> None:
        pass

    def log_table(self, key: str, columns: dict[str, torch.Tensor], step: int) -> None:
        """A table with one row per image and one image column per entry ([N, C, H, W] in [-1, 1])."""

    def finish(self) -> None:
        pass


class NoLogger(Logger):
    """Only the run folder."""


def _wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _reachable(url: str, timeout: float) -> bool:
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def choose_wandb_mode(mode: str = "auto", timeout: float = 2.0) -> str:
    """``online``, ``offline`` or ``disabled``. ``auto`` respects WANDB_MODE, else goes online only with
    credentials and a server that answers within ``timeout`` seconds (wandb.init can block for minutes)."""
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE")
    if env:
        return {"dryrun": "offline", "run": "online"}.get(env, env)
    if not _wandb_has_credentials():
        return "offline"
    return "online" if _reachable(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"), timeout) else "offline"


class WandbLogger(Logger):
    """Weights & Biases: the resolved config as run config, scalars, and sample grids."""

    def __init__(
        self,
        *,
        project: str = "translate",
        entity: str | None = None,
        name: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        mode: str = "auto",
        timeout: float = 2.0,
    ):
        self.project, self.entity, self.name, self.group = project, entity, name, group
        self.tags = list(tags or [])
        self.mode, self.timeout = mode, timeout
        self.run = None

    def start(self, *, run_dir: Path, config: dict[str, Any], run_id: str | None, step: int = 0) -> str | None:
        mode = choose_wandb_mode(self.mode, self.timeout)
        self.resolved_mode = mode
        if mode == "disabled":
            return None
        import wandb

        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            name=self.name or run_dir.name,
            group=self.group,
            tags=self.tags,
            config=config,
            dir=str(run_dir),
            mode=mode,
            id=run_id,
            resume="allow" if run_id else None,
            settings=wandb.Settings(init_timeout=max(30.0, self.timeout), silent=True, console="off"),
        )
        if mode == "offline":
            print(f"W&B is offline: the run is stored in {self.run.dir}", file=sys.stderr)
        return self.run.id

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self.run is not None:
            self.run.log(metrics, step=step)

    def log_images(self, key: str, grid: torch.Tensor, step: int) -> None:
        if self.run is not None:
            import wandb

            image = to_uint8(grid).cpu().permute(1, 2, 0).numpy()
            self.run.log({key: wandb.Image(image)}, step=step)

    def log_table(self, key: str, columns: dict[str, torch.Tensor], step: int) -> None:
        if self.run is not None:
            import wandb

            arrays = {k: _hwc_uint8(v) for k, v in columns.items()}
            n = len(next(iter(arrays.values())))
            rows = [[i, *(wandb.Image(arrays[k][i]) for k in arrays)] for i in range(n)]
            self.run.log({key: wandb.Table(columns=["index", *arrays], data=rows)}, step=step)

    def finish(self) -> None:
        if self.run is not None:
            offline = self.resolved_mode == "offline"
            run_path = Path(self.run.dir).parent
            self.run.finish()
            if offline:
                print(f"W&B offline run saved; upload it with: wandb sync {run_path}", file=sys.stderr)
            self.run = None


class TensorBoardLogger(Logger):
    """TensorBoard event files in ``<run folder>/<subdir>`` (``tensorboard --logdir runs`` shows every run):
    scalars and sample grids. A resumed run drops the events logged after its checkpoint's step."""

    def __init__(self, *, subdir: str = "tensorboard", images: bool = True):
        if not subdir or Path(subdir).name != subdir or subdir in (".", ".."):
            raise ConfigError(f"logger.subdir={subdir!r} must be one folder name inside the run folder")
        self.subdir, self.images, self.writer = subdir, images, None

    def start(self, *, run_dir: Path, config: dict[str, Any], run_id: str | None, step: int = 0) -> str | None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError('logger=tensorboard needs TensorBoard: pip install -e ".[tensorboard]"') from None
        # events after the step the run continues from were not kept in its checkpoint: TensorBoard drops them
        self.writer = SummaryWriter(log_dir=str(run_dir / self.subdir), purge_step=step + 1 if step else None)
        return None

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, step)

    def log_images(self, key: str, grid: torch.Tensor, step: int) -> None:
        if self.writer is not None and self.images:
            self.writer.add_image(key, to_uint8(grid).cpu(), step)

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

