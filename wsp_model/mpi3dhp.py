"""MPI-INF-3DHP readers (dataset-formats.md §4).

- Test set: ``mpi_inf_3dhp_test_set/TS{k}/annot_data.mat`` is MATLAB v7.3 (HDF5) and is read with
  h5py; MATLAB's ``3x17x1xn`` arrays come out reversed as ``(n, 1, 17, 3)``. The ground truth of the
  official evaluation is ``univ_annot3``; only ``valid_frame == 1`` frames count. Test sequences
  ship no intrinsics: (f, c) are fitted per sequence from ``annot2``/``annot3`` (as mmpose does).
- Training set: ``S{s}/Seq{q}/annot.mat`` (MATLAB v5, scipy): cell arrays over 14 cameras, 28
  joints, camera frame mm (no extrinsics to apply), more rows than frames (sliced to ``frames``);
  intrinsics from ``camera.calibration`` (line ``7 c + 5``). Frames come from
  ``imageSequence/video_{c}.avi`` and are extracted once to ``imageFrames/video_{c}/frame_%06d.jpg``.

Everything returned is in the 17-joint "relevant" order (``joints.MPI3DHP17``; pelvis = 14).
"""

from __future__ import annotations

import os

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcpc_builder.errors import DataError
from mcpc_builder.geometry import joint_bbox

from . import camera as geometry

TEST_SEQUENCES = ("TS1", "TS2", "TS3", "TS4", "TS5", "TS6")
SCENE_OF = {"TS1": "GS", "TS2": "GS", "TS3": "noGS", "TS4": "noGS", "TS5": "Outdoor",
            "TS6": "Outdoor"}
ACTIVITIES = ("Standing/Walking", "Exercising", "Sitting", "Reaching/Crouching", "On The Floor",
              "Sports", "Miscellaneous")
RELEVANT_17 = (7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6)
TRAIN_CAMERAS = (0, 1, 2, 4, 5, 6, 7, 8)
SPLITS = {"train": tuple(range(1, 9)), "test": TEST_SEQUENCES}


@dataclass
class MPI3DHPFrames:
    """Flat per-image arrays (N rows), 3DHP-17 order.

    Arguments:
        sequence: (N,) str "TS3" or "S1/Seq2/cam4".
        frame: (N,) int64 0-based frame index.
        activity: (N,) str activity name ("" for the training set).
        joints_2d: (N, 17, 2) float32 px.
        joints_cam: (N, 17, 3) float32 camera frame mm (``annot3``, true scale).
        joints_univ: (N, 17, 3) float32 mm (``univ_annot3``, the official test ground truth).
        f, c: (N, 2) float32 pinhole intrinsics, px.
        image_paths: (N,) str relative to the dataset root.
        bbox: (N, 4) float32 xywh px (joint extent x1.2).
    """

    sequence: np.ndarray
    frame: np.ndarray
    activity: np.ndarray
    joints_2d: np.ndarray
    joints_cam: np.ndarray
    joints_univ: np.ndarray
    f: np.ndarray
    c: np.ndarray
    image_paths: np.ndarray
    bbox: np.ndarray

    def __len__(self) -> int:
        return len(self.sequence)


def _bbox_of(uv: np.ndarray) -> np.ndarray:
    return joint_bbox(uv).astype(np.float32)


def _joints_array(path: Path, f, name: str, dim: int) -> np.ndarray:
    """h5py field -> (n, 17, dim), accepting the reversed MATLAB axes (n, 1, 17, dim)."""
    if name not in f:
        raise DataError(path, f"missing field {name!r} (has {sorted(f.keys())})")
    arr = np.asarray(f[name][()], dtype=np.float64)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3 or arr.shape[1:] != (17, dim):
        raise DataError(path, f"{name}: expected (n, 1, 17, {dim}) as h5py reads MATLAB's "
                              f"{dim}x17x1xn, got {f[name].shape}")
    return arr


