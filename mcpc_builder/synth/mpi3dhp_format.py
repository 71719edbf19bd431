"""A synthetic MPI-INF-3DHP in the official formats, from the synthetic world's motions.

Layout written under ``out_dir`` (dataset-formats.md §4):

    mpi_inf_3dhp_test_set/TS{1..6}/annot_data.mat     MATLAB v7.3 (HDF5 with the MATLAB header),
        axes stored reversed as MATLAB writes them: annot2 (n,1,17,2) px, annot3 (n,1,17,3)
        camera mm, univ_annot3 (n,1,17,3) mm rescaled to the universal height, valid_frame (n,1),
        activity_annotation (n,1) in 1..7
    mpi_inf_3dhp_test_set/TS{k}/imageSequence/img_%06d.jpg        1-based frames
    S{1..8}/Seq{1,2}/annot.mat      MATLAB v5: cell arrays over 14 cameras, annot2 (n, 56),
        annot3 / univ_annot3 (n, 84) in the 28-joint 'all' order, camera frame mm; cameras
        0..13; frames; rows beyond the frame count as in the real files
    S{s}/Seq{q}/camera.calibration  Skeletool text: 7 lines per camera (intrinsic / extrinsic 4x4)
    S{s}/Seq{q}/imageSequence/video_{c}.avi    MJPG video for the 8 usual training cameras
                                               [0, 1, 2, 4, 5, 6, 7, 8] (others have none)
    ground_truth/test_intrinsics.json           the synthetic test cameras' f, c (px)

Resolutions are an eighth of the real ones (studio 2048 -> 256 px; outdoor 1920x1080 -> 240x135).
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import h5py
import numpy as np
import scipy.io
from tqdm import tqdm

from .. import atomic, geometry, joints
from .h36m_format import _BODY_LAYOUT, _look_at, draw_frame

# The 28 'all' joints (mpii_get_joints.m), 0-based.
ALL28 = ("spine3", "spine4", "spine2", "spine", "pelvis", "neck", "head", "head_top",
         "left_clavicle", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
         "right_clavicle", "right_shoulder", "right_elbow", "right_wrist", "right_hand",
         "left_hip", "left_knee", "left_ankle", "left_foot", "left_toe",
         "right_hip", "right_knee", "right_ankle", "right_foot", "right_toe")
# 3DHP-17 'relevant' joints as indices into the 28.
RELEVANT_17 = (7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6)
TRAIN_CAMERAS = (0, 1, 2, 4, 5, 6, 7, 8)
UNIVERSAL_HEIGHT_M = 1.75
SCALE = 1 / 8
TEST_SEQUENCES = {  # name: (width, height, focal), real values scaled by SCALE
    "TS1": (2048, 2048, 2048 / 10 * 7.3203), "TS2": (2048, 2048, 2048 / 10 * 7.3203),
    "TS3": (2048, 2048, 2048 / 10 * 7.3203), "TS4": (2048, 2048, 2048 / 10 * 7.3203),
    "TS5": (1920, 1080, 1920 / 10 * 8.7707), "TS6": (1920, 1080, 1920 / 10 * 8.7707),
}
DEFAULT_TEST_FRAMES = 24
DEFAULT_TRAIN_FRAMES = 8
MOTION_FPS = 10.0
_MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 2015 HDF5 schema 1.00 ."


def joints_28(body: np.ndarray) -> np.ndarray:
    """(T, 22, 3) world joints in BODY_POINTS order -> (T, 28, 3) in the 3DHP 'all' order; the
    points our body lacks (spine segments, clavicles, hands, feet, toes) are placed on the
    skeleton by interpolation and extrapolation."""
    b = {p: body[:, i] for i, p in enumerate(joints.BODY_POINTS)}
    pel, tho = b["pelvis"], b["thorax"]
    fwd = np.zeros_like(pel)
    fwd[:, :2] = np.cross(b["left_hip"] - b["right_hip"], [0.0, 0.0, 1.0])[:, :2]
    fwd /= np.maximum(np.linalg.norm(fwd, axis=-1, keepdims=True), 1e-9)
    pts = {
        "spine3": pel + 0.75 * (tho - pel), "spine4": pel + 0.9 * (tho - pel),
        "spine2": pel + 0.5 * (tho - pel), "spine": b["spine"], "pelvis": pel,
        "neck": tho, "head": b["upper_neck"], "head_top": b["head_top"],
    }
    for side in ("left", "right"):
        pts[f"{side}_clavicle"] = 0.5 * (tho + b[f"{side}_shoulder"])
        for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            pts[f"{side}_{j}"] = b[f"{side}_{j}"]
        pts[f"{side}_hand"] = b[f"{side}_wrist"] + 0.35 * (b[f"{side}_wrist"] - b[f"{side}_elbow"])
        ankle = b[f"{side}_ankle"]
        pts[f"{side}_foot"] = ankle + 0.08 * fwd - [0, 0, 0.05]
        pts[f"{side}_toe"] = ankle + 0.16 * fwd - [0, 0, 0.06]
    return np.stack([pts[n] for n in ALL28], axis=1)


def _motion(rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
    from .world import sample_motion

    height = float(rng.uniform(1.55, 1.9))
    m = np.asarray(sample_motion(rng, n, fps=MOTION_FPS, height=height), dtype=np.float64)
    m[..., :2] -= m[:1, joints.BODY_POINTS.index("pelvis"), :2]
    return m, height


def _random_camera(rng, distance, height):
    a = rng.uniform(-np.pi, np.pi)
    d = distance + rng.uniform(-0.4, 0.4)
    centre = np.array([d * np.cos(a), d * np.sin(a), height + rng.uniform(-0.3, 0.3)])
    return _look_at(centre, np.array([0.0, 0.0, 0.95]) + rng.uniform(-0.1, 0.1, 3)), centre


def _write_v73(path: Path, fields: dict[str, np.ndarray]) -> None:
    """An HDF5 file with MATLAB's 512-byte v7.3 header; arrays given in h5py (reversed) order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w", userblock_size=512) as f:
        for name, arr in fields.items():
            ds = f.create_dataset(name, data=np.asarray(arr, dtype=np.float64))
            ds.attrs["MATLAB_class"] = np.bytes_("double")
    header = _MATLAB_HEADER.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(tmp, "r+b") as fh:
        fh.write(header.ljust(512, b"\x00"))
    tmp.replace(path)


