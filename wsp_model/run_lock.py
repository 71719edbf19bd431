"""One writer per run folder: the data contract's folder lock (``contract.acquire_lock``).

A second training process pointed at the same run folder would interleave checkpoints and logs;
it is refused with one line naming the folder and the holder (pid, host). The lock is
``fcntl.flock`` on ``<run>/.lock``: the kernel drops it when its process ends, ``kill -9``
included, so a lock is never stale. The file stays in place (it holds the last holder's pid and
host, for the message). This module only gives the engine an ``acquire`` / ``release`` object
around that one implementation, which build folders use too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mcpc_builder.contract import LOCK_NAME, FolderLocked, acquire_lock

RunLockedError = FolderLocked  # the name the engine exports
__all__ = ["LOCK_NAME", "RunLock", "RunLockedError"]


class RunLock:
    """``with RunLock(run_dir): ...`` (or ``acquire()`` / ``release()``) holds ``run_dir/.lock``."""

    def __init__(self, run_dir: str | os.PathLike, what: str = "training"):
        self.path = Path(run_dir) / LOCK_NAME
        self.what = what
        self._stack: contextlib.ExitStack | None = None

    @property
    def held(self) -> bool:
        return self._stack is not None

    def acquire(self) -> "RunLock":
        if self._stack is None:
            stack = contextlib.ExitStack()
            stack.enter_context(acquire_lock(self.path.parent, self.what))
            self._stack = stack
        return self

    def release(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
