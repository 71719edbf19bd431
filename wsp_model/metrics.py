"""3D pose metrics: MPJPE (P1), PA-MPJPE (P2), N-MPJPE (P3), 3DPCK and AUC.

Pure numpy functions on arrays of shape (N, J, 3) in millimetres, readable against
../shared/reference/dataset-formats.md §5 (VideoPose3D ``common/loss.py``; the official
MPI-INF-3DHP MATLAB evaluation ``mpii_compute_3d_pck.m``). Per-frame/per-joint errors are computed
once (``*_errors``) and then reduced: frame-pooled, action-wise averaged, per joint, per action.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PCK_THRESHOLD_MM = 150.0
# Official 3DHP AUC thresholds: 0:5:150 mm, 31 values, 0 included.
AUC_THRESHOLDS_MM = np.linspace(0.0, 150.0, 31)


def _check(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"expected matching (N, J, 3) arrays, got {pred.shape} and {gt.shape}")
    return pred, gt


def root_relative(points: np.ndarray, root: int = 0) -> np.ndarray:
    """(N, J, 3) -> (N, J, 3): subtract the root joint of each frame."""
    points = np.asarray(points, dtype=np.float64)
    return points - points[:, root:root + 1]


def mpjpe_errors(pred: np.ndarray, gt: np.ndarray, root: int | None = 0) -> np.ndarray:
    """Protocol 1 per-joint errors.

    Arguments:
        pred, gt: (N, J, 3) float, mm.
        root: root joint index; both sets are made root-relative first (the root's error is then
            0 and still counts in the mean, as in VideoPose3D). None: compare as given.

    Returns:
        (N, J) float64 Euclidean errors, mm.
    """
    pred, gt = _check(pred, gt)
    if root is not None:
        pred, gt = root_relative(pred, root), root_relative(gt, root)
    return np.linalg.norm(pred - gt, axis=-1)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity-align each predicted frame to its ground truth (rotation, scale, translation).

    Reflections are excluded: when the best orthogonal map has det < 0, the last singular
    direction is flipped so the result is a proper rotation (VideoPose3D ``p_mpjpe``).

    Arguments:
        pred, gt: (N, J, 3) float, mm.

    Returns:
        (N, J, 3) float64: the aligned prediction a * pred @ R + t, mm.
    """
    pred, gt = _check(pred, gt)
    mu_g = gt.mean(axis=1, keepdims=True)
    mu_p = pred.mean(axis=1, keepdims=True)
    g0 = gt - mu_g
    p0 = pred - mu_p
    norm_g = np.sqrt((g0 ** 2).sum(axis=(1, 2), keepdims=True))
    norm_p = np.sqrt((p0 ** 2).sum(axis=(1, 2), keepdims=True))
    norm_g = np.where(norm_g > 0, norm_g, 1.0)
    norm_p = np.where(norm_p > 0, norm_p, 1.0)
    g0 = g0 / norm_g
    p0 = p0 / norm_p
    h = np.matmul(g0.transpose(0, 2, 1), p0)          # (N, 3, 3)
    u, s, vt = np.linalg.svd(h)
    v = vt.transpose(0, 2, 1)
    r = np.matmul(v, u.transpose(0, 2, 1))
    # Reflection fix: flip the last column of V and the last singular value where det(R) < 0.
    sign = np.sign(np.linalg.det(r))
    sign = np.where(sign == 0, 1.0, sign)
    v[:, :, -1] *= sign[:, None]
    s[:, -1] *= sign
    r = np.matmul(v, u.transpose(0, 2, 1))
    scale = s.sum(axis=1)[:, None, None] * norm_g / norm_p
    t = mu_g - scale * np.matmul(mu_p, r)
    return scale * np.matmul(pred, r) + t


def pa_mpjpe_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Protocol 2 per-joint errors (N, J), mm, after ``procrustes_align``."""
    pred, gt = _check(pred, gt)
    return np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1)


def n_mpjpe_errors(pred: np.ndarray, gt: np.ndarray, root: int | None = 0) -> np.ndarray:
    """Protocol 3 per-joint errors (N, J), mm: one least-squares scale per frame, then MPJPE.

    The scale s = sum<P, G> / sum<P, P> is solved on the root-relative sets (as they are
    compared); a zero prediction keeps s = 1.
    """
    pred, gt = _check(pred, gt)
    if root is not None:
        pred, gt = root_relative(pred, root), root_relative(gt, root)
    num = (pred * gt).sum(axis=(1, 2))
    den = (pred * pred).sum(axis=(1, 2))
    s = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return np.linalg.norm(s[:, None, None] * pred - gt, axis=-1)


def mpjpe(pred: np.ndarray, gt: np.ndarray, root: int | None = 0) -> float:
    """Frame-pooled Protocol 1 MPJPE, mm."""
    return float(mpjpe_errors(pred, gt, root).mean())


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Frame-pooled Protocol 2 PA-MPJPE, mm."""
    return float(pa_mpjpe_errors(pred, gt).mean())


def n_mpjpe(pred: np.ndarray, gt: np.ndarray, root: int | None = 0) -> float:
    """Frame-pooled Protocol 3 N-MPJPE, mm."""
    return float(n_mpjpe_errors(pred, gt, root).mean())


