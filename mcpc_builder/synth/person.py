"""One synthetic person: a body in a pose family, turned and placed on the ground."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..geometry import rot_x, rot_y, rot_z
from .body import (J, BodyShape, Capsule, Person3D, _transform_body, body_from_joints,
                   body_lowest_point, forward_kinematics, sample_body)
from .pose_library import PoseLibrary, placed_pose
from .anthropometry import sample_body_anthropometric
from .chair import CHAIR_SEAT_HEIGHT, chair_parts, chair_sitting_angles
from .gait import gait_angles
from .pose_families import _u, sample_pose_angles


@dataclass(frozen=True)
class Realism:
    """The per-person options of a world (see ``worlds.WorldConfig``); defaults: the default world.

    Arguments:
        body_proportions: ``fixed`` (``body.sample_body``) or ``anthropometric``
            (``anthropometry.sample_body_anthropometric``).
        length_spread, breadth_spread: multipliers of the anthropometric spreads.
        gait: ``synthetic`` (the default world's walk) or ``cycle`` (``gait``: a real gait cycle).
        seating: ``stool`` (a stool under the pelvis) or ``chair`` (``chair``).
    """

    body_proportions: str = "fixed"
    length_spread: float = 1.0
    breadth_spread: float = 1.0
    gait: str = "synthetic"
    seating: str = "stool"

    def sample_body(self, rng: np.random.Generator, height: float, is_child: bool) -> BodyShape:
        if self.body_proportions == "anthropometric":
            return sample_body_anthropometric(rng, height, is_child, self.length_spread,
                                              self.breadth_spread)
        return sample_body(rng, height, is_child)


def build_person(rng: np.random.Generator, pose: str, height: float, is_child: bool,
                 yaw: float, position_xy: np.ndarray, realism: Realism | None = None
                 ) -> Person3D:
    """A person of a pose family standing (sitting, lying, jumping) at ``position_xy``.

    Arguments:
        pose: one of ``POSES``.
        height: stature, metres.
        yaw: facing direction, radians about world z (0 = facing +x).
        position_xy: (2,) metres, where the pelvis is above the ground.
        realism: the world's body, gait and seating options (None: the default world's person,
            drawn exactly as before these options existed).
    """
    realism = realism or Realism()
    shape = realism.sample_body(rng, height, is_child)
    flight = 0.0
    if pose in ("walking", "running") and realism.gait == "cycle":
        ang, _, flight = gait_angles(rng, pose == "running")
        ang = ang.clamped()
    else:
        ang = sample_pose_angles(rng, pose).clamped()
    chair = pose == "sitting" and realism.seating == "chair"
    if chair:
        ang = chair_sitting_angles(rng, ang)
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
    if chair:
        # The chair carries the pelvis: thighs on a seat of ordinary height (feet may dangle or
        # stretch forward), unless the feet would go through the floor.
        seat_height = _u(rng, *CHAIR_SEAT_HEIGHT)
        lift = max(lift, seat_height + shape.r_thigh - float(joints[J["pelvis"], 2]))
    lift += flight * shape.height
    t = np.array([position_xy[0], position_xy[1], lift])
    joints = joints + t
    body = _transform_body(body, np.eye(3), t)
    if chair:
        body = body + chair_parts(rng, joints, shape, yaw)
    elif pose == "sitting":
        body = body + (_seat(joints, shape),)
    return Person3D(joints, pose, is_child, shape.height if realism.body_proportions != "fixed"
                    else height, body, ang, shape)


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
                         height: float, is_child: bool, yaw: float, position_xy: np.ndarray,
                         realism: Realism | None = None) -> Person3D:
    """A person in library pose ``index``, scaled to ``height``, turned by ``yaw``, its pelvis
    above ``position_xy``. The library's floor becomes the ground (airborne poses stay airborne;
    contacts keep the library's few-centimetre errors). ``pose`` is the library's activity."""
    shape = (realism or Realism()).sample_body(rng, height, is_child)
    joints, extras = placed_pose(library, index, height, yaw)
    t = np.array([position_xy[0], position_xy[1], 0.0])
    joints = joints + t
    extras = {k: v + t for k, v in extras.items()}
    body = body_from_joints(joints, shape, extras)
    activity = str(library.activity[index]) or "library"
    return Person3D(joints, activity, is_child, height, body, None, shape)
