"""3D-pose samples for fine-tuning and evaluation: records from the H36M / 3DHP readers (or the
synthetic world) become square person crops with root-relative 3D targets.

A record set (``Pose3DRecords``) is a list of plain arrays until the last moment; ``Pose3DCrops``
turns one row into tensors. No rotation or flip is applied, so a crop pixel maps back to the
original image by a scale and a shift, and predicted crop coordinates can be lifted to 3D with the
frame's pinhole intrinsics (``head3d.lift_to_camera``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mcpc_builder import joints


@dataclass(frozen=True)
class CropConfig:
    """How a record becomes a network input.

    Arguments:
        crop_size: side S of the square input, pixels.
        padding: crop side = ``padding * max(bbox w, h)``.
        scale_jitter: training zoom in ``[1 - s, 1 + s]``.
        shift_jitter: training shift of the centre, fraction of the crop side.
        colour_jitter: training per-channel gain / brightness amplitude (fraction).
    """

    crop_size: int = 128
    padding: float = 1.15
    scale_jitter: float = 0.15
    shift_jitter: float = 0.05
    colour_jitter: float = 0.2


@dataclass
class Pose3DRecords:
    """One row per person image.

    Arguments:
        image_paths: (N,) str absolute paths.
        bbox: (N, 4) float32 xywh px.
        joints_cam: (N, J, 3) float32 camera frame mm (the training / evaluation target).
        f, c: (N, 2) float32 pinhole intrinsics px.
        group: (N,) str action (H36M) or sequence (3DHP) per row, for the per-group tables.
        layout: joint layout name (``joints.LAYOUTS``).
    """

    image_paths: np.ndarray
    bbox: np.ndarray
    joints_cam: np.ndarray
    f: np.ndarray
    c: np.ndarray
    group: np.ndarray
    layout: str
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.image_paths)

    @property
    def root(self) -> int:
        return joints.LAYOUTS[self.layout].joint("pelvis")

    def subset(self, index) -> "Pose3DRecords":
        index = np.asarray(index)
        return Pose3DRecords(self.image_paths[index], self.bbox[index], self.joints_cam[index],
                             self.f[index], self.c[index], self.group[index], self.layout,
                             {k: v[index] for k, v in self.extra.items()})

    def crop_size_mm(self, padding: float) -> np.ndarray:
        """(N,) metric side of each crop at the root depth, mm (side px * Z_root / f)."""
        side = padding * self.bbox[:, 2:].max(axis=1)
        return side * self.joints_cam[:, self.root, 2] / self.f.mean(axis=1)


def from_h36m(frames, root: str | Path) -> Pose3DRecords:
    """``wsp_model.h36m.H36MFrames`` with frames on disk -> records (H36M-17).

    The cameras' distortion (``k``, ``p``; zero for the mks0601 set, which ships none) goes to
    ``extra``, so crops are undistorted with the official model (see ``Pose3DCrops``)."""
    root = Path(root)
    f = np.stack([frames.cameras[(int(s), int(c))].f for s, c in zip(frames.subject, frames.camera)]) \
        if len(frames) else np.zeros((0, 2))
    c = np.stack([frames.cameras[(int(s), int(ci))].c for s, ci in zip(frames.subject, frames.camera)]) \
        if len(frames) else np.zeros((0, 2))
    cams = [frames.cameras[(int(s), int(ci))] for s, ci in zip(frames.subject, frames.camera)]
    k = np.array([cam.k for cam in cams], np.float64).reshape(-1, 3)
    p = np.array([cam.p for cam in cams], np.float64).reshape(-1, 2)
    return Pose3DRecords(np.array([str(root / p) for p in frames.image_paths], dtype=object),
                         frames.bbox.astype(np.float32), frames.joints_cam.astype(np.float32),
                         f.astype(np.float32), c.astype(np.float32), frames.action.astype(object),
                         "h36m17", {"subject": frames.subject, "k": k, "p": p})


def from_3dhp(frames, root: str | Path, target: str = "annot3") -> Pose3DRecords:
    """``wsp_model.mpi3dhp.MPI3DHPFrames`` -> records (3DHP-17). ``target``: "annot3" (true
    scale; training) or "univ_annot3" (the official test ground truth)."""
    root = Path(root)
    gt = frames.joints_cam if target == "annot3" else frames.joints_univ
    return Pose3DRecords(np.array([str(root / p) for p in frames.image_paths], dtype=object),
                         frames.bbox.astype(np.float32), gt.astype(np.float32),
                         frames.f.astype(np.float32), frames.c.astype(np.float32),
                         frames.sequence.astype(object), "mpi3dhp17",
                         {"activity": frames.activity, "root_depth": frames.joints_cam[:, 14, 2]})


def crop_box(bbox: np.ndarray, padding: float, rng: np.random.Generator | None = None,
             cfg: CropConfig | None = None) -> np.ndarray:
    """(4,) xywh -> (3,) float64 [centre x, centre y, side] px, jittered when ``rng`` is given."""
    x, y, w, h = (float(v) for v in bbox)
    cx, cy, side = x + w / 2, y + h / 2, padding * max(w, h, 1.0)
    if rng is not None and cfg is not None:
        side *= 1 + rng.uniform(-cfg.scale_jitter, cfg.scale_jitter)
        cx += side * rng.uniform(-cfg.shift_jitter, cfg.shift_jitter)
        cy += side * rng.uniform(-cfg.shift_jitter, cfg.shift_jitter)
    return np.array([cx, cy, side])


def crop_image(img: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Square region ``box`` = [cx, cy, side] of ``img`` (H, W, 3) -> (size, size, 3), constant
    padding outside; crop pixel u maps to original ``cx + (u + 0.5 - size/2) * side / size``, i.e.
    crop-normalised ``(u + 0.5) / size`` is ``to_crop_normalised`` of the original point."""
    cx, cy, side = box
    s = size / side
    # pixel centres: original u -> crop (u - cx) * s + size/2 - 0.5
    m = np.array([[s, 0.0, size / 2 - 0.5 - s * cx], [0.0, s, size / 2 - 0.5 - s * cy]])
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def crop_image_undistorted(img: np.ndarray, box: np.ndarray, size: int, f: np.ndarray,
                           c: np.ndarray, k: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Like ``crop_image``, but the crop is a *pinhole* view: crop pixel u shows the ray through
    pinhole pixel ``cx + (u + 0.5 - size/2) * side / size``, sampled from the distorted frame
    where the official Human3.6M model (``camera.project_h36m``; k radial, p tangential [p1, p2])
    puts it. Pinhole targets and the pinhole lifting of ``head3d`` are then exact (the pinhole
    differs from the distorted frame by up to ~3.4 px on Human3.6M)."""
    from .camera import project_h36m

    cx, cy, side = (float(v) for v in box)
    g = (np.arange(size) + 0.5 - size / 2) * side / size
    qx, qy = np.meshgrid(cx + g, cy + g)
    ray = np.stack([(qx - c[0]) / f[0], (qy - c[1]) / f[1], np.ones_like(qx)], -1)
    src = project_h36m(ray, f, c, k, p).astype(np.float32)
    return cv2.remap(img, src[..., 0], src[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def to_crop_normalised(uv: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(..., 2) original px -> (..., 2) crop coordinates in [0, 1] (0.5 = crop centre)."""
    return (uv - box[:2]) / box[2] + 0.5


class Pose3DCrops:
    """Map-style dataset over records (``wsp_model.engine`` protocol).

    ``__getitem__((index, draw))`` (training, augmented with ``rng((seed, draw))``) or
    ``__getitem__(index)`` (evaluation) -> dict with
        image (3, S, S) uint8 RGB; joints_rel (J, 3) float32 root-relative mm; uv (J, 2) float32
        crop-normalised target projections; box (3,) float32 [cx, cy, side] px; f, c (2,) float32;
        root_depth () float32 mm; index () int64; image_ok () float32 (0 if unreadable).
    """

    def __init__(self, records: Pose3DRecords, cfg: CropConfig, augment: bool, seed: int = 0):
        self.records, self.cfg, self.augment, self.seed = records, cfg, augment, seed

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key) -> dict:
        index, draw = key if isinstance(key, tuple) else (key, None)
        r, cfg = self.records, self.cfg
        rng = np.random.default_rng((self.seed, int(draw))) if self.augment and draw is not None else None
        box = crop_box(r.bbox[index], cfg.padding, rng, cfg)
        img = cv2.imread(str(r.image_paths[index]), cv2.IMREAD_COLOR)
        ok = img is not None
        if ok:
            k, p = r.extra.get("k"), r.extra.get("p")
            if k is not None and (np.any(k[index]) or np.any(p[index])):
                patch = crop_image_undistorted(img, box, cfg.crop_size, r.f[index], r.c[index],
                                               k[index], p[index])
            else:
                patch = crop_image(img, box, cfg.crop_size)
            crop = cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)
            if rng is not None and cfg.colour_jitter > 0:
                gain = 1 + rng.uniform(-cfg.colour_jitter, cfg.colour_jitter, 3)
                bias = 255.0 * 0.5 * rng.uniform(-cfg.colour_jitter, cfg.colour_jitter)
                crop = np.clip(crop.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
        else:
            crop = np.zeros((cfg.crop_size, cfg.crop_size, 3), np.uint8)
        xc = r.joints_cam[index].astype(np.float64)
        root = r.root
        uv = xc[:, :2] / xc[:, 2:3] * r.f[index] + r.c[index]
        return {
            "image": np.ascontiguousarray(crop.transpose(2, 0, 1)),
            "joints_rel": (xc - xc[root]).astype(np.float32),
            "uv": to_crop_normalised(uv, box).astype(np.float32),
            "box": box.astype(np.float32), "f": r.f[index].astype(np.float32),
            "c": r.c[index].astype(np.float32),
            "root_depth": np.float32(xc[root, 2]), "index": np.int64(index),
            "image_ok": np.float32(ok),
        }


# --------------------------------------------------------------------- dataset roots and splits
def _frames_root(root: Path, folder: str) -> Path:
    """``root`` when frames can be written there (or are there), else a per-root cache folder
    (``$WSP_DATA_HOME/h36m-frames/<hash>``), so a read-only dataset copy works."""
    import hashlib
    import os

    from mcpc_builder.default_data import cache_home

    if (root / folder).is_dir() or os.access(root, os.W_OK):
        return root
    return cache_home() / "h36m-frames" / hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]


