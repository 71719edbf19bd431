"""A chair for a seated person: seat, backrest and four legs that support and occlude.

Chairs have an ordinary seat height whoever sits on them (about 0.42-0.48 m: office and dining
chairs, EN 1335 / BIFMA ranges), so a child's feet may dangle and an adult may stretch their legs
forward or tuck their feet back. The parts are bodies like any other (ray-cast for occlusion,
drawn by the renderer) but belong to no joint; they are named ``seat`` so the renderer colours
them as furniture and leaves them out of the person's silhouette.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .body import J, BodyShape, Capsule, Ellipsoid
from .joint_limits import PoseAngles

CHAIR_SEAT_HEIGHT = (0.42, 0.48)  # metres, floor to seat top
SEAT_HALF_DEPTH, SEAT_HALF_WIDTH, SEAT_HALF_THICKNESS = 0.21, 0.22, 0.025
BACKREST_HALF_HEIGHT, BACKREST_HALF_THICKNESS = 0.21, 0.025
LEG_RADIUS = 0.016


def chair_sitting_angles(rng: np.random.Generator, ang: PoseAngles) -> PoseAngles:
    """A sitting pose varied for a chair: shanks from stretched forward (knee 40 deg less than the
    hip) to tucked back (30 deg more), the trunk from leaning back on the backrest to forward."""
    hip = ang.hip_flex
    knee = tuple(float(h + rng.uniform(-40.0, 30.0)) for h in hip)
    return replace(ang, knee=knee, torso_lean=float(rng.uniform(-15.0, 20.0))).clamped()


def chair_parts(rng: np.random.Generator, joints: np.ndarray, shape: BodyShape, yaw: float
                ) -> tuple:
    """Seat, backrest and legs under a seated person (world metres, the person already placed).

    The seat top is just under the thighs (pelvis height minus the thigh radius), centred a little
    in front of the hips; the backrest stands behind the pelvis at the seat's back edge."""
    c, s = math.cos(yaw), math.sin(yaw)
    fwd, left = np.array([c, s, 0.0]), np.array([-s, c, 0.0])
    axes = np.stack([fwd, left, np.array([0.0, 0.0, 1.0])], axis=1)
    hips = 0.5 * (joints[J["left_hip"]] + joints[J["right_hip"]])
    seat_top = float(hips[2] - shape.r_thigh)
    back_edge = hips[:2] - fwd[:2] * (0.6 * shape.torso_depth + 0.03)
    centre_xy = back_edge + fwd[:2] * SEAT_HALF_DEPTH
    seat = Ellipsoid(np.array([centre_xy[0], centre_xy[1], seat_top - SEAT_HALF_THICKNESS]), axes,
                     np.array([SEAT_HALF_DEPTH, SEAT_HALF_WIDTH, SEAT_HALF_THICKNESS]), "seat", ())
    back_h = BACKREST_HALF_HEIGHT * float(rng.uniform(0.8, 1.2))
    back_xy = back_edge - fwd[:2] * BACKREST_HALF_THICKNESS
    backrest = Ellipsoid(np.array([back_xy[0], back_xy[1], seat_top + 0.08 + back_h]), axes,
                         np.array([BACKREST_HALF_THICKNESS, SEAT_HALF_WIDTH, back_h]), "seat", ())
    legs = []
    for a in (-0.85, 0.85):
        for b in (-0.85, 0.85):
            xy = centre_xy + fwd[:2] * a * SEAT_HALF_DEPTH + left[:2] * b * SEAT_HALF_WIDTH
            top = seat_top - 2 * SEAT_HALF_THICKNESS
            legs.append(Capsule(np.array([xy[0], xy[1], LEG_RADIUS]),
                                np.array([xy[0], xy[1], max(top, 2 * LEG_RADIUS)]), LEG_RADIUS,
                                "seat", ()))
    return (seat, backrest, *legs)
