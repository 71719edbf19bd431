"""Checkpoint files: written whole or not at all, read without running code from the file.

``save_checkpoint(obj, path)`` writes ``torch.save(obj)`` to a temporary sibling and renames it
over ``path`` (``mcpc_builder.atomic``), so a killed run leaves the previous checkpoint intact.
``load_checkpoint(path)`` reads it with ``torch.load(weights_only=True)``: only tensors and plain
containers (dict, list, tuple, str, int, float, bool, None) are rebuilt, so a crafted pickle cannot
execute code. Everything a checkpoint holds must therefore be plain: RNG states are stored as
tensors / lists (``rng_state`` / ``set_rng_state``), configs as nested dicts (``config.to_dict``).

Any failure to read (missing, truncated, not a torch file, a pickle with other objects, not a
dict) is one ``CheckpointError`` whose message names the file.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcpc_builder import atomic
from mcpc_builder.errors import DataError


class CheckpointError(DataError):
    """A checkpoint that cannot be read safely; ``str(err)`` is ``<file>: <what is wrong>``."""


def save_checkpoint(obj: dict, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (temp sibling, then ``os.replace``)."""
    path = Path(path)
    with atomic.replacing(path) as tmp:  # a failed save leaves no temporary behind
        torch.save(obj, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """The dict stored at ``path``, loaded with ``weights_only=True`` (tensors on ``map_location``).

    Raises ``CheckpointError`` naming the file when it is missing, unreadable, truncated, holds
    objects other than tensors and plain containers (e.g. a crafted or an old-format pickle), or
    is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint not found" if not path.exists()
                              else "not a file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        hint = next((line for line in lines if "Unsupported global" in line
                     or "GLOBAL" in line), "")
        if not hint:  # not a pickle of objects at all: garbage or a cut-off file
            reason = next((line for line in lines if line.startswith("Unsupported")),
                          lines[0] if lines else "unpickling failed")
            raise CheckpointError(path, "not a readable torch checkpoint (truncated or "
                                  f"corrupt?): {reason[:200]}") from None
        raise CheckpointError(
            path, "refused: the file holds Python objects other than tensors and plain "
            "containers, so loading it could run code (a crafted file, or a checkpoint written "
            "by an older version of this toolkit; retrain it)"
            + (f" [{hint}]" if hint else "")) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError,
            AttributeError, TypeError, IndexError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(path, f"not a readable torch checkpoint (truncated or corrupt?): "
                              f"{reason}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(path, f"not a checkpoint: holds a {type(obj).__name__}, "
                              "expected a dict")
    return obj


# ----------------------------------------------------------------------------- RNG states

def rng_state() -> dict:
    """Python / numpy / torch (and CUDA) global RNG states, as tensors and lists only."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [int(version), list(internal), gauss],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` returned (also after a ``weights_only`` round trip)."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), int(n["pos"]),
                         int(n["has_gauss"]), float(n["cached_gaussian"])))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
