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
  averaged.
- ``validate(model, batches)``: called on rank 0 only (others wait), with the bare model in eval
  mode under ``torch.no_grad`` and autocast; ``batches`` yields device batches of the validation
  set (at most ``max_val_batches``). Returns plain floats.
- ``train`` returns a ``TrainResult``. ``meta`` is stored in the checkpoint as ``ckpt["meta"]``
  (e.g. the full config, so fine-tuning can rebuild the backbone).

Data stream (how samples are divided, without overlap or loss)
--------------------------------------------------------------
The global stream is the concatenation of seeded permutations of ``range(N)``, one per epoch
(``np.random.default_rng((seed, epoch))``). Global step ``s`` consumes stream positions
``[p0 + (s - s0) * B * W, ... + B * W)``: rank ``r`` takes the ``B`` consecutive positions
starting at ``... + r * B``. Each rank's DataLoader hands every batch to exactly one worker. So
within an epoch every sample is drawn exactly once across all ranks and workers. The data
position (``samples_consumed`` = epoch * N + offset) is saved in the checkpoint; resuming
continues the stream at that position, also with another world size or batch size.

Distributed: detected from ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (``torchrun``); backend
nccl on CUDA, gloo on CPU; BatchNorm becomes SyncBatchNorm on CUDA (on CPU, DDP broadcasts rank
0's BN buffers each step instead: PyTorch's SyncBatchNorm has no CPU kernel); the peak learning
rate is ``cfg.lr * global_batch / cfg.reference_batch``. AdamW, linear warm-up + cosine decay,
gradient-norm clipping.

Loader workers start from a forkserver by default (``TrainConfig.loader_start``): a script that
calls ``train`` with workers needs the usual ``if __name__ == "__main__":`` guard, and the
dataset must be picklable. On CPU the loop uses ``cfg.cpu_threads`` torch threads (0: the cores
left after loader workers), because OpenMP threads competing for cores are many times slower.

Outputs in ``run_dir``: ``checkpoint.pt`` (written to a temp name then ``os.replace``d: model,
optimizer, scheduler, step, RNG states of python / numpy / torch per rank, data position,
config, meta), ``train_log.csv``, ``val_log.csv``, ``curves.png``.

Non-finite guard: a NaN/inf loss or gradient norm stops the run with ``NonFiniteLossError``
naming the first bad step. On CPU every step is checked; on CUDA the first bad step is tracked on
the device and checked at each log / validation / checkpoint step (so no per-step host sync); no
checkpoint is ever written after an unchecked step.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import math
import multiprocessing
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from mcpc_builder import atomic

from .config import TrainConfig, to_dict

CHECKPOINT_NAME = "checkpoint.pt"
TRAIN_LOG = "train_log.csv"
VAL_LOG = "val_log.csv"
CURVES = "curves.png"


class NonFiniteLossError(RuntimeError):
    """The loss or gradient became NaN/inf; ``step`` is the first bad step (0-based)."""

    def __init__(self, step: int, last_checkpoint_step: int | None, run_dir: Path):
        self.step = step
        where = (f"the last good checkpoint is step {last_checkpoint_step} in "
                 f"{run_dir / CHECKPOINT_NAME}" if last_checkpoint_step else "no checkpoint was written")
        super().__init__(f"non-finite loss or gradient at step {step}; training stopped ({where}). "
                         "Lower train.lr, raise warmup_steps or check the data for NaN.")


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


# ----------------------------------------------------------------------------- data stream

