"""P5 occlusion: a keypoint labelled but not visible (COCO v=1) that lies on another body part is
behind it, so the visible joints bounding that part are closer.

Body parts are image regions with visible ends: limb capsules (radius ~ limb half-thickness,
from the owner's scale) and the torso (a capsule from the shoulder midpoint to the hip midpoint,
as wide as the torso appears). The part may belong to another person of the image or, for
self-occlusion, to the same person (its own end joints excluded).
"""

from __future__ import annotations

import numpy as np

from ..joints import COCO17, FACE_POINTS, LIMBS, MCPC21
from .config import PriorConfig
from .pairs import Pairs, euclidean, image_groups

J = MCPC21.index
L_SHO, R_SHO, L_HIP, R_HIP = J["left_shoulder"], J["right_shoulder"], J["left_hip"], J["right_hip"]
LIMB_ENDS = tuple((J[a], J[b]) for _, a, b in LIMBS)
TORSO = (L_SHO, R_SHO, L_HIP, R_HIP)
# Joints annotators draw: COCO's 17 (MCPC-21 puts them first; the rest are synthesised midpoints
# or MPII-only points).
NUM_ANNOTATED = len(COCO17.body_points)
assert MCPC21.body_points[:NUM_ANNOTATED] == COCO17.body_points
FACE = MCPC21.joints(FACE_POINTS)


NUM_REGIONS = len(LIMB_ENDS) + 1  # the limbs, then the torso
_LIMB_A = np.array([e[0] for e in LIMB_ENDS])
_LIMB_B = np.array([e[1] for e in LIMB_ENDS])
# (17, 9) bool: joint j bounds region k (an end of the limb, or a torso corner for the torso).
_BOUNDS = np.zeros((NUM_ANNOTATED, NUM_REGIONS), bool)
for _k, (_a, _b) in enumerate(LIMB_ENDS):
    _BOUNDS[[_a, _b], _k] = True
_BOUNDS[list(TORSO), NUM_REGIONS - 1] = True
# (9, 4) covering joints of each region: the capsule's two ends, or the four torso corners.
_COVER = np.array([list(e) + [-1, -1] for e in LIMB_ENDS] + [list(TORSO)])


def _regions(keypoints: np.ndarray, visibility: np.ndarray, scale: np.ndarray,
             config: PriorConfig):
    """Every person's visible body-part regions, as capsules, one slot per region kind.

    Returns:
        valid (N, 9) bool (slots 0..7 the limbs of ``LIMB_ENDS``, 8 the torso); p, q (N, 9, 2)
        capsule axis ends, pixels; radius (N, 9) pixels. Invalid slots hold arbitrary values.
    """
    cfg = config.occlusion
    n = len(keypoints)
    vis = visibility == 2
    valid = np.empty((n, NUM_REGIONS), bool)
    valid[:, :-1] = vis[:, _LIMB_A] & vis[:, _LIMB_B] & np.isfinite(scale)[:, None]
    valid[:, -1] = vis[:, list(TORSO)].all(axis=1)
    p = np.empty((n, NUM_REGIONS, 2))
    q = np.empty((n, NUM_REGIONS, 2))
    radius = np.empty((n, NUM_REGIONS))
    p[:, :-1] = keypoints[:, _LIMB_A]
    q[:, :-1] = keypoints[:, _LIMB_B]
    radius[:, :-1] = cfg.limb_radius * scale[:, None]
    p[:, -1] = 0.5 * (keypoints[:, L_SHO] + keypoints[:, R_SHO])
    q[:, -1] = 0.5 * (keypoints[:, L_HIP] + keypoints[:, R_HIP])
    width = np.fmax(euclidean(keypoints[:, L_SHO] - keypoints[:, R_SHO]),
                    euclidean(keypoints[:, L_HIP] - keypoints[:, R_HIP]))
    radius[:, -1] = cfg.torso_radius * 0.5 * width
    return valid, p, q, radius


