"""``curves.png``: every logged loss / metric of a run against step."""

from __future__ import annotations

import math
from pathlib import Path

from mcpc_builder import atomic

NOT_PLOTTED = {"step", "epoch", "lr", "samples_per_s", "data_frac", "elapsed_s"}


def plot_curves(train_rows: list[dict], val_rows: list[dict], path: Path) -> None:
    """PNG of every logged loss/metric against step (matplotlib Agg), written atomically.

    Arguments:
        train_rows, val_rows: CSV rows (dicts of str) with a ``step`` key.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train_keys = [k for k in (train_rows[0] if train_rows else {}) if k not in NOT_PLOTTED]
    val_keys = [k for k in (val_rows[0] if val_rows else {}) if k not in NOT_PLOTTED]
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
