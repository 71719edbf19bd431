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

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mcpc_builder import atomic, contract
from mcpc_builder.writer import PAIRS_OPTIONS, write_parquet
from pipelines.bench import library_lifting as ll

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


def add_library_labels(build_dir: str | Path, out_dir: str | Path, splits,
                       truth: dict[int, np.ndarray] | None = None,
                       library: tuple[np.ndarray, np.ndarray] | None = None,
                       library_views: int = 200) -> tuple[Path, dict]:
    """Write the library-label build into ``out_dir`` (replaced); return it and counts (labels
    added; their precision against ``truth`` where given: annotation id -> (21, 3) joints).

    ``library``: (features, true orders) as ``pipelines.bench.library_lifting`` makes them;
    default the mocap dev set seen through ``library_views`` cameras per pose (seed 1)."""
    build_dir, out_dir = Path(build_dir), Path(out_dir)
    manifest = contract.verify_build(build_dir, "checksums")
    lib_f, lib_o = library if library is not None else ll.mocap_samples(library_views, 1)[:2]
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(build_dir, out_dir)
    splits = set(splits)
    total, added, right, scored = 0, 0, 0, 0
    for shard in manifest["shards"]:
        persons = pq.read_table(out_dir / shard["persons"]["file"],
                                columns=["person_id", "source", "split", "source_ann_id",
                                         "keypoints", "visibility"])
        pairs = pq.read_table(out_dir / shard["pairs"]["file"]).cast(contract.PAIRS_SCHEMA)
        pid = persons.column("person_id").to_numpy()
        ann = persons.column("source_ann_id").to_numpy()
        want = np.array([s == "coco" and sp in splits for s, sp in zip(
            persons.column("source").to_pylist(), persons.column("split").to_pylist())], bool)
        if want.any():
            kp = np.array(persons.column("keypoints").to_pylist(), np.float64)[want]
            kp = kp.reshape(len(kp), -1, 2)
            vis = np.array(persons.column("visibility").to_pylist(), np.uint8)[want]
            new = library_pairs(pid[want], kp, vis, (lib_f, lib_o))
            # Pairs a prior already labelled keep the prior's label.
            pa_, ja = pairs.column("person_a").to_numpy(), pairs.column("joint_a").to_numpy()
            pb_, jb = pairs.column("person_b").to_numpy(), pairs.column("joint_b").to_numpy()
            have = set(zip(pa_[pa_ == pb_].tolist(), np.minimum(ja, jb)[pa_ == pb_].tolist(),
                           np.maximum(ja, jb)[pa_ == pb_].tolist()))
            fresh = np.array([(p, min(x, y), max(x, y)) not in have for p, x, y in zip(
                new["person_a"].tolist(), new["joint_a"].tolist(), new["joint_b"].tolist())],
                bool)
            new = {k: v[fresh] for k, v in new.items()}
            added += len(new["label"])
            if truth:
                ann_of = dict(zip(pid.tolist(), ann.tolist()))
                for p, x, y, lab in zip(new["person_a"].tolist(), new["joint_a"].tolist(),
                                        new["joint_b"].tolist(), new["label"].tolist()):
                    z = truth.get(int(ann_of[p]))
                    if z is None:
                        continue
                    gap = z[x, 2] - z[y, 2]
                    scored += 1
                    right += int((gap < -0.05 and lab == 1) or (gap > 0.05 and lab == -1))
            pairs = pa.concat_tables([pairs, pa.table(new, schema=contract.PAIRS_SCHEMA)])
            shard["pairs"] = write_parquet(out_dir, shard["pairs"]["file"], pairs,
                                           **PAIRS_OPTIONS)
        total += shard["pairs"]["rows"]
    manifest.setdefault("totals", {})["pairs"] = total
    manifest["control"] = CONTROL_NOTE
    atomic.write_json(out_dir / contract.MANIFEST_NAME, manifest, indent=1)
    contract.verify_build(out_dir, "checksums")
    return out_dir, {"labels_added": added, "scored": scored,
                     "precision": right / scored if scored else None}
