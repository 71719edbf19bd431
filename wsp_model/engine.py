"""The training loop: one code path for CPU, one GPU and ``torchrun`` DDP; shared by pre-training
and fine-tuning.

API
---
A *task* says what is trained; the engine says how::

    class MyTask:                                   # any object with these members (duck-typed)
        def build_model(self) -> nn.Module: ...
        def train_dataset(self) -> Dataset: ...     # map-style, __getitem__((index, draw))
        def val_dataset(self) -> Dataset | None: ...# map-style, __getitem__(index)
        def loss(self, model, batch) -> tuple[Tensor, dict[str, Tensor]]: ...
        def validate(self, model, batches) -> dict[str, float]: ...
        collate_fn = None                           # optional; torch's default_collate otherwise

    result = train(MyTask(...), TrainConfig(...), run_dir, meta={"config": ...})

- ``train_dataset()[(index, draw)]``: ``index`` in ``range(len(ds))``; ``draw`` is the sample's
  position in the global data stream, unique per draw. Seed augmentation from it
  (``np.random.default_rng((seed, draw))``): runs are then reproducible and resumable exactly,
  whatever the number of loader workers.
- ``loss(model, batch)``: ``batch`` is the collated batch with every tensor already on the device
  (4-D tensors in channels_last on CUDA); ``model`` is the DDP-wrapped model in training
  (call it, do not reach into ``.module``). Returns the scalar loss to minimise and a dict of
  scalar tensors to log (keep them on the device: the engine syncs only every ``log_every``
  steps). Keys starting with ``n_`` are counts (summed over steps and ranks); the others are
  averaged. ``n_skipped_images`` (samples whose image could not be read) is also watched: when
  *every* sample the run has drawn so far was unreadable, the run stops with
  ``NoReadableImagesError`` at the next log / validation / checkpoint step, before any
  checkpoint is written.
- ``validate(model, batches)``: called on rank 0 only (others wait), with the bare model in eval
  mode under ``torch.no_grad`` and autocast; ``batches`` yields device batches of the validation
  set (at most ``max_val_batches``). Returns plain floats.
- ``train`` returns a ``TrainResult``. ``meta`` is stored in the checkpoint as ``ckpt["meta"]``
  (e.g. the full config, so fine-tuning can rebuild the backbone); it must hold plain values only
  (checkpoints load with ``weights_only=True``, see ``checkpoint``).

The run folder
--------------
``train`` holds ``run_dir/.lock`` while it runs (``run_lock``, the data contract's ``flock``
folder lock; under torchrun only rank 0, the writer, takes it): a second process on the same
folder stops with ``RunLockedError``; a killed holder's lock is gone with it. Before anything is written it checks a resume: the
checkpoint must load safely, and its stored config and data must be this run's (``meta`` equal,
build manifest hash equal when ``meta["build_dir"]`` names a build; the train config equal except
``RESUME_MAY_CHANGE``), else ``ResumeMismatchError`` lists the differences and nothing in the
folder changes. Only then is ``meta["config"]`` written to ``run_dir/config.yaml``.

Data stream: see ``sampler`` (every sample once per epoch across ranks and workers; the position
is saved, so a resume continues the stream exactly, also with another world size or batch size).

Distributed: detected from ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (``torchrun``); backend
nccl on CUDA, gloo on CPU; BatchNorm becomes SyncBatchNorm on CUDA (on CPU, DDP broadcasts rank
0's BN buffers each step instead: PyTorch's SyncBatchNorm has no CPU kernel); the peak learning
rate is ``cfg.lr * global_batch / cfg.reference_batch``. AdamW, linear warm-up + cosine decay,
gradient-norm clipping.

Loader workers start from a forkserver by default (``TrainConfig.loader_start``): a script that
calls ``train`` with workers needs the usual ``if __name__ == "__main__":`` guard, and the
dataset must be picklable. Workers die with their parent (``sampler.die_with_parent``), so a
trainer killed with -9 leaves none behind. On CPU the loop uses ``cfg.cpu_threads`` torch threads
(0: the cores left after loader workers), because OpenMP threads competing for cores are many
times slower.

Outputs in ``run_dir``: ``config.yaml``, ``checkpoint.pt`` (``checkpoint.save_checkpoint``: model,
optimizer, scheduler, step, RNG states of python / numpy / torch per rank, data position, train
config, meta), ``train_log.csv``, ``val_log.csv``, ``tensorboard/`` (the same scalars;
``tensorboard --logdir RUN_DIR``) and ``curves.png`` (``run_log``, ``curves``).

Non-finite guard: a NaN/inf loss or gradient norm stops the run with ``NonFiniteLossError``
naming the first bad step. On CPU every step is checked; on CUDA the first bad step is tracked on
the device and checked at each log / validation / checkpoint step (so no per-step host sync); no
checkpoint is ever written after an unchecked step.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import math
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import DataLoader

from mcpc_builder import atomic
from mcpc_builder.errors import DataError

from .checkpoint import (CheckpointError, load_checkpoint, rng_state, save_checkpoint,
                         set_rng_state)
from .config import TrainConfig, to_dict
from .curves import plot_curves
from .run_lock import RunLock, RunLockedError
from .run_log import TRAIN_LOG, VAL_LOG, CsvLog, RunLog
from .sampler import StreamBatchSampler, die_with_parent

CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "config.yaml"
CURVES = "curves.png"
# Train-config fields a resume may change: how the run is executed, not what it computes.
RESUME_MAY_CHANGE = ("batch_size", "num_workers", "loader_start", "log_every", "val_every",
                     "checkpoint_every", "max_val_batches", "cpu_threads", "progress", "resume",
                     "channels_last")

__all__ = ["train", "TrainResult", "NonFiniteLossError", "NoReadableImagesError",
           "ResumeMismatchError", "RunLockedError", "CheckpointError", "StreamBatchSampler",
           "load_checkpoint", "save_checkpoint", "lr_lambda", "to_device", "unwrap", "CsvLog",
           "plot_curves", "TRAIN_LOG", "VAL_LOG", "CHECKPOINT_NAME", "CURVES"]


class NonFiniteLossError(RuntimeError):
    """The loss or gradient became NaN/inf; ``step`` is the first bad step (0-based)."""

    def __init__(self, step: int, last_checkpoint_step: int | None, run_dir: Path):
        self.step = step
        where = (f"the last good checkpoint is step {last_checkpoint_step} in "
                 f"{run_dir / CHECKPOINT_NAME}" if last_checkpoint_step else "no checkpoint was written")
        super().__init__(f"non-finite loss or gradient at step {step}; training stopped ({where}). "
                         "Lower train.lr, raise warmup_steps or check the data for NaN.")


class NoReadableImagesError(DataError):
    """Every sample drawn so far had an unreadable image: the run trains on nothing."""

    def __init__(self, samples: int, steps: int, run_dir: Path):
        super().__init__(
            run_dir, f"none of the {samples} training samples drawn in {steps} steps had a "
            "readable image (missing, empty or corrupt files); training stopped with no "
            "checkpoint written. Check the dataset root's image folder.")


class ResumeMismatchError(DataError):
    """The run folder's checkpoint was trained with another config or other data."""


