"""A pose library: real 3D poses (motion capture) that the synthetic world can pose its people in.

File format (``.npz``, as ``../shared/fixtures/mocap-dev/poses.npz``): ``joints`` (N, J, 3) world
positions in metres, Z up, floor at z = 0; ``joint_names`` (J,) str; optional ``activity`` (N,) str.
Joints are mapped to ``joints.BODY_POINTS`` *by name*:

* every body point the library names itself (``nose`` ... ``right_ankle``, ``pelvis``,
  ``head_top``; ``thorax``, ``spine``, ``upper_neck`` when present) is taken as is;
* ``pelvis`` missing: mid-hips; ``thorax`` missing: mid-shoulders (the layouts' synthesis rules);
* ``upper_neck`` missing: halfway from ``neck`` (the base of the neck, as in DeepMimic and 3DHP's
  ``neck``) to ``head_centre`` -- the MPII upper neck sits at the top of the neck, below the skull;
* ``spine``: mid(pelvis, thorax).

A ``.bvh`` file (motion capture in the BioVision hierarchy) is read with ``pybvh`` (``pip install
pybvh``; an optional dependency) and its joints named by ``BVH_NAMES`` (CMU / Mixamo / Daz
conventions: ``Hips``, ``LeftUpLeg``, ``LeftLeg``, ``LeftFoot``, ``LeftToeBase``, ``LeftArm``,
``LeftForeArm``, ``LeftHand``, ``Neck``, ``Head`` and its end site). BVH skeletons have no face:
the nose, eyes and ears are placed on a head ellipsoid between ``Head`` (the upper neck) and its
end site (the head top), facing along the chest (the head's own turn is not used). Y-up files
are turned Z-up, the floor is the median over frames of the lowest joint, and units do not matter
(poses are scaled to each person's stature).

Optional extras shape the body: ``left_toe``/``right_toe`` (the feet), ``left_hand``/``right_hand``
(hand ends) and ``head_centre``. A library without a required point is refused with its file and
the missing names.
"""

from __future__ import annotations

import functools
import math
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..joints import BODY_POINTS

REQUIRED_NAMED = ("nose", "left_eye", "right_eye", "left_ear", "right_ear",
                  "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
                  "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
                  "left_ankle", "right_ankle", "head_top")
EXTRAS = ("left_toe", "right_toe", "left_hand", "right_hand", "head_centre")
# Stature from the chain ankle-knee-hip + pelvis-thorax + thorax-head top: the chain leaves out
# the ankle height (~4% of stature, as ``body.sample_body``), so stature = chain / 0.96.
CHAIN_FRACTION_OF_STATURE = 0.96


@dataclass(frozen=True)
class PoseLibrary:
    """Poses mapped to ``BODY_POINTS``.

    Arguments:
        path: the file read.
        joints: (N, 22, 3) float64 metres, Z up, floor z = 0, ``BODY_POINTS`` order; each pose
            moved horizontally so its pelvis is above the origin (heights unchanged).
        extras: name -> (N, 3) float64 metres in the same frame, for the ``EXTRAS`` it has.
        activity: (N,) str, the clip's activity with trailing digits dropped ("" when absent).
        stature: the library body's stature in metres (median chain length / 0.96).
    """

    path: str
    joints: np.ndarray
    extras: dict
    activity: np.ndarray
    stature: float

    def __len__(self) -> int:
        return len(self.joints)


def _error(path, msg: str) -> ValueError:
    return ValueError(f"{path}: pose library: {msg}")


# What reading a pose library raises for a bad file (``load_pose_library`` names the file).
READ_ERRORS = (ValueError, OSError, KeyError, EOFError)


def as_data_error(path, err: BaseException) -> DataError:
    """A ``READ_ERRORS`` error from reading the library ``path`` as one ``DataError`` naming the
    file once (``<path>: pose library: <what>``)."""
    msg = str(err)
    for named in (f"{path}: ", f"{Path(path).resolve()}: "):
        if msg.startswith(named):
            msg = msg[len(named):]
            break
    return DataError(path, msg if msg.startswith("pose library") else f"pose library: {msg}")


