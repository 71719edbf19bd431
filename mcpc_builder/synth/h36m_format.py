"""A synthetic Human3.6M in the official released formats, from the synthetic world's motions.

Layout written under ``out_dir`` (dataset-formats.md §3):

    data_3d_h36m.npz          VideoPose3D: positions_3d[subject][action] (T, 32, 3) float32, world m
    data_2d_h36m_gt.npz       VideoPose3D: positions_2d[subject][action] = 4 x (T, 17, 2) px, through
                              the official H36M distortion model; metadata (no layout_name)
    h36m_cameras.json         VideoPose3D's camera dicts as JSON: "intrinsic" (list of 4, VP3D field
                              names; tangential_distortion in VP3D's swapped order [p2, p1]) and
                              "extrinsic" {subject: 4 x {orientation [w,x,y,z] camera->world,
                              translation = camera centre, mm}}
    annotations/Human36M_subject{N}_data.json / _camera.json / _joint_3d.json   mks0601 set
    images/s_%02d_act_%02d_subact_%02d_ca_%02d/<same>_%06d.jpg                  frames
    ground_truth/cameras.npz  exact synthetic cameras (R world->cam, centre m, f, c, k, p)
    ground_truth/joints_world.npz   the motions, (T, 22, 3) m in joints.BODY_POINTS order

The synthetic capture volume uses the real cameras' intrinsics and a distortion of the same kind at
a quarter of the resolution (250 px instead of 1000), so frames stay small. Quirks of the real
release are reproduced on purpose so readers must handle them: raw action stems ``TakingPhoto`` /
``WalkingDog`` next to ``Photo`` / ``WalkDog``, varying sub-action suffixes ("Sitting 1",
"SittingDown", ...), ``Sitting`` next to ``SittingDown`` and ``Walking`` next to ``WalkDog``, and
the corrupt S11 ``Directions`` sequence (its camera-54138969 2D track is garbage and shorter than
the mocap, and the mks0601 frames of ``s_11_act_02_subact_02_ca_01`` are truncated JPEGs).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .. import atomic, geometry, joints

CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
# Real intrinsics (dataset-formats.md §3.4) scaled to the synthetic resolution.
RES_SCALE = 0.25
_REAL_INTRINSICS = (
    # centre, focal, res (w, h), azimuth
    ((512.5415, 515.4515), (1145.0494, 1143.7811), (1000, 1002), 70),
    ((508.8486, 508.0649), (1149.6757, 1147.5917), (1000, 1000), -70),
    ((519.8159, 501.4026), (1149.1407, 1148.7990), (1000, 1000), 110),
    ((514.9682, 501.8820), (1145.5114, 1144.7739), (1000, 1002), -110),
)
# Distortion of the same kind and size as the real lenses (k radial, p tangential [p1, p2]).
_DISTORTION = (
    ((-0.207, 0.248, -0.0031), (-0.00142, -0.00098)),
    ((-0.194, 0.240, 0.0068), (-0.00162, -0.00093)),
    ((-0.208, 0.255, -0.0024), (0.00148, -0.00076)),
    ((-0.198, 0.218, -0.0089), (-0.00058, -0.00181)),
)
SUBJECTS = (1, 5, 6, 7, 8, 9, 11)
TRAIN_SUBJECTS = (1, 5, 6, 7, 8)
TEST_SUBJECTS = (9, 11)
# mks0601 action list; action_idx = position + 2.
ACTIONS = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases",
           "Sitting", "SittingDown", "Smoking", "Photo", "Waiting", "Walking", "WalkDog",
           "WalkTogether")
# The actions recorded in the synthetic capture: prefix collisions (Sitting/SittingDown,
# Walking/WalkDog) and renamed stems (Photo, WalkDog) included.
RECORDED = ("Directions", "Sitting", "SittingDown", "Photo", "Walking", "WalkDog")
# H36M-17 -> 32-joint indices (VP3D remove_joints keeps these).
KEPT_32 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
DEFAULT_FRAMES = 6
# Motions are sampled as every 5th frame of a 50 fps capture (mmpose's "fps10"), so a short
# sequence still spans a second of movement.
MOTION_FPS = 10.0


def _vp3d_names(subject: int, action: str) -> tuple[str, str]:
    """The VideoPose3D sequence names of sub-actions 1 and 2 (suffixes vary per subject)."""
    stem = action
    if subject == 1 and action == "Photo":
        stem = "TakingPhoto"
    if subject in (1, 7) and action == "WalkDog":
        stem = "WalkingDog"
    if subject in (1, 11) or action == "SittingDown":
        return f"{stem} 1", stem
    if subject in (5, 9):
        return f"{stem} 1", f"{stem} 2"
    return stem, f"{stem} 1"


def _look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 3) world->camera rotation of a camera at ``centre`` looking at ``target`` (Z up)."""
    return geometry.look_at_rotation(centre, target)


