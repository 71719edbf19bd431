"""Checkpoint files: atomic writes, weights_only loading, one clear error for a bad file."""

import os
import pickle
import random

import numpy as np
import pytest
import torch

from mcpc_builder.errors import DataError
from wsp_model.checkpoint import (CheckpointError, load_checkpoint, rng_state, save_checkpoint,
                                  set_rng_state)


class _Payload:
    """Unpickling this object would create ``path`` (what an attacker's file would do)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_crafted_pickle_checkpoint_does_not_run_code(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "meta": _Payload(marker)}, bad)       # torch.save = zip + pickle
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Payload(marker), protocol=2))      # a bare legacy pickle
    for path in (bad, raw):
        with pytest.raises(CheckpointError, match="could run code") as err:
            load_checkpoint(path)
        assert str(err.value).startswith(f"{path}: ")
    framed = tmp_path / "framed.pt"
    framed.write_bytes(pickle.dumps(_Payload(marker), protocol=5))
    with pytest.raises(CheckpointError, match=f"^{framed}: "):
        load_checkpoint(framed)
    assert not marker.exists()


def test_truncated_empty_and_foreign_files_give_one_error_naming_the_file(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint({"model": {"w": torch.ones(1000)}, "step": 3}, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    for path in (truncated, empty, text):
        with pytest.raises(CheckpointError, match="not a readable torch checkpoint") as err:
            load_checkpoint(path)
        assert str(err.value).startswith(f"{path}: ")
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    tensor_only = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor_only)
    with pytest.raises(CheckpointError, match="holds a Tensor, expected a dict"):
        load_checkpoint(tensor_only)
    assert issubclass(CheckpointError, DataError)   # entry points report it as bad input
    assert load_checkpoint(good)["step"] == 3


def test_save_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    save_checkpoint({"step": 1}, path)
    save_checkpoint({"step": 2}, path)
    assert load_checkpoint(path)["step"] == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.pt"]


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.normal()                               # leaves a cached gaussian in numpy's state
    save_checkpoint({"rng": rng_state()}, tmp_path / "c.pt")
    expected = (random.random(), np.random.normal(), torch.rand(2))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    got = (random.random(), np.random.normal(), torch.rand(2))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])