def _geometry(p: np.ndarray, q: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """(6, ...) per capsule: p_x, p_y, axis d = q - p (x, y), max(|d|^2, 1e-9), radius.

    Arguments:
        p, q: (..., 2) capsule axis ends, pixels; radius: (...) pixels.
    """
    dx, dy = q[..., 0] - p[..., 0], q[..., 1] - p[..., 1]
    return np.stack([p[..., 0], p[..., 1], dx, dy, np.fmax(dx * dx + dy * dy, 1e-9), radius])


def _boxes(valid: np.ndarray, p: np.ndarray, q: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """(4, N) x_lo, x_hi, y_lo, y_hi of the box around each person's valid regions, pixels
    (+-inf for a person without regions); one pass per region slot."""
    box = np.empty((4, len(valid)))
    box[0::2] = np.inf
    box[1::2] = -np.inf
    for k in range(valid.shape[1]):
        v = valid[:, k]
        for c in (0, 1):
            lo = np.fmin(p[:, k, c], q[:, k, c]) - radius[:, k]
            hi = np.fmax(p[:, k, c], q[:, k, c]) + radius[:, k]
            np.minimum(box[2 * c], np.where(v, lo, np.inf), out=box[2 * c])
            np.maximum(box[2 * c + 1], np.where(v, hi, -np.inf), out=box[2 * c + 1])
    return box


def _within(x: np.ndarray, geometry: np.ndarray) -> np.ndarray:
    """(K, R) bool: points x (K, 2) within the capsules ``geometry`` (6, K, R) (``_geometry``),
    pixels. In place on a few (K, R) buffers: this test runs on ~25 capsules per person."""
    px, py, dx, dy, den, radius = geometry
    ex = np.subtract(x[:, 0, None], px)  # x - p, then the offset from the nearest axis point
    ey = np.subtract(x[:, 1, None], py)
    t = ex * dx
    tmp = ey * dy
    t += tmp
    with np.errstate(invalid="ignore"):
        t /= den
        np.maximum(t, 0.0, out=t)  # clip to the segment
        np.minimum(t, 1.0, out=t)
        ex -= np.multiply(t, dx, out=tmp)
        ey -= np.multiply(t, dy, out=tmp)
        return np.hypot(ex, ey, out=ex) <= radius


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
    valid, p, q, radius = _regions(keypoints, visibility, scale, config)
    has_region = valid.any(axis=1)
    if len(occ_row) == 0 or not has_region.any():
        return Pairs.empty()
    # First a coarse test per (hidden joint, person of its image): inside the box around the
    # person's regions. Only the survivors are tested against each region of that person.
    with np.errstate(invalid="ignore"):
        box = _boxes(valid, p, q, radius)  # x_lo, x_hi, y_lo, y_hi: (4, N)
    start, end = image_groups(image_index)
    span = end[occ_row] - start[occ_row]  # persons in the hidden joint's image
    o = np.repeat(np.arange(len(occ_row)), span)
    person = np.repeat(start[occ_row], span) + (
        np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
    x = keypoints[occ_row, occ_joint][o]  # (K, 2) the hidden joint of each candidate
    b = np.take(box, person, axis=1)
    near = (has_region[person] & (x[:, 0] >= b[0]) & (x[:, 0] <= b[1]) & (x[:, 1] >= b[2])
            & (x[:, 1] <= b[3]))
    o, person, x = o[near], person[near], x[near]
    pr, pj = occ_row[o], occ_joint[o]
    # Each surviving (hidden joint, person) against the person's nine region slots.
    test = valid[person]
    same = pr == person
    if cfg.same_person:  # a joint is never occluded by a part it bounds
        test &= ~(same[:, None] & _BOUNDS[pj])
        if not cfg.face_behind_own_body:  # a hidden face point is hidden by its own head
            test &= ~(same & np.isin(pj, FACE))[:, None]
    else:
        test &= ~same[:, None]
    with np.errstate(invalid="ignore"):
        geometry = _geometry(p, q, radius)  # (6, N, 9): one gather per candidate below
    inside = test & _within(x, np.take(geometry, person, axis=1))
    m, kind = np.nonzero(inside)
    cover = _COVER[kind]  # (M, 4) covering joints, -1 padded
    m2, c = np.nonzero(cover >= 0)
    rows = m[m2]
    return Pairs.make("occlusion", person[rows], cover[m2, c], pr[rows], pj[rows], 1,
                      cfg.confidence)
