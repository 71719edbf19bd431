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
from .pairs import Pairs, image_groups

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


def _within(x: np.ndarray, p: np.ndarray, q: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """(K,) bool: points x (K, 2) within ``radius`` (K,) of segments p-q (K, 2), pixels."""
    dx, dy = q[:, 0] - p[:, 0], q[:, 1] - p[:, 1]
    rx, ry = x[:, 0] - p[:, 0], x[:, 1] - p[:, 1]
    t = np.clip((rx * dx + ry * dy) / np.fmax(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
    ex, ey = rx - t * dx, ry - t * dy
    return np.hypot(ex, ey) <= radius


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
    order = np.argsort(owner, kind="stable")
    owner, kind, p, q, radius = owner[order], kind[order], p[order], q[order], radius[order]
    # First a coarse test per (hidden joint, person of its image): inside the box around the
    # person's regions. Only the survivors are tested against each region of that person.
    n = len(keypoints)
    first = np.searchsorted(owner, np.arange(n), side="left")
    count = np.searchsorted(owner, np.arange(n), side="right") - first
    ends = np.concatenate([p, q])
    pad = np.concatenate([radius, radius])
    who = np.concatenate([owner, owner])
    box_lo = np.full((n, 2), np.inf)
    box_hi = np.full((n, 2), -np.inf)
    np.minimum.at(box_lo, who, ends - pad[:, None])
    np.maximum.at(box_hi, who, ends + pad[:, None])
    start, end = image_groups(image_index)
    span = end[occ_row] - start[occ_row]  # persons in the hidden joint's image
    o = np.repeat(np.arange(len(occ_row)), span)
    person = np.repeat(start[occ_row], span) + (
        np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
    x = keypoints[occ_row[o], occ_joint[o]]
    near = (count[person] > 0) & np.all((x >= box_lo[person]) & (x <= box_hi[person]), axis=1)
    o, person = o[near], person[near]
    k = count[person]
    r = np.repeat(first[person], k) + (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))
    o = np.repeat(o, k)
    pr, pj, rr = occ_row[o], occ_joint[o], owner[r]
    same = pr == rr
    keep = ~same if not cfg.same_person else np.ones(len(o), bool)
    # A joint is never occluded by a part it bounds.
    a_end = np.array([e[0] for e in LIMB_ENDS] + [-1])[kind[r]]
    b_end = np.array([e[1] for e in LIMB_ENDS] + [-1])[kind[r]]
    torso_joint = np.isin(pj, TORSO)
    keep &= ~(same & ((pj == a_end) | (pj == b_end) | ((kind[r] == 8) & torso_joint)))
    o, r, pr, pj, rr = o[keep], r[keep], pr[keep], pj[keep], rr[keep]
    inside = _within(keypoints[pr, pj], p[r], q[r], radius[r])
    r, pr, pj, rr = r[inside], pr[inside], pj[inside], rr[inside]
    # Covering joints: the capsule's two ends, or the four torso corners.
    cover = np.array([list(e) + [-1, -1] for e in LIMB_ENDS] + [list(TORSO)])[kind[r]]  # (M, 4)
    m, c = np.nonzero(cover >= 0)
    return Pairs.make("occlusion", rr[m], cover[m, c], pr[m], pj[m], 1, cfg.confidence)

