"""Depth-order probe: how well a pre-trained network orders keypoint pairs nobody labelled.

The synthetic world knows every joint's true camera-frame depth. For each held-out COCO person
with ground truth, the unaugmented pre-training crop is scored on

- *same-person* pairs: two labelled joints of that person, and
- *cross-person* pairs: one of its joints and a joint of another person of the image,

both inside the crop, whose true depths differ by at least ``min_gap_m`` and which carry no MCPC
label (labelled pairs are what training saw; unlabelled ones test what it learned). A pair is
right when the predictor orders it like the truth; a tie counts one half. Predictors:

- a ``PoseNet25D``: joint j's depth is depth map j read at the joint (per-joint head);
- ``higher_is_closer``: the point higher in the image is closer (depth = image row y);
- ``lower_feet_closer``: the point whose person's lowest labelled ankle is lower in the image is
  closer (ground contact, prior P1; same-person pairs are ties, people without ankles too).

    scores = depth_order_accuracy(tables, data_cfg, truth, splits, {"wsp": model, ...})
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mcpc_builder.joints import MCPC21

from .config import DataConfig
from .losses import sample_joint_depth
from .mcpc_data import McpcDataset, McpcTables

ANKLES = (MCPC21.joint("left_ankle"), MCPC21.joint("right_ankle"))
RULES = ("higher_is_closer", "lower_feet_closer")


def ground_truth_depths(root: str | Path) -> dict[int, np.ndarray]:
    """COCO annotation id -> (21, 3) float32 camera-frame joints (metres), from the synthetic
    world's ``ground_truth/person_keypoints_*.npz``."""
    table: dict[int, np.ndarray] = {}
    for f in sorted((Path(root) / "ground_truth").glob("person_keypoints_*.npz")):
        with np.load(f) as z:
            for ann, joints in zip(z["ann_id"].tolist(), z["joints_cam"]):
                table[int(ann)] = joints.astype(np.float32)
    return table


def _pair_keys(row_a, joint_a, row_b, joint_b, num_joints: int, num_rows: int) -> np.ndarray:
    """(K,) int64 key of each unordered keypoint pair (person row, joint) x 2: equal for (a, b)
    and (b, a), so pairs are looked up in one sorted array instead of a Python set per pair."""
    ka = np.asarray(row_a, np.int64) * num_joints + np.asarray(joint_a, np.int64)
    kb = np.asarray(row_b, np.int64) * num_joints + np.asarray(joint_b, np.int64)
    return np.minimum(ka, kb) * (num_rows * num_joints) + np.maximum(ka, kb)


