"""P5 occlusion: a keypoint labelled but not visible (COCO v=1) that lies on another body part is
behind it, so the visible joints bounding that part are closer.

Body parts are image regions with visible ends: limb capsules (radius ~ limb half-thickness,
from the owner's scale) and the torso (a capsule from the shoulder midpoint to the hip midpoint,
as wide as the torso appears). The part may belong to another person of the image or, for
self-occlusion, to the same person (its own end joints excluded).
"""

from __future__ import annotations

import numpy as np

from .config import PriorConfig
from .pairs import Pairs

L_SHO, R_SHO, L_HIP, R_HIP = 5, 6, 11, 12
LIMB_ENDS = ((5, 7), (6, 8), (7, 9), (8, 10), (11, 13), (12, 14), (13, 15), (14, 16))
TORSO = (L_SHO, R_SHO, L_HIP, R_HIP)
NUM_ANNOTATED = 17  # MCPC-21 joints 0..16 are the COCO joints, drawn by annotators


def _regions(keypoints: np.ndarray, visibility: np.ndarray, scale: np.ndarray,
             config: PriorConfig):
    """All visible body-part regions, as capsules.

    Returns:
        owner (R,) int64 person row; kind (R,) int64 (0..7 limb, 8 torso); p, q (R, 2) capsule
        axis ends, pixels; radius (R,) pixels.
    """
    cfg = config.occlusion
    vis = visibility == 2
    a = np.array([e[0] for e in LIMB_ENDS])
    b = np.array([e[1] for e in LIMB_ENDS])
    limb_ok = vis[:, a] & vis[:, b] & np.isfinite(scale)[:, None]
    rows, kind = np.nonzero(limb_ok)
    p = keypoints[rows, a[kind]]
    q = keypoints[rows, b[kind]]
    radius = cfg.limb_radius * scale[rows]
    torso_ok = vis[:, list(TORSO)].all(axis=1)
    t_rows = np.flatnonzero(torso_ok)
    kp = keypoints[t_rows]
    t_p = 0.5 * (kp[:, L_SHO] + kp[:, R_SHO])
    t_q = 0.5 * (kp[:, L_HIP] + kp[:, R_HIP])
    width = np.fmax(np.linalg.norm(kp[:, L_SHO] - kp[:, R_SHO], axis=-1),
                    np.linalg.norm(kp[:, L_HIP] - kp[:, R_HIP], axis=-1))
    t_radius = cfg.torso_radius * 0.5 * width
    return (np.concatenate([rows, t_rows]).astype(np.int64),
            np.concatenate([kind, np.full(len(t_rows), 8)]).astype(np.int64),
            np.concatenate([p, t_p]), np.concatenate([q, t_q]),
            np.concatenate([radius, t_radius]))


def _segment_distance(x: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(K,) distance of points x (K, 2) to segments p-q (K, 2), pixels."""
    d = q - p
    t = np.einsum("kd,kd->k", x - p, d) / np.fmax(np.einsum("kd,kd->k", d, d), 1e-9)
    closest = p + np.clip(t, 0.0, 1.0)[:, None] * d
    return np.linalg.norm(x - closest, axis=-1)


def occlusion(image_index: np.ndarray, keypoints: np.ndarray, visibility: np.ndarray,
              scale: np.ndarray, config: PriorConfig) -> Pairs:
    """Occlusion labels: the visible ends of a covering part are closer than the hidden joint.

    Arguments:
        image_index: (N,) int64, non-decreasing; keypoints: (N, 21, 2) float pixels;
        visibility: (N, 21) uint8 0/1/2; scale: (N,) float pixels.
    """
    cfg = config.occlusion
    # Only annotated joints: a synthesised midpoint (pelvis, thorax) inherits a hidden flag from
    # one end without lying behind anything.
    occ_row, occ_joint = np.nonzero(visibility[:, :NUM_ANNOTATED] == 1)
    owner, kind, p, q, radius = _regions(keypoints, visibility, scale, config)
    if len(occ_row) == 0 or len(owner) == 0:
        return Pairs.empty()
    # Regions are sorted by owner row, hence by image; match each hidden joint with every
    # region of its image.
    order = np.argsort(owner, kind="stable")
    owner, kind, p, q, radius = owner[order], kind[order], p[order], q[order], radius[order]
    region_image = image_index[owner]
    occ_image = image_index[occ_row]
    lo = np.searchsorted(region_image, occ_image, side="left")
    hi = np.searchsorted(region_image, occ_image, side="right")
    count = hi - lo
    o = np.repeat(np.arange(len(occ_row)), count)
    r = np.repeat(lo, count) + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    pr, pj, rr = occ_row[o], occ_joint[o], owner[r]
    same = pr == rr
    keep = ~same if not cfg.same_person else np.ones(len(o), bool)
    # A joint is never occluded by a part it bounds.
    a_end = np.array([e[0] for e in LIMB_ENDS] + [-1])[kind[r]]
    b_end = np.array([e[1] for e in LIMB_ENDS] + [-1])[kind[r]]
    torso_joint = np.isin(pj, TORSO)
    keep &= ~(same & ((pj == a_end) | (pj == b_end) | ((kind[r] == 8) & torso_joint)))
    o, r, pr, pj, rr = o[keep], r[keep], pr[keep], pj[keep], rr[keep]
    dist = _segment_distance(keypoints[pr, pj], p[r], q[r])
    inside = dist <= radius[r]
    r, pr, pj, rr = r[inside], pr[inside], pj[inside], rr[inside]
    # Covering joints: the capsule's two ends, or the four torso corners.
    cover = np.array([list(e) + [-1, -1] for e in LIMB_ENDS] + [list(TORSO)])[kind[r]]  # (M, 4)
    m, c = np.nonzero(cover >= 0)
    return Pairs.make("occlusion", rr[m], cover[m, c], pr[m], pj[m], 1, cfg.confidence)

