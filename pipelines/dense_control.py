"""Ablation control: the same MCPC build with DENSE ground-truth same-person labels.

Is WSP's missing gain the labels' fault (issue 10: the priors label ~3% of a person's orderable
joint pairs) or the method's? This writes a copy of a synthetic build in which every COCO person
of the training splits that has ground truth gets, instead of its prior-made same-person labels,
every pair of its labelled joints whose true depths differ by at least ``min_gap_m`` (label from
the true order, confidence 1). Cross-person labels, persons, images, MPII people and the
held-out splits stay exactly as built, so the depth-order probe (on held-out people) still scores
pairs nobody labelled. The result is a valid build (shards re-written through the contract's
writer, manifest entries with new sizes and checksums), marked ``"control"`` in the manifest.

It is an upper bound for what better priors could give, never a training set: it reads the
synthetic world's ground truth.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mcpc_builder import atomic, contract
from mcpc_builder.writer import PAIRS_OPTIONS, write_parquet

CONTROL_NOTE = ("same-person labels of the training splits' COCO persons replaced by every "
                "ground-truth-ordered pair (ablation control; reads synthetic ground truth)")
# The contract's prior names; the dense labels take the within-person prior's name.
DENSE_PRIOR = "lifting"


def dense_pairs(person_id: np.ndarray, visibility: np.ndarray, depth: np.ndarray,
                min_gap_m: float) -> dict[str, np.ndarray]:
    """Every same-person pair of labelled joints with a true depth gap >= ``min_gap_m``.

    Arguments:
        person_id: (N,) int64; visibility: (N, J) uint8 (0 = unlabelled); depth: (N, J) metres.
    Returns the pairs' columns (``contract.PAIRS_SCHEMA`` names); label +1 where joint a is closer.
    """
    j = depth.shape[1]
    a, b = np.triu_indices(j, 1)
    gap = depth[:, a] - depth[:, b]
    keep = (visibility[:, a] > 0) & (visibility[:, b] > 0) & np.isfinite(gap) \
        & (np.abs(gap) >= min_gap_m)
    row, pair = np.nonzero(keep)
    g = gap[row, pair]
    return {"person_a": person_id[row], "joint_a": a[pair].astype(np.int8),
            "person_b": person_id[row], "joint_b": b[pair].astype(np.int8),
            "label": np.where(g < 0, 1, -1).astype(np.int8),
            "confidence": np.ones(len(row), np.float32),
            "prior": np.full(len(row), DENSE_PRIOR, dtype=object),
            "margin": np.abs(g).astype(np.float32)}


def relabelled_copy(build_dir: str | Path, out_dir: str | Path, note: str, relabel,
                    columns: list[str]) -> Path:
    """Copy the build ``build_dir`` to ``out_dir`` (replaced) with each shard's pairs replaced by
    ``relabel(persons, pairs)`` (a pyarrow Table of ``columns`` of the shard's persons, its
    pairs Table; returns the new pairs Table, or None to keep the shard as it is). Rewritten
    shards go through the contract's writer; the manifest gets their new sizes and checksums,
    the new pair total and ``"control": note``, and the copy is verified."""
    build_dir, out_dir = Path(build_dir), Path(out_dir)
    manifest = contract.verify_build(build_dir, "checksums")
    atomic.remove_tree(out_dir)
    shutil.copytree(build_dir, out_dir)
    total = 0
    for shard in manifest["shards"]:
        persons = pq.read_table(out_dir / shard["persons"]["file"], columns=columns)
        pairs = pq.read_table(out_dir / shard["pairs"]["file"]).cast(contract.PAIRS_SCHEMA)
        new = relabel(persons, pairs)
        if new is not None:
            shard["pairs"] = write_parquet(out_dir, shard["pairs"]["file"], new, **PAIRS_OPTIONS)
        total += shard["pairs"]["rows"]
    manifest.setdefault("totals", {})["pairs"] = total
    manifest["control"] = note
    atomic.write_json(out_dir / contract.MANIFEST_NAME, manifest, indent=1)
    contract.verify_build(out_dir, "checksums")
    return out_dir


def densify(build_dir: str | Path, out_dir: str | Path, truth: dict[int, np.ndarray],
            splits, min_gap_m: float = 0.05) -> Path:
    """Write the control build into ``out_dir`` (replaced) from the build ``build_dir``.

    Arguments:
        truth: COCO annotation id -> (21, 3) camera-frame joints (``depth_probe.ground_truth_depths``).
        splits: the training splits whose COCO persons get dense labels.
    """
    splits = set(splits)

    def relabel(persons, pairs):
        pid = persons.column("person_id").to_numpy()
        ann = persons.column("source_ann_id").to_numpy()
        dense = np.array([s == "coco" and sp in splits and int(i) in truth for s, sp, i in zip(
            persons.column("source").to_pylist(), persons.column("split").to_pylist(), ann)],
            dtype=bool)
        if not dense.any():
            return None
        vis = np.array(persons.column("visibility").to_pylist(), np.uint8)[dense]
        depth = np.stack([truth[int(i)][:, 2] for i in ann[dense]]).astype(np.float64)
        pa_ = pairs.column("person_a").to_numpy()
        same_dense = (pa_ == pairs.column("person_b").to_numpy()) & np.isin(pa_, pid[dense])
        kept = pairs.filter(pa.array(~same_dense))
        new = pa.table(dense_pairs(pid[dense], vis, depth, min_gap_m),
                       schema=contract.PAIRS_SCHEMA)
        return pa.concat_tables([kept, new])

    return relabelled_copy(build_dir, out_dir, CONTROL_NOTE, relabel,
                           ["person_id", "source", "split", "source_ann_id", "visibility"])
