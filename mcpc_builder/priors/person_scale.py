"""P2 scale: a foreshortening-robust person size, and "the larger person is closer".

A segment of true length r * H (H the standing height, r a standard body proportion) seen at image
length l satisfies l <= r * H * f / z, because tilting it out of the image plane only shortens it.
So every labelled segment gives a lower bound l / r on the person's image height s = H f / z, and
the largest of them is the estimate: it is exact as soon as one segment lies in the image plane.

Across people of one image, image size falls as 1/z: a person whose scale is larger by a clear
ratio is closer (children, ~0.6-0.8 of an adult, make small ratios unsafe).
"""

from __future__ import annotations

import numpy as np

from ..joints import LIMBS, MCPC21, limb_kind
from .config import PriorConfig
from .cross_person import PersonOrder
from .pairs import euclidean, person_pairs

J = MCPC21.index
L_SHO, R_SHO = J["left_shoulder"], J["right_shoulder"]
L_HIP, R_HIP = J["left_hip"], J["right_hip"]

# Segment lengths as a fraction of standing height (joint centre to joint centre; adult
# anthropometry, Winter 2009 "Biomechanics and motor control of human movement", Fig. 4.1).
UPPER_ARM, FOREARM, THIGH, SHIN, TORSO = 0.186, 0.146, 0.245, 0.246, 0.288
SHOULDER_WIDTH, HIP_WIDTH = 0.20, 0.11
PROPORTION = {"upper_arm": UPPER_ARM, "forearm": FOREARM, "thigh": THIGH, "shin": SHIN,
              "shoulder_line": SHOULDER_WIDTH, "hip_line": HIP_WIDTH}

# (joint a, joint b, fraction of height) of every limb (``joints.LIMBS``). The torso uses the
# shoulder and hip midpoints.
LIMB_SEGMENTS = tuple((J[a], J[b], PROPORTION[limb_kind(name)]) for name, a, b in LIMBS)
LEG_SEGMENT_ROWS = tuple(i for i, (name, _, _) in enumerate(LIMBS)
                         if limb_kind(name) in ("thigh", "shin"))


def segment_lengths(keypoints: np.ndarray, labelled: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image lengths of the limb segments and the torso.

    Arguments:
        keypoints: (N, 21, 2) float, pixels, NaN where unlabelled.
        labelled: (N, 21) bool.
    Returns:
        length: (N, 9) float pixels (8 limbs then torso), NaN where an end is unlabelled;
        ratio: (9,) float, fraction of standing height of each segment;
        ok: (N, 9) bool, both ends labelled.
    """
    a = np.array([s[0] for s in LIMB_SEGMENTS])
    b = np.array([s[1] for s in LIMB_SEGMENTS])
    limb = euclidean(keypoints[:, a] - keypoints[:, b])
    limb_ok = labelled[:, a] & labelled[:, b]
    mid_sho = 0.5 * (keypoints[:, L_SHO] + keypoints[:, R_SHO])
    mid_hip = 0.5 * (keypoints[:, L_HIP] + keypoints[:, R_HIP])
    torso = euclidean(mid_sho - mid_hip)
    torso_ok = labelled[:, [L_SHO, R_SHO, L_HIP, R_HIP]].all(axis=1)
    length = np.concatenate([limb, torso[:, None]], axis=1)
    ok = np.concatenate([limb_ok, torso_ok[:, None]], axis=1)
    ratio = np.array([s[2] for s in LIMB_SEGMENTS] + [TORSO])
    return np.where(ok, length, np.nan), ratio, ok


def person_scale(keypoints: np.ndarray, labelled: np.ndarray, config: PriorConfig
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Standing height in pixels of each person, and whether legs took part.

    Arguments:
        keypoints: (N, 21, 2) float, pixels.
        labelled: (N, 21) bool.
    Returns:
        scale: (N,) float pixels, NaN with fewer than ``min_segments`` labelled segments;
        has_legs: (N,) bool, a thigh or shin was labelled.
    """
    length, ratio, ok = segment_lengths(keypoints, labelled)
    bound = np.where(ok, length / ratio, -np.inf)
    scale = bound.max(axis=1) if len(bound) else np.zeros(0)
    enough = ok.sum(axis=1) >= config.person_scale.min_segments
    scale = np.where(enough & (scale > 0), scale, np.nan).astype(np.float64)
    has_legs = ok[:, list(LEG_SEGMENT_ROWS)].any(axis=1)
    return scale, has_legs


def scale_order(image_index: np.ndarray, scale: np.ndarray, has_legs: np.ndarray,
                config: PriorConfig) -> PersonOrder:
    """Cross-person labels from the scale ratio.

    Arguments:
        image_index: (N,) int64, non-decreasing.
        scale: (N,) float pixels.
        has_legs: (N,) bool.
    Returns the ordered person pairs (``cross_person.expand`` turns them into keypoint pairs).
    """
    cfg = config.person_scale
    eligible = np.isfinite(scale) & (has_legs if cfg.require_legs else True)
    first, second = person_pairs(image_index, eligible)
    ratio = scale[first] / scale[second]
    keep = (ratio >= cfg.min_ratio) | (ratio <= 1.0 / cfg.min_ratio)
    first, second, ratio = first[keep], second[keep], ratio[keep]
    first_near = ratio > 1
    near = np.where(first_near, first, second)
    far = np.where(first_near, second, first)
    big = np.maximum(ratio, 1.0 / ratio)
    # Confidence grows with the ratio: cfg.confidence_at_min at min_ratio, towards the ceiling.
    excess = (big - cfg.min_ratio) / (cfg.min_ratio - 1.0)
    confidence = cfg.confidence_max - (cfg.confidence_max - cfg.confidence_at_min) * np.exp(-excess)
    return PersonOrder("person_scale", near, far, big, confidence)
