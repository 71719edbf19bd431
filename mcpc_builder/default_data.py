"""The embedded default: synthetic datasets in the official formats, generated on first use.

Every command falls back to these when the user gives no dataset root, so everything runs on a
fresh machine with no data. They are deterministic (fixed seed and sizes), written into a cache
directory under a temporary name and renamed when complete, so a killed generation never leaves a
half-written default behind and concurrent processes agree on one copy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

DEFAULT_SEED = 20221123
# Sizes keep first-use generation to seconds on a laptop CPU.
DEFAULT_SIZES = {"coco": 240, "mpii": 160, "h36m": 0, "3dhp": 0}
CACHE_VERSION = "v1"
COMPLETE_MARKER = ".complete"


def cache_home() -> Path:
    """``$WSP_DATA_HOME`` or ``~/.cache/wsp-toolkit``."""
    env = os.environ.get("WSP_DATA_HOME")
    return Path(env) if env else Path.home() / ".cache" / "wsp-toolkit"


def default_path(fmt: str) -> Path:
    """Where the embedded default dataset ``fmt`` lives (made or not)."""
    return cache_home() / f"default-{CACHE_VERSION}" / fmt


def default_root(fmt: str) -> Path:
    """Root directory of the embedded default dataset ``fmt`` (coco|mpii|h36m|3dhp), made if absent."""
    from .synth import write_dataset

    root = default_path(fmt)
    if (root / COMPLETE_MARKER).exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{fmt}-", dir=root.parent))
    try:
        write_dataset(fmt, tmp, seed=DEFAULT_SEED, n_images=DEFAULT_SIZES.get(fmt) or None)
        (tmp / COMPLETE_MARKER).write_text("ok\n")
        if root.exists():  # a stale, incomplete copy from a killed run
            shutil.rmtree(root, ignore_errors=True)
        try:
            os.rename(tmp, root)
        except OSError:  # another process finished first; keep theirs
            if not (root / COMPLETE_MARKER).exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root