def _score(pred_i: np.ndarray, pred_k: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """1 where the predicted order (smaller = closer) matches sign(gap), 0.5 on ties or where a
    predictor abstains (NaN), else 0."""
    d = np.sign(pred_i - pred_k)
    tie = (d == 0) | ~np.isfinite(d)
    return np.where(tie, 0.5, (d == np.sign(gap)).astype(np.float64))


@torch.no_grad()
def depth_order_accuracy(tables: McpcTables, cfg: DataConfig, truth: dict[int, np.ndarray],
                         splits, models: dict[str, torch.nn.Module], min_gap_m: float = 0.05,
                         max_persons: int = 0, batch_size: int = 16,
                         labelled_too: bool = False) -> dict:
    """Accuracy of each model and rule on unlabelled same- and cross-person pairs.

    Arguments:
        tables: ``read_build`` output of a build whose COCO source has synthetic ground truth.
        cfg: crop settings (the pre-training ``DataConfig``).
        truth: ``ground_truth_depths`` of the COCO root.
        splits: persons of these splits are the crop centres.
        models: name -> ``PoseNet25D`` (put in eval mode here).
        max_persons: score only the first this-many persons with ground truth (0: all).
        labelled_too: also score the pairs the build labelled (what training saw), as
            ``labelled_same_person`` / ``labelled_cross_person``.

    Returns:
        {"same_person": {name: acc, ..., rule: acc}, "cross_person": {...},
         "pairs": {"same_person": n, "cross_person": n}, "persons": n, "min_gap_m": g}
        (+ the two ``labelled_*`` kinds with ``labelled_too``)
    """
    ds = McpcDataset(tables, cfg, splits, augment=False)
    num_joints = tables.keypoints.shape[1]
    labelled = np.unique(_pair_keys(np.asarray(tables.pair_a), np.asarray(tables.joint_a),
                                    np.asarray(tables.pair_b), np.asarray(tables.joint_b),
                                    num_joints, len(tables.keypoints)))
    has_truth = (np.asarray(tables.source) == "coco") & np.isin(
        np.asarray(tables.source_ann_id, np.int64), np.fromiter(truth, np.int64, len(truth)))
    # The rows of each image, once (not a scan of every person per crop centre).
    by_image = np.argsort(tables.image_id, kind="stable")
    image_sorted = np.asarray(tables.image_id)[by_image]
    keep = [i for i, r in enumerate(ds.rows) if has_truth[r]]
    keep = keep[:max_persons] if max_persons else keep
    names = list(models) + list(RULES)
    kinds = ("same_person", "cross_person")
    kinds += tuple(f"labelled_{k}" for k in kinds) if labelled_too else ()
    right = {kind: {n: 0.0 for n in names} for kind in kinds}
    count = {kind: 0 for kind in kinds}
    S = cfg.crop_size
    for m in models.values():
        m.eval()
    for lo in range(0, len(keep), batch_size):
        samples = [ds[i] for i in keep[lo:lo + batch_size]]
        points, owners = [], []
        for s in samples:   # every labelled joint of every person with truth inside the crop
            row = int(s["person_row"])
            same = by_image[np.searchsorted(image_sorted, tables.image_id[row]):
                            np.searchsorted(image_sorted, tables.image_id[row], "right")]
            rows = same[has_truth[same]]
            kp = tables.keypoints[rows] @ s["affine"][:, :2].T + s["affine"][:, 2]   # (n, 21, 2)
            ok = (tables.visibility[rows] > 0) & np.isfinite(kp).all(-1) & \
                (kp >= 0).all(-1) & (kp <= S - 1).all(-1)
            ankle_ok = (tables.visibility[rows][:, ANKLES] > 0) & np.isfinite(kp[:, ANKLES]).all(-1)
            feet = np.where(ankle_ok, kp[:, ANKLES, 1], -np.inf).max(1)            # (n,) lowest row
            r_idx, j_idx = np.nonzero(ok)
            points.append(kp[r_idx, j_idx].astype(np.float32))
            owners.append((row, rows[r_idx], j_idx, feet[r_idx]))
        n_max = max(1, max(len(p) for p in points))
        pts = np.zeros((len(samples), n_max, 2), np.float32)
        jts = np.zeros((len(samples), n_max), np.int64)
        for b, (p, own) in enumerate(zip(points, owners)):
            pts[b, :len(p)], jts[b, :len(p)] = p, own[2]
        image = torch.from_numpy(np.stack([s["image"] for s in samples]))
        preds = {}
        for name, model in models.items():
            depth = model(image)["depth"]
            preds[name] = sample_joint_depth(depth, torch.from_numpy(pts), torch.from_numpy(jts),
                                             (S, S)).numpy()
        for b, (row, prow, pjoint, feet) in enumerate(owners):
            if not len(prow):
                continue
            true_z = np.array([truth[int(tables.source_ann_id[r])][j, 2] for r, j in zip(prow, pjoint)])
            n = len(prow)
            ii, kk = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
            mine = prow[ii] == row
            same = mine & (prow[kk] == row) & (kk > ii)          # each same-person pair once
            cross = mine & (prow[kk] != row)                      # pairs of the centre person
            gap = true_z[ii] - true_z[kk]
            valid = (same | cross) & np.isfinite(gap) & (np.abs(gap) >= min_gap_m)
            i, k = np.nonzero(valid)
            if not len(i):
                continue
            keys = _pair_keys(prow[i], pjoint[i], prow[k], pjoint[k], num_joints,
                              len(tables.keypoints))
            pos = np.minimum(np.searchsorted(labelled, keys), max(len(labelled) - 1, 0))
            seen = (labelled[pos] == keys) if len(labelled) else np.zeros(len(keys), bool)
            kind = np.where(prow[k] == row, "same_person", "cross_person").astype(object)
            kind[seen] = "labelled_" + kind[seen]
            rule_pred = {"higher_is_closer": pts[b, :n, 1].astype(np.float64),
                         "lower_feet_closer": np.where(np.isfinite(feet), -feet, np.nan)}
            scores = {name: _score(preds[name][b, i], preds[name][b, k], gap[i, k]) for name in models}
            for rule, z in rule_pred.items():
                scores[rule] = _score(z[i], z[k], gap[i, k])
            for kname in count:
                sel = kind == kname
                count[kname] += int(sel.sum())
                for name, sc in scores.items():
                    right[kname][name] += float(sc[sel].sum())
    out = {kname: {name: right[kname][name] / max(count[kname], 1) for name in names}
           for kname in right}
    out.update(pairs=dict(count), persons=len(keep), min_gap_m=min_gap_m)
    return out
