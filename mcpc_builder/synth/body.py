"""A person's body: segment lengths, forward kinematics, and its capsules and ellipsoids.

World frame: metres, Z up. A person is a skeleton of the 22 ``joints.BODY_POINTS`` plus a *body*:
capsules (limbs, neck, shoulder and hip girdles, feet, hands) and ellipsoids (torso, head). The
body is what the renderer draws and what decides occlusion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..geometry import rot_x, rot_y, rot_z  # noqa: F401  (rot_z re-exported for callers)
from ..joints import BODY_POINTS
from .joint_limits import PoseAngles

J = {name: i for i, name in enumerate(BODY_POINTS)}
NUM_POINTS = len(BODY_POINTS)  # 22


@dataclass(frozen=True)
class BodyShape:
    """Segment lengths and part radii of one person (metres)."""

    height: float
    is_child: bool
    ankle_height: float
    shank: float
    thigh: float
    hip_half_width: float
    torso: float          # pelvis (mid-hips) to thorax (mid-shoulders)
    shoulder_half_width: float
    neck: float           # thorax to upper neck
    head: float           # upper neck to head top
    upper_arm: float
    forearm: float
    foot: float
    r_thigh: float
    r_shank: float
    r_upper_arm: float
    r_forearm: float
    r_neck: float
    r_hand: float
    r_foot: float
    torso_depth: float    # chest semi-axis front-back
    torso_width: float    # chest semi-axis left-right


def sample_body(rng: np.random.Generator, height: float, is_child: bool) -> BodyShape:
    """Body proportions for a stature (anthropometric fractions, children with larger heads)."""
    # 0 for a small child (1.0 m) ... 1 for an adult: head and leg fractions change with growth.
    maturity = 1.0 if not is_child else float(np.clip((height - 0.95) / 0.6, 0.0, 1.0))
    head_frac = 0.125 + 0.055 * (1.0 - maturity)
    neck_frac = 0.05 - 0.012 * (1.0 - maturity)
    leg_frac = 0.53 - 0.05 * (1.0 - maturity)      # hip-joint height / stature

    def jit(scale=0.03):
        return float(1.0 + rng.uniform(-scale, scale))

    h = height
    ankle = 0.04 * h
    leg = leg_frac * h - ankle
    shank = 0.48 * leg * jit()
    thigh = leg - shank
    head = head_frac * h * jit(0.02)
    neck = neck_frac * h
    torso = h - (leg_frac * h) - head - neck
    width = jit(0.07)
    return BodyShape(
        height=h, is_child=is_child, ankle_height=ankle, shank=shank, thigh=thigh,
        hip_half_width=0.055 * h * jit(0.08), torso=torso,
        shoulder_half_width=0.1 * h * width, neck=neck, head=head,
        upper_arm=0.186 * h * jit(), forearm=0.15 * h * jit(), foot=0.12 * h,
        r_thigh=0.042 * h * width, r_shank=0.029 * h * width, r_upper_arm=0.027 * h * width,
        r_forearm=0.021 * h * width, r_neck=0.03 * h, r_hand=0.026 * h, r_foot=0.022 * h,
        torso_depth=0.064 * h * width, torso_width=0.118 * h * width,
    )


@dataclass(frozen=True)
class Capsule:
    """A segment ``a``-``b`` (metres) swept by a sphere of ``radius``; ``points``: own joints."""

    a: np.ndarray
    b: np.ndarray
    radius: float
    part: str
    points: tuple[int, ...]


@dataclass(frozen=True)
class Ellipsoid:
    """Centre (3,), axes (3,3) columns = unit axes, semi (3,) semi-axis lengths (metres)."""

    centre: np.ndarray
    axes: np.ndarray
    semi: np.ndarray
    part: str
    points: tuple[int, ...]


@dataclass
class Person3D:
    """One person in world coordinates.

    Arguments:
        joints_world: (22, 3) float64 metres, ``joints.BODY_POINTS`` order.
        pose: one of ``POSES``.
        is_child: True for a child.
        height: stature in metres.
        body: the person's capsules and ellipsoids in world coordinates.
        angles: the (clamped) joint angles used.
        shape: segment lengths and radii.
    """

    joints_world: np.ndarray
    pose: str
    is_child: bool
    height: float
    body: tuple = field(default_factory=tuple, repr=False)
    angles: PoseAngles | None = field(default=None, repr=False)
    shape: BodyShape | None = field(default=None, repr=False)

    def surface_radius(self) -> np.ndarray:
        """(22,) float: depth of the joint below its own body surface (metres)."""
        return joint_surface_radius(self.body)


def _side(v: tuple[float, float], i: int) -> float:
    return math.radians(v[i])


def forward_kinematics(shape: BodyShape, ang: PoseAngles, root: np.ndarray | None = None
                       ) -> tuple[np.ndarray, tuple]:
    """Joints and body of one person, pelvis at the origin of the local frame.

    Local frame: x forward (the way the person faces), y to the person's left, z up.

    Arguments:
        shape: segment lengths and radii.
        ang: joint angles (degrees), already clamped.
        root: (3,3) extra rotation of the whole body about the pelvis (e.g. lying), or None.

    Returns:
        joints (22, 3) float64 metres; body: tuple of Capsule / Ellipsoid.
    """
    R0 = np.eye(3) if root is None else root
    p = np.zeros((NUM_POINTS, 3))
    down = np.array([0.0, 0.0, -1.0])
    up = np.array([0.0, 0.0, 1.0])
    # Torso: lean forward (about y), bend sideways (about x), twist the chest (about z).
    R_pelvis = R0
    R_chest = R_pelvis @ rot_z(math.radians(ang.torso_twist)) @ rot_y(
        math.radians(ang.torso_lean)) @ rot_x(-math.radians(ang.torso_side))
    R_lower = R_pelvis @ rot_y(0.5 * math.radians(ang.torso_lean)) @ rot_x(
        -0.5 * math.radians(ang.torso_side))
    p[J["pelvis"]] = 0.0
    p[J["spine"]] = R_lower @ (up * 0.5 * shape.torso)
    p[J["thorax"]] = p[J["spine"]] + R_chest @ (up * 0.5 * shape.torso)
    feet_hands = {}
    for i, side in enumerate(("left", "right")):
        sgn = 1.0 if side == "left" else -1.0
        # Legs: hips on the pelvis line, thigh rotated (rotation, abduction, flexion), knee hinge.
        hip = R_pelvis @ np.array([0.0, sgn * shape.hip_half_width, 0.0])
        R_thigh = (R_pelvis @ rot_z(sgn * _side(ang.hip_rot, i))
                   @ rot_x(sgn * _side(ang.hip_abd, i)) @ rot_y(-_side(ang.hip_flex, i)))
        knee = hip + R_thigh @ (down * shape.thigh)
        R_shank = R_thigh @ rot_y(_side(ang.knee, i))     # a knee bends only backwards
        ankle = knee + R_shank @ (down * shape.shank)
        R_foot = R_shank @ rot_y(-_side(ang.ankle_flex, i))
        p[J[f"{side}_hip"]], p[J[f"{side}_knee"]], p[J[f"{side}_ankle"]] = hip, knee, ankle
        # Arms: shoulder on the chest line, upper arm (rotation, abduction, flexion), elbow hinge.
        shoulder = p[J["thorax"]] + R_chest @ np.array([0.0, sgn * shape.shoulder_half_width, 0.0])
        R_upper = (R_chest @ rot_x(sgn * _side(ang.shoulder_abd, i))
                   @ rot_y(-_side(ang.shoulder_flex, i)) @ rot_z(-sgn * _side(ang.shoulder_rot, i)))
        elbow = shoulder + R_upper @ (down * shape.upper_arm)
        R_fore = R_upper @ rot_y(-_side(ang.elbow, i))    # an elbow bends only forwards
        wrist = elbow + R_fore @ (down * shape.forearm)
        p[J[f"{side}_shoulder"]], p[J[f"{side}_elbow"]], p[J[f"{side}_wrist"]] = (
            shoulder, elbow, wrist)
        p_toe = ankle + R_foot @ np.array([0.75 * shape.foot, 0.0, -0.6 * shape.ankle_height])
        p_heel = ankle + R_foot @ np.array([-0.15 * shape.foot, 0.0, -0.5 * shape.ankle_height])
        p_hand = wrist + R_fore @ (down * 0.45 * shape.r_hand * 2)
        feet_hands[side] = (p_heel, p_toe, p_hand)
    # Pelvis is exactly mid-hips and thorax mid-shoulders (the layouts' synthesis rules).
    p[J["pelvis"]] = 0.5 * (p[J["left_hip"]] + p[J["right_hip"]])
    p[J["thorax"]] = 0.5 * (p[J["left_shoulder"]] + p[J["right_shoulder"]])
    # Head: neck along the chest axis, head rotated (yaw, nod, tilt) at the upper neck.
    p[J["upper_neck"]] = p[J["thorax"]] + R_chest @ rot_y(0.35 * math.radians(ang.head_nod)) @ (
        up * shape.neck)
    R_head = (R_chest @ rot_z(math.radians(ang.head_yaw)) @ rot_y(math.radians(ang.head_nod))
              @ rot_x(math.radians(ang.head_tilt)))
    hl = shape.head
    semi = np.array([0.43 * hl, 0.35 * hl, 0.5 * hl])
    centre_local = np.array([0.1 * hl, 0.0, 0.5 * hl])
    head_centre = p[J["upper_neck"]] + R_head @ centre_local

    def on_head(direction, push):
        # A point on the head ellipsoid surface in a head-frame direction, pushed out by ``push``.
        d = np.asarray(direction, dtype=float)
        s = 1.0 / math.sqrt(float(np.sum((d / semi) ** 2)))
        return head_centre + R_head @ (d * s * push)

    p[J["head_top"]] = on_head([0.0, 0.0, 1.0], 1.01)
    p[J["nose"]] = on_head([1.0, 0.0, -0.25], 1.12)
    p[J["left_eye"]] = on_head([1.0, 0.42, 0.12], 1.04)
    p[J["right_eye"]] = on_head([1.0, -0.42, 0.12], 1.04)
    p[J["left_ear"]] = on_head([-0.1, 1.0, -0.05], 1.04)
    p[J["right_ear"]] = on_head([-0.1, -1.0, -0.05], 1.04)

    # Torso: a chest (wide at the shoulders) over an abdomen/pelvis, each turning with its
    # part of the spine.
    L = shape.torso
    body = _body_parts(p, shape, L, p[J["spine"]] + R_chest @ (up * 0.18 * L), R_chest,
                       p[J["pelvis"]] + R_lower @ (up * 0.27 * L), R_lower, head_centre, R_head,
                       semi, feet_hands)
    return p, body


def _body_parts(p, shape: BodyShape, L: float, chest_centre, R_chest, abdomen_centre, R_lower,
                head_centre, R_head, semi, ends: dict) -> tuple:
    """The body's primitives around joints ``p``, in a fixed order: chest, abdomen, head, neck,
    shoulder line, hip line, then per side upper arm, forearm, hand, thigh, shank, foot.
    The callers place the torso and head (``ends[side]`` = (heel, toe, hand end))."""
    body = [
        Ellipsoid(chest_centre, R_chest, np.array([shape.torso_depth, shape.torso_width, 0.36 * L]),
                  "chest", (J["spine"], J["thorax"])),
        Ellipsoid(abdomen_centre, R_lower,
                  np.array([0.92 * shape.torso_depth, 0.82 * shape.torso_width, 0.34 * L]),
                  "abdomen", (J["pelvis"], J["spine"])),
        Ellipsoid(head_centre, R_head, semi, "head", (J["head_top"],)),
        Capsule(p[J["thorax"]], p[J["upper_neck"]], shape.r_neck, "neck",
                (J["thorax"], J["upper_neck"])),
        Capsule(p[J["left_shoulder"]], p[J["right_shoulder"]], 1.1 * shape.r_upper_arm,
                "shoulders", (J["left_shoulder"], J["right_shoulder"], J["thorax"])),
        Capsule(p[J["left_hip"]], p[J["right_hip"]], 0.95 * shape.r_thigh, "hips",
                (J["left_hip"], J["right_hip"], J["pelvis"])),
    ]
    for side in ("left", "right"):
        sh, el, wr = J[f"{side}_shoulder"], J[f"{side}_elbow"], J[f"{side}_wrist"]
        hi, kn, an = J[f"{side}_hip"], J[f"{side}_knee"], J[f"{side}_ankle"]
        heel, toe, hand = ends[side]
        body += [
            Capsule(p[sh], p[el], shape.r_upper_arm, f"{side}_upper_arm", (sh, el)),
            Capsule(p[el], p[wr], shape.r_forearm, f"{side}_forearm", (el, wr)),
            Capsule(p[wr], hand, shape.r_hand, f"{side}_hand", (wr,)),
            Capsule(p[hi], p[kn], shape.r_thigh, f"{side}_thigh", (hi, kn)),
            Capsule(p[kn], p[an], shape.r_shank, f"{side}_shank", (kn, an)),
            Capsule(heel, toe, shape.r_foot, f"{side}_foot", (an,)),
        ]
    return tuple(body)


def _transform_body(body: tuple, R: np.ndarray, t: np.ndarray) -> tuple:
    """Body parts mapped by x -> R x + t."""
    out = []
    for prim in body:
        if isinstance(prim, Capsule):
            out.append(Capsule(R @ prim.a + t, R @ prim.b + t, prim.radius, prim.part, prim.points))
        else:
            out.append(Ellipsoid(R @ prim.centre + t, R @ prim.axes, prim.semi, prim.part,
                                 prim.points))
    return tuple(out)


def body_lowest_point(body: tuple) -> float:
    """Lowest z (metres) of the body surface."""
    low = math.inf
    for prim in body:
        if isinstance(prim, Capsule):
            low = min(low, prim.a[2] - prim.radius, prim.b[2] - prim.radius)
        else:
            # Extent of an ellipsoid along z: sqrt(sum_k (semi_k * axes[2,k])^2).
            low = min(low, prim.centre[2] - float(np.sqrt(np.sum((prim.semi * prim.axes[2]) ** 2))))
    return low


def joint_surface_radius(body: tuple) -> np.ndarray:
    """(22,) float: for each joint the largest radius of the capsules it is an end of (metres).

    The body surface over a joint lies about this far towards the camera; face points and the
    head top lie on the head surface (0).
    """
    r = np.zeros(NUM_POINTS)
    for prim in body:
        if isinstance(prim, Capsule):
            for j in prim.points:
                r[j] = max(r[j], prim.radius)
    return r


def footprint_radius(person: Person3D) -> float:
    """Radius (metres) of the ground circle around the pelvis that holds the whole body."""
    centre = person.joints_world[J["pelvis"], :2]
    reach = 0.0
    for prim in person.body:
        if isinstance(prim, Capsule):
            for q in (prim.a, prim.b):
                reach = max(reach, float(np.linalg.norm(q[:2] - centre)) + prim.radius)
        else:
            ext = float(np.max(prim.semi))
            reach = max(reach, float(np.linalg.norm(prim.centre[:2] - centre)) + ext)
    return reach


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else v


def _frame(up: np.ndarray, left_hint: np.ndarray) -> np.ndarray:
    """(3,3) columns (forward, left, up): ``up`` normalised, left made orthogonal to it."""
    z = _unit(up)
    y = _unit(left_hint - (left_hint @ z) * z)
    return np.stack([np.cross(y, z), y, z], axis=1)


def body_from_joints(p: np.ndarray, shape: BodyShape, extras: dict | None = None) -> tuple:
    """Capsules and ellipsoids around given joints (a pose library's), with ``shape``'s radii.

    The parts are those of ``forward_kinematics``, oriented by the joints instead of by angles:
    the chest by thorax-spine and the shoulder line, the abdomen by spine-pelvis and the hip line,
    the head by upper neck-head top and the ear line. The head ellipsoid is shrunk where needed so
    the face points lie just outside it (so a turned head hides its far ear and eye).

    Arguments:
        p: (22, 3) float64 metres, ``BODY_POINTS`` order.
        shape: radii and girths (segment lengths are the joints' own).
        extras: optional (3,) points ``left_toe``/``right_toe``, ``left_hand``/``right_hand``,
            ``head_centre`` (same frame).
    """
    extras = extras or {}
    up_chest = p[J["thorax"]] - p[J["spine"]]
    L = float(np.linalg.norm(p[J["thorax"]] - p[J["pelvis"]]))
    R_chest = _frame(up_chest, p[J["left_shoulder"]] - p[J["right_shoulder"]])
    R_lower = _frame(p[J["spine"]] - p[J["pelvis"]], p[J["left_hip"]] - p[J["right_hip"]])
    hl = float(np.linalg.norm(p[J["head_top"]] - p[J["upper_neck"]]))
    R_head = _frame(p[J["head_top"]] - p[J["upper_neck"]],
                    p[J["left_ear"]] - p[J["right_ear"]])
    semi = np.array([0.43 * hl, 0.35 * hl, 0.5 * hl])
    head_centre = extras.get("head_centre")
    if head_centre is None:
        head_centre = p[J["upper_neck"]] + R_head @ np.array([0.1 * hl, 0.0, 0.5 * hl])
    face = [J[n] for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "head_top")]
    q = np.linalg.norm(((p[face] - head_centre) @ R_head) / semi, axis=1)
    semi = semi * min(1.0, float(q.min()) / 1.03)
    forward = R_lower[:, 0]
    ends = {}
    for side in ("left", "right"):
        wr, kn, an = J[f"{side}_wrist"], J[f"{side}_knee"], J[f"{side}_ankle"]
        el = J[f"{side}_elbow"]
        shin = _unit(p[an] - p[kn])
        toe = extras.get(f"{side}_toe")
        if toe is None:
            toe = p[an] + 0.75 * shape.foot * forward + 0.6 * shape.ankle_height * shin
        along = toe - p[an]
        sole = _unit(shin - (shin @ _unit(along)) * _unit(along))
        heel = p[an] - 0.2 * along + 0.5 * shape.ankle_height * sole
        hand = extras.get(f"{side}_hand")
        fore = _unit(p[wr] - p[el])
        hand_end = p[wr] + fore * 0.45 * shape.r_hand * 2 if hand is None else \
            p[wr] + _unit(hand - p[wr]) * 0.45 * shape.r_hand * 2
        ends[side] = (heel, toe, hand_end)
    return _body_parts(p, shape, L, p[J["spine"]] + R_chest[:, 2] * 0.18 * L, R_chest,
                       p[J["pelvis"]] + R_lower[:, 2] * 0.27 * L, R_lower, head_centre, R_head,
                       semi, ends)
