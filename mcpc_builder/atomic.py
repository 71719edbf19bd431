"""Write-then-rename: every output file appears whole or not at all.

A temporary sibling ``.<name>.<pid>.tmp`` is written and ``os.replace``d onto the target, so a
killed process leaves at most a dot-file that ``writer`` recognises and clears. A write that fails
(disk full, quota, a library error while encoding) removes its temporary; an ``OSError`` is raised
again naming the target ``path`` (``<path>: No space left on device``), not the temporary.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

TMP_SUFFIX = ".tmp"


def temp_path(path: Path) -> Path:
    """The temporary sibling a write of ``path`` goes through."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def temp_glob(path: Path) -> str:
    """Glob pattern (in ``path``'s folder) of the temporaries of writes of ``path``."""
    return f".{Path(path).name}.*{TMP_SUFFIX}"


def is_temp_of(name: str, target: str) -> bool:
    """Whether file name ``name`` is a temporary of a write of file name ``target``."""
    return name.startswith(f".{target}.") and name.endswith(TMP_SUFFIX)


def temp_target(name: str) -> str | None:
    """The file name a ``temp_path`` name was writing, or None for any other name."""
    if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
        return None
    stem, _, pid = name[1:-len(TMP_SUFFIX)].rpartition(".")
    return stem if stem and pid.isdigit() else None


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """``with replacing(path) as tmp:`` write ``tmp``; on success it is renamed onto ``path``.

    On any failure the temporary is removed; an ``OSError`` comes back as the same error (same
    errno and words) naming ``path``."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError) and not isinstance(err, _keep_as_is()):
            if err.errno is not None:
                raise OSError(err.errno, err.strerror or os.strerror(err.errno), str(path)) \
                    from err
            from .errors import DataError

            raise DataError(path, f"cannot write ({err})") from err
        raise


def _keep_as_is() -> tuple[type[BaseException], ...]:
    """OSError subclasses that are not about the file (e.g. DataError is not an OSError)."""
    return (BlockingIOError, ChildProcessError, ProcessLookupError, InterruptedError)


def write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (parents created); ``fsync`` before the rename."""
    path = Path(path)
    with replacing(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return path


def write_json(path: str | os.PathLike, obj, indent: int | None = None, fsync: bool = False) -> Path:
    text = json.dumps(obj, indent=indent) + ("\n" if indent is not None else "")
    return write_bytes(path, text.encode(), fsync=fsync)


def save_npz(path: str | os.PathLike, **arrays) -> Path:
    """``np.savez`` to ``path`` atomically."""
    import numpy as np

    path = Path(path)
    with replacing(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # a file object: np.savez would append ".npz" to a name
    return path


def save_figure(fig, path: str | os.PathLike, dpi: float | None = None) -> Path:
    """Save a matplotlib figure atomically (format from the suffix, e.g. PNG) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with replacing(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return path


def remove_tree(path: str | os.PathLike) -> None:
    """Remove a folder being replaced; a symbolic link to one is unlinked, never followed (the
    folder it points to may hold someone's data)."""
    import shutil

    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
