"""The synthetic world: people built by forward kinematics, on the ground, seen by a camera.

World frame: metres, Z up, ground plane z = 0. Camera frame: OpenCV (x right, y down, z forward).
Pixels: 0-based, x right, y down. Everything is drawn from one ``numpy.random.Generator`` so a seed
gives the same scene.

A person is a skeleton of the 22 ``joints.BODY_POINTS`` plus a *body*: capsules (limbs, neck,
shoulder and hip girdles, feet, hands) and ellipsoids (torso, head). The body is what the renderer
draws and what decides occlusion, so the visibility flags agree with the images:
a joint is visible (v=2) when no body part other than its own lies between the camera and the body
surface over the joint, occluded (v=1) otherwise, unlabelled (v=0) outside the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np

from .. import config_io
from ..joints import BODY_POINTS

J = {name: i for i, name in enumerate(BODY_POINTS)}
NUM_POINTS = len(BODY_POINTS)  # 22
POSES = ("standing", "walking", "running", "reaching", "sitting", "lying", "jumping")
GROUNDED_POSES = ("standing", "walking", "running", "reaching", "sitting")

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


# --------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class WorldConfig:
    """How scenes are drawn. All ranges are (low, high); lengths in metres, angles in degrees.

    Arguments:
        people_count_weights: relative frequency of 1, 2, ... people per scene.
        child_fraction: probability that a person is a child.
        adult_height, child_height: stature ranges.
        pose_weights: (pose, weight) pairs over ``POSES``.
        camera_height: camera centre height above the ground.
        camera_roll: max |roll|.
        pitch_jitter, yaw_jitter: max deviation from looking straight at the group.
        focal_factor: focal length as a multiple of the image width.
        image_sizes: (width, height) choices.
        distance: range of the person's distance from the camera (ground-plane distance).
        group_spread: standard deviation of people around the group centre.
    """

    people_count_weights: tuple[float, ...] = (0.42, 0.26, 0.16, 0.1, 0.06)
    child_fraction: float = 0.15
    adult_height: tuple[float, float] = (1.50, 1.95)
    child_height: tuple[float, float] = (1.00, 1.45)
    pose_weights: tuple[tuple[str, float], ...] = (
        ("standing", 0.34), ("walking", 0.24), ("running", 0.07), ("reaching", 0.1),
        ("sitting", 0.13), ("lying", 0.05), ("jumping", 0.07),
    )
    camera_height: tuple[float, float] = (0.5, 3.0)
    camera_roll: float = 4.0
    pitch_jitter: float = 6.0
    yaw_jitter: float = 10.0
    focal_factor: tuple[float, float] = (0.6, 1.6)
    image_sizes: tuple[tuple[int, int], ...] = ((640, 480), (480, 640), (512, 384), (640, 427),
                                                (427, 640))
    distance: tuple[float, float] = (2.0, 15.0)
    group_spread: float = 1.2

    def __post_init__(self) -> None:
        names = {p for p, _ in self.pose_weights}
        unknown = names - set(POSES)
        if unknown:
            raise ValueError(f"WorldConfig: unknown poses {sorted(unknown)}; known: {POSES}")
        if not self.people_count_weights or min(self.people_count_weights) < 0:
            raise ValueError("WorldConfig: people_count_weights must be non-negative")

    @classmethod
    def from_dict(cls, data: dict) -> "WorldConfig":
        """Build from plain values (e.g. a YAML mapping); lists become tuples."""
        return config_io.from_dict(cls, data)

    @classmethod
    def from_yaml(cls, path) -> "WorldConfig":
        """Load from a YAML mapping of field names to values."""
        return config_io.load_yaml(cls, path)


# ------------------------------------------------------------------------------------- rotations
def rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# ------------------------------------------------------------------------------------------ body
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
    body = [
        Ellipsoid(p[J["spine"]] + R_chest @ (up * 0.18 * L), R_chest,
                  np.array([shape.torso_depth, shape.torso_width, 0.36 * L]),
                  "chest", (J["spine"], J["thorax"])),
        Ellipsoid(p[J["pelvis"]] + R_lower @ (up * 0.27 * L), R_lower,
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
        heel, toe, hand = feet_hands[side]
        body += [
            Capsule(p[sh], p[el], shape.r_upper_arm, f"{side}_upper_arm", (sh, el)),
            Capsule(p[el], p[wr], shape.r_forearm, f"{side}_forearm", (el, wr)),
            Capsule(p[wr], hand, shape.r_hand, f"{side}_hand", (wr,)),
            Capsule(p[hi], p[kn], shape.r_thigh, f"{side}_thigh", (hi, kn)),
            Capsule(p[kn], p[an], shape.r_shank, f"{side}_shank", (kn, an)),
            Capsule(heel, toe, shape.r_foot, f"{side}_foot", (an,)),
        ]
    return p, tuple(body)


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


# ----------------------------------------------------------------------------------------- poses
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


# ---------------------------------------------------------------------------------------- camera
@dataclass
class Camera:
    """A pinhole camera.

    Arguments:
        K: (3, 3) float64 intrinsics, pixels.
        R: (3, 3) float64 rotation world -> camera (OpenCV axes).
        t: (3,) float64 translation, metres: X_cam = R @ X_world + t.
        width, height: image size, pixels.
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int

    @property
    def centre(self) -> np.ndarray:
        """(3,) camera centre in world coordinates, metres."""
        return -self.R.T @ self.t

    def to_camera(self, X_world: np.ndarray) -> np.ndarray:
        """(..., 3) world metres -> (..., 3) camera-frame metres."""
        return np.asarray(X_world, dtype=float) @ self.R.T + self.t

    def project(self, X_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points to pixels.

        Arguments:
            X_world: (..., 3) metres.

        Returns:
            uv (..., 2) float64 pixels (0-based); z (...) float64 depth in metres (camera z).
        """
        return project_camera(self.to_camera(X_world), self.K)

    def in_image(self, uv: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(...,) bool: in front of the camera and on a pixel, i.e. inside
        [-0.5, width - 0.5) x [-0.5, height - 0.5) (pixel centres are integers), so a rounded
        coordinate is always a valid pixel index."""
        return ((z > 1e-6) & (uv[..., 0] >= -0.5) & (uv[..., 0] < self.width - 0.5)
                & (uv[..., 1] >= -0.5) & (uv[..., 1] < self.height - 0.5))


def project_camera(X_cam: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) camera-frame metres -> uv (..., 2) pixels, z (...) metres."""
    X_cam = np.asarray(X_cam, dtype=float)
    z = X_cam[..., 2]
    safe = np.where(np.abs(z) < 1e-9, 1e-9, z)
    uv_h = X_cam @ K.T
    return uv_h[..., :2] / safe[..., None], z


def look_at_camera(centre: np.ndarray, target: np.ndarray, roll: float, K: np.ndarray,
                   width: int, height: int) -> Camera:
    """A camera at ``centre`` (3,) looking at ``target`` (3,), rolled by ``roll`` radians."""
    fwd = target - centre
    fwd = fwd / np.linalg.norm(fwd)
    right = np.cross(fwd, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    c, s = math.cos(roll), math.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    R = np.stack([right, down, fwd], axis=0)  # rows: camera axes in world coordinates
    return Camera(K=K, R=R, t=-R @ centre, width=width, height=height)


# ----------------------------------------------------------------------------------------- scene
@dataclass
class Scene:
    """A camera and the people it sees.

    Arguments:
        camera: the camera.
        people: the people (mutually non-overlapping on the ground).
        indoor: the renderer draws a floor and a back wall instead of ground and sky.
    """

    camera: Camera
    people: list[Person3D]
    indoor: bool = False

    def joints_camera(self) -> np.ndarray:
        """(P, 22, 3) float64 camera-frame metres."""
        if not self.people:
            return np.zeros((0, NUM_POINTS, 3))
        return self.camera.to_camera(np.stack([p.joints_world for p in self.people]))

    def keypoints(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """uv (P, 22, 2) pixels, depth (P, 22) metres, visibility (P, 22) uint8 0/1/2."""
        X = self.joints_camera()
        uv, z = project_camera(X, self.camera.K)
        return uv, z, visibility(self)


def _choice(rng, weights) -> int:
    w = np.asarray(weights, dtype=float)
    return int(rng.choice(len(w), p=w / w.sum()))


def sample_scene(rng: np.random.Generator, config: WorldConfig = WorldConfig(),
                 n_people: int | None = None) -> Scene:
    """One random scene: people on the ground seen by a perspective camera.

    Arguments:
        rng: the only source of randomness.
        config: ranges and weights.
        n_people: force a number of people (else drawn from ``config.people_count_weights``).
            The first person is always placed; a later one is dropped when 20 tries find no
            free ground for it.
    """
    width, height = config.image_sizes[int(rng.integers(len(config.image_sizes)))]
    f = _u(rng, *config.focal_factor) * width
    K = np.array([[f, 0.0, width / 2.0 + _u(rng, -0.01, 0.01) * width],
                  [0.0, f, height / 2.0 + _u(rng, -0.01, 0.01) * height],
                  [0.0, 0.0, 1.0]])
    cam_h = _u(rng, *config.camera_height)
    count = n_people if n_people is not None else 1 + _choice(rng, config.people_count_weights)
    half_fov = math.atan(0.5 * width / f)
    # People around a group centre in front of the camera (camera at the origin looking along +y).
    lo, hi = config.distance
    # Log-uniform, skewed towards near groups (photos mostly show people at a few metres).
    d0 = lo * (hi / lo) ** (float(rng.random()) ** 1.6) + 0.3
    a0 = _u(rng, -0.5, 0.5) * half_fov
    group = np.array([d0 * math.sin(a0), d0 * math.cos(a0)])
    pose_names = [p for p, _ in config.pose_weights]
    pose_w = [w for _, w in config.pose_weights]
    people: list[Person3D] = []
    radii: list[float] = []
    for _ in range(count):
        is_child = bool(rng.random() < config.child_fraction)
        stature = _u(rng, *(config.child_height if is_child else config.adult_height))
        pose = pose_names[_choice(rng, pose_w)]
        yaw = _u(rng, -math.pi, math.pi)
        for _attempt in range(20):
            xy = group + rng.normal(0.0, config.group_spread * (1 if people else 0.3), 2)
            dist = float(np.hypot(*xy))
            ang = math.atan2(xy[0], xy[1])
            if not (lo <= dist <= hi and abs(ang) < 0.9 * half_fov + 0.1):
                continue
            person = build_person(rng, pose, stature, is_child, yaw, xy)
            r = footprint_radius(person)
            ok = all(np.linalg.norm(person.joints_world[J["pelvis"], :2]
                                    - q.joints_world[J["pelvis"], :2]) > r + rq + 0.05
                     for q, rq in zip(people, radii))
            if ok:
                people.append(person)
                radii.append(r)
                break
        else:
            if not people:  # nobody placed yet: put the first person at the group centre
                d = float(np.clip(np.hypot(*group), lo, hi))
                xy = group / np.hypot(*group) * d
                person = build_person(rng, pose, stature, is_child, yaw, xy)
                people.append(person)
                radii.append(footprint_radius(person))
    # Aim at the group's mid-body height, with jitter so people are not always centred.
    if people:
        target = np.mean([p.joints_world[J["pelvis"]] for p in people], axis=0)
        target[2] = np.mean([0.5 * p.joints_world[:, 2].max() for p in people]) + 0.2
    else:
        target = np.array([group[0], group[1], 1.0])
    centre = np.array([0.0, 0.0, cam_h])
    fwd = target - centre
    yaw_c = math.atan2(fwd[0], fwd[1]) + math.radians(_u(rng, -1, 1) * config.yaw_jitter)
    pitch = math.atan2(fwd[2], math.hypot(fwd[0], fwd[1])) + math.radians(
        _u(rng, -1, 1) * config.pitch_jitter)
    look = centre + np.array([math.sin(yaw_c) * math.cos(pitch),
                              math.cos(yaw_c) * math.cos(pitch), math.sin(pitch)])
    roll = math.radians(_u(rng, -1, 1) * config.camera_roll)
    camera = look_at_camera(centre, look, roll, K, width, height)
    return Scene(camera=camera, people=people, indoor=bool(rng.random() < 0.45))


# ------------------------------------------------------------------------------------ visibility
def _capsule_entry(u: np.ndarray, a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    """Distance along unit rays ``u`` (N,3) from the origin to where they enter a capsule (inf if
    they miss). ``a``, ``b`` (3,) capsule ends, ``r`` radius; all in the camera frame."""
    ba = b - a
    oa = -a
    baba = float(ba @ ba)
    bard = u @ ba
    baoa = float(ba @ oa)
    rdoa = u @ oa
    oaoa = float(oa @ oa)
    qa = baba - bard * bard
    qb = baba * rdoa - baoa * bard
    qc = baba * oaoa - baoa * baoa - r * r * baba
    h = qb * qb - qa * qc
    best = np.full(len(u), np.inf)
    if baba > 1e-12:  # the cylinder (a zero-length capsule is a sphere)
        ok = (h >= 0) & (qa > 1e-12)
        t = (-qb - np.sqrt(np.maximum(h, 0))) / np.where(ok, qa, 1.0)
        y = baoa + t * bard
        ok &= (y > 0) & (y < baba) & (t > 0)
        best = np.where(ok, t, best)
    for end in (a, b):  # the two end spheres
        oc = -end
        bb = u @ oc
        cc = float(oc @ oc) - r * r
        hh = bb * bb - cc
        ts = -bb - np.sqrt(np.maximum(hh, 0))
        best = np.where((hh >= 0) & (ts > 0), np.minimum(best, ts), best)
    return best


def _ellipsoid_entry(u: np.ndarray, centre: np.ndarray, axes: np.ndarray, semi: np.ndarray
                     ) -> np.ndarray:
    """Distance along unit rays ``u`` (N,3) from the origin into an ellipsoid (inf: miss)."""
    o = (axes.T @ (-centre)) / semi
    d = (u @ axes) / semi
    qa = np.sum(d * d, axis=1)
    qb = d @ o
    qc = float(o @ o) - 1.0
    h = qb * qb - qa * qc
    t = (-qb - np.sqrt(np.maximum(h, 0))) / qa
    return np.where((h >= 0) & (t > 0), t, np.inf)


def primitive_entry(prim, u: np.ndarray) -> np.ndarray:
    """(N,) distance along unit camera rays ``u`` (N,3) to a camera-frame primitive (inf: miss)."""
    if isinstance(prim, Capsule):
        return _capsule_entry(u, prim.a, prim.b, prim.radius)
    return _ellipsoid_entry(u, prim.centre, prim.axes, prim.semi)


def primitive_contains(prim, X: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """(N,) bool: points X (N,3) inside the primitive grown by ``margin`` metres."""
    if isinstance(prim, Capsule):
        ba = prim.b - prim.a
        h = np.clip(((X - prim.a) @ ba) / max(float(ba @ ba), 1e-12), 0.0, 1.0)
        dist = np.linalg.norm(X - prim.a - h[:, None] * ba, axis=1)
        return dist < prim.radius + margin
    q = ((X - prim.centre) @ prim.axes) / (prim.semi + margin)
    return np.sum(q * q, axis=1) < 1.0


def body_in_camera(person: Person3D, camera: Camera) -> tuple:
    """The person's body parts in the camera frame."""
    return _transform_body(person.body, camera.R, camera.t)


def occlusion(scene: Scene, tolerance: float = 0.01) -> np.ndarray:
    """(P, 22) bool: True where a joint is hidden by a body part (self- or mutual occlusion).

    A joint's own parts (those it is an end of, or lies inside) never hide it; any other part
    hides it when the camera ray through the joint enters that part before the body surface over
    the joint (the joint's depth minus its own radius, minus ``tolerance`` metres).
    """
    people = scene.people
    out = np.zeros((len(people), NUM_POINTS), dtype=bool)
    if not people:
        return out
    bodies = [body_in_camera(p, scene.camera) for p in people]
    X = scene.joints_camera()
    for pi, person in enumerate(people):
        Xp = X[pi]
        dist = np.linalg.norm(Xp, axis=1)
        u = Xp / np.maximum(dist, 1e-9)[:, None]
        surface = dist - joint_surface_radius(bodies[pi]) - tolerance
        for qi, body in enumerate(bodies):
            for prim in body:
                entry = primitive_entry(prim, u)
                hides = entry < surface
                if qi == pi:
                    own = np.zeros(NUM_POINTS, dtype=bool)
                    own[list(prim.points)] = True
                    own |= primitive_contains(prim, Xp)
                    hides &= ~own
                out[pi] |= hides
    return out


def visibility(scene: Scene) -> np.ndarray:
    """(P, 22) uint8 COCO-style flags: 0 outside the image (or behind the camera), 1 hidden by a
    body part, 2 visible."""
    if not scene.people:
        return np.zeros((0, NUM_POINTS), dtype=np.uint8)
    uv, z = project_camera(scene.joints_camera(), scene.camera.K)
    inside = scene.camera.in_image(uv, z)
    occ = occlusion(scene)
    return np.where(inside, np.where(occ, 1, 2), 0).astype(np.uint8)


# ---------------------------------------------------------------------------------------- motion
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