def _cameras(rng: np.random.Generator, distance: float, height: float,
             azimuth_offset: float = 0.0) -> list[dict]:
    """Four H36M-like cameras around the capture volume; metres, R world->camera."""
    cams = []
    for i, ((c, f, (w, h), az), (k, p)) in enumerate(zip(_REAL_INTRINSICS, _DISTORTION)):
        a = np.deg2rad(az + azimuth_offset + rng.uniform(-4, 4))
        d = distance + rng.uniform(-0.3, 0.3)
        centre = np.array([d * np.cos(a), d * np.sin(a), height + rng.uniform(-0.1, 0.1)])
        target = np.array([0.0, 0.0, 0.9]) + rng.uniform(-0.15, 0.15, 3)
        cams.append({
            "id": CAMERA_IDS[i], "R": _look_at(centre, target), "C": centre,
            "f": np.array(f) * RES_SCALE, "c": np.array(c) * RES_SCALE,
            "k": np.array(k), "p": np.array(p),
            "width": int(round(w * RES_SCALE)), "height": int(round(h * RES_SCALE + 0.01)),
        })
    return cams


def points_32(j17: np.ndarray) -> np.ndarray:
    """(T, 17, 3) H36M-17 -> (T, 32, 3): the 15 dropped mocap points placed near their joints."""
    t = j17.shape[0]
    out = np.zeros((t, 32, 3), dtype=np.float64)
    out[:, KEPT_32] = j17
    fwd = np.array([0.0, 0.0, -0.06])
    extra = {4: (3, fwd), 5: (3, 2 * fwd), 9: (6, fwd), 10: (6, 2 * fwd), 11: (0, 0.0),
             16: (8, 0.0), 20: (13, 0.05 * fwd), 21: (13, fwd), 22: (13, 0.5 * fwd),
             23: (13, 0.7 * fwd), 24: (8, 0.0), 28: (16, 0.05 * fwd), 29: (16, fwd),
             30: (16, 0.5 * fwd), 31: (16, 0.7 * fwd)}
    for idx, (j, off) in extra.items():
        out[:, idx] = j17[:, j] + off
    return out


def _matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> (4,) [w, x, y, z] with w >= 0."""
    return geometry.matrix_to_quaternion(r)


def project_distorted(cam: dict, x_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) world m -> ((..., 2) px through the H36M distortion model, (...,) depth m)."""
    xc = geometry.world_to_camera(x_world, cam["R"], cam["C"])
    return geometry.project_h36m(xc, cam["f"], cam["c"], cam["k"], cam["p"]), xc[..., 2]


def draw_frame(uv: np.ndarray, depth: np.ndarray, width: int, height: int, edges: np.ndarray,
               left: tuple[int, ...], right: tuple[int, ...], rng: np.random.Generator,
               focal: float) -> np.ndarray:
    """A plain shaded drawing of one skeleton (BGR uint8): background, floor band, limbs as
    capsules whose width follows perspective, the subject's left side bluish and right reddish,
    nearer parts drawn last (occlusion) and brighter."""
    img = np.empty((height, width, 3), np.uint8)
    top = rng.integers(90, 150, 3)
    img[:] = top
    horizon = int(height * rng.uniform(0.45, 0.6))
    img[horizon:] = (top * 0.6).astype(np.uint8)
    noise = rng.normal(0, 6, img.shape)
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    order = np.argsort(-depth[edges].mean(axis=1))  # far to near
    for e in order:
        a, b = edges[e]
        z = 0.5 * (depth[a] + depth[b])
        thick = max(2, int(round(0.09 * focal / max(z, 0.3))))
        shade = float(np.clip(1.6 - 0.2 * z, 0.6, 1.2))
        if b in left:
            col = (200, 120, 60)
        elif b in right:
            col = (60, 90, 210)
        else:
            col = (90, 190, 90)
        col = tuple(int(min(255, v * shade)) for v in col)
        pa = tuple(int(round(v)) for v in uv[a])
        pb = tuple(int(round(v)) for v in uv[b])
        cv2.line(img, pa, pb, col, thick, cv2.LINE_AA)
    head = joints.H36M17.joint("head_top")
    r = max(2, int(round(0.1 * focal / max(depth[head], 0.3))))
    cv2.circle(img, tuple(int(round(v)) for v in uv[head]), r, (150, 180, 220), -1, cv2.LINE_AA)
    return img


