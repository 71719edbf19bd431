"""The training data stream: which sample each rank reads at each step, and loader workers that die
with the trainer.

The global stream is the concatenation of seeded permutations of ``range(N)``, one per epoch
(``np.random.default_rng((seed, epoch))``). Global step ``s`` consumes stream positions
``[p0 + (s - s0) * B * W, ... + B * W)``: rank ``r`` takes the ``B`` consecutive positions
starting at ``... + r * B``. Each rank's DataLoader hands every batch to exactly one worker. So
within an epoch every sample is drawn exactly once across all ranks and workers. The data
position (``samples_consumed`` = epoch * N + offset) is saved in the checkpoint; resuming
continues the stream at that position, also with another world size or batch size.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import select
import signal
import sys
import threading
import time
from typing import Iterator

import numpy as np

PR_SET_PDEATHSIG = 1


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


def _exit_when_gone(pid: int) -> None:
    """Block until process ``pid`` ends, then end this process at once (no cleanup to hang in)."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd (old kernel / not Linux): poll instead
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            time.sleep(0.5)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while not poller.poll():
        pass
    os._exit(1)


def die_with_parent(worker_id: int | None = None, trainer_pid: int | None = None) -> None:
    """DataLoader ``worker_init_fn``: this worker ends when the trainer process does.

    Use as ``functools.partial(die_with_parent, trainer_pid=os.getpid())``. Two mechanisms:
    ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (Linux) kills the worker when its parent dies, which
    covers ``fork`` / ``spawn`` workers; a forkserver worker's parent is the fork server, which
    stays alive as long as any worker holds its pipe, so a daemon thread also waits on the
    trainer's pid (``pidfd`` on Linux, polling elsewhere) and exits the worker when it is gone.
    Without this a trainer killed with SIGKILL leaves workers running. No random state is touched.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)
    if trainer_pid is not None and trainer_pid != os.getpid():
        threading.Thread(target=_exit_when_gone, args=(trainer_pid,), daemon=True,
                         name="die-with-trainer").start()