@functools.lru_cache(maxsize=8)
def load_pose_library(path: str) -> PoseLibrary:
    """Read and map a pose library (cached per path: scenes draw from it thousands of times)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: pose library not found")
    if p.suffix.lower() == ".bvh":
        data = read_bvh(p)
    elif p.suffix.lower() == ".npz":
        if not zipfile.is_zipfile(p):
            raise _error(path, "not a .npz archive (a zip of .npy arrays)")
        try:
            with np.load(p, allow_pickle=False) as d:
                data = {k: d[k] for k in d.files}
        except (zipfile.BadZipFile, zlib.error) as err:  # a corrupted member (CRC, deflate)
            raise _error(path, f"damaged archive: {err}") from None
    else:
        raise _error(path, "a pose library is a .npz (joints, joint_names) or a .bvh file")
    if "joints" not in data or "joint_names" not in data:
        raise _error(path, "needs arrays 'joints' (N, J, 3) and 'joint_names' (J,)")
    X = np.asarray(data["joints"], dtype=np.float64)
    names = [str(n) for n in data["joint_names"]]
    if X.ndim != 3 or X.shape[2] != 3 or X.shape[1] != len(names) or len(X) == 0:
        raise _error(path, f"'joints' must be (N>0, {len(names)}, 3), got {X.shape}")
    bad = ~np.isfinite(X).all(axis=(1, 2))
    if bad.any():
        raise _error(path, f"pose {int(np.flatnonzero(bad)[0])} has non-finite coordinates")
    idx = {n: i for i, n in enumerate(names)}
    missing = [n for n in REQUIRED_NAMED if n not in idx]
    if "upper_neck" not in idx and not ("neck" in idx and "head_centre" in idx):
        missing.append("upper_neck (or neck and head_centre)")
    if missing:
        raise _error(path, f"missing joint names {missing}; has {names}")

    def get(name):
        return X[:, idx[name]]

    out = np.zeros((len(X), len(BODY_POINTS), 3))
    for j, point in enumerate(BODY_POINTS):
        if point in idx:
            out[:, j] = get(point)
    B = {n: i for i, n in enumerate(BODY_POINTS)}
    if "pelvis" not in idx:
        out[:, B["pelvis"]] = 0.5 * (get("left_hip") + get("right_hip"))
    if "thorax" not in idx:
        out[:, B["thorax"]] = 0.5 * (get("left_shoulder") + get("right_shoulder"))
    if "upper_neck" not in idx:
        out[:, B["upper_neck"]] = 0.5 * (get("neck") + get("head_centre"))
    if "spine" not in idx:
        out[:, B["spine"]] = 0.5 * (out[:, B["pelvis"]] + out[:, B["thorax"]])
    centre = out[:, B["pelvis"], :2].copy()
    out[:, :, :2] -= centre[:, None, :]
    extras = {}
    for name in EXTRAS:
        if name in idx:
            e = get(name).copy()
            e[:, :2] -= centre
            extras[name] = e
    activity = np.array([re.sub(r"\d+$", "", str(a)) for a in data["activity"]]
                        if "activity" in data else [""] * len(X))
    return PoseLibrary(str(path), out, extras, activity, library_stature(out))


def library_stature(joints: np.ndarray) -> float:
    """Stature (metres) of the body behind (N, 22, 3) poses: the median over poses of
    mean leg (ankle-knee-hip) + pelvis-thorax + thorax-head top, divided by 0.96."""
    B = {n: i for i, n in enumerate(BODY_POINTS)}

    def seg(a, b):
        return np.linalg.norm(joints[:, B[a]] - joints[:, B[b]], axis=-1)

    leg = 0.5 * sum(seg(f"{s}_ankle", f"{s}_knee") + seg(f"{s}_knee", f"{s}_hip")
                    for s in ("left", "right"))
    chain = leg + seg("pelvis", "thorax") + seg("thorax", "head_top")
    return float(np.median(chain)) / CHAIN_FRACTION_OF_STATURE


def placed_pose(library: PoseLibrary, index: int, stature: float, yaw: float
                ) -> tuple[np.ndarray, dict]:
    """Pose ``index`` scaled to ``stature`` (uniformly, about its floor point below the pelvis, so
    bone-length ratios are the library's), turned by ``yaw`` radians about Z.

    Returns:
        joints (22, 3) float64 metres with the pelvis above the origin and the library's floor at
        z = 0; extras name -> (3,) in the same frame.
    """
    s = stature / library.stature
    c, si = math.cos(yaw), math.sin(yaw)
    R = np.array([[c, -si, 0.0], [si, c, 0.0], [0.0, 0.0, 1.0]])
    joints = (library.joints[index] * s) @ R.T
    extras = {k: (v[index] * s) @ R.T for k, v in library.extras.items()}
    return joints, extras


# BVH joint names (lower case, without a "mixamorig:"-style prefix) -> body points / extras.
BVH_NAMES = {
    "pelvis": ("hips", "hip", "pelvis", "root"),
    "left_hip": ("leftupleg", "leftthigh", "lthigh", "l_hip", "lefthip"),
    "right_hip": ("rightupleg", "rightthigh", "rthigh", "r_hip", "righthip"),
    "left_knee": ("leftleg", "leftshin", "lshin", "leftknee", "l_knee", "leftlowerleg"),
    "right_knee": ("rightleg", "rightshin", "rshin", "rightknee", "r_knee", "rightlowerleg"),
    "left_ankle": ("leftfoot", "lfoot", "leftankle", "l_ankle"),
    "right_ankle": ("rightfoot", "rfoot", "rightankle", "r_ankle"),
    "left_toe": ("lefttoebase", "lefttoe", "ltoe", "lefttoes"),
    "right_toe": ("righttoebase", "righttoe", "rtoe", "righttoes"),
    "left_shoulder": ("leftarm", "leftupperarm", "lshldr", "l_shoulder"),
    "right_shoulder": ("rightarm", "rightupperarm", "rshldr", "r_shoulder"),
    "left_elbow": ("leftforearm", "leftlowerarm", "lforearm", "leftelbow", "l_elbow"),
    "right_elbow": ("rightforearm", "rightlowerarm", "rforearm", "rightelbow", "r_elbow"),
    "left_wrist": ("lefthand", "lhand", "leftwrist", "l_wrist"),
    "right_wrist": ("righthand", "rhand", "rightwrist", "r_wrist"),
    "neck": ("neck", "neck1", "lowerneck"),
    "upper_neck": ("head",),
    "head_top": ("endsitehead", "head_end", "headtop_end", "headend", "head_top"),
}
MAX_BVH_FRAMES = 5000


def _bvh_key(name: str) -> str:
    return name.split(":")[-1].replace(" ", "").lower()


def _on_head(upper_neck: np.ndarray, head_top: np.ndarray, left_hint: np.ndarray) -> dict:
    """(N, 3) face points on a head ellipsoid between the upper neck and the head top, placed as
    ``body.forward_kinematics`` places them (the face looking along ``left_hint`` x up)."""
    up = head_top - upper_neck
    hl = np.linalg.norm(up, axis=1, keepdims=True)
    up = up / np.maximum(hl, 1e-9)
    left = left_hint - (left_hint * up).sum(1, keepdims=True) * up
    left = left / np.maximum(np.linalg.norm(left, axis=1, keepdims=True), 1e-9)
    fwd = np.cross(left, up)
    semi = np.array([0.43, 0.35, 0.5])
    centre = upper_neck + hl * (0.1 * fwd + 0.5 * up)
    out = {}
    for name, d, push in (("nose", (1.0, 0.0, -0.25), 1.12), ("left_eye", (1.0, 0.42, 0.12), 1.04),
                          ("right_eye", (1.0, -0.42, 0.12), 1.04),
                          ("left_ear", (-0.1, 1.0, -0.05), 1.04),
                          ("right_ear", (-0.1, -1.0, -0.05), 1.04)):
        d = np.array(d)
        k = push / math.sqrt(float(np.sum((d / semi) ** 2)))
        out[name] = centre + hl * k * (d[0] * fwd + d[1] * left + d[2] * up)
    return out


def read_bvh(path: Path) -> dict:
    """A BVH clip as pose-library arrays (``joints`` (F, J, 3) metres-or-not, Z up, floor 0;
    ``joint_names``; ``activity``), every frame (strided to at most ``MAX_BVH_FRAMES``)."""
    try:
        import pybvh
    except ImportError:
        raise _error(path, "reading .bvh needs the pybvh package (pip install pybvh)") from None
    try:
        bvh = pybvh.read_bvh_file(str(path), warn_on_world_up_disagreement=False)
        P = np.asarray(pybvh.frames_to_node_positions(bvh), dtype=np.float64)
    except Exception as err:  # the parser's own errors name no file
        raise _error(path, f"cannot parse BVH: {err}") from None
    keys = {_bvh_key(n.name): i for i, n in enumerate(bvh.nodes)}
    stride = max(1, int(math.ceil(len(P) / MAX_BVH_FRAMES)))
    P = P[::stride]
    up = str(bvh.world_up)
    axis = "xyz".index(up[-1])
    sign = -1.0 if up.startswith("-") else 1.0
    if axis == 1:    # Y up: (x, y, z) -> (x, -z, y), right-handed
        P = np.stack([P[..., 0], -P[..., 2], P[..., 1]], axis=-1)
    elif axis == 0:  # X up: (x, y, z) -> (y, z, x)
        P = np.stack([P[..., 1], P[..., 2], P[..., 0]], axis=-1)
    P[..., 2] *= sign
    found, missing = {}, []
    for point, aliases in BVH_NAMES.items():
        hit = next((keys[a] for a in aliases if a in keys), None)
        if hit is None:
            if point not in ("left_toe", "right_toe"):
                missing.append(f"{point} ({'/'.join(aliases[:2])})")
            continue
        found[point] = P[:, hit]
    if "neck" not in found and "upper_neck" in found and not missing:
        found["neck"] = found["upper_neck"]
    if missing:
        raise _error(path, f"BVH joints not found: {missing}; has {[n.name for n in bvh.nodes]}")
    found.update(_on_head(found["upper_neck"], found["head_top"],
                          found["left_shoulder"] - found["right_shoulder"]))
    names = list(found)
    X = np.stack([found[n] for n in names], axis=1)
    X[..., 2] -= float(np.median(X[..., 2].min(axis=1)))
    return {"joints": X, "joint_names": np.array(names),
            "activity": np.full(len(X), Path(path).stem)}
