"""Joint layouts, declared once: names, left/right flip pairs, skeleton edges, and mappings.

Every layout names its joints with points of one body vocabulary (``BODY_POINTS``), so mapping
between layouts is a lookup by point name. A joint the source lacks is *unlabelled* (visibility 0,
coordinate NaN), never a fake coordinate. A few joints can be *synthesised* exactly as midpoints
(pelvis = mid-hips, thorax = mid-shoulders, spine = mid(pelvis, thorax)); ``convert`` marks those.

Sources of the orders: ../shared/reference/dataset-formats.md (§1.2 COCO, §2.2 MPII, §3.2 H36M,
§4.3 MPI-INF-3DHP, §7 mapping). H36M-17 indices 1-3 and 14-16 are the subject's *right* side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The body vocabulary every layout draws from. 3DHP's "neck" is the neck base (= thorax) and its
# "head" is the head joint of the mocap skeleton at the top of the neck (= upper_neck), as in the
# H36M<->3DHP mapping of the reference (§7).
BODY_POINTS: tuple[str, ...] = (
    "pelvis", "spine", "thorax", "upper_neck", "head_top", "nose",
    "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)

# Points that are exact midpoints of others (applied in this order, so spine sees a synthesised
# pelvis/thorax). Anything else a source lacks stays unlabelled.
SYNTHESIS_RULES: tuple[tuple[str, tuple[str, str]], ...] = (
    ("pelvis", ("left_hip", "right_hip")),
    ("thorax", ("left_shoulder", "right_shoulder")),
    ("spine", ("pelvis", "thorax")),
)


def _mirror(point: str) -> str:
    if point.startswith("left_"):
        return "right_" + point[5:]
    if point.startswith("right_"):
        return "left_" + point[6:]
    return point


@dataclass(frozen=True)
class JointLayout:
    """One dataset's joint order.

    Arguments:
        name: short layout name (``coco17``, ``mpii16``, ``h36m17``, ``mpi3dhp17``, ``mcpc21``).
        joint_names: the dataset's own joint names, in its order.
        body_points: for each joint, the ``BODY_POINTS`` entry it denotes.
        edge_names: skeleton edges as (point, point) pairs, parent first.
    """

    name: str
    joint_names: tuple[str, ...]
    body_points: tuple[str, ...]
    edge_names: tuple[tuple[str, str], ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        assert len(self.joint_names) == len(self.body_points), self.name
        unknown = set(self.body_points) - set(BODY_POINTS)
        assert not unknown, f"{self.name}: unknown body points {unknown}"
        assert len(set(self.body_points)) == len(self.body_points), f"{self.name}: duplicate point"
        object.__setattr__(self, "index", {p: i for i, p in enumerate(self.body_points)})
        for a, b in self.edge_names:
            assert a in self.index and b in self.index, f"{self.name}: bad edge {a}-{b}"

    @property
    def num_joints(self) -> int:
        return len(self.body_points)

    @property
    def flip_index(self) -> np.ndarray:
        """(J,) int64: the joint each joint becomes under a horizontal flip (an involution)."""
        return np.array([self.index[_mirror(p)] for p in self.body_points], dtype=np.int64)

    @property
    def flip_pairs(self) -> tuple[tuple[int, int], ...]:
        """(left, right) index pairs, each once."""
        flip = self.flip_index
        return tuple((i, int(flip[i])) for i in range(self.num_joints)
                     if self.body_points[i].startswith("left_"))

    @property
    def edges(self) -> np.ndarray:
        """(E, 2) int64 skeleton edges, parent first."""
        return np.array([(self.index[a], self.index[b]) for a, b in self.edge_names],
                        dtype=np.int64).reshape(-1, 2)

    @property
    def left_joints(self) -> tuple[int, ...]:
        return tuple(i for i, p in enumerate(self.body_points) if p.startswith("left_"))

    @property
    def right_joints(self) -> tuple[int, ...]:
        return tuple(i for i, p in enumerate(self.body_points) if p.startswith("right_"))

    def joint(self, point: str) -> int:
        """Index of a body point in this layout (KeyError if the layout lacks it)."""
        return self.index[point]

    def joints(self, points) -> np.ndarray:
        """(K,) int64 indices of body points in this layout (KeyError if one is missing)."""
        return np.array([self.index[p] for p in points], dtype=np.int64)


# The arm and leg segments, declared once: (segment, parent point, child point). The priors
# (scale, foreshortening, occlusion, lifting) and the layouts' skeletons take them from here.
LIMBS: tuple[tuple[str, str, str], ...] = (
    ("left_upper_arm", "left_shoulder", "left_elbow"),
    ("right_upper_arm", "right_shoulder", "right_elbow"),
    ("left_forearm", "left_elbow", "left_wrist"),
    ("right_forearm", "right_elbow", "right_wrist"),
    ("left_thigh", "left_hip", "left_knee"),
    ("right_thigh", "right_hip", "right_knee"),
    ("left_shin", "left_knee", "left_ankle"),
    ("right_shin", "right_knee", "right_ankle"),
)
# The torso's left-right lines: (line, left point, right point).
TORSO_LINES: tuple[tuple[str, str, str], ...] = (
    ("shoulder_line", "left_shoulder", "right_shoulder"),
    ("hip_line", "left_hip", "right_hip"),
)
# The face points COCO annotates (MCPC-21 puts them first).
FACE_POINTS: tuple[str, ...] = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")


def limb_kind(segment: str) -> str:
    """``left_upper_arm`` -> ``upper_arm``: the segment without its side."""
    return segment.split("_", 1)[1] if segment.startswith(("left_", "right_")) else segment


_LIMBS = tuple((a, b) for _, a, b in LIMBS)  # as skeleton edges

_COCO_POINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
# The official 1-based COCO skeleton, converted to names.
_COCO_SKELETON_1BASED = ((16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7),
                         (6, 8), (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5),
                         (4, 6), (5, 7))

COCO17 = JointLayout(
    name="coco17",
    joint_names=_COCO_POINTS,
    body_points=_COCO_POINTS,
    edge_names=tuple((_COCO_POINTS[a - 1], _COCO_POINTS[b - 1]) for a, b in _COCO_SKELETON_1BASED),
)

_MPII_POINTS = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)
MPII16 = JointLayout(
    name="mpii16",
    joint_names=_MPII_POINTS,
    body_points=_MPII_POINTS,
    edge_names=_LIMBS + (
        ("pelvis", "left_hip"), ("pelvis", "right_hip"), ("pelvis", "thorax"),
        ("thorax", "upper_neck"), ("upper_neck", "head_top"),
        ("thorax", "left_shoulder"), ("thorax", "right_shoulder"),
    ),
)

_H36M_POINTS = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "upper_neck", "head_top",
    "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
)
H36M17 = JointLayout(
    name="h36m17",
    # VideoPose3D / Martinez naming.
    joint_names=("hip", "right_hip", "right_knee", "right_foot", "left_hip", "left_knee",
                 "left_foot", "spine", "thorax", "neck_nose", "head", "left_shoulder",
                 "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist"),
    body_points=_H36M_POINTS,
    # Parents [-1,0,1,2,0,4,5,0,7,8,9,8,11,12,8,14,15] as edges.
    edge_names=tuple((_H36M_POINTS[p], _H36M_POINTS[c]) for c, p in enumerate(
        (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)) if p >= 0),
)
H36M17_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

MPI3DHP17 = JointLayout(
    name="mpi3dhp17",
    joint_names=("head_top", "neck", "right_shoulder", "right_elbow", "right_wrist",
                 "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
                 "right_ankle", "left_hip", "left_knee", "left_ankle", "pelvis", "spine", "head"),
    body_points=("head_top", "thorax", "right_shoulder", "right_elbow", "right_wrist",
                 "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
                 "right_ankle", "left_hip", "left_knee", "left_ankle", "pelvis", "spine",
                 "upper_neck"),
    edge_names=_LIMBS + (
        ("pelvis", "left_hip"), ("pelvis", "right_hip"), ("pelvis", "spine"),
        ("spine", "thorax"), ("thorax", "upper_neck"), ("upper_neck", "head_top"),
        ("thorax", "left_shoulder"), ("thorax", "right_shoulder"),
    ),
)
# The official 3DPCK / AUC joint set: the 14 joints of the PCK groups (pelvis, spine, head excluded).
MPI3DHP_PCK_JOINTS = tuple(range(14))
MPI3DHP_ROOT = 14

MCPC21 = JointLayout(
    name="mcpc21",
    joint_names=_COCO_POINTS + ("pelvis", "thorax", "upper_neck", "head_top"),
    body_points=_COCO_POINTS + ("pelvis", "thorax", "upper_neck", "head_top"),
    edge_names=COCO17.edge_names + (
        ("pelvis", "left_hip"), ("pelvis", "right_hip"),
        ("thorax", "left_shoulder"), ("thorax", "right_shoulder"),
        ("thorax", "upper_neck"), ("upper_neck", "head_top"),
    ),
)

LAYOUTS: dict[str, JointLayout] = {
    lay.name: lay for lay in (COCO17, MPII16, H36M17, MPI3DHP17, MCPC21)
}


def mapping(src: JointLayout, dst: JointLayout) -> np.ndarray:
    """(J_dst,) int64: for each destination joint the source joint index, or -1 if absent."""
    return np.array([src.index.get(p, -1) for p in dst.body_points], dtype=np.int64)


def convert(points: np.ndarray, visibility: np.ndarray, src: JointLayout, dst: JointLayout,
            synthesise: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Re-order joints from one layout to another.

    Arguments:
        points: (..., J_src, D) float, any unit; unlabelled joints may hold anything.
        visibility: (..., J_src) uint8, 0 unlabelled / 1 labelled-occluded / 2 visible.
        src, dst: the layouts.
        synthesise: fill destination joints that are exact midpoints (``SYNTHESIS_RULES``) when
            both ends are labelled.

    Returns:
        points (..., J_dst, D) float32 with NaN where unlabelled; visibility (..., J_dst) uint8;
        synthesised (J_dst,)-broadcastable (..., J_dst) bool, True where a joint was synthesised.
    """
    points = np.asarray(points, dtype=np.float32)
    visibility = np.asarray(visibility, dtype=np.uint8)
    lead = points.shape[:-2]
    dim = points.shape[-1]
    # Work in the full body vocabulary, then pick the destination's points.
    body_pts = np.full(lead + (len(BODY_POINTS), dim), np.nan, dtype=np.float32)
    body_vis = np.zeros(lead + (len(BODY_POINTS),), dtype=np.uint8)
    body_syn = np.zeros(lead + (len(BODY_POINTS),), dtype=bool)
    vocab = {p: i for i, p in enumerate(BODY_POINTS)}
    src_idx = np.array([vocab[p] for p in src.body_points])
    body_pts[..., src_idx, :] = np.where(visibility[..., None] > 0, points, np.nan)
    body_vis[..., src_idx] = visibility
    if synthesise:
        for target, (a, b) in SYNTHESIS_RULES:
            t, ia, ib = vocab[target], vocab[a], vocab[b]
            both = (body_vis[..., ia] > 0) & (body_vis[..., ib] > 0)
            fill = both & (body_vis[..., t] == 0)
            mid = 0.5 * (body_pts[..., ia, :] + body_pts[..., ib, :])
            body_pts[..., t, :] = np.where(fill[..., None], mid, body_pts[..., t, :])
            body_vis[..., t] = np.where(fill, np.minimum(body_vis[..., ia], body_vis[..., ib]),
                                        body_vis[..., t])
            body_syn[..., t] |= fill
    dst_idx = np.array([vocab[p] for p in dst.body_points])
    return body_pts[..., dst_idx, :], body_vis[..., dst_idx], body_syn[..., dst_idx]
