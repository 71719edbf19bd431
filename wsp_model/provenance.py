"""Where a model's training data and a test set came from: real releases or the synthetic world.

Synthetic data is never silent: ``make evaluate`` and ``wsp-predict`` print and record what these
functions find. A dataset root is synthetic when it lies in the embedded-default cache
(``mcpc_builder.default_data``) or holds the synthetic writers' ``ground_truth/`` folder (the real
releases have none). A checkpoint's synthetic training sources are ``meta["synthetic_sources"]``
(written by pre-training and fine-tuning), plus its fine-tuning dataset when that dataset's root is
synthetic (checkpoints written before ``synthetic_sources`` existed).
"""

from __future__ import annotations

from pathlib import Path

DATASET_NAMES = {"h36m": "Human3.6M", "3dhp": "MPI-INF-3DHP"}


def is_synthetic_root(root: str | Path | None) -> bool:
    """True when ``root`` is the embedded synthetic default or a synthetic-world dataset."""
    if root is None:
        return False
    from mcpc_builder.default_data import cache_home

    root = Path(root).resolve()
    home = cache_home().resolve()
    in_cache = root.is_relative_to(home) and any(p.name.startswith("default-")
                                                  for p in [root, *root.parents] if p != home)
    return in_cache or (root / "ground_truth").is_dir()


def test_set_name(dataset: str, synthetic: bool) -> str:
    """"Human3.6M test (S9, S11)" or "synthetic stand-in for Human3.6M test (S9, S11)"."""
    split = "test (S9, S11)" if dataset == "h36m" else "test (TS1-TS6)"
    name = f"{DATASET_NAMES.get(dataset, dataset)} {split}"
    return f"synthetic stand-in for {name}" if synthetic else name


def checkpoint_training_data(meta: dict) -> dict:
    """{"synthetic_sources": [...], "synthetic_only": bool, "note": str | None} of a checkpoint.

    ``synthetic_only``: the fine-tuning data is synthetic and so is the pre-training (or there was
    none: ``init`` scratch).
    """
    sources = [str(s) for s in meta.get("synthetic_sources", []) or []]
    dataset = meta.get("dataset")
    if dataset and dataset not in sources and is_synthetic_root(meta.get("data_root")):
        sources.append(str(dataset))
    backbone = meta.get("backbone", {}) or {}
    init = backbone.get("init")
    pretrained_synthetic = bool(backbone.get("synthetic_sources")) or (
        bool(sources) and any(s not in (dataset,) for s in sources))
    if dataset:
        tuned_synthetic = dataset in sources
        only = tuned_synthetic and (init in (None, "scratch") or pretrained_synthetic)
    else:  # a pre-training checkpoint
        only = bool(sources) and bool(meta.get("synthetic_sources"))
    note = None
    if only:
        note = (f"this checkpoint was trained on synthetic data only ({', '.join(sources)}): "
                "its figures and predictions say nothing about real photos")
    elif sources:
        note = f"this checkpoint was trained partly on synthetic data ({', '.join(sources)})"
    return {"synthetic_sources": sources, "synthetic_only": bool(only), "note": note}