def depth_order(pred: np.ndarray, gt: np.ndarray, min_gap: float = 50.0) -> float:
    """Share of a pose's joint pairs whose true depths differ by at least ``min_gap`` (mm) that
    the prediction orders the same way (ties count wrong): the within-person depth order of a
    3D prediction, which MPJPE mixes with 2D error. pred, gt: (N, J, 3), z = depth."""
    pred, gt = _check(pred, gt)
    a, b = np.triu_indices(gt.shape[1], 1)
    true = gt[:, a, 2] - gt[:, b, 2]
    mask = np.abs(true) >= min_gap
    if not mask.any():
        return float("nan")
    return float((np.sign(pred[:, a, 2] - pred[:, b, 2])[mask] == np.sign(true[mask])).mean())


def error_split(pred: np.ndarray, gt: np.ndarray, root: int | None = 0) -> dict[str, float]:
    """Where a root-relative 3D error lies: mean per-joint error in the image plane (x, y) and
    along the camera axis (|dz|), mm, after aligning the roots. MPJPE mixes both; a comparison of
    depth pre-training needs to know which one it moved. pred, gt: (N, J, 3), z = depth."""
    pred, gt = _check(pred, gt)
    if root is not None:
        pred, gt = root_relative(pred, root), root_relative(gt, root)
    d = pred - gt
    return {"xy": float(np.linalg.norm(d[..., :2], axis=-1).mean()),
            "depth": float(np.abs(d[..., 2]).mean())}


def pck(errors: np.ndarray, threshold: float = PCK_THRESHOLD_MM,
        joints: Sequence[int] | None = None) -> float:
    """Percentage of joints with error strictly below ``threshold``.

    Arguments:
        errors: (N, J) float per-joint errors, mm.
        threshold: mm; a joint is correct if error < threshold (strict, as the official script).
        joints: the joint indices that count (3DHP: ``joints.MPI3DHP_PCK_JOINTS``); None = all.

    Returns:
        percentage in [0, 100].
    """
    errors = np.asarray(errors, dtype=np.float64)
    if joints is not None:
        errors = errors[:, list(joints)]
    return float(100.0 * (errors < threshold).mean())


def auc(errors: np.ndarray, joints: Sequence[int] | None = None,
        thresholds: np.ndarray = AUC_THRESHOLDS_MM) -> float:
    """Area under the PCK curve: 100 * mean over ``thresholds`` (mm) of PCK_t / 100."""
    return float(np.mean([pck(errors, t, joints) for t in thresholds]))


def grouped_mean(errors: np.ndarray, groups: Sequence[str]) -> dict[str, float]:
    """Mean of per-frame errors within each group.

    Arguments:
        errors: (N,) or (N, J) float, mm.
        groups: (N,) labels (an action or sequence name per frame).

    Returns:
        {group: mean error}, groups in sorted order.
    """
    errors = np.asarray(errors, dtype=np.float64)
    labels = np.asarray(groups)
    if len(labels) != errors.shape[0]:
        raise ValueError(f"{len(labels)} labels for {errors.shape[0]} frames")
    return {str(g): float(errors[labels == g].mean()) for g in sorted(set(labels.tolist()))}


def summarize_h36m(pred: np.ndarray, gt: np.ndarray, actions: Sequence[str],
                   joint_names: Sequence[str], root: int = 0) -> dict:
    """Human3.6M report: P1, P2, P3, frame-pooled and action-wise averaged, per joint and action.

    Arguments:
        pred, gt: (N, 17, 3) float, mm, camera frame (any root offset; P1/P3 subtract ``root``).
        actions: (N,) base action names (e.g. "Directions"); the action-wise figure is the mean
            over actions of each action's frame mean (what papers quote).
        joint_names: (17,) names for the per-joint table.
    """
    out: dict = {"num_frames": int(len(pred))}
    for name, err in (("mpjpe", mpjpe_errors(pred, gt, root)),
                      ("pa_mpjpe", pa_mpjpe_errors(pred, gt)),
                      ("n_mpjpe", n_mpjpe_errors(pred, gt, root))):
        per_action = grouped_mean(err.mean(axis=1), actions)
        out[name] = {
            "frame_pooled": float(err.mean()),
            "action_wise": float(np.mean(list(per_action.values()))),
            "per_action": per_action,
            "per_joint": {str(n): float(e) for n, e in zip(joint_names, err.mean(axis=0))},
        }
    return out


def summarize_3dhp(pred: np.ndarray, gt: np.ndarray, groups: Sequence[str],
                   joint_names: Sequence[str], pck_joints: Sequence[int], root: int) -> dict:
    """MPI-INF-3DHP report as the official script: root-relative, no alignment.

    Arguments:
        pred, gt: (N, 17, 3) float, mm (gt: ``univ_annot3`` of the valid frames).
        groups: (N,) sequence (or activity) name per frame, for the per-group table.
        pck_joints: the 14 official PCK joints; MPJPE averages all 17.
        root: pelvis index (14 in 3DHP-17).
    """
    err = mpjpe_errors(pred, gt, root)
    labels = np.asarray(groups)
    per_group = {}
    for g in sorted(set(labels.tolist())):
        e = err[labels == g]
        per_group[str(g)] = {"pck150": pck(e, PCK_THRESHOLD_MM, pck_joints),
                             "auc": auc(e, pck_joints), "mpjpe": float(e.mean()),
                             "num_frames": int(len(e))}
    return {
        "num_frames": int(len(pred)),
        "pck150": pck(err, PCK_THRESHOLD_MM, pck_joints),
        "auc": auc(err, pck_joints),
        "mpjpe": float(err.mean()),
        "pa_mpjpe": pa_mpjpe(root_relative(pred, root), root_relative(gt, root)),
        "per_group": per_group,
        "per_joint": {str(n): float(e) for n, e in zip(joint_names, err.mean(axis=0))},
    }