# ----------------------------------------------------------------------------- distributed

@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    initialised_here: bool

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistEnv:
    """Read the launcher's environment; start the process group if needed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    initialised_here = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
        initialised_here = True
    return DistEnv(rank, world, local_rank, device, initialised_here)


# ----------------------------------------------------------------------------- helpers

def lr_lambda(cfg: TrainConfig):
    """Multiplier of the peak LR at a step: linear warm-up, then cosine to ``min_lr_ratio``."""
    def factor(step: int) -> float:
        if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        span = max(1, cfg.max_steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move every tensor of a (nested) batch to ``device``; 4-D tensors to channels_last."""
    if isinstance(batch, torch.Tensor):
        out = batch.to(device, non_blocking=True)
        if channels_last and out.ndim == 4:
            out = out.contiguous(memory_format=torch.channels_last)
        return out
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, channels_last) for v in batch)
    return batch


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


# ----------------------------------------------------------------------------- the run folder

def build_manifest_sha256(meta: dict) -> str | None:
    """sha256 of ``meta["build_dir"]/manifest.json`` (the training data's identity), if any."""
    build_dir = meta.get("build_dir")
    manifest = Path(build_dir) / "manifest.json" if build_dir else None
    if manifest is None or not manifest.is_file():
        return None
    return hashlib.sha256(manifest.read_bytes()).hexdigest()