def _bbox(uv: np.ndarray) -> list[float]:
    """mks0601 bbox: joint extent enlarged x1.2 about its centre, xywh px."""
    return [float(v) for v in geometry.joint_bbox(uv)]


def write(out_dir, seed: int, n_frames: int | None = None, camera_distance: float = 4.6,
          camera_height: float = 1.55, azimuth_offset: float = 0.0,
          subjects: tuple[int, ...] = SUBJECTS) -> Path:
    """Write the synthetic Human3.6M under ``out_dir``.

    Arguments:
        out_dir: destination root (created).
        seed: seeds motions, cameras and frames (same seed, same files).
        n_frames: frames per sequence (default ``DEFAULT_FRAMES``); every sequence has 4 cameras.
        camera_distance, camera_height, azimuth_offset: the capture rig, metres / degrees (the
            ablation's shifted domain moves them).
        subjects: which subjects to write.

    Returns:
        ``Path(out_dir)``.
    """
    from .world import sample_motion

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_frames = int(n_frames or DEFAULT_FRAMES)
    rng = np.random.default_rng(seed)
    edges = joints.H36M17.edges
    left, right = joints.H36M17.left_joints, joints.H36M17.right_joints

    positions_3d: dict = {}
    positions_2d: dict = {}
    extrinsic: dict = {}
    gt_cams: dict = {}
    body_gt: dict = {}
    intrinsic = None
    for subject in tqdm(subjects, desc="synthetic Human3.6M subjects", leave=False):
        s_name = f"S{subject}"
        cams = _cameras(rng, camera_distance, camera_height, azimuth_offset)
        if intrinsic is None:
            intrinsic = [{
                "id": c["id"], "center": c["c"].tolist(), "focal_length": c["f"].tolist(),
                "radial_distortion": c["k"].tolist(),
                "tangential_distortion": c["p"][::-1].tolist(),  # VP3D's swapped storage
                "res_w": c["width"], "res_h": c["height"],
                "azimuth": _REAL_INTRINSICS[i][3]} for i, c in enumerate(cams)]
        else:  # intrinsics are per camera, shared by subjects (as in the real release)
            for c, ref in zip(cams, intrinsic):
                c["f"], c["c"] = np.array(ref["focal_length"]), np.array(ref["center"])
                c["k"] = np.array(ref["radial_distortion"])
                c["p"] = np.array(ref["tangential_distortion"][::-1])
        extrinsic[s_name] = [{"orientation": _matrix_to_quaternion(c["R"].T).tolist(),
                              "translation": (c["C"] * 1000).tolist()} for c in cams]
        gt_cams[s_name] = cams
        positions_3d[s_name] = {}
        positions_2d[s_name] = {}
        images, annotations, joint_3d = [], [], {}
        for action in RECORDED:
            action_idx = ACTIONS.index(action) + 2
            joint_3d[str(action_idx)] = {}
            for subaction_idx, vp3d_name in zip((1, 2), _vp3d_names(subject, action)):
                motion = np.asarray(sample_motion(rng, n_frames, fps=MOTION_FPS), dtype=np.float64)
                motion[..., :2] -= motion[:1, joints.BODY_POINTS.index("pelvis"), :2]
                motion[..., :2] += rng.uniform(-0.4, 0.4, 2)
                j17, _, _ = joints.convert(motion, np.full(motion.shape[:2], 2, np.uint8),
                                           _BODY_LAYOUT, joints.H36M17, synthesise=False)
                j17 = j17.astype(np.float64)
                positions_3d[s_name][vp3d_name] = points_32(j17).astype(np.float32)
                body_gt[f"{s_name}/{action_idx}/{subaction_idx}"] = motion.astype(np.float32)
                joint_3d[str(action_idx)][str(subaction_idx)] = {
                    str(f): (j17[f] * 1000).round(3).tolist() for f in range(n_frames)}
                corrupt = subject == 11 and action == "Directions" and subaction_idx == 2
                tracks = []
                for ci, cam in enumerate(cams):
                    uv, depth = project_distorted(cam, j17)
                    track = uv.astype(np.float32)
                    if corrupt and ci == 0:  # the broken video: garbage 2D, shorter than mocap
                        track = rng.uniform(0, cam["width"], (n_frames - 2, 17, 2)).astype(np.float32)
                    tracks.append(track)
                    folder = "s_%02d_act_%02d_subact_%02d_ca_%02d" % (
                        subject, action_idx, subaction_idx, ci + 1)
                    for f in range(n_frames):
                        name = f"{folder}/{folder}_{f + 1:06d}.jpg"
                        img = draw_frame(uv[f], depth[f], cam["width"], cam["height"], edges,
                                         left, right, rng, float(cam["f"][0]))
                        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
                        data = buf.tobytes()
                        if corrupt and ci == 0:
                            data = data[: len(data) // 5]  # truncated file
                        atomic.write_bytes(out / "images" / name, data)
                        image_id = len(images) + _id_base(subject)
                        images.append({
                            "id": image_id, "file_name": name, "width": cam["width"],
                            "height": cam["height"], "subject": subject, "action_name": action,
                            "action_idx": action_idx, "subaction_idx": subaction_idx,
                            "cam_idx": ci + 1, "frame_idx": f})
                        pin = _pinhole(cam, j17[f])
                        inside = (pin[:, 0] >= 0) & (pin[:, 0] < cam["width"]) & \
                                 (pin[:, 1] >= 0) & (pin[:, 1] < cam["height"])
                        annotations.append({"id": image_id, "image_id": image_id,
                                            "bbox": _bbox(pin),
                                            "keypoints_vis": inside.tolist()})
                positions_2d[s_name][vp3d_name] = tracks
        ann = out / "annotations"
        atomic.write_json(ann / f"Human36M_subject{subject}_data.json",
                          {"images": images, "annotations": annotations})
        atomic.write_json(ann / f"Human36M_subject{subject}_camera.json", {
            str(ci + 1): {"R": c["R"].tolist(), "t": (-c["R"] @ c["C"] * 1000).tolist(),
                          "f": c["f"].tolist(), "c": c["c"].tolist()}
            for ci, c in enumerate(cams)})
        atomic.write_json(ann / f"Human36M_subject{subject}_joint_3d.json", joint_3d)

    atomic.save_npz(out / "data_3d_h36m.npz", positions_3d=np.array(positions_3d, dtype=object))
    metadata = {"num_joints": 17, "keypoints_symmetry": [list(joints.H36M17.left_joints),
                                                         list(joints.H36M17.right_joints)]}
    atomic.save_npz(out / "data_2d_h36m_gt.npz", positions_2d=np.array(positions_2d, dtype=object),
                 metadata=np.array(metadata, dtype=object))
    atomic.write_json(out / "h36m_cameras.json", {"intrinsic": intrinsic, "extrinsic": extrinsic})
    flat = {}
    for s_name, cams in gt_cams.items():
        for ci, c in enumerate(cams):
            for key in ("R", "C", "f", "c", "k", "p"):
                flat[f"{s_name}/{ci}/{key}"] = np.asarray(c[key])
    atomic.save_npz(out / "ground_truth" / "cameras.npz", **flat)
    # world joints (T, 22, 3) m in BODY_POINTS order, keyed "S{n}/{action_idx}/{subaction_idx}"
    atomic.save_npz(out / "ground_truth" / "joints_world.npz", **body_gt)
    return out


def _id_base(subject: int) -> int:
    return subject * 1_000_000


def _pinhole(cam: dict, x_world: np.ndarray) -> np.ndarray:
    return geometry.project_pinhole(geometry.world_to_camera(x_world, cam["R"], cam["C"]),
                                    cam["f"], cam["c"])


# The synthetic world's joints come in BODY_POINTS order: a layout over the full vocabulary.
_BODY_LAYOUT = joints.JointLayout(name="body22", joint_names=joints.BODY_POINTS,
                                  body_points=joints.BODY_POINTS, edge_names=())
