"""Human3.6M readers: VideoPose3D npz files and the mks0601 JSON set (dataset-formats.md §3).

Both return one ``H36MFrames``: flat arrays with one row per (sequence, camera, frame), 3D in the
camera frame (mm, H36M-17 order; indices 1-3 and 14-16 are the subject's right), 2D in pixels, the
base action name, the subject and (mks0601) the frame's image path relative to the root.

Policies (where the releases disagree):
- Actions are grouped by their base name: ``name.split(' ')[0]`` with the raw stems
  ``TakingPhoto`` -> ``Photo`` and ``WalkingDog`` -> ``WalkDog``; exact names, never prefixes, so
  ``Sitting`` and ``SittingDown`` (and ``Walking`` / ``WalkDog``) stay apart.
- The corrupt S11 Directions recording: the VideoPose3D reader drops the whole S11 stem
  ``Directions`` (all cameras, as VideoPose3D does); the mks0601 reader skips the one folder
  ``s_11_act_02_subact_02_ca_01`` (as mks0601 does). Both are counted in ``skipped``.
- 2D tracks longer than the mocap are truncated to it (VideoPose3D); shorter ones are an error.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcpc_builder.errors import DataError
from mcpc_builder.geometry import joint_bbox

from . import camera as geometry

SPLITS = {"train": (1, 5, 6, 7, 8), "test": (9, 11)}
CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
ACTIONS = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases",
           "Sitting", "SittingDown", "Smoking", "Photo", "Waiting", "Walking", "WalkDog",
           "WalkTogether")
_RENAMES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}
# H36M-17 = these indices of the 32-joint mocap skeleton.
KEPT_32 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
CORRUPT_VP3D = ("S11", "Directions")
CORRUPT_MKS0601 = "s_11_act_02_subact_02_ca_01"


def canonical_action(name: str) -> str:
    """Base action of a sequence name: "TakingPhoto 1" -> "Photo", "SittingDown" -> "SittingDown"."""
    base = name.split(" ")[0]
    base = _RENAMES.get(base, base)
    if base not in ACTIONS:
        raise ValueError(f"unknown Human3.6M action {name!r}")
    return base


@dataclass(frozen=True)
class H36MCamera:
    """One calibrated camera. R (3,3) world->camera; centre (3,) world mm; f, c (2,) px;
    k (3,) radial; p (2,) tangential in metadata order [p1, p2]; width/height px."""

    id: str
    R: np.ndarray
    centre: np.ndarray
    f: np.ndarray
    c: np.ndarray
    k: np.ndarray = field(default_factory=lambda: np.zeros(3))
    p: np.ndarray = field(default_factory=lambda: np.zeros(2))
    width: int = 1000
    height: int = 1000

    def world_to_camera(self, x_world_mm: np.ndarray) -> np.ndarray:
        """(..., 3) world mm -> (..., 3) camera mm."""
        return geometry.world_to_camera(x_world_mm, self.R, self.centre)

    def project(self, x_cam_mm: np.ndarray) -> np.ndarray:
        """(..., 3) camera mm -> (..., 2) px through the H36M distortion model."""
        return geometry.project_h36m(x_cam_mm, self.f, self.c, self.k, self.p)


@dataclass
class H36MFrames:
    """Flat per-image arrays (N rows).

    Arguments:
        subject: (N,) int64 subject number (1, 5, ..., 11).
        action: (N,) str base action (see ``canonical_action``).
        sequence: (N,) str the release's own sequence name / folder.
        camera: (N,) int64 camera index 0..3 (``CAMERA_IDS`` order).
        frame: (N,) int64 0-based frame index in the sequence.
        joints_2d: (N, 17, 2) float32 px.
        joints_cam: (N, 17, 3) float32 camera frame, mm.
        image_paths: (N,) str relative to the root ("" when the source has no frames).
        bbox: (N, 4) float32 xywh px (joint extent x1.2 where the source gives none).
        cameras: {(subject, camera index): H36MCamera}.
        skipped: reason -> count of sequences left out.
    """

    subject: np.ndarray
    action: np.ndarray
    sequence: np.ndarray
    camera: np.ndarray
    frame: np.ndarray
    joints_2d: np.ndarray
    joints_cam: np.ndarray
    image_paths: np.ndarray
    bbox: np.ndarray
    cameras: dict
    skipped: Counter

    def __len__(self) -> int:
        return len(self.subject)


def _bbox_of(uv: np.ndarray) -> np.ndarray:
    return joint_bbox(uv).astype(np.float32)


def _concat(rows: list[dict], cameras: dict, skipped: Counter) -> H36MFrames:
    if not rows:
        empty = np.zeros(0)
        return H36MFrames(empty.astype(np.int64), empty.astype(str), empty.astype(str),
                          empty.astype(np.int64), empty.astype(np.int64),
                          np.zeros((0, 17, 2), np.float32), np.zeros((0, 17, 3), np.float32),
                          empty.astype(str), np.zeros((0, 4), np.float32), cameras, skipped)
    cat = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    return H36MFrames(cat["subject"].astype(np.int64), cat["action"], cat["sequence"],
                      cat["camera"].astype(np.int64), cat["frame"].astype(np.int64),
                      cat["joints_2d"].astype(np.float32), cat["joints_cam"].astype(np.float32),
                      cat["image_paths"], cat["bbox"].astype(np.float32), cameras, skipped)


def _load_json(path: Path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except json.JSONDecodeError as err:
        raise DataError(path, f"invalid JSON ({err.msg} at line {err.lineno})") from None


def _load_pickled_npz(path: Path, key: str):
    try:
        with np.load(path, allow_pickle=True) as data:
            if key not in data:
                raise DataError(path, f"no key {key!r} (has {sorted(data.files)})")
            return data[key].item(), {k: data[k].item() for k in data.files if k != key}
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (ValueError, OSError) as err:
        raise DataError(path, f"not a readable npz: {err}") from None


# ---------------------------------------------------------------- VideoPose3D
def load_vp3d_cameras(path: str | Path) -> dict:
    """VideoPose3D camera dicts dumped to JSON -> {(subject, cam index): H36MCamera}.

    The file holds ``{"intrinsic": [4 x {id, center, focal_length, radial_distortion,
    tangential_distortion, res_w, res_h}], "extrinsic": {"S1": [4 x {orientation [w,x,y,z]
    camera->world, translation (camera centre, mm)}], ...}}`` (the contents of VideoPose3D's
    ``h36m_cameras_intrinsic_params`` / ``h36m_cameras_extrinsic_params``; VP3D stores the
    tangential coefficients swapped, [p2, p1]).
    """
    path = Path(path)
    data = _load_json(path)
    try:
        intr = data["intrinsic"]
        cams = {}
        for s_name, ext in data["extrinsic"].items():
            if not ext:  # S2-S4 have empty dicts in VP3D
                continue
            subject = int(s_name.lstrip("S"))
            for ci, (i, e) in enumerate(zip(intr, ext)):
                r, centre = geometry.extrinsics_from_vp3d(e["orientation"], e["translation"])
                cams[(subject, ci)] = H36MCamera(
                    id=str(i["id"]), R=r, centre=centre, f=np.asarray(i["focal_length"], float),
                    c=np.asarray(i["center"], float), k=np.asarray(i["radial_distortion"], float),
                    p=np.asarray(i["tangential_distortion"], float)[::-1],
                    width=int(i["res_w"]), height=int(i["res_h"]))
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(path, f"malformed camera parameters: {err!r}") from None
    return cams


def read_vp3d(root: str | Path, subjects=SPLITS["test"], positions_3d: str = "data_3d_h36m.npz",
              positions_2d: str = "data_2d_h36m_gt.npz",
              cameras_file: str = "h36m_cameras.json") -> H36MFrames:
    """Read VideoPose3D's npz files under ``root`` for ``subjects`` (ints).

    3D: (T, 32, 3) world metres -> the 17 kept joints -> camera frame mm. 2D: the file's track for
    each camera, truncated to the mocap length. The corrupt S11 Directions stem is dropped.
    """
    root = Path(root)
    p3, p2, pc = root / positions_3d, root / positions_2d, root / cameras_file
    pos3d, _ = _load_pickled_npz(p3, "positions_3d")
    pos2d, meta = _load_pickled_npz(p2, "positions_2d")
    cams = load_vp3d_cameras(pc)
    skipped: Counter = Counter()
    rows = []
    for subject in subjects:
        s_name = f"S{subject}"
        if s_name not in pos3d:
            raise DataError(p3, "subject missing", s_name)
        for seq in sorted(pos3d[s_name]):
            if (s_name, seq) == CORRUPT_VP3D:
                skipped["corrupt S11 Directions"] += 1
                continue
            action = canonical_action(seq)
            world = np.asarray(pos3d[s_name][seq], dtype=np.float64)
            if world.ndim != 3 or world.shape[1:] != (32, 3) or not np.isfinite(world).all():
                raise DataError(p3, f"expected finite (T, 32, 3), got {world.shape}", f"{s_name}/{seq}")
            world = world[:, KEPT_32] * 1000.0
            tracks = pos2d.get(s_name, {}).get(seq)
            if tracks is None or len(tracks) != 4:
                raise DataError(p2, "expected 4 camera tracks", f"{s_name}/{seq}")
            t = len(world)
            for ci in range(4):
                cam = cams[(subject, ci)]
                uv = np.asarray(tracks[ci], dtype=np.float64)
                if uv.shape[0] < t or uv.shape[1:] != (17, 2):
                    raise DataError(p2, f"2D track {uv.shape} shorter than the mocap ({t})",
                                    f"{s_name}/{seq}/camera {ci}")
                uv = uv[:t]
                xc = cam.world_to_camera(world)
                rows.append({
                    "subject": np.full(t, subject), "action": np.full(t, action, dtype=object),
                    "sequence": np.full(t, seq, dtype=object), "camera": np.full(t, ci),
                    "frame": np.arange(t), "joints_2d": uv, "joints_cam": xc,
                    "image_paths": np.full(t, "", dtype=object), "bbox": _bbox_of(uv)})
    return _concat(rows, cams, skipped)


# ---------------------------------------------------------------- mks0601 JSON
def load_mks0601_cameras(path: str | Path, subject: int) -> dict:
    """``Human36M_subject{N}_camera.json`` (R world->camera, t = -R C, mm; no distortion)."""
    path = Path(path)
    data = _load_json(path)
    cams = {}
    try:
        for key, cam in data.items():
            r, centre = geometry.extrinsics_from_mks0601(cam["R"], cam["t"])
            ci = int(key) - 1
            cams[(subject, ci)] = H36MCamera(id=CAMERA_IDS[ci], R=r, centre=centre,
                                             f=np.asarray(cam["f"], float),
                                             c=np.asarray(cam["c"], float))
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise DataError(path, f"malformed camera entry: {err!r}") from None
    return cams


def read_mks0601(root: str | Path, subjects=SPLITS["test"], every: int = 1) -> H36MFrames:
    """Read the mks0601 annotation set under ``root/annotations`` (frames under ``root/images``).

    Arguments:
        subjects: subject numbers.
        every: keep frames whose ``frame_idx % every == 0`` (mks0601 uses 5 for train, 64 test).

    3D comes from ``_joint_3d.json`` (world mm) through ``R X + t``; 2D is its pinhole projection,
    as mks0601 does; the bbox is the file's.
    """
    root = Path(root)
    ann = root / "annotations"
    skipped: Counter = Counter()
    rows, all_cams = [], {}
    for subject in subjects:
        p_data = ann / f"Human36M_subject{subject}_data.json"
        p_cam = ann / f"Human36M_subject{subject}_camera.json"
        p_j3d = ann / f"Human36M_subject{subject}_joint_3d.json"
        data, j3d = _load_json(p_data), _load_json(p_j3d)
        cams = load_mks0601_cameras(p_cam, subject)
        all_cams.update(cams)
        bbox_of = {a["image_id"]: a.get("bbox") for a in data.get("annotations", [])}
        keep = []
        for img in data.get("images", []):
            try:
                folder = img["file_name"].split("/")[0]
                if folder == CORRUPT_MKS0601:
                    skipped["corrupt s_11_act_02_subact_02_ca_01 frame"] += 1
                    continue
                if img["frame_idx"] % every:
                    continue
                world = j3d[str(img["action_idx"])][str(img["subaction_idx"])][str(img["frame_idx"])]
            except KeyError as err:
                raise DataError(p_j3d if "action_idx" in img else p_data,
                                f"no 3D joints for key {err}", img.get("file_name")) from None
            keep.append((img, world))
        if not keep:
            continue
        world = np.asarray([w for _, w in keep], dtype=np.float64)
        if world.shape[1:] not in ((17, 3), (18, 3)) or not np.isfinite(world).all():
            raise DataError(p_j3d, f"expected finite 17x3 joints, got {world.shape[1:]}")
        world = world[:, :17]
        ci = np.array([img["cam_idx"] - 1 for img, _ in keep])
        xc = np.empty_like(world)
        uv = np.empty(world.shape[:2] + (2,))
        for c in np.unique(ci):
            cam = cams[(subject, int(c))]
            sel = ci == c
            xc[sel] = cam.world_to_camera(world[sel])
            uv[sel] = geometry.project_pinhole(xc[sel], cam.f, cam.c)
        n = len(keep)
        bbox = np.array([bbox_of.get(img["id"]) or [np.nan] * 4 for img, _ in keep], float)
        missing = ~np.isfinite(bbox).all(1)
        bbox[missing] = _bbox_of(uv[missing])
        rows.append({
            "subject": np.full(n, subject),
            "action": np.array([canonical_action(img["action_name"]) for img, _ in keep], dtype=object),
            "sequence": np.array([img["file_name"].split("/")[0] for img, _ in keep], dtype=object),
            "camera": ci, "frame": np.array([img["frame_idx"] for img, _ in keep]),
            "joints_2d": uv, "joints_cam": xc,
            "image_paths": np.array(["images/" + img["file_name"] for img, _ in keep], dtype=object),
            "bbox": bbox})
    return _concat(rows, all_cams, skipped)


def read_h36m(root: str | Path, split: str = "test", source: str = "auto", **kwargs) -> H36MFrames:
    """The standard split (train S1, S5, S6, S7, S8; test S9, S11) from ``root``.

    ``source``: "mks0601" (frames + JSON), "vp3d" (npz), or "auto" (mks0601 if its annotations
    exist, else VideoPose3D).
    """
    root = Path(root)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    if source == "auto":
        source = "mks0601" if (root / "annotations").is_dir() else "vp3d"
    if source == "mks0601":
        return read_mks0601(root, SPLITS[split], **kwargs)
    if source == "vp3d":
        return read_vp3d(root, SPLITS[split], **kwargs)
    raise ValueError(f"unknown Human3.6M source {source!r}")
