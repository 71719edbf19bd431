"""Ablation arm: the same MCPC build with pose-library same-person labels added.

``pipelines.bench.library_lifting`` measures a k-nearest-neighbour vote over a library of real
motion-capture poses as a labeller: 2-4x the same-person pairs of ``lifting`` at 96-97% precision
on real motion it has not seen, 91-94% on bodies and poses unlike it. Would such labels make
pre-training transfer? This writes a copy of a build in which every COCO person of the training
splits with all 12 body joints labelled gets, besides its prior-made labels, the library's labels
for the pairs of its labelled COCO joints that no prior labelled (the ``lifting`` name, the
contract's within-person prior; confidence ``CONFIDENCE``). The library is the mocap dev set
(``../shared/fixtures/mocap-dev``), k and agreement as chosen on it (leave-one-activity-out), never
on the ablation. No ground truth is read to make the labels; ``truth`` only scores them.

Like ``pipelines.dense_control`` the result is a valid build marked ``"control"`` in the manifest;
held-out people are untouched, so the depth-order probe still scores pairs nobody labelled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from mcpc_builder import contract
from pipelines.bench import library_lifting as ll
from pipelines.dense_control import relabelled_copy

CONTROL_NOTE = ("pose-library (mocap dev set, k-nearest-neighbour vote) same-person labels added "
                "for the training splits' COCO persons (ablation arm)")
PRIOR = "lifting"
CONFIDENCE = 0.95
K = 50
AGREEMENT = 1.0


def library_pairs(person_id: np.ndarray, keypoints: np.ndarray, visibility: np.ndarray,
                  library: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """The library's labels for persons (N,) with (N, 21, 2) keypoints and (N, 21) flags:
    pairs of labelled COCO joints (MCPC-21 indices) the vote orders; label +1 where a is closer."""
    kp = np.where((visibility > 0)[..., None], keypoints, np.nan)
    f = ll.features(kp)
    ok = np.isfinite(f).all(1)
    lab = np.zeros((len(f), len(ll.PAIRS[0])), np.int8)
    if ok.any():
        lab[ok] = ll.knn_labels(f[ok], library[0], library[1], K, AGREEMENT)
    joints = np.array(ll.JOINTS)
    a, b = joints[ll.PAIRS[0]], joints[ll.PAIRS[1]]
    both = (visibility[:, a] > 0) & (visibility[:, b] > 0)
    row, pair = np.nonzero((lab != 0) & both)
    return {"person_a": person_id[row], "joint_a": a[pair].astype(np.int8),
            "person_b": person_id[row], "joint_b": b[pair].astype(np.int8),
            "label": lab[row, pair].astype(np.int8),
            "confidence": np.full(len(row), CONFIDENCE, np.float32),
            "prior": np.full(len(row), PRIOR, dtype=object),
            "margin": np.zeros(len(row), np.float32)}


def _pair_keys(person: np.ndarray, ja: np.ndarray, jb: np.ndarray) -> np.ndarray:
    """(K,) int64 key of an unordered same-person joint pair."""
    lo, hi = np.minimum(ja, jb).astype(np.int64), np.maximum(ja, jb).astype(np.int64)
    return (person.astype(np.int64) * 32 + lo) * 32 + hi


def add_library_labels(build_dir: str | Path, out_dir: str | Path, splits,
                       truth: dict[int, np.ndarray] | None = None,
                       library: tuple[np.ndarray, np.ndarray] | None = None,
                       library_views: int = 200) -> tuple[Path, dict]:
    """Write the library-label build into ``out_dir`` (replaced); return it and counts (labels
    added; their precision against ``truth`` where given: annotation id -> (21, 3) joints).

    ``library``: (features, true orders) as ``pipelines.bench.library_lifting`` makes them;
    default the mocap dev set seen through ``library_views`` cameras per pose (seed 1)."""
    lib_f, lib_o = library if library is not None else ll.mocap_samples(library_views, 1)[:2]
    splits = set(splits)
    counts = {"labels_added": 0, "scored": 0, "right": 0}

    def relabel(persons, pairs):
        pid = persons.column("person_id").to_numpy()
        want = np.array([s == "coco" and sp in splits for s, sp in zip(
            persons.column("source").to_pylist(), persons.column("split").to_pylist())], bool)
        if not want.any():
            return None
        kp = np.array(persons.column("keypoints").to_pylist(), np.float64)[want]
        vis = np.array(persons.column("visibility").to_pylist(), np.uint8)[want]
        new = library_pairs(pid[want], kp.reshape(len(kp), -1, 2), vis, (lib_f, lib_o))
        # Pairs a prior already labelled keep the prior's label.
        p_a, p_b = pairs.column("person_a").to_numpy(), pairs.column("person_b").to_numpy()
        same = p_a == p_b
        have = _pair_keys(p_a[same], pairs.column("joint_a").to_numpy()[same],
                          pairs.column("joint_b").to_numpy()[same])
        fresh = ~np.isin(_pair_keys(new["person_a"], new["joint_a"], new["joint_b"]), have)
        new = {k: v[fresh] for k, v in new.items()}
        counts["labels_added"] += len(new["label"])
        if truth:
            ann_of = dict(zip(pid.tolist(), persons.column("source_ann_id").to_pylist()))
            rows = np.array([int(ann_of[p]) in truth for p in new["person_a"].tolist()], bool)
            if rows.any():
                z = np.stack([truth[int(ann_of[p])][:, 2] for p in new["person_a"][rows].tolist()])
                gap = z[np.arange(len(z)), new["joint_a"][rows]] \
                    - z[np.arange(len(z)), new["joint_b"][rows]]
                lab = new["label"][rows]
                counts["scored"] += int(rows.sum())
                counts["right"] += int((((gap < -0.05) & (lab == 1)) |
                                        ((gap > 0.05) & (lab == -1))).sum())
        return pa.concat_tables([pairs, pa.table(new, schema=contract.PAIRS_SCHEMA)])

    out = relabelled_copy(build_dir, out_dir, CONTROL_NOTE, relabel,
                          ["person_id", "source", "split", "source_ann_id", "keypoints",
                           "visibility"])
    scored = counts["scored"]
    return out, {"labels_added": counts["labels_added"], "scored": scored,
                 "precision": counts["right"] / scored if scored else None}
