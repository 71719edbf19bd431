"""COCO-format keypoint layouts, recognised by the names in ``categories[].keypoints``.

Many datasets ship COCO-format JSON with another joint list. The reader never places a joint by
position: it reads the person category's ``keypoints`` names, finds the layout whose name set
they are, and maps each named joint to the MCPC body point it denotes. Unknown name sets are
refused with one line naming the file, what was found and the known layouts.

Name lists, from the datasets' public definitions (checked against their published
``categories`` entries or the dataset metadata of pose toolkits that load them):

- ``coco17``: COCO person keypoints (cocodataset.org format page; the val2017 ``categories``).
  COCO-WholeBody's ``keypoints`` are the same 17 body names (its face / hand / foot points live in
  other fields), so a WholeBody file reads as coco17.
- ``crowdpose14``: CrowdPose (Li et al. 2019, github.com/Jeff-sjtu/CrowdPose) ``categories``:
  12 limb joints in COCO names, then ``head`` (top of the head) and ``neck``.
- ``posetrack18``: PoseTrack 2018 ``categories``: ``nose, head_bottom, head_top, left_ear,
  right_ear`` (ears are placeholders, never annotated), then the 12 COCO limb joints.
  ``head_bottom`` is MPII's upper neck (PoseTrack 2017's MPII-style list puts it where MPII has
  upper_neck); visibility flags are only "labelled" (0/1), not visible/occluded.
- ``halpe26``: Halpe full-body (github.com/Fang-Haoshu/Halpe-FullBody) body part: COCO's 17,
  then ``head, neck, hip`` (hip = pelvis, the hips' centre) and six foot points.
- ``h36m17``: Human3.6M 17 joints written as COCO JSON, under either naming: mmpose's
  (``root ... neck_base, head``) or the VideoPose3D / Martinez one (``hip ... neck_nose, head``).
  As in ``joints.H36M17``: root / hip = pelvis, ``*_foot`` = ankle, neck_base / neck_nose = upper
  neck, head = head top; spine has no MCPC joint.

Joints whose meaning differs between datasets (CrowdPose's and Halpe's ``neck``: throat or base
of the neck) and points MCPC-21 lacks (spine, toes, heels) are read and dropped, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

COCO17_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear",
                "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
                "left_wrist", "right_wrist", "left_hip", "right_hip",
                "left_knee", "right_knee", "left_ankle", "right_ankle")
_LIMBS12 = COCO17_NAMES[5:]


@dataclass(frozen=True)
class KeypointLayout:
    """A COCO-format keypoint list: its names (file order) and what each denotes.

    Arguments:
        name: short layout name recorded in the manifest.
        names: the dataset's keypoint names in its order.
        points: {name: MCPC body point} for the names MCPC-21 keeps; other names are dropped.
        flags: ``"coco"`` (v = 0 unlabelled, 1 labelled occluded, 2 visible) or
            ``"labelled"`` (v > 0 only says labelled: read as visible, so no joint is claimed
            occluded).
    """

    name: str
    names: tuple[str, ...]
    points: dict
    flags: str = "coco"


def _same(names) -> dict:
    return {n: n for n in names}


# Human3.6M-17 after its root joint, with the neck between thorax and head; the spine joint
# (between pelvis and thorax, not a midpoint of MCPC joints) has no MCPC-21 counterpart.
_H36M_AFTER_ROOT = ("right_hip", "right_knee", "right_foot", "left_hip", "left_knee", "left_foot",
                    "spine", "thorax", "head", "left_shoulder", "left_elbow", "left_wrist",
                    "right_shoulder", "right_elbow", "right_wrist")
_H36M_TO_MCPC = {**_same(("right_hip", "right_knee", "left_hip", "left_knee", "thorax",
                          "left_shoulder", "left_elbow", "left_wrist", "right_shoulder",
                          "right_elbow", "right_wrist")),
                 "right_foot": "right_ankle", "left_foot": "left_ankle", "head": "head_top"}


LAYOUTS: tuple[KeypointLayout, ...] = (
    KeypointLayout("coco17", COCO17_NAMES, _same(COCO17_NAMES)),
    KeypointLayout("crowdpose14", _LIMBS12 + ("head", "neck"),
                   {**_same(_LIMBS12), "head": "head_top"}),
    KeypointLayout("posetrack18", ("nose", "head_bottom", "head_top", "left_ear", "right_ear")
                   + _LIMBS12,
                   {**_same(("nose", "left_ear", "right_ear") + _LIMBS12),
                    "head_bottom": "upper_neck", "head_top": "head_top"}, flags="labelled"),
    KeypointLayout("halpe26", COCO17_NAMES + ("head", "neck", "hip", "left_big_toe",
                                              "right_big_toe", "left_small_toe",
                                              "right_small_toe", "left_heel", "right_heel"),
                   {**_same(COCO17_NAMES), "head": "head_top", "hip": "pelvis"}),
    # Human3.6M-17 written as COCO: two naming conventions of one layout (root / neck).
    *(KeypointLayout("h36m17", (root,) + _H36M_AFTER_ROOT[:8] + (neck,) + _H36M_AFTER_ROOT[8:],
                     {root: "pelvis", neck: "upper_neck", **_H36M_TO_MCPC})
      for root, neck in (("root", "neck_base"), ("hip", "neck_nose"))),
)
KNOWN = ", ".join(sorted({lay.name for lay in LAYOUTS}))


def normalise(name: str) -> str:
    """``"Left Shoulder"`` / ``"left-shoulder"`` -> ``"left_shoulder"``."""
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


@dataclass(frozen=True)
class FileLayout:
    """A file's keypoint layout, resolved: ``columns`` (K,) are the file's joint indices MCPC
    keeps and ``body_points`` (K,) what they denote."""

    layout: KeypointLayout
    num_joints: int
    columns: tuple[int, ...]
    body_points: tuple[str, ...]


def resolve(names) -> FileLayout | None:
    """The known layout whose name set ``names`` is (any order), or None."""
    found = [normalise(n) for n in names]
    for lay in LAYOUTS:
        if len(found) == len(lay.names) and set(found) == set(lay.names) \
                and len(set(found)) == len(found):
            cols = tuple(i for i, n in enumerate(found) if n in lay.points)
            return FileLayout(lay, len(found), cols, tuple(lay.points[found[i]] for i in cols))
    return None


DEFAULT = resolve(COCO17_NAMES)