class StreamBatchSampler:
    """Infinite batches of ``(index, draw)`` for one rank (scheme in the module docstring).

    Arguments:
        num_samples: dataset length N.
        batch_size: B, per rank.
        rank, world_size: this rank and the number of ranks W.
        seed: seeds the per-epoch permutations.
        start: global stream position of the first batch's step (``samples_consumed``).
    """

    def __init__(self, num_samples: int, batch_size: int, rank: int, world_size: int,
                 seed: int, start: int = 0):
        if num_samples <= 0:
            raise ValueError("the training dataset is empty")
        self.num_samples, self.batch_size = num_samples, batch_size
        self.rank, self.world_size, self.seed, self.start = rank, world_size, seed, start
        self._epoch, self._perm = -1, None

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._perm = np.random.default_rng((self.seed, epoch)).permutation(self.num_samples)
            self._epoch = epoch
        return self._perm

    def positions(self, step_offset: int) -> range:
        """Global stream positions this rank reads ``step_offset`` steps after ``start``."""
        first = self.start + step_offset * self.batch_size * self.world_size \
            + self.rank * self.batch_size
        return range(first, first + self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for k in itertools.count():
            batch = []
            for p in self.positions(k):
                epoch, offset = divmod(p, self.num_samples)
                batch.append((int(self.permutation(epoch)[offset]), p))
            yield batch


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


def rng_state() -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    # plain python types, so the checkpoint loads with torch.load(weights_only=True)
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": (name, keys.tolist(), int(pos), int(has_gauss), float(cached))}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file in the same directory, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint dict written by ``train`` (tensors on CPU)."""
    return torch.load(path, map_location="cpu", weights_only=False)


class CsvLog:
    """Append-only CSV whose header grows to the union of keys seen (rewritten when it grows)."""

    def __init__(self, path: Path, truncate_after_step: int | None = None):
        self.path = path
        self.rows: list[dict] = []
        if path.exists():
            with open(path, newline="") as fh:
                self.rows = [r for r in csv.DictReader(fh)
                             if truncate_after_step is None or int(r["step"]) <= truncate_after_step]
        self.keys: list[str] = list(self.rows[0].keys()) if self.rows else []
        if path.exists():
            self._rewrite()

    def append(self, row: dict) -> None:
        self.rows.append(row)
        if any(k not in self.keys for k in row):
            self.keys += [k for k in row if k not in self.keys]
            self._rewrite()
            return
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, self.keys).writerow(row)

    def _rewrite(self) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        with os.fdopen(fd, "w", newline="") as fh:
            writer = csv.DictWriter(fh, self.keys)
            writer.writeheader()
            for r in self.rows:
                writer.writerow(r)
        os.replace(tmp, self.path)


