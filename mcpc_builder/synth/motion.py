"""Smooth single-person motion for the video formats (Human3.6M, MPI-INF-3DHP)."""

from __future__ import annotations

import math

import numpy as np

from ..geometry import rot_z
from .body import NUM_POINTS, _transform_body, body_lowest_point, forward_kinematics, sample_body
from .joint_limits import PoseAngles
from .pose_families import _u

def sample_motion(rng: np.random.Generator, n_frames: int, fps: float = 50.0,
                  height: float | None = None, area_radius: float = 1.8) -> np.ndarray:
    """One adult moving smoothly in a capture area: walking bouts with turns, pauses with arm
    motion.

    Arguments:
        rng: the only source of randomness.
        n_frames: number of frames T.
        fps: frames per second.
        height: stature in metres (drawn when None).
        area_radius: the walker starts at the origin and turns back towards it when farther
            than this (metres), so a long sequence stays inside a studio's capture volume.

    Returns:
        (T, 22, 3) float64 world-frame joints, metres, ``joints.BODY_POINTS`` order, feet on z=0.
    """
    stature = height if height is not None else _u(rng, 1.55, 1.9)
    shape = sample_body(rng, stature, False)
    t = np.arange(n_frames) / fps

    def smooth(n_terms=3, lo=0.05, hi=0.4):
        # A smooth random signal in [-1, 1]: a few sinusoids of low frequency.
        freqs = rng.uniform(lo, hi, n_terms)
        phases = rng.uniform(0, 2 * math.pi, n_terms)
        amps = rng.uniform(0.5, 1.0, n_terms)
        sig = (amps[:, None] * np.sin(2 * math.pi * freqs[:, None] * t + phases[:, None])).sum(0)
        return sig / amps.sum()

    walk = np.clip(0.5 + 0.8 * smooth(2, 0.03, 0.12), 0.0, 1.0)  # 0 = standing, 1 = walking
    cadence = _u(rng, 0.85, 1.0)                                  # strides per second
    phase = 2 * math.pi * np.cumsum(cadence * walk) / fps + _u(rng, 0, 2 * math.pi)
    stride = 0.8 * shape.height                                   # metres per stride
    speed = stride * cadence * walk
    wander = 0.6 * smooth(3, 0.02, 0.1)                           # rad/s of free turning
    heading = np.zeros(n_frames)
    pos = np.zeros((n_frames, 2))
    h, xy = _u(rng, -math.pi, math.pi), np.zeros(2)
    for k in range(n_frames):
        rate = wander[k]
        dist = float(np.hypot(*xy))
        if dist > 0.4 * area_radius:
            # Steer back towards the centre, harder the farther out (at most 2.5 rad/s).
            home = math.atan2(-xy[1], -xy[0])
            err = (home - h + math.pi) % (2 * math.pi) - math.pi
            rate += float(np.clip(4.0 * err * (dist / area_radius), -2.5, 2.5))
        h += rate / fps
        xy = xy + speed[k] / fps * np.array([math.cos(h), math.sin(h)])
        heading[k], pos[k] = h, xy
    arm_l, arm_r, elb_l, elb_r = (smooth(3, 0.1, 0.5) for _ in range(4))
    head_yaw, head_nod, lean = smooth(2, 0.05, 0.3), smooth(2, 0.05, 0.3), smooth(2, 0.02, 0.1)
    out = np.zeros((n_frames, NUM_POINTS, 3))
    for k in range(n_frames):
        s = math.sin(phase[k])
        amp = 24.0 * walk[k]
        idle = 1.0 - walk[k]
        knee = lambda ph: 8 + 45 * walk[k] * max(0.0, math.sin(ph + 0.9))  # noqa: E731
        ang = PoseAngles(
            hip_flex=(amp * s, -amp * s), hip_abd=(4.0, 4.0), hip_rot=(5.0, 5.0),
            knee=(knee(phase[k]), knee(phase[k] + math.pi)),
            shoulder_flex=(-0.8 * amp * s + idle * 60 * max(0.0, arm_l[k]),
                           0.8 * amp * s + idle * 60 * max(0.0, arm_r[k])),
            shoulder_abd=(10 + idle * 30 * abs(arm_r[k]), 10 + idle * 30 * abs(arm_l[k])),
            shoulder_rot=(10.0, 10.0),
            elbow=(20 + 50 * (0.5 + 0.5 * elb_l[k]), 20 + 50 * (0.5 + 0.5 * elb_r[k])),
            torso_lean=4 + 6 * lean[k], torso_twist=-5 * s,
            head_nod=5 + 10 * head_nod[k], head_yaw=25 * head_yaw[k]).clamped()
        joints, body = forward_kinematics(shape, ang)
        R = rot_z(heading[k])
        joints = joints @ R.T
        body = _transform_body(body, R, np.zeros(3))
        joints[:, 2] -= body_lowest_point(body)
        joints[:, :2] += pos[k]
        out[k] = joints
    return out
