"""From "person A is closer than person B" to keypoint pairs (shared by P1 and P2).

The depth ratio z_far / z_near of two people says how far apart they are relative to the nearer
one's distance; with z_near = f H / s_near and the focal length bounded below (f >= f_min), the
gap in body heights is at least (ratio - 1) f_min / s_near. When that exceeds a body's depth
extent, every joint of the nearer person is closer than every joint of the farther one; otherwise
only the root (pelvis) pair is safe.
"""

from __future__ import annotations

import numpy as np

from .config import PriorConfig
from .pairs import PELVIS, Pairs, all_joint_pairs


def cross_person_pairs(rule: str, near: np.ndarray, far: np.ndarray, depth_ratio: np.ndarray,
                       confidence: np.ndarray, scale: np.ndarray, labelled: np.ndarray,
                       image_size: np.ndarray, config: PriorConfig) -> Pairs:
    """Keypoint pairs for ordered person pairs.

    Arguments:
        near, far: (P,) int64 person rows, near closer.
        depth_ratio: (P,) float, estimated z_far / z_near (> 1).
        confidence: (P,) float in (0, 1].
        scale: (N,) float pixels (standing height).
        labelled: (N, 21) bool.
        image_size: (N,) float, max(width, height) of each person's image, pixels.
    Returns:
        pairs with label +1 (a = near person's joint closer than b = far person's joint).
    """
    cfg = config.cross_person
    f_min = cfg.focal_min_factor * image_size[near]
    gap = (depth_ratio - 1.0) * f_min / scale[near]  # body heights, a lower bound
    wide = gap >= cfg.all_joints_min_gap
    pa, ja, pb, jb, src = all_joint_pairs(near[wide], far[wide], labelled)
    all_pairs = Pairs.make(rule, pa, ja, pb, jb, 1, confidence[wide][src], gap[wide][src])
    root = ~wide & labelled[near, PELVIS] & labelled[far, PELVIS]
    root_pairs = Pairs.make(rule, near[root], PELVIS, far[root], PELVIS, 1, confidence[root],
                            gap[root])
    return Pairs.concat([all_pairs, root_pairs])