def plot_curves(train_rows: list[dict], val_rows: list[dict], path: Path) -> None:
    """PNG of every logged loss/metric against step (matplotlib Agg), written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    skip = {"step", "epoch", "lr", "samples_per_s", "data_frac", "elapsed_s"}
    train_keys = [k for k in (train_rows[0] if train_rows else {}) if k not in skip]
    val_keys = [k for k in (val_rows[0] if val_rows else {}) if k not in skip]
    panels = [("train", k, train_rows) for k in train_keys] + [("val", k, val_rows) for k in val_keys]
    if not panels:
        return
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    for ax, (kind, key, data) in zip(axes.flat, panels):
        pts = [(float(r["step"]), float(r[key])) for r in data if r.get(key) not in (None, "")]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o" if kind == "val" else None, ms=3)
        ax.set_title(f"{kind} {key}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    atomic.save_figure(fig, path, dpi=90)


# ----------------------------------------------------------------------------- the loop

@dataclass
class TrainResult:
    run_dir: Path
    step: int                                    # steps done (== next step to run)
    checkpoint: Path
    train_metrics: dict[str, float] = field(default_factory=dict)   # last log interval
    val_metrics: dict[str, float] = field(default_factory=dict)     # last validation
    samples_per_s: float = float("nan")                             # last log interval, global


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def train(task: Any, cfg: TrainConfig, run_dir: str | os.PathLike,
          meta: dict | None = None, stop_at_step: int | None = None) -> TrainResult:
    """Train ``task`` for ``cfg.max_steps`` steps (or until ``stop_at_step``), resuming from
    ``run_dir/checkpoint.pt`` when ``cfg.resume`` and it exists. See the module docstring."""
    env = init_distributed()
    run_dir = Path(run_dir)
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    if env.distributed:
        dist.barrier()
    ckpt_path = run_dir / CHECKPOINT_NAME
    cuda = env.device.type == "cuda"
    channels_last = cuda and cfg.channels_last

    if not cuda:
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(env.world_size)))
        torch.set_num_threads(cfg.cpu_threads or max(
            1, (os.cpu_count() or 1) // max(local_world, 1) - cfg.num_workers))
    seed_everything(cfg.seed)  # same initial weights on every rank
    model = task.build_model().to(env.device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    global_batch = cfg.batch_size * env.world_size
    peak_lr = cfg.lr * global_batch / cfg.reference_batch
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=peak_lr,
                                  betas=(0.9, 0.999), fused=cuda or None)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))

    start_step, consumed, last_ckpt_step = 0, 0, None
    resumed = cfg.resume and ckpt_path.exists()
    if resumed:
        ckpt = load_checkpoint(ckpt_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start_step = last_ckpt_step = int(ckpt["step"])
        consumed = int(ckpt["data"]["samples_consumed"])
        states = ckpt["rng_per_rank"]
        set_rng_state(states[env.rank] if len(states) == env.world_size else states[0])
        del ckpt
    else:
        seed_everything(cfg.seed + 1000 * env.rank + 1)

    if env.distributed:
        if cuda:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[env.local_rank] if cuda else None)

    train_set = task.train_dataset()
    collate = getattr(task, "collate_fn", None)
    sampler = StreamBatchSampler(len(train_set), cfg.batch_size, env.rank, env.world_size,
                                 cfg.seed, start=consumed)
    workers = cfg.num_workers > 0
    if workers and cfg.loader_start == "forkserver":
        # The server imports these once; each worker then forks from it in a fraction of a second.
        multiprocessing.set_forkserver_preload(sorted({
            "__main__", "torch", "numpy", type(train_set).__module__}))
    loader = DataLoader(train_set, batch_sampler=sampler, num_workers=cfg.num_workers,
                        collate_fn=collate, pin_memory=cuda, persistent_workers=workers,
                        prefetch_factor=4 if workers else None,
                        multiprocessing_context=cfg.loader_start if workers else None,
                        generator=torch.Generator().manual_seed(cfg.seed))  # keeps global RNG untouched
    val_set = task.val_dataset()
    if val_set is not None and env.is_main:
        vloader = DataLoader(val_set, batch_size=cfg.batch_size, shuffle=False,
                             num_workers=cfg.num_workers, collate_fn=collate, pin_memory=cuda,
                             persistent_workers=workers,
                             multiprocessing_context=cfg.loader_start if workers else None,
                             generator=torch.Generator().manual_seed(0))

    train_log = val_log = None
    if env.is_main:
        train_log = CsvLog(run_dir / TRAIN_LOG, start_step if resumed else 0)
        val_log = CsvLog(run_dir / VAL_LOG, start_step if resumed else 0)

    end_step = cfg.max_steps if stop_at_step is None else min(cfg.max_steps, stop_at_step)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cuda and cfg.amp
                else contextlib.nullcontext())
    params = [p for p in model.parameters() if p.requires_grad]
    result = TrainResult(run_dir, start_step, ckpt_path)
    sums: dict[str, torch.Tensor] = {}
    first_bad = torch.full((), -1, dtype=torch.long, device=env.device)
    interval_steps, data_wait = 0, 0.0
    t_interval = time.perf_counter()

    def check_finite() -> None:
        bad = int(first_bad.item())
        if env.distributed:  # every rank stops together (grads are shared, but be explicit)
            flag = torch.tensor([bad if bad >= 0 else 2**62], device=env.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            bad = int(flag.item()) if int(flag.item()) < 2**62 else -1
        if bad >= 0:
            raise NonFiniteLossError(bad, last_ckpt_step, run_dir)

    def save(step_done: int) -> None:
        nonlocal last_ckpt_step
        states = [rng_state()]
        if env.distributed:
            states = [None] * env.world_size
            dist.all_gather_object(states, rng_state())
        if env.is_main:
            n = len(train_set)
            pos = consumed + (step_done - start_step) * global_batch
            atomic_torch_save({
                "model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": step_done,
                "rng_per_rank": states,
                "data": {"samples_consumed": pos, "epoch": pos // n, "offset": pos % n,
                         "dataset_size": n, "seed": cfg.seed},
                "world_size": env.world_size, "global_batch": global_batch,
                "train_config": to_dict(cfg), "meta": meta or {},
            }, ckpt_path)
        last_ckpt_step = step_done
        if env.distributed:
            dist.barrier()

    def run_validation(step_done: int) -> None:
        if val_set is not None and env.is_main:
            bare = unwrap(model)
            bare.eval()
            limit = cfg.max_val_batches or None
            batches = (to_device(b, env.device, channels_last)
                       for b in itertools.islice(vloader, limit))
            with torch.no_grad(), autocast:
                metrics = {k: float(v) for k, v in task.validate(bare, batches).items()}
            bare.train()
            result.val_metrics = metrics
            val_log.append({"step": step_done, **{k: f"{v:.6g}" for k, v in metrics.items()}})
            _say(f"val step {step_done}: " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        if env.distributed:
            dist.barrier()

    bar = None
    if env.is_main and cfg.progress:
        from tqdm import tqdm
        bar = tqdm(total=end_step, initial=start_step, desc="train", dynamic_ncols=True,
                   mininterval=1.0)

    def _say(msg: str) -> None:
        if bar is not None:
            bar.write(msg)
        else:
            print(msg, flush=True)

    if env.is_main:
        _say(f"training {end_step - start_step} steps from step {start_step} on {env.device} "
             f"x{env.world_size} (global batch {global_batch}, peak lr {peak_lr:.3g})"
             + (" [resumed]" if resumed else ""))

    model.train()
    it = iter(loader)
    t_start = time.perf_counter()
    try:
        for step in range(start_step, end_step):
            t0 = time.perf_counter()
            batch = next(it)
            data_wait += time.perf_counter() - t0
            batch = to_device(batch, env.device, channels_last)
            with autocast:
                loss, metrics = task.loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(
                params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
            finite = torch.isfinite(loss.detach()) & torch.isfinite(grad_norm)
            first_bad = torch.where(~finite & (first_bad < 0),
                                    torch.full_like(first_bad, step), first_bad)
            done = step + 1
            log_now = done % cfg.log_every == 0 or done == end_step
            val_now = done == end_step or (cfg.val_every > 0 and done % cfg.val_every == 0)
            ckpt_now = done == end_step or done % cfg.checkpoint_every == 0
            if not cuda or log_now or val_now or ckpt_now:
                check_finite()
            optimizer.step()
            scheduler.step()

            for k, v in {"loss": loss, **metrics, "grad_norm": grad_norm}.items():
                v = v.detach().float()
                sums[k] = sums[k] + v if k in sums else v.clone()
            interval_steps += 1

            if log_now:
                keys = sorted(sums)
                stacked = torch.stack([sums[k] for k in keys])
                if env.distributed:
                    dist.all_reduce(stacked)
                values = stacked.cpu().tolist()
                elapsed = time.perf_counter() - t_interval
                mean = {k: (v if k.startswith("n_") else v / (interval_steps * env.world_size))
                        for k, v in zip(keys, values)}
                rate = interval_steps * global_batch / max(elapsed, 1e-9)
                result.train_metrics, result.samples_per_s = mean, rate
                if env.is_main:
                    pos = consumed + (done - start_step) * global_batch
                    row = {"step": done, "epoch": f"{pos / len(train_set):.3f}",
                           "lr": f"{scheduler.get_last_lr()[0]:.4g}",
                           **{k: f"{v:.6g}" for k, v in mean.items()},
                           "samples_per_s": f"{rate:.2f}",
                           "data_frac": f"{data_wait / max(elapsed, 1e-9):.3f}",
                           "elapsed_s": f"{time.perf_counter() - t_start:.1f}"}
                    train_log.append(row)
                    _say(f"step {done}/{end_step}  loss {mean['loss']:.4f}  "
                         + "  ".join(f"{k} {v:.4g}" for k, v in mean.items()
                                     if k not in ("loss", "grad_norm"))
                         + f"  lr {row['lr']}  {rate:.1f} samples/s (data wait "
                         f"{100 * data_wait / max(elapsed, 1e-9):.0f}%)")
                sums, interval_steps, data_wait = {}, 0, 0.0
                t_interval = time.perf_counter()
            if bar is not None:
                bar.update(1)
            t_pause = time.perf_counter()
            if val_now:
                run_validation(done)
            if ckpt_now:
                save(done)
                if env.is_main:
                    plot_curves(train_log.rows, val_log.rows, run_dir / CURVES)
            t_interval += time.perf_counter() - t_pause  # throughput counts training time only
            result.step = done
    finally:
        if bar is not None:
            bar.close()
        del it
        if env.initialised_here:
            dist.destroy_process_group()
    return result