def _differences(stored: Any, current: Any, where: str, ignore: tuple[str, ...] = ()) -> list[str]:
    if isinstance(stored, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(stored) | set(current), key=str):
            if key in ignore:
                continue
            out += _differences(stored.get(key, "<absent>"), current.get(key, "<absent>"),
                                f"{where}.{key}" if where else str(key))
        return out
    if isinstance(stored, (list, tuple)) and isinstance(current, (list, tuple)):
        stored, current = list(stored), list(current)
    return [] if stored == current else [f"{where}: checkpoint {stored!r}, now {current!r}"]


def check_resume(ckpt: dict, ckpt_path: Path, cfg: TrainConfig, meta: dict) -> None:
    """Refuse to continue a checkpoint trained with another config or other data.

    Compares the stored train config (all but ``RESUME_MAY_CHANGE``) and the stored ``meta``
    (the task's full config, data paths, build manifest hash, ...) with this run's.
    """
    diffs = _differences(ckpt.get("train_config", {}), to_dict(cfg), "train", RESUME_MAY_CHANGE)
    stored_meta = ckpt.get("meta", {})
    for key in sorted(set(stored_meta) | set(meta)):
        if key == "config":  # its train section was compared above
            diffs += _differences(stored_meta.get(key, {}), meta.get(key, {}), "config",
                                  ("train",))
        else:
            diffs += _differences(stored_meta.get(key, "<absent>"), meta.get(key, "<absent>"), key)
    if diffs:
        shown = "; ".join(diffs[:6]) + (f"; ... {len(diffs) - 6} more" if len(diffs) > 6 else "")
        raise ResumeMismatchError(
            ckpt_path, "cannot resume: this run folder was trained with another config or "
            f"other data ({shown}). Nothing was changed; use another output folder, or start "
            "over with --fresh (train.resume=false).")


def write_run_config(run_dir: Path, meta: dict) -> None:
    """``meta["config"]`` as ``run_dir/config.yaml`` (atomic)."""
    if "config" in meta:
        text = yaml.safe_dump(meta["config"], sort_keys=False)
        atomic.write_bytes(run_dir / CONFIG_NAME, text.encode("utf-8"))


# ----------------------------------------------------------------------------- the loop's parts

@dataclass
class TrainResult:
    run_dir: Path
    step: int                                    # steps done (== next step to run)
    checkpoint: Path
    train_metrics: dict[str, float] = field(default_factory=dict)   # last log interval
    val_metrics: dict[str, float] = field(default_factory=dict)     # last validation
    samples_per_s: float = float("nan")                             # last log interval, global


@dataclass
class Run:
    """What the steps of one training run share."""

    task: Any
    cfg: TrainConfig
    env: DistEnv
    run_dir: Path
    meta: dict
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    global_batch: int
    peak_lr: float
    start_step: int = 0
    consumed: int = 0                            # stream position of ``start_step``
    last_ckpt_step: int | None = None
    resumed: bool = False

    @property
    def ckpt_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    @property
    def channels_last(self) -> bool:
        return self.env.device.type == "cuda" and self.cfg.channels_last

    def stream_position(self, step_done: int) -> int:
        return self.consumed + (step_done - self.start_step) * self.global_batch