ROOT_ENV = {"h36m": "H36M_ROOT", "3dhp": "MPI3DHP_ROOT"}


def resolve_root(dataset: str, data_root: str | Path | None = None) -> Path:
    """``data_root``, else ``$H36M_ROOT`` / ``$MPI3DHP_ROOT``, else the embedded synthetic default."""
    import os

    if dataset not in ROOT_ENV:
        raise ValueError(f"dataset must be one of {sorted(ROOT_ENV)}, got {dataset!r}")
    if data_root:
        return Path(data_root)
    env = os.environ.get(ROOT_ENV[dataset])
    if env:
        return Path(env)
    from mcpc_builder.default_data import default_root

    return default_root(dataset)


def load_records(dataset: str, root: str | Path, split: str, every: int = 1,
                 source: str = "auto") -> Pose3DRecords:
    """Records of a standard split.

    H36M (train S1, S5-S8; test S9, S11), every ``every``-th frame, from either
      - the mks0601 set (``annotations/`` + ``images/``; chosen first under ``source="auto"``;
        pinhole 2D; its camera files carry no distortion, so crops are undistorted only when the
        root also holds VideoPose3D's ``h36m_cameras.json``), or
      - a VideoPose3D root (``data_3d_h36m.npz``, ``data_2d_h36m_gt.npz``, ``h36m_cameras.json``)
        with the official videos ``S<n>/Videos/<sequence>.<camera id>.mp4``: frames are decoded
        once into ``vp3d_frames/`` (``h36m.attach_video_frames``), crops are undistorted with the
        cameras' official distortion model. Without the videos: a ``DataError`` that says what to
        provide (an npz root has no images). 3DHP: train = S1-S8 Seq1-2 on the 8 usual cameras with ``annot3`` targets
    (frames extracted from the videos on first use); test = TS1-TS6 valid frames with
    ``univ_annot3`` ground truth.
    """
    from . import h36m, mpi3dhp

    root = Path(root)
    if dataset == "h36m":
        if source == "auto":
            source = "mks0601" if (root / "annotations").is_dir() else \
                "vp3d" if (root / "data_3d_h36m.npz").exists() else None
        if source == "mks0601":
            frames = h36m.read_h36m(root, split, source="mks0601", every=every)
            return from_h36m(h36m.with_vp3d_distortion(frames, root), root)
        if source == "vp3d":
            frames = h36m.read_h36m(root, split, source="vp3d")
            image_root = _frames_root(root, h36m.VIDEO_FRAMES_DIR)
            return from_h36m(h36m.attach_video_frames(root, frames, image_root, every), image_root)
        from mcpc_builder.errors import DataError

        raise DataError(root, "not a Human3.6M root: expected the mks0601 set (annotations/ and "
                        "images/) or VideoPose3D files (data_3d_h36m.npz, data_2d_h36m_gt.npz, "
                        "h36m_cameras.json) with the official videos S<n>/Videos/*.mp4")
    if dataset == "3dhp":
        frames = mpi3dhp.read_mpi3dhp(root, split)
        if split == "train":
            image_root = mpi3dhp.frames_root(root, frames)
            mpi3dhp.extract_frames(root, frames, image_root)
            recs = from_3dhp(frames, image_root, "annot3")
        else:
            recs = from_3dhp(frames, root, "univ_annot3")
        return recs.subset(np.arange(0, len(recs), every)) if every > 1 else recs
    raise ValueError(f"dataset must be 'h36m' or '3dhp', got {dataset!r}")