def _encode(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes()


def _write_test(out: Path, rng: np.random.Generator, n: int, edges, left, right) -> dict:
    intrinsics = {}
    for k, (name, (w0, h0, f0)) in enumerate(tqdm(TEST_SEQUENCES.items(), leave=False,
                                                   desc="synthetic 3DHP test sequences")):
        w, h, f = int(round(w0 * SCALE)), int(round(h0 * SCALE)), f0 * SCALE
        c = np.array([w / 2 + rng.uniform(-2, 2), h / 2 + rng.uniform(-2, 2)])
        outdoor = name in ("TS5", "TS6")
        r, centre = _random_camera(rng, 5.5 if outdoor else 4.2, 1.3)
        body, stature = _motion(rng, n)
        j17, _, _ = joints.convert(body, np.full(body.shape[:2], 2, np.uint8), _BODY_LAYOUT,
                                   joints.MPI3DHP17, synthesise=False)
        cam = (j17.astype(np.float64) - centre) @ r.T * 1000.0            # (n, 17, 3) mm
        uv = geometry.project_pinhole(cam, f, c)
        root = cam[:, joints.MPI3DHP_ROOT:joints.MPI3DHP_ROOT + 1]
        univ = root + (cam - root) * (UNIVERSAL_HEIGHT_M / stature)
        inside = ((uv >= 0) & (uv < [w, h])).all(axis=(1, 2))
        valid = inside & (np.arange(n) % 6 != 5)                         # some frames not evaluated
        activity = 1 + (np.arange(n) * 7 // n + k) % 7
        seq = out / "mpi_inf_3dhp_test_set" / name
        _write_v73(seq / "annot_data.mat", {
            "annot2": uv[:, None], "annot3": cam[:, None], "univ_annot3": univ[:, None],
            "valid_frame": valid[:, None].astype(np.float64),
            "activity_annotation": activity[:, None].astype(np.float64)})
        for i in range(n):
            img = draw_frame(uv[i], cam[i, :, 2] / 1000.0, w, h, edges, left, right, rng, f)
            atomic.write_bytes(seq / "imageSequence" / f"img_{i + 1:06d}.jpg", _encode(img))
        intrinsics[name] = {"f": [f, f], "c": c.tolist(), "width": w, "height": h}
    return intrinsics


def _calibration_text(cams: list[tuple[np.ndarray, np.ndarray, float, np.ndarray, int, int]]) -> str:
    lines = ["Skeletool Camera Calibration File V1.0"]
    for i, (r, centre, f, c, w, h) in enumerate(cams):
        k = np.array([[f, 0, c[0], 0], [0, f, c[1], 0], [0, 0, 1, 0], [0, 0, 0, 1]])
        rt = np.eye(4)
        rt[:3, :3] = r
        rt[:3, 3] = -r @ centre * 1000.0
        lines += [f"name          {i}", "  sensor      10 10", f"  size        {w} {h}",
                  "  animated    0",
                  "  intrinsic   " + " ".join(f"{v:.6f}" for v in k.ravel()),
                  "  extrinsic   " + " ".join(f"{v:.6f}" for v in rt.ravel()),
                  "  radial      0"]
    return "\n".join(lines) + "\n"


def _write_train(out: Path, rng: np.random.Generator, n: int, edges, left, right) -> None:
    w, h, f = 256, 256, 2048 / 10 * 7.3203 * SCALE
    for s in tqdm(range(1, 9), desc="synthetic 3DHP training subjects", leave=False):
        for q in (1, 2):
            seq = out / f"S{s}" / f"Seq{q}"
            body, stature = _motion(rng, n)
            all28 = joints_28(body)
            cams, a2, a3, u3 = [], [], [], []
            extra = 2  # the real files hold more rows than frames
            for ci in range(14):
                r, centre = _random_camera(rng, 4.0, 1.2 + 0.4 * (ci % 3))
                c = np.array([w / 2, h / 2]) + rng.uniform(-3, 3, 2)
                cams.append((r, centre, f, c, w, h))
                xc = (all28 - centre) @ r.T * 1000.0                      # (n, 28, 3) mm
                uv = geometry.project_pinhole(xc, f, c)
                root = xc[:, 4:5]
                univ = root + (xc - root) * (UNIVERSAL_HEIGHT_M / stature)
                pad = lambda a: np.concatenate([a.reshape(n, -1), np.zeros((extra, a[0].size))])  # noqa: E731
                a2.append(pad(uv))
                a3.append(pad(xc))
                u3.append(pad(univ))
                if ci in TRAIN_CAMERAS:
                    path = seq / "imageSequence" / f"video_{ci}.avi"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_name(f".{path.name}.tmp.avi")
                    vw = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h))
                    j17 = xc[:, list(RELEVANT_17)]
                    for i in range(n):
                        vw.write(draw_frame(uv[i, list(RELEVANT_17)], j17[i, :, 2] / 1000.0, w, h,
                                            edges, left, right, rng, f))
                    vw.release()
                    tmp.replace(path)

            def cell(items):
                arr = np.empty((len(items), 1), dtype=object)
                for i, it in enumerate(items):
                    arr[i, 0] = it
                return arr

            buf = io.BytesIO()
            scipy.io.savemat(buf, {"annot2": cell(a2), "annot3": cell(a3),
                                   "univ_annot3": cell(u3),
                                   "cameras": np.arange(14, dtype=np.float64)[None],
                                   "frames": np.arange(n, dtype=np.float64)[:, None]},
                             do_compression=True)
            atomic.write_bytes(seq / "annot.mat", buf.getvalue())
            atomic.write_bytes(seq / "camera.calibration", _calibration_text(cams).encode())


def write(out_dir, seed: int, n_frames: int | None = None, train: bool = True) -> Path:
    """Write the synthetic MPI-INF-3DHP under ``out_dir``.

    Arguments:
        seed: seeds motions, cameras and frames.
        n_frames: frames per test sequence (default 24); training sequences get a third of it
            (at least 4).
        train: also write the training set S1..S8.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_test = int(n_frames or DEFAULT_TEST_FRAMES)
    n_train = max(4, n_test // 3) if n_frames else DEFAULT_TRAIN_FRAMES
    # Frames are drawn in 3DHP-17 order: its own edges and sides.
    edges = joints.MPI3DHP17.edges
    left, right = joints.MPI3DHP17.left_joints, joints.MPI3DHP17.right_joints
    intrinsics = _write_test(out, rng, n_test, edges, left, right)
    atomic.write_json(out / "ground_truth" / "test_intrinsics.json", intrinsics)
    if train:
        _write_train(out, rng, n_train, edges, left, right)
    return out