def set_cpu_threads(cfg: TrainConfig, env: DistEnv) -> None:
    if env.device.type != "cuda":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(env.world_size)))
        torch.set_num_threads(cfg.cpu_threads or max(
            1, (os.cpu_count() or 1) // max(local_world, 1) - cfg.num_workers))


def build_run(task: Any, cfg: TrainConfig, env: DistEnv, run_dir: Path, meta: dict) -> Run:
    """Model (same initial weights on every rank), AdamW and the LR schedule."""
    cuda = env.device.type == "cuda"
    seed_everything(cfg.seed)
    model = task.build_model().to(env.device)
    if cuda and cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    global_batch = cfg.batch_size * env.world_size
    peak_lr = cfg.lr * global_batch / cfg.reference_batch
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=peak_lr,
                                  betas=(0.9, 0.999), fused=cuda or None)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    return Run(task, cfg, env, run_dir, meta, model, optimizer, scheduler, global_batch, peak_lr)


def restore_or_seed(run: Run, ckpt: dict | None) -> None:
    """Continue from ``ckpt`` (weights, optimizer, schedule, RNG, stream position), or seed this
    rank's RNG for a fresh run."""
    if ckpt is None:
        seed_everything(run.cfg.seed + 1000 * run.env.rank + 1)
        return
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    run.start_step = run.last_ckpt_step = int(ckpt["step"])
    run.consumed = int(ckpt["data"]["samples_consumed"])
    states = ckpt["rng_per_rank"]
    set_rng_state(states[run.env.rank] if len(states) == run.env.world_size else states[0])
    run.resumed = True


def wrap_distributed(run: Run) -> None:
    if run.env.distributed:
        cuda = run.env.device.type == "cuda"
        if cuda:
            run.model = nn.SyncBatchNorm.convert_sync_batchnorm(run.model)
        run.model = nn.parallel.DistributedDataParallel(
            run.model, device_ids=[run.env.local_rank] if cuda else None)


def make_loaders(run: Run) -> tuple[Any, DataLoader, DataLoader | None]:
    """(train set, its stream loader from the saved position, rank 0's validation loader)."""
    cfg, env, task = run.cfg, run.env, run.task
    cuda = env.device.type == "cuda"
    train_set = task.train_dataset()
    collate = getattr(task, "collate_fn", None)
    sampler = StreamBatchSampler(len(train_set), cfg.batch_size, env.rank, env.world_size,
                                 cfg.seed, start=run.consumed)
    workers = cfg.num_workers > 0
    if workers and cfg.loader_start == "forkserver":
        # The server imports these once; each worker then forks from it in a fraction of a second.
        multiprocessing.set_forkserver_preload(sorted({
            "__main__", "torch", "numpy", "wsp_model.sampler", type(train_set).__module__}))
    worker_args = dict(num_workers=cfg.num_workers, collate_fn=collate, pin_memory=cuda,
                       persistent_workers=workers,
                       multiprocessing_context=cfg.loader_start if workers else None,
                       worker_init_fn=functools.partial(die_with_parent, trainer_pid=os.getpid())
                       if workers else None)
    loader = DataLoader(train_set, batch_sampler=sampler, prefetch_factor=4 if workers else None,
                        generator=torch.Generator().manual_seed(cfg.seed),  # global RNG untouched
                        **worker_args)
    val_set = task.val_dataset()
    vloader = None
    if val_set is not None and env.is_main:
        vloader = DataLoader(val_set, batch_size=cfg.batch_size, shuffle=False,
                             generator=torch.Generator().manual_seed(0), **worker_args)
    return train_set, loader, vloader


class Guards:
    """The checks made where the loop syncs with the host: non-finite loss / gradient (first bad
    step tracked on the device) and runs that never see a readable image."""

    def __init__(self, run: Run):
        self.run = run
        self.first_bad = torch.full((), -1, dtype=torch.long, device=run.env.device)
        self.skipped = torch.zeros((), dtype=torch.float64, device=run.env.device)
        self.watch_images = False

    def record(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor, metrics: dict) -> None:
        finite = torch.isfinite(loss.detach()) & torch.isfinite(grad_norm)
        self.first_bad = torch.where(~finite & (self.first_bad < 0),
                                     torch.full_like(self.first_bad, step), self.first_bad)
        if "n_skipped_images" in metrics:
            self.watch_images = True
            self.skipped = self.skipped + metrics["n_skipped_images"].detach().double()

    def check_finite(self) -> None:
        run = self.run
        bad = int(self.first_bad.item())
        if run.env.distributed:  # every rank stops together (grads are shared, but be explicit)
            flag = torch.tensor([bad if bad >= 0 else 2**62], device=run.env.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            bad = int(flag.item()) if int(flag.item()) < 2**62 else -1
        if bad >= 0:
            raise NonFiniteLossError(bad, run.last_ckpt_step, run.run_dir)

    def check_images(self, steps_done: int) -> None:
        """Stop when every sample since the start of this process had no readable image."""
        if not self.watch_images or steps_done <= 0:
            return
        skipped = self.skipped.clone()
        if self.run.env.distributed:
            dist.all_reduce(skipped)
        drawn = steps_done * self.run.global_batch
        if float(skipped.item()) >= drawn:
            raise NoReadableImagesError(drawn, steps_done, self.run.run_dir)


def forward_backward(run: Run, batch: Any, params: list, autocast) -> tuple:
    """One step's loss, its gradients (clipped) and the task's metrics."""
    with autocast:
        loss, metrics = run.task.loss(run.model, batch)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(
        params, run.cfg.grad_clip if run.cfg.grad_clip > 0 else float("inf"))
    return loss, metrics, grad_norm


class Meter:
    """Sums of the logged scalars over a log interval, throughput and data-wait time."""

    def __init__(self):
        self.t_start = time.perf_counter()
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps, self.data_wait = 0, 0.0
        self.t_interval = time.perf_counter()

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for k, v in values.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.steps += 1

    def pause(self, seconds: float) -> None:
        """Time spent validating / checkpointing does not count against throughput."""
        self.t_interval += seconds

    def means(self, env: DistEnv, global_batch: int) -> tuple[dict[str, float], float, float, float]:
        """(per-key means over steps and ranks, counts summed), samples/s, data share, seconds."""
        keys = sorted(self.sums)
        stacked = torch.stack([self.sums[k] for k in keys])
        if env.distributed:
            dist.all_reduce(stacked)
        values = stacked.cpu().tolist()
        elapsed = time.perf_counter() - self.t_interval
        mean = {k: (v if k.startswith("n_") else v / (self.steps * env.world_size))
                for k, v in zip(keys, values)}
        rate = self.steps * global_batch / max(elapsed, 1e-9)
        return mean, rate, self.data_wait / max(elapsed, 1e-9), elapsed


def log_interval(run: Run, meter: Meter, done: int, end_step: int, n_train: int,
                 log: RunLog | None, result: TrainResult, say) -> None:
    mean, rate, data_frac, _ = meter.means(run.env, run.global_batch)
    result.train_metrics, result.samples_per_s = mean, rate
    if log is not None:
        row = {"step": done, "epoch": f"{run.stream_position(done) / n_train:.3f}",
               "lr": f"{run.scheduler.get_last_lr()[0]:.4g}",
               **{k: f"{v:.6g}" for k, v in mean.items()},
               "samples_per_s": f"{rate:.2f}", "data_frac": f"{data_frac:.3f}",
               "elapsed_s": f"{time.perf_counter() - meter.t_start:.1f}"}
        log.log_train(row)
        say(f"step {done}/{end_step}  loss {mean['loss']:.4f}  "
            + "  ".join(f"{k} {v:.4g}" for k, v in mean.items() if k not in ("loss", "grad_norm"))
            + f"  lr {row['lr']}  {rate:.1f} samples/s (data wait {100 * data_frac:.0f}%)")
    meter.reset()


def run_validation(run: Run, vloader: DataLoader | None, done: int, autocast,
                   log: RunLog | None, result: TrainResult, say) -> None:
    """Rank 0 validates the bare model in eval mode; the others wait."""
    if vloader is not None and run.env.is_main:
        bare = unwrap(run.model)
        bare.eval()
        batches = (to_device(b, run.env.device, run.channels_last)
                   for b in itertools.islice(vloader, run.cfg.max_val_batches or None))
        with torch.no_grad(), autocast:
            metrics = {k: float(v) for k, v in run.task.validate(bare, batches).items()}
        bare.train()
        result.val_metrics = metrics
        log.log_val({"step": done, **{k: f"{v:.6g}" for k, v in metrics.items()}})
        say(f"val step {done}: " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    if run.env.distributed:
        dist.barrier()


def save_state(run: Run, done: int, n_train: int) -> None:
    """Checkpoint after ``done`` steps (rank 0 writes; every rank's RNG state is gathered)."""
    states = [rng_state()]
    if run.env.distributed:
        states = [None] * run.env.world_size
        dist.all_gather_object(states, rng_state())
    if run.env.is_main:
        pos = run.stream_position(done)
        save_checkpoint({
            "model": unwrap(run.model).state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "step": done, "rng_per_rank": states,
            "data": {"samples_consumed": pos, "epoch": pos // n_train, "offset": pos % n_train,
                     "dataset_size": n_train, "seed": run.cfg.seed},
            "world_size": run.env.world_size, "global_batch": run.global_batch,
            "train_config": to_dict(run.cfg), "meta": run.meta,
        }, run.ckpt_path)
    run.last_ckpt_step = done
    if run.env.distributed:
        dist.barrier()


def _open_run_folder(run_dir: Path, cfg: TrainConfig, meta: dict, env: DistEnv) -> dict | None:
    """Rank 0: the checked checkpoint to resume from (None: fresh run), then config.yaml.
    Nothing is written before the checks pass."""
    ckpt_path = run_dir / CHECKPOINT_NAME
    ckpt = load_checkpoint(ckpt_path) if cfg.resume and ckpt_path.exists() else None
    if ckpt is not None:
        check_resume(ckpt, ckpt_path, cfg, meta)
    if env.is_main:
        write_run_config(run_dir, meta)
    return ckpt


# ----------------------------------------------------------------------------- the loop

def train(task: Any, cfg: TrainConfig, run_dir: str | os.PathLike,
          meta: dict | None = None, stop_at_step: int | None = None) -> TrainResult:
    """Train ``task`` for ``cfg.max_steps`` steps (or until ``stop_at_step``), resuming from
    ``run_dir/checkpoint.pt`` when ``cfg.resume`` and it exists. See the module docstring."""
    env = init_distributed()
    run_dir = Path(run_dir)
    meta = dict(meta or {})
    manifest_sha = build_manifest_sha256(meta)
    if manifest_sha:
        meta["build_manifest_sha256"] = manifest_sha
    lock = RunLock(run_dir) if env.is_main else None
    bar = log = it = None
    try:
        # 1. the run folder: one writer; a resume is checked before anything is written
        if lock is not None:
            lock.acquire()
        ckpt = _open_run_folder(run_dir, cfg, meta, env)
        if env.distributed:
            dist.barrier()

        # 2. model, optimizer, schedule; then the checkpoint's state or fresh seeds
        set_cpu_threads(cfg, env)
        run = build_run(task, cfg, env, run_dir, meta)
        restore_or_seed(run, ckpt)
        del ckpt
        wrap_distributed(run)

        # 3. data and logs
        train_set, loader, vloader = make_loaders(run)
        n_train = len(train_set)
        if env.is_main:
            log = RunLog(run_dir, run.start_step if run.resumed else None)
        end_step = cfg.max_steps if stop_at_step is None else min(cfg.max_steps, stop_at_step)
        cuda = env.device.type == "cuda"
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cuda and cfg.amp
                    else contextlib.nullcontext())
        params = [p for p in run.model.parameters() if p.requires_grad]
        result = TrainResult(run_dir, run.start_step, run.ckpt_path)
        guards, meter = Guards(run), Meter()
        if env.is_main and cfg.progress:
            from tqdm import tqdm
            bar = tqdm(total=end_step, initial=run.start_step, desc="train", dynamic_ncols=True,
                       mininterval=1.0)
        say = bar.write if bar is not None else (lambda msg: print(msg, flush=True))
        if env.is_main:
            say(f"training {end_step - run.start_step} steps from step {run.start_step} on "
                f"{env.device} x{env.world_size} (global batch {run.global_batch}, peak lr "
                f"{run.peak_lr:.3g})" + (" [resumed]" if run.resumed else ""))

        # 4. the loop
        run.model.train()
        it = iter(loader)
        for step in range(run.start_step, end_step):
            t0 = time.perf_counter()
            batch = to_device(next(it), env.device, run.channels_last)
            meter.data_wait += time.perf_counter() - t0
            loss, metrics, grad_norm = forward_backward(run, batch, params, autocast)
            guards.record(step, loss, grad_norm, metrics)
            done = step + 1
            log_now = done % cfg.log_every == 0 or done == end_step
            val_now = done == end_step or (cfg.val_every > 0 and done % cfg.val_every == 0)
            ckpt_now = done == end_step or done % cfg.checkpoint_every == 0
            if not cuda or log_now or val_now or ckpt_now:
                guards.check_finite()
            if log_now or val_now or ckpt_now:
                guards.check_images(done - run.start_step)
            run.optimizer.step()
            run.scheduler.step()
            meter.add({"loss": loss, **metrics, "grad_norm": grad_norm})

            if log_now:
                log_interval(run, meter, done, end_step, n_train, log, result, say)
            if bar is not None:
                bar.update(1)
            t_pause = time.perf_counter()
            if val_now:
                run_validation(run, vloader, done, autocast, log, result, say)
            if ckpt_now:
                save_state(run, done, n_train)
                if log is not None:
                    plot_curves(log.train.rows, log.val.rows, run_dir / CURVES)
                    log.flush()
            meter.pause(time.perf_counter() - t_pause)
            result.step = done
        return result
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
        del it
        if lock is not None:
            lock.release()
        if env.initialised_here:
            dist.destroy_process_group()
