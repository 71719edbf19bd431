"""Pose families of the synthetic world (standing, walking, ...): varied joint angles for each."""

from __future__ import annotations

import math

import numpy as np

from .joint_limits import PoseAngles

POSES = ("standing", "walking", "running", "reaching", "sitting", "lying", "jumping")
GROUNDED_POSES = ("standing", "walking", "running", "reaching", "sitting")


def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


def sample_pose_angles(rng: np.random.Generator, pose: str) -> PoseAngles:
    """Joint angles for a pose family, varied; limits applied by the caller."""
    n = rng.normal
    head = dict(head_nod=float(n(5, 10)), head_yaw=float(n(0, 22)), head_tilt=float(n(0, 5)))
    if pose == "standing":
        return PoseAngles(
            hip_flex=(n(0, 5), n(0, 5)), hip_abd=(_u(rng, 0, 12), _u(rng, 0, 12)),
            hip_rot=(n(5, 8), n(5, 8)), knee=(_u(rng, 0, 12), _u(rng, 0, 12)),
            shoulder_flex=(n(5, 15), n(5, 15)), shoulder_abd=(_u(rng, 4, 28), _u(rng, 4, 28)),
            shoulder_rot=(n(10, 15), n(10, 15)), elbow=(_u(rng, 5, 90), _u(rng, 5, 90)),
            torso_lean=float(n(2, 4)), torso_side=float(n(0, 3)), torso_twist=float(n(0, 6)),
            **head)
    if pose in ("walking", "running"):
        run = pose == "running"
        phase = _u(rng, 0, 2 * math.pi)
        amp = _u(rng, 35, 55) if run else _u(rng, 15, 28)
        s = math.sin(phase)
        swing_knee = (lambda ph: (_u(rng, 60, 100) if run else _u(rng, 25, 55))
                      * max(0.0, math.sin(ph + 0.9)) + _u(rng, 5, 15))
        return PoseAngles(
            hip_flex=(amp * s, -amp * s), hip_abd=(_u(rng, 0, 6), _u(rng, 0, 6)),
            hip_rot=(n(5, 5), n(5, 5)),
            knee=(swing_knee(phase), swing_knee(phase + math.pi)),
            shoulder_flex=(-0.8 * amp * s, 0.8 * amp * s),
            shoulder_abd=(_u(rng, 5, 18), _u(rng, 5, 18)),
            shoulder_rot=(n(10, 10), n(10, 10)),
            elbow=((_u(rng, 70, 100), _u(rng, 70, 100)) if run
                   else (_u(rng, 10, 40), _u(rng, 10, 40))),
            torso_lean=_u(rng, 8, 18) if run else _u(rng, 0, 6), torso_twist=-6 * s,
            ankle_flex=(n(0, 10), n(0, 10)), **head)
    if pose == "reaching":
        both = rng.random() < 0.4
        side = int(rng.integers(2))
        flex = [n(10, 12), n(10, 12)]
        abd = [_u(rng, 5, 20), _u(rng, 5, 20)]
        elbow = [_u(rng, 10, 60), _u(rng, 10, 60)]
        for k in ((0, 1) if both else (side,)):
            flex[k] = _u(rng, 50, 175)
            abd[k] = _u(rng, 0, 60)
            elbow[k] = _u(rng, 0, 40)
        return PoseAngles(
            hip_flex=(n(0, 6), n(0, 6)), hip_abd=(_u(rng, 0, 12), _u(rng, 0, 12)),
            knee=(_u(rng, 0, 15), _u(rng, 0, 15)), shoulder_flex=tuple(flex),
            shoulder_abd=tuple(abd), shoulder_rot=(n(0, 15), n(0, 15)), elbow=tuple(elbow),
            torso_lean=_u(rng, -8, 25), torso_side=float(n(0, 6)), torso_twist=float(n(0, 12)),
            head_nod=_u(rng, -30, 10), head_yaw=float(n(0, 15)), head_tilt=float(n(0, 5)))
    if pose == "sitting":
        hip = _u(rng, 75, 100)
        return PoseAngles(
            hip_flex=(hip + n(0, 6), hip + n(0, 6)), hip_abd=(_u(rng, 0, 20), _u(rng, 0, 20)),
            hip_rot=(n(0, 8), n(0, 8)),
            knee=(hip + n(0, 10), hip + n(0, 10)),
            shoulder_flex=(_u(rng, 10, 50), _u(rng, 10, 50)),
            shoulder_abd=(_u(rng, 5, 20), _u(rng, 5, 20)), shoulder_rot=(n(20, 10), n(20, 10)),
            elbow=(_u(rng, 30, 100), _u(rng, 30, 100)),
            torso_lean=_u(rng, -10, 20), torso_twist=float(n(0, 6)), **head)
    if pose == "lying":
        # Limbs mostly in the body plane (arms along the body or spread, overhead), on the ground.
        return PoseAngles(
            hip_flex=(_u(rng, -5, 30), _u(rng, -5, 30)), hip_abd=(_u(rng, 0, 25), _u(rng, 0, 25)),
            knee=(_u(rng, 0, 50), _u(rng, 0, 50)),
            shoulder_flex=(_u(rng, -15, 25), _u(rng, -15, 25)),
            shoulder_abd=(_u(rng, 5, 160), _u(rng, 5, 160)), elbow=(_u(rng, 0, 70), _u(rng, 0, 70)),
            torso_lean=_u(rng, -5, 10), head_nod=_u(rng, -10, 30), head_yaw=float(n(0, 30)))
    if pose == "jumping":
        arms_up = rng.random() < 0.6
        tuck = _u(rng, 10, 70)
        return PoseAngles(
            hip_flex=(tuck * _u(rng, 0.5, 1.0), tuck * _u(rng, 0.5, 1.0)),
            hip_abd=(_u(rng, 0, 20), _u(rng, 0, 20)),
            knee=(tuck * _u(rng, 1.0, 1.6), tuck * _u(rng, 1.0, 1.6)),
            shoulder_flex=((_u(rng, 120, 175), _u(rng, 120, 175)) if arms_up
                           else (_u(rng, -40, 40), _u(rng, -40, 40))),
            shoulder_abd=(_u(rng, 5, 60), _u(rng, 5, 60)), elbow=(_u(rng, 0, 40), _u(rng, 0, 40)),
            torso_lean=_u(rng, -5, 15), ankle_flex=(-_u(rng, 10, 40), -_u(rng, 10, 40)), **head)
    raise ValueError(f"unknown pose {pose!r}; known: {POSES}")
