"""One writer per run folder: a lock file made with ``O_CREAT | O_EXCL`` holding the owner's pid.

A second training process pointed at the same run folder would interleave checkpoints and logs;
``RunLock`` refuses it with one line naming the folder and the owner. A lock left by a process that
no longer runs on this host (killed with -9, machine crash) is stale and taken over.

(Interim: the data-contract module is to export one lock helper for build folders and run
folders alike; this module can then delegate to it.)
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from mcpc_builder.errors import DataError

LOCK_NAME = ".lock"


class RunLockedError(DataError):
    """Another live process holds the run folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """``with RunLock(run_dir): ...`` holds ``run_dir/.lock`` for the block.

    The file holds ``<pid> <hostname>``. Acquiring fails with ``RunLockedError`` while that pid
    is alive on this host (or the lock comes from another host, which cannot be checked); a lock
    whose pid is gone is removed and taken.
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def _owner(self) -> tuple[int | None, str]:
        try:
            pid, _, host = self.path.read_text().strip().partition(" ")
            return int(pid), host
        except (OSError, ValueError):
            return None, ""

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = f"{os.getpid()} {socket.gethostname()}"
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid, host = self._owner()
                same_host = host in ("", socket.gethostname())
                if pid is not None and same_host and not _alive(pid):
                    try:  # stale: its owner is gone
                        self.path.unlink()
                    except FileNotFoundError:
                        pass
                    continue
                if pid is None:  # being written right now, or garbage: do not guess
                    raise RunLockedError(self.path.parent, f"run folder is locked ({self.path} "
                                         "exists; delete it if no training uses this folder)")
                raise RunLockedError(
                    self.path.parent, f"another training process (pid {pid}"
                    f"{'' if same_host else ' on ' + host}) is writing this run folder; wait for "
                    f"it to finish or use another output folder (lock file {self.path})")
            except OSError as err:
                if err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                    raise RunLockedError(self.path.parent, "run folder is not writable "
                                         f"({err.strerror})") from None
                raise
            with os.fdopen(fd, "w") as fh:
                fh.write(me + "\n")
            self.held = True
            return self
        raise RunLockedError(self.path.parent, f"could not take the lock {self.path}")

    def release(self) -> None:
        if self.held:
            pid, _ = self._owner()
            if pid == os.getpid():
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
            self.held = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
