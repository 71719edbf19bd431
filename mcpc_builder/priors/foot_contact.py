"""P1 ground contact: on a common ground plane, a contact point lower in the image is closer.

For a camera above the ground with no roll, ground points of one image row share one depth and
y - y_horizon = f h_cam / z, so a lower contact row means a smaller depth. A person is *grounded*
when standing upright with the ankles as the lowest joints (lying, sitting, kneeling and cut-off
people are not). With three or more grounded people the horizon fit contact_row = y_h + c * s
(Hoiem, Efros, Hebert 2006) exposes people off the ground (jumping, on a step), who are left out.
"""

from __future__ import annotations

import numpy as np

from ..joints import MCPC21
from .config import PriorConfig
from .cross_person import PersonOrder
from .pairs import Pairs, person_pairs

L_SHO, R_SHO, L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK = MCPC21.joints((
    "left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_knee", "right_knee",
    "left_ankle", "right_ankle"))
NOT_ANKLE = np.array([j for j in range(MCPC21.num_joints) if j not in (L_ANK, R_ANK)])


def _ramp(x: np.ndarray, threshold: float, low: float, high: float) -> np.ndarray:
    """low at x == threshold, rising linearly to high at 2 x threshold."""
    t = np.clip((x - threshold) / max(threshold, 1e-9), 0.0, 1.0)
    return low + (high - low) * t


def grounded(keypoints: np.ndarray, labelled: np.ndarray, scale: np.ndarray,
             image_wh: np.ndarray, config: PriorConfig) -> np.ndarray:
    """Which persons stand on the ground.

    Arguments:
        keypoints: (N, 21, 2) float pixels (x right, y down), NaN where unlabelled.
        labelled: (N, 21) bool.
        scale: (N,) float pixels (standing height).
        image_wh: (N, 2) float, image width and height of each person's image.
    Returns:
        (N,) bool.
    """
    cfg = config.foot_contact
    y = keypoints[..., 1]
    x = keypoints[..., 0]
    need = labelled[:, [L_SHO, R_SHO, L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK]].all(axis=1)
    need &= np.isfinite(scale)
    with np.errstate(invalid="ignore"):
        s = scale
        ank_low = np.fmax(y[:, L_ANK], y[:, R_ANK])
        ank_high = np.fmin(y[:, L_ANK], y[:, R_ANK])
        others = np.where(labelled[:, NOT_ANKLE], y[:, NOT_ANKLE], -np.inf).max(axis=1) \
            if len(y) else np.zeros(0)
        hip_y = 0.5 * (y[:, L_HIP] + y[:, R_HIP])
        sho_y = 0.5 * (y[:, L_SHO] + y[:, R_SHO])
        dx = 0.5 * (x[:, L_HIP] + x[:, R_HIP]) - 0.5 * (x[:, L_SHO] + x[:, R_SHO])
        dy = hip_y - sho_y
        tilt = np.degrees(np.arctan2(np.abs(dx), dy))  # 0 = upright, 180 = upside down
        knees_below = np.fmin(y[:, L_KNE], y[:, R_KNE]) - hip_y >= cfg.min_knee_below_hip * s
        ok = (need
              & (ank_low >= others)
              & (ank_high - hip_y >= 0.5 * cfg.min_hip_height * s)
              & (ank_low - hip_y >= cfg.min_hip_height * s)
              & knees_below
              & (dy > 0) & (tilt <= cfg.max_torso_tilt_deg))
        border = cfg.border_margin * s
        ax = x[:, [L_ANK, R_ANK]]
        inside = ((ank_low <= image_wh[:, 1] - 1 - border)
                  & (ax.min(axis=1) >= border) & (ax.max(axis=1) <= image_wh[:, 0] - 1 - border))
    return np.asarray(ok & inside, bool)


def contact_row(keypoints: np.ndarray) -> np.ndarray:
    """(N,) float: image row of the lower ankle (the foot bearing weight), pixels."""
    return np.fmax(keypoints[:, L_ANK, 1], keypoints[:, R_ANK, 1])


def within_person(keypoints: np.ndarray, is_grounded: np.ndarray, scale: np.ndarray,
                  config: PriorConfig) -> Pairs:
    """The ankle clearly lower in the image is closer than the other ankle."""
    cfg = config.foot_contact
    rows = np.flatnonzero(is_grounded)
    yl, yr = keypoints[rows, L_ANK, 1], keypoints[rows, R_ANK, 1]
    drop = np.abs(yl - yr) / scale[rows]
    keep = drop > cfg.within_min_drop
    rows, yl, yr, drop = rows[keep], yl[keep], yr[keep], drop[keep]
    lower = np.where(yl > yr, L_ANK, R_ANK)
    higher = np.where(yl > yr, R_ANK, L_ANK)
    conf = _ramp(drop, cfg.within_min_drop, cfg.within_confidence, cfg.within_confidence_max)
    return Pairs.make("foot_contact", rows, lower, rows, higher, 1, conf, np.nan)


def horizon_inliers(image_index: np.ndarray, row: np.ndarray, scale: np.ndarray,
                    is_grounded: np.ndarray, config: PriorConfig) -> np.ndarray:
    """Grounded persons consistent with one horizon fit row = y_h + c * s of their image.

    Images with fewer than three grounded people keep them all (two points fit any line).

    Arguments:
        image_index: (N,) int64; row, scale: (N,) float pixels; is_grounded: (N,) bool.
    Returns:
        (N,) bool.
    """
    idx = np.flatnonzero(is_grounded)
    if len(idx) == 0:
        return is_grounded.copy()
    _, group = np.unique(image_index[idx], return_inverse=True)
    s, y = scale[idx].astype(np.float64), row[idx].astype(np.float64)
    n = np.bincount(group)
    sum_s, sum_y = np.bincount(group, s), np.bincount(group, y)
    sum_ss, sum_sy = np.bincount(group, s * s), np.bincount(group, s * y)
    det = n * sum_ss - sum_s ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (n * sum_sy - sum_s * sum_y) / det
        y_h = (sum_y - c * sum_s) / n
        residual = np.abs(y - (y_h[group] + c[group] * s)) / s
    fitted = (n[group] >= 3) & np.isfinite(residual)
    ok = ~fitted | (residual <= config.foot_contact.fit_max_residual)
    out = np.zeros_like(is_grounded)
    out[idx] = ok
    return out


def across_people(image_index: np.ndarray, keypoints: np.ndarray, is_grounded: np.ndarray,
                  scale: np.ndarray, config: PriorConfig) -> PersonOrder:
    """The person whose ground contact is clearly lower in the image is closer.

    Returns the ordered person pairs (``cross_person.expand`` turns them into keypoint pairs).
    """
    cfg = config.foot_contact
    row = contact_row(keypoints)
    usable = is_grounded & horizon_inliers(image_index, row, scale, is_grounded, config)
    first, second = person_pairs(image_index, usable)
    big = np.fmax(scale[first], scale[second])
    drop = (row[first] - row[second]) / big
    keep = np.abs(drop) > cfg.cross_min_drop
    first, second, drop = first[keep], second[keep], drop[keep]
    near = np.where(drop > 0, first, second)
    far = np.where(drop > 0, second, first)
    conf = _ramp(np.abs(drop), cfg.cross_min_drop, cfg.cross_confidence, cfg.cross_confidence_max)
    # Depth ratio from the horizon relation (row - y_h proportional to s): the scale ratio,
    # floored at 1 so a child in front never inflates the gap.
    ratio = np.fmax(scale[near] / scale[far], 1.0)
    return PersonOrder("foot_contact", near, far, ratio, conf)
