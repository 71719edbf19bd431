"""One synthetic person: a body in a pose family, turned and placed on the ground."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..geometry import rot_x, rot_y, rot_z
from .body import (J, BodyShape, Capsule, Person3D, _transform_body, body_from_joints,
                   body_lowest_point, forward_kinematics, sample_body)
from .pose_library import PoseLibrary, placed_pose
from .pose_families import _u, sample_pose_angles

def build_person(rng: np.random.Generator, pose: str, height: float, is_child: bool,
                 yaw: float, position_xy: np.ndarray) -> Person3D:
    """A person of a pose family standing (sitting, lying, jumping) at ``position_xy``.

    Arguments:
        pose: one of ``POSES``.
        height: stature, metres.
        yaw: facing direction, radians about world z (0 = facing +x).
        position_xy: (2,) metres, where the pelvis is above the ground.
    """
    shape = sample_body(rng, height, is_child)
    ang = sample_pose_angles(rng, pose).clamped()
    root = None
    if pose == "lying":
        kind = int(rng.integers(4))  # on the back, on the front, on the right / left side
        root = (rot_y(-math.pi / 2), rot_y(math.pi / 2),
                rot_x(math.pi / 2), rot_x(-math.pi / 2))[kind]
        if kind >= 2:
            # On the side, spreading limbs would lift the body: limbs forwards, not sideways.
            ang = replace(ang, hip_abd=(_u(rng, 0, 8), _u(rng, 0, 8)),
                          shoulder_abd=(_u(rng, 0, 12), _u(rng, 0, 12)),
                          shoulder_flex=(_u(rng, 0, 100), _u(rng, 0, 100)),
                          hip_flex=(_u(rng, 0, 70), _u(rng, 0, 70))).clamped()
    joints, body = forward_kinematics(shape, ang, root)
    R = rot_z(yaw)
    joints = joints @ R.T
    body = _transform_body(body, R, np.zeros(3))
    # Ground contact: the lowest body surface on z = 0 (feet when grounded, the body when lying);
    # a jumper's lowest point is lifted off the ground.
    lift = -body_lowest_point(body)
    if pose == "jumping":
        lift += _u(rng, 0.1, 0.5)
    t = np.array([position_xy[0], position_xy[1], lift])
    joints = joints + t
    body = _transform_body(body, np.eye(3), t)
    if pose == "sitting":
        body = body + (_seat(joints, shape),)
    return Person3D(joints, pose, is_child, height, body, ang, shape)


def _seat(joints: np.ndarray, shape: BodyShape) -> Capsule:
    """A stool under a sitting person's pelvis: a vertical capsule from the ground to the seat.

    It belongs to nobody's joints, so it hides joints behind it like any other object."""
    seat_top = joints[J["pelvis"], 2] - shape.r_thigh
    r = min(0.16 + 0.05 * shape.height / 1.75, 0.5 * seat_top)
    # Centred a little behind the hips so the thighs rest on it.
    hips = 0.5 * (joints[J["left_hip"]] + joints[J["right_hip"]])
    knees = 0.5 * (joints[J["left_knee"]] + joints[J["right_knee"]])
    back = hips[:2] - 0.15 * (knees[:2] - hips[:2])
    return Capsule(np.array([back[0], back[1], r]), np.array([back[0], back[1], seat_top - r]), r,
                   "seat", ())


def build_library_person(rng: np.random.Generator, library: PoseLibrary, index: int,
                         height: float, is_child: bool, yaw: float, position_xy: np.ndarray
                         ) -> Person3D:
    """A person in library pose ``index``, scaled to ``height``, turned by ``yaw``, its pelvis
    above ``position_xy``. The library's floor becomes the ground (airborne poses stay airborne;
    contacts keep the library's few-centimetre errors). ``pose`` is the library's activity."""
    shape = sample_body(rng, height, is_child)
    joints, extras = placed_pose(library, index, height, yaw)
    t = np.array([position_xy[0], position_xy[1], 0.0])
    joints = joints + t
    extras = {k: v + t for k, v in extras.items()}
    body = body_from_joints(joints, shape, extras)
    activity = str(library.activity[index]) or "library"
    return Person3D(joints, activity, is_child, height, body, None, shape)
