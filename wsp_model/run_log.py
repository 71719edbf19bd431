"""A run's logs: ``train_log.csv`` / ``val_log.csv`` and TensorBoard scalars beside them.

The CSV files are the record (append-only, rewritten whole when a new column appears or a resume
cuts them back to the checkpoint's step). The same numbers go to TensorBoard event files under
``<run_dir>/tensorboard`` (``tensorboard --logdir <run_dir>``), as ``train/<key>`` and
``val/<key>``. Only rank 0 writes. Without the ``tensorboard`` package the CSV files are still
written and one line says TensorBoard is off.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from pathlib import Path

TRAIN_LOG = "train_log.csv"
VAL_LOG = "val_log.csv"
TENSORBOARD_DIR = "tensorboard"


class CsvLog:
    """Append-only CSV whose header grows to the union of keys seen (rewritten when it grows).

    ``truncate_after_step``: rows of an existing file with a larger ``step`` are dropped (a
    resumed run repeats the steps after its checkpoint).
    """

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
        try:
            with os.fdopen(fd, "w", newline="") as fh:
                writer = csv.DictWriter(fh, self.keys)
                writer.writeheader()
                for r in self.rows:
                    writer.writerow(r)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def _tensorboard_writer(log_dir: Path, purge_step: int | None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's writer needs the tensorboard package
        print("tensorboard is not installed: logging to CSV only (pip install tensorboard)",
              flush=True)
        return None
    return SummaryWriter(str(log_dir), purge_step=purge_step, flush_secs=30)


class RunLog:
    """Train / validation logs of one run (CSV + TensorBoard); rank 0 only.

    Arguments:
        run_dir: the run folder.
        resume_step: the checkpoint step a resumed run starts from (rows and events after it are
            dropped), or None for a fresh run (existing CSV rows after step 0 are dropped).
        tensorboard: also write TensorBoard event files.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None, tensorboard: bool = True):
        cut = resume_step if resume_step is not None else 0
        self.train = CsvLog(run_dir / TRAIN_LOG, cut)
        self.val = CsvLog(run_dir / VAL_LOG, cut)
        self._tb_dir, self._purge = run_dir / TENSORBOARD_DIR, cut
        self._tb = None
        self._tb_wanted = tensorboard

    def _writer(self):
        if self._tb is None and self._tb_wanted:  # opened on first use, after loaders started
            self._tb = _tensorboard_writer(self._tb_dir, self._purge)
            self._tb_wanted = self._tb is not None
        return self._tb

    def _scalars(self, prefix: str, step: int, row: dict) -> None:
        tb = self._writer()
        if tb is None:
            return
        for key, value in row.items():
            if key == "step":
                continue
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(v):
                tb.add_scalar(f"{prefix}/{key}", v, step)

    def log_train(self, row: dict) -> None:
        """One ``train_log.csv`` row (``step`` plus formatted values)."""
        self.train.append(row)
        self._scalars("train", int(row["step"]), row)

    def log_val(self, row: dict) -> None:
        self.val.append(row)
        self._scalars("val", int(row["step"]), row)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