def read_test(root: str | Path, sequences=TEST_SEQUENCES, valid_only: bool = True) -> MPI3DHPFrames:
    """Read ``mpi_inf_3dhp_test_set/TS*/annot_data.mat`` under ``root`` (valid frames only)."""
    import h5py

    root = Path(root)
    parts = []
    for seq in sequences:
        path = root / "mpi_inf_3dhp_test_set" / seq / "annot_data.mat"
        if not path.exists():
            raise DataError(path, "file not found")
        try:
            with h5py.File(path, "r") as f:
                a2 = _joints_array(path, f, "annot2", 2)
                a3 = _joints_array(path, f, "annot3", 3)
                u3 = _joints_array(path, f, "univ_annot3", 3)
                n = len(a3)
                valid = np.asarray(f["valid_frame"][()]).reshape(-1) if "valid_frame" in f \
                    else np.ones(n)
                act_key = next((k for k in ("activity_annotation", "activity_annnotation") if k in f), None)
                act = np.asarray(f[act_key][()]).reshape(-1).astype(int) if act_key else np.zeros(n, int)
        except OSError as err:
            raise DataError(path, f"not an HDF5 (MATLAB v7.3) file: {err}") from None
        if len(valid) != n or len(act) != n or len(a2) != n or len(u3) != n:
            raise DataError(path, "fields disagree on the number of frames")
        fit = np.isfinite(a3).all(axis=(1, 2)) & (a3[..., 2] > 0).all(axis=1)
        if not fit.any():
            raise DataError(path, "no frame with finite 3D in front of the camera")
        f_px, c_px = geometry.fit_pinhole_intrinsics(a2[fit].reshape(-1, 2), a3[fit].reshape(-1, 3))
        keep = (valid == 1) & fit if valid_only else np.ones(n, bool)
        idx = np.flatnonzero(keep)
        parts.append({
            "sequence": np.full(len(idx), seq, dtype=object), "frame": idx,
            "activity": np.array([ACTIVITIES[a - 1] if 1 <= a <= 7 else "" for a in act[idx]],
                                 dtype=object),
            "joints_2d": a2[idx], "joints_cam": a3[idx], "joints_univ": u3[idx],
            "f": np.tile(f_px, (len(idx), 1)), "c": np.tile(c_px, (len(idx), 1)),
            "image_paths": np.array([f"mpi_inf_3dhp_test_set/{seq}/imageSequence/img_{i + 1:06d}.jpg"
                                     for i in idx], dtype=object),
            "bbox": _bbox_of(a2[idx])})
    return _concat(parts)


def _concat(parts: list[dict]) -> MPI3DHPFrames:
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return MPI3DHPFrames(cat["sequence"], cat["frame"].astype(np.int64), cat["activity"],
                         cat["joints_2d"].astype(np.float32), cat["joints_cam"].astype(np.float32),
                         cat["joints_univ"].astype(np.float32), cat["f"].astype(np.float32),
                         cat["c"].astype(np.float32), cat["image_paths"], cat["bbox"])


