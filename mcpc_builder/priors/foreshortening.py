"""P3 limb foreshortening (Taylor 2000, weak perspective).

A limb of true length L seen at image length l is tilted out of the image plane by
|dz| ~ sqrt(L^2 - l^2). With L from the person scale and standard proportions:
- l / L close to 1: the limb lies in the image plane, its ends are at about equal depth (label 0);
- l / L small: the ends differ in depth, but the sign is ambiguous, so an ordered label is only
  emitted where another rule (facing, occlusion, ground contact) fixed the sign; this rule then
  adds its magnitude as the margin.
"""

from __future__ import annotations

import numpy as np

from .config import PriorConfig
from .pairs import Pairs, euclidean
from ..joints import LIMBS as BODY_LIMBS
from ..joints import MCPC21, TORSO_LINES, limb_kind
from .person_scale import PROPORTION

# (joint a, joint b, fraction of standing height), MCPC-21: the arm and leg segments, then the
# shoulder and hip lines.
LIMBS = tuple((MCPC21.joint(a), MCPC21.joint(b), PROPORTION[limb_kind(name)])
              for name, a, b in BODY_LIMBS + TORSO_LINES)
# Only the 8 arm and leg segments get "equal" labels: shoulder and hip widths vary too much
# between people for l / L to say the line is in the image plane.
NUM_LIMBS_EQUAL = len(BODY_LIMBS)
LIMB_A = np.array([limb[0] for limb in LIMBS])
LIMB_B = np.array([limb[1] for limb in LIMBS])
LIMB_RATIO = np.array([limb[2] for limb in LIMBS])
# LIMB_OF[a, b]: which limb joins joints a and b (either order), -1 if none.
LIMB_OF = np.full((MCPC21.num_joints, MCPC21.num_joints), -1, np.int64)
LIMB_OF[LIMB_A, LIMB_B] = np.arange(len(LIMBS))
LIMB_OF[LIMB_B, LIMB_A] = np.arange(len(LIMBS))


def length_ratio(keypoints: np.ndarray, labelled: np.ndarray, scale: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Image length over expected length of every limb.

    Arguments:
        keypoints: (N, 21, 2) float pixels; labelled: (N, 21) bool; scale: (N,) float pixels.
    Returns:
        ratio: (N, 10) float l / L, NaN where an end is unlabelled or the scale unknown;
        length: (N, 10) float image length, pixels.
    """
    length = euclidean(keypoints[:, LIMB_A] - keypoints[:, LIMB_B])
    ok = labelled[:, LIMB_A] & labelled[:, LIMB_B]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = length / (LIMB_RATIO[None, :] * scale[:, None])
    return np.where(ok, ratio, np.nan), length


def depth_extent(ratio: np.ndarray) -> np.ndarray:
    """(N, 10) |dz| of each limb in units of standing height: L sqrt(1 - (l/L)^2)."""
    return LIMB_RATIO[None, :] * np.sqrt(np.clip(1.0 - ratio ** 2, 0.0, None))


def in_plane(keypoints: np.ndarray, labelled: np.ndarray, scale: np.ndarray,
             config: PriorConfig) -> Pairs:
    """Label 0 for limbs seen at about full length."""
    cfg = config.foreshortening
    ratio, length = length_ratio(keypoints, labelled, scale)
    with np.errstate(invalid="ignore"):
        # The limb that set the person's scale has l / L == 1 by construction: no evidence.
        ok = ((ratio >= cfg.equal_min_ratio) & (ratio <= cfg.equal_max_ratio)
              & (length >= cfg.min_length_px))
    ok[:, NUM_LIMBS_EQUAL:] = False
    rows, limb = np.nonzero(ok)
    margin = depth_extent(ratio)[rows, limb]
    return Pairs.make("foreshortening", rows, LIMB_A[limb], rows, LIMB_B[limb], 0,
                      cfg.equal_confidence, margin)


def signed_by(other: Pairs, keypoints: np.ndarray, labelled: np.ndarray, scale: np.ndarray,
              config: PriorConfig) -> Pairs:
    """Ordered labels for clearly tilted limbs whose sign another rule fixed.

    Arguments:
        other: ordered labels of the other rules (within-person limb pairs are used).
    """
    cfg = config.foreshortening
    sel = (other.person_a == other.person_b) & (other.label != 0)
    limb = LIMB_OF[other.joint_a.astype(np.int64), other.joint_b.astype(np.int64)]
    sel &= limb >= 0
    idx = np.flatnonzero(sel)
    if len(idx) == 0:
        return Pairs.empty()
    ratio, _ = length_ratio(keypoints, labelled, scale)
    rows, lim = other.person_a[idx], limb[idx]
    q = ratio[rows, lim]
    with np.errstate(invalid="ignore"):
        keep = q <= cfg.ordered_max_ratio
    idx, rows, lim, q = idx[keep], rows[keep], lim[keep], q[keep]
    margin = LIMB_RATIO[lim] * np.sqrt(np.clip(1.0 - q ** 2, 0.0, None))
    return Pairs.make("foreshortening", rows, other.joint_a[idx], rows, other.joint_b[idx],
                      other.label[idx], cfg.ordered_confidence, margin)
