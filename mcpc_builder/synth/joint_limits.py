"""Joint-angle limits of the synthetic skeleton and the angles of one pose (degrees)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

# Joint-angle limits in degrees (flexion forward / abduction outward positive).
ANGLE_LIMITS = {
    "hip_flex": (-35.0, 125.0), "hip_abd": (-15.0, 45.0), "hip_rot": (-30.0, 40.0),
    "knee": (0.0, 150.0),
    "shoulder_flex": (-60.0, 180.0), "shoulder_abd": (-5.0, 170.0), "shoulder_rot": (-60.0, 70.0),
    "elbow": (0.0, 150.0),
    "torso_lean": (-25.0, 60.0), "torso_side": (-20.0, 20.0), "torso_twist": (-35.0, 35.0),
    "head_nod": (-40.0, 50.0), "head_yaw": (-70.0, 70.0), "head_tilt": (-25.0, 25.0),
    "ankle_flex": (-50.0, 30.0),
}


@dataclass(frozen=True)
class PoseAngles:
    """Joint angles in degrees (see ``ANGLE_LIMITS``); per side values are (left, right)."""

    hip_flex: tuple[float, float] = (0.0, 0.0)
    hip_abd: tuple[float, float] = (5.0, 5.0)
    hip_rot: tuple[float, float] = (0.0, 0.0)
    knee: tuple[float, float] = (3.0, 3.0)
    shoulder_flex: tuple[float, float] = (0.0, 0.0)
    shoulder_abd: tuple[float, float] = (8.0, 8.0)
    shoulder_rot: tuple[float, float] = (0.0, 0.0)
    elbow: tuple[float, float] = (10.0, 10.0)
    torso_lean: float = 0.0
    torso_side: float = 0.0
    torso_twist: float = 0.0
    head_nod: float = 0.0
    head_yaw: float = 0.0
    head_tilt: float = 0.0
    ankle_flex: tuple[float, float] = (0.0, 0.0)

    def clamped(self) -> "PoseAngles":
        """The same pose with every angle inside ``ANGLE_LIMITS``."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            lo, hi = ANGLE_LIMITS.get(f.name, (-90.0, 90.0))
            if isinstance(v, tuple):
                out[f.name] = tuple(float(np.clip(x, lo, hi)) for x in v)
            else:
                out[f.name] = float(np.clip(v, lo, hi))
        return PoseAngles(**out)