def read_calibration(path: str | Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``camera.calibration`` -> {camera: (K (4, 4), RT (4, 4) world->camera, mm)}."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    cams = {}
    for cam in range((len(lines) - 1) // 7):
        try:
            k = np.array(lines[cam * 7 + 5].split()[1:], dtype=np.float64).reshape(4, 4)
            rt = np.array(lines[cam * 7 + 6].split()[1:], dtype=np.float64).reshape(4, 4)
        except ValueError as err:
            raise DataError(path, f"malformed intrinsic/extrinsic line: {err}", f"camera {cam}") from None
        cams[cam] = (k, rt)
    return cams


def read_train(root: str | Path, subjects=SPLITS["train"], sequences=(1, 2),
               cameras=TRAIN_CAMERAS) -> MPI3DHPFrames:
    """Read ``S*/Seq*/annot.mat`` (+ ``camera.calibration``) for the usual training cameras."""
    import scipy.io

    root = Path(root)
    parts = []
    for s in subjects:
        for q in sequences:
            seq_dir = root / f"S{s}" / f"Seq{q}"
            path = seq_dir / "annot.mat"
            try:
                mat = scipy.io.loadmat(path)
            except FileNotFoundError:
                raise DataError(path, "file not found") from None
            except (ValueError, NotImplementedError) as err:
                raise DataError(path, f"not a MATLAB v5 file: {err}") from None
            calib = read_calibration(seq_dir / "camera.calibration")
            n = int(np.asarray(mat["frames"]).size)
            for cam in cameras:
                try:
                    a2 = np.asarray(mat["annot2"][cam][0], dtype=np.float64).reshape(-1, 28, 2)[:n]
                    a3 = np.asarray(mat["annot3"][cam][0], dtype=np.float64).reshape(-1, 28, 3)[:n]
                    u3 = np.asarray(mat["univ_annot3"][cam][0], dtype=np.float64).reshape(-1, 28, 3)[:n]
                except (KeyError, IndexError, ValueError) as err:
                    raise DataError(path, f"bad annot cell: {err}", f"camera {cam}") from None
                if len(a3) < n:
                    raise DataError(path, f"{len(a3)} rows for {n} frames", f"camera {cam}")
                k = calib[cam][0]
                rel = list(RELEVANT_17)
                parts.append({
                    "sequence": np.full(n, f"S{s}/Seq{q}/cam{cam}", dtype=object),
                    "frame": np.arange(n), "activity": np.full(n, "", dtype=object),
                    "joints_2d": a2[:, rel], "joints_cam": a3[:, rel], "joints_univ": u3[:, rel],
                    "f": np.tile([k[0, 0], k[1, 1]], (n, 1)), "c": np.tile([k[0, 2], k[1, 2]], (n, 1)),
                    "image_paths": np.array([f"S{s}/Seq{q}/imageFrames/video_{cam}/frame_{i + 1:06d}.jpg"
                                             for i in range(n)], dtype=object),
                    "bbox": _bbox_of(a2[:, rel])})
    return _concat(parts)


def frames_root(root: str | Path, frames: MPI3DHPFrames) -> Path:
    """Where the training frames live: the dataset root when they are there already or it is
    writable, else a per-root folder in the data cache (``$WSP_DATA_HOME/mpi3dhp-frames/``), so a
    read-only copy of the dataset works."""
    import hashlib

    from mcpc_builder.default_data import cache_home

    root = Path(root)
    paths = dict.fromkeys(frames.image_paths.tolist())
    if all((root / p).exists() for p in paths) or os.access(root, os.W_OK):
        return root
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return cache_home() / "mpi3dhp-frames" / key


def extract_frames(root: str | Path, frames: MPI3DHPFrames, out_root: str | Path | None = None) -> int:
    """Decode ``imageSequence/video_{c}.avi`` into ``imageFrames/video_{c}/frame_%06d.jpg`` for
    every training frame whose image file is missing (once; as mmpose's preprocessing does).
    Videos are read under ``root``; frames are written under ``out_root`` (default ``root``; see
    ``frames_root``). Returns the number of frames written."""
    import cv2

    root = Path(root)
    out_root = root if out_root is None else Path(out_root)
    missing = [p for p in dict.fromkeys(frames.image_paths.tolist()) if not (out_root / p).exists()]
    videos = sorted({str(Path(p).parent) for p in missing})
    written = 0
    for folder in videos:
        seq_dir = root / Path(folder).parent.parent
        cam = Path(folder).name.split("_")[1]
        video = seq_dir / "imageSequence" / f"video_{cam}.avi"
        cap = cv2.VideoCapture(str(video))
        if not cap.isOpened():
            raise DataError(video, "cannot open video")
        out = out_root / folder
        out.mkdir(parents=True, exist_ok=True)
        i = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            i += 1
            target = out / f"frame_{i:06d}.jpg"
            if not target.exists():
                tmp = out / f".frame_{i:06d}.tmp.jpg"
                cv2.imwrite(str(tmp), img)
                tmp.replace(target)
                written += 1
        cap.release()
    still = [p for p in missing if not (out_root / p).exists()]
    if still:
        raise DataError(out_root / still[0], f"{len(still)} frames not found in their videos")
    return written


def read_mpi3dhp(root: str | Path, split: str = "test") -> MPI3DHPFrames:
    """The standard split: test = TS1..TS6 valid frames; train = S1..S8, Seq1-2, 8 cameras."""
    if split == "test":
        return read_test(root)
    if split == "train":
        return read_train(root)
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")
