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
from .pairs import Pairs, euclidean, image_groups

L_SHO, R_SHO, L_HIP, R_HIP = 5, 6, 11, 12
LIMB_ENDS = ((5, 7), (6, 8), (7, 9), (8, 10), (11, 13), (12, 14), (13, 15), (14, 16))
TORSO = (L_SHO, R_SHO, L_HIP, R_HIP)
NUM_ANNOTATED = 17  # MCPC-21 joints 0..16 are the COCO joints, drawn by annotators


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
    """(..., 6) per capsule: p_x, p_y, axis d = q - p (x, y), max(|d|^2, 1e-9), radius."""
    dx, dy = q[..., 0] - p[..., 0], q[..., 1] - p[..., 1]
    return np.stack([p[..., 0], p[..., 1], dx, dy, np.fmax(dx * dx + dy * dy, 1e-9), radius],
                    axis=-1)


def _within(x: np.ndarray, geometry: np.ndarray) -> np.ndarray:
    """(K, R) bool: points x (K, 2) within the capsules ``geometry`` (K, R, 6) (``_geometry``),
    pixels."""
    px, py, dx, dy, den, radius = np.moveaxis(geometry, -1, 0)
    rx, ry = x[:, None, 0] - px, x[:, None, 1] - py
    with np.errstate(invalid="ignore"):
        t = np.clip((rx * dx + ry * dy) / den, 0.0, 1.0)
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
    valid, p, q, radius = _regions(keypoints, visibility, scale, config)
    has_region = valid.any(axis=1)
    if len(occ_row) == 0 or not has_region.any():
        return Pairs.empty()
    # First a coarse test per (hidden joint, person of its image): inside the box around the
    # person's regions. Only the survivors are tested against each region of that person.
    with np.errstate(invalid="ignore"):
        pad = radius[..., None]
        box_lo = np.where(valid[..., None], np.fmin(p, q) - pad, np.inf).min(axis=1)  # (N, 2)
        box_hi = np.where(valid[..., None], np.fmax(p, q) + pad, -np.inf).max(axis=1)
    start, end = image_groups(image_index)
    span = end[occ_row] - start[occ_row]  # persons in the hidden joint's image
    o = np.repeat(np.arange(len(occ_row)), span)
    person = np.repeat(start[occ_row], span) + (
        np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
    x = keypoints[occ_row[o], occ_joint[o]]
    near = has_region[person] & np.all((x >= box_lo[person]) & (x <= box_hi[person]), axis=1)
    o, person, x = o[near], person[near], x[near]
    pr, pj = occ_row[o], occ_joint[o]
    # Each surviving (hidden joint, person) against the person's nine region slots.
    test = valid[person]
    same = pr == person
    if cfg.same_person:  # a joint is never occluded by a part it bounds
        test &= ~(same[:, None] & _BOUNDS[pj])
    else:
        test &= ~same[:, None]
    with np.errstate(invalid="ignore"):
        geometry = _geometry(p, q, radius)  # (N, 9, 6): one gather per candidate below
    inside = test & _within(x, geometry[person])
    m, kind = np.nonzero(inside)
    cover = _COVER[kind]  # (M, 4) covering joints, -1 padded
    m2, c = np.nonzero(cover >= 0)
    rows = m[m2]
    return Pairs.make("occlusion", person[rows], cover[m2, c], pr[rows], pj[rows], 1,
                      cfg.confidence)
