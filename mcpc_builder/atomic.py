"""Write-then-rename: every output file appears whole or not at all.

A temporary sibling ``.<name>.<pid>.tmp`` is written and ``os.replace``d onto the target, so a
killed process leaves at most a dot-file that ``writer`` recognises and clears.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TMP_SUFFIX = ".tmp"


def temp_path(path: Path) -> Path:
    """The temporary sibling a write of ``path`` goes through."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (parents created); ``fsync`` before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    with open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def write_json(path: str | os.PathLike, obj, indent: int | None = None, fsync: bool = False) -> Path:
    text = json.dumps(obj, indent=indent) + ("\n" if indent is not None else "")
    return write_bytes(path, text.encode(), fsync=fsync)


def save_npz(path: str | os.PathLike, **arrays) -> Path:
    """``np.savez`` to ``path`` atomically."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a name
        np.savez(fh, **arrays)
    os.replace(tmp, path)
    return path


def save_figure(fig, path: str | os.PathLike, dpi: float | None = None) -> Path:
    """Save a matplotlib figure atomically (format from the suffix, e.g. PNG) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    os.replace(tmp, path)
    return path
