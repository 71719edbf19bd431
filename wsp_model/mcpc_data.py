"""MCPC build directory -> person-centred training samples (image crop, heatmaps, depth pairs).

Reading. ``read_build(build_dir)`` reads the build through the data contract's one reader
(``mcpc_builder.contract.read_build``: schema version, exactly the manifest's shards, their sizes
and sha256 and row counts, else a ``DataError`` naming the file) into flat numpy arrays
(``McpcTables``): only the columns training needs, a few hundred bytes per person, so even
COCO-train scale is tens of MB per process. Image paths are resolved against the per-source
root recorded in the manifest; ``image_id`` in the tables is a build-wide image key (source image
ids repeat across sources and splits).

Samples. ``McpcDataset`` has one sample per person of the chosen split. A sample is a square
region around the person (side ``context * max(bbox w, h)``, so neighbours fit) warped to
``crop_size`` pixels, with Gaussian heatmap targets for the person's labelled joints and every
labelled pair of that image whose two points fall inside the region, including cross-person
pairs and pairs of neighbours. Training samples are augmented (scale, rotation, colour,
horizontal flip) with a generator seeded from ``(seed, draw)``, ``draw`` being the sample's
position in the engine's data stream, so a run is reproducible and resumable exactly.

Flip. A mirrored image of a person looks like a person whose left and right are swapped, so
heatmap channel ``j`` of the flipped sample is the target of joint ``MCPC21.flip_index[j]``,
mirrored. A pair is a relation between two *physical points*: each point's coordinates are
mirrored and its joint id mapped through ``flip_index``; the label (which point is closer) is
unchanged, because mirroring the image does not change any depth.

Division of work. The dataset is map-style; the engine's ``StreamBatchSampler`` splits the data
stream among DDP ranks, and the DataLoader gives each batch to exactly one worker (scheme in
``wsp_model.engine``), so no sample is drawn twice or lost within an epoch.

Bad images. A missing, undecodable or wrongly sized image gives a sample with ``image_ok = 0``
and no supervision (zero joint weights, no pairs); it is counted in ``dataset.skipped`` (per
process) and the pre-training loss logs the count as ``n_skipped_images``. Training never stops
on one bad file.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from mcpc_builder import contract
from mcpc_builder.contract import MANIFEST_NAME, read_manifest, source_roots  # noqa: F401
from mcpc_builder.errors import DataError
from mcpc_builder.joints import MCPC21

from .config import DataConfig

log = logging.getLogger(__name__)
NUM_JOINTS = MCPC21.num_joints
FLIP_INDEX = MCPC21.flip_index
REDUCED_READ_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                      4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


# ----------------------------------------------------------------------------- reading

@dataclass
class McpcTables:
    """Persons and pairs of a build as flat arrays (pairs reference person *rows*).

    Arguments:
        person_id: (N,) int64 global person id.
        image_id: (N,) int64 build-wide image key (one per (source, split, source image id)).
        source_image_id: (N,) int64 the source's own image id (COCO ``images[].id``).
        split: (N,) object str.
        image_file: (N,) object str, absolute image path.
        image_size: (N, 2) int32 (width, height), pixels.
        bbox: (N, 4) float32 xywh, original pixels.
        keypoints: (N, 21, 2) float32 MCPC-21, original pixels; NaN unlabelled.
        visibility: (N, 21) uint8.
        source_ann_id: (N,) int64.
        source: (N,) object str.
        pair_a, pair_b: (M,) int64 person rows; joint_a, joint_b: (M,) int64 MCPC-21 indices.
        label: (M,) int8 (+1 a closer, -1 farther, 0 equal); confidence: (M,) float32.
    """

    person_id: np.ndarray
    image_id: np.ndarray
    split: np.ndarray
    image_file: np.ndarray
    image_size: np.ndarray
    bbox: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    source_ann_id: np.ndarray
    source: np.ndarray
    source_image_id: np.ndarray
    pair_a: np.ndarray
    joint_a: np.ndarray
    pair_b: np.ndarray
    joint_b: np.ndarray
    label: np.ndarray
    confidence: np.ndarray
    synthetic_sources: tuple = ()

    def __len__(self) -> int:
        return len(self.person_id)


def _fixed_list(table, name: str, width: int, dtype) -> np.ndarray:
    col = table.column(name).combine_chunks()
    values = col.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=dtype).reshape(len(table), width)


def _strings(table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_pylist(), dtype=object)


PERSON_COLUMNS = ["person_id", "source", "split", "image_id", "image_path", "image_width",
                  "image_height", "bbox", "keypoints", "visibility", "source_ann_id"]
PAIR_COLUMNS = ["person_a", "joint_a", "person_b", "joint_b", "label", "confidence"]


def read_build(build_dir: str | os.PathLike, verify: str = "checksums") -> McpcTables:
    """Read a verified MCPC build into ``McpcTables``.

    ``verify``: ``"checksums"`` (default: training reads a build once, and sha256 of a
    COCO-scale build takes about a second) or ``"sizes"``.
    """
    build_dir = Path(build_dir)
    b = contract.read_build(build_dir, verify=verify, persons_columns=PERSON_COLUMNS,
                            pairs_columns=PAIR_COLUMNS)
    roots = b.roots
    t, pt = b.persons, b.pairs
    n = t.num_rows
    source = _strings(t, "source")
    split = _strings(t, "split")
    image_path = _strings(t, "image_path")
    source_image_id = t.column("image_id").to_numpy().astype(np.int64)
    missing_roots = sorted(set(source) - set(roots))
    if missing_roots:
        raise DataError(build_dir / MANIFEST_NAME, f"no image root for sources {missing_roots}")
    image_file = np.array([str(roots[s] / rel) for s, rel in zip(source, image_path)],
                          dtype=object)
    # One key per image of the build: source image ids repeat across sources and splits.
    if n:
        triples = np.array([f"{a}\0{b}" for a, b in zip(source, split)], dtype=object)
        _, group = np.unique(triples, return_inverse=True)
        keys = np.stack([group.astype(np.int64), source_image_id], 1)
        _, image_key = np.unique(keys, axis=0, return_inverse=True)
        image_key = image_key.reshape(-1).astype(np.int64)
    else:
        image_key = np.zeros(0, np.int64)
    person_id = t.column("person_id").to_numpy().astype(np.int64)
    order = np.argsort(person_id, kind="stable")
    sorted_ids = person_id[order]

    def rows_of(ids: np.ndarray, what: str) -> np.ndarray:
        pos = np.clip(np.searchsorted(sorted_ids, ids), 0, max(len(sorted_ids) - 1, 0))
        bad = sorted_ids[pos] != ids if len(sorted_ids) else np.ones(len(ids), bool)
        if np.any(bad):
            raise DataError(build_dir, f"pair references unknown person {int(ids[bad][0])}",
                            record=what)
        return order[pos]

    return McpcTables(
        person_id=person_id, image_id=image_key, split=split, image_file=image_file,
        image_size=np.stack([t.column("image_width").to_numpy(),
                             t.column("image_height").to_numpy()], 1).astype(np.int32)
        .reshape(n, 2),
        bbox=_fixed_list(t, "bbox", 4, np.float32),
        keypoints=_fixed_list(t, "keypoints", 2 * NUM_JOINTS, np.float32)
        .reshape(n, NUM_JOINTS, 2),
        visibility=_fixed_list(t, "visibility", NUM_JOINTS, np.uint8),
        source_ann_id=t.column("source_ann_id").to_numpy().astype(np.int64), source=source,
        source_image_id=source_image_id,
        pair_a=rows_of(pt.column("person_a").to_numpy().astype(np.int64), "person_a"),
        joint_a=pt.column("joint_a").to_numpy().astype(np.int64),
        pair_b=rows_of(pt.column("person_b").to_numpy().astype(np.int64), "person_b"),
        joint_b=pt.column("joint_b").to_numpy().astype(np.int64),
        label=pt.column("label").to_numpy().astype(np.int8),
        confidence=pt.column("confidence").to_numpy().astype(np.float32),
        synthetic_sources=tuple(b.synthetic_sources))


# ----------------------------------------------------------------------------- geometry

def crop_affine(center: np.ndarray, side: float, rotation_deg: float, crop_size: int,
                flip: bool) -> np.ndarray:
    """(2, 3) float64 affine from original pixels to crop pixels (pixel centres at integers).

    Arguments:
        center: (2,) region centre, original pixels.
        side: region side, original pixels (before rotation).
        rotation_deg: counter-clockwise rotation of the image content, degrees.
        crop_size: output side S, pixels.
        flip: mirror the crop horizontally (x -> S - 1 - x) after the warp.
    """
    s = crop_size / side
    a = math.radians(rotation_deg)
    cos, sin = s * math.cos(a), s * math.sin(a)
    half = crop_size / 2.0 - 0.5
    # y points down, so a counter-clockwise rotation on screen is [[cos, sin], [-sin, cos]].
    m = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]])
    m[:, 2] = np.array([half, half]) - m[:, :2] @ np.asarray(center, np.float64)
    if flip:
        m = np.array([[-1.0, 0.0, crop_size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0, 0, 1]])
    return m


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """points (..., 2) -> (..., 2) float32 under the (2, 3) affine ``m``."""
    return (points @ m[:, :2].T + m[:, 2]).astype(np.float32)


def gaussian_heatmaps(points: np.ndarray, weight: np.ndarray, size: int, stride: int,
                      sigma: float) -> np.ndarray:
    """(K, size, size) float32 Gaussians (peak 1) at crop-pixel points; zero where weight is 0.

    A crop pixel u maps to heatmap coordinate (u + 0.5) / stride - 0.5 (pixel-centre convention,
    the same one ``losses.sample_depth`` uses).
    """
    grid = np.arange(size, dtype=np.float32)
    hm_pts = (np.nan_to_num(points) + 0.5) / stride - 0.5
    gx = np.exp(-((grid[None, :] - hm_pts[:, :1]) ** 2) / (2 * sigma ** 2))
    gy = np.exp(-((grid[None, :] - hm_pts[:, 1:]) ** 2) / (2 * sigma ** 2))
    maps = gy[:, :, None] * gx[:, None, :]
    return (maps * (weight > 0)[:, None, None]).astype(np.float32)


# ----------------------------------------------------------------------------- dataset

class McpcDataset:
    """Person-centred MCPC samples (see the module docstring).

    Arguments:
        tables: ``read_build`` output (shared, read-only).
        cfg: crop / heatmap / augmentation settings.
        splits: persons whose ``split`` is one of these are the samples.
        augment: apply random scale / rotation / colour / flip (training).
        seed: mixed with each sample's ``draw`` to seed its augmentation.
        max_persons: keep only the first this-many persons (0: all).

    ``dataset[(index, draw)]`` (engine's training stream) or ``dataset[index]`` returns a dict:
        image (3, S, S) uint8 RGB; heatmaps (K, h, w) float32; joint_weight (K,) float32;
        keypoints (K, 2) float32 crop pixels (0 where unlabelled); point_a, point_b (P, 2) float32
        crop pixels; pair_label (P,) float32; pair_confidence (P,) float32; pair_mask (P,) bool;
        joint_a, joint_b (P,) int64 (-1 padding); pair_cross (P,) bool; person_row, draw int64;
        person_size float32 (max bbox side in crop pixels); affine (2, 3) float32 original ->
        crop pixels (flip included); image_ok float32; flipped bool.
    """

    def __init__(self, tables: McpcTables, cfg: DataConfig, splits, augment: bool,
                 seed: int = 0, max_persons: int = 0):
        self.t, self.cfg, self.augment, self.seed = tables, cfg, augment, seed
        labelled = (tables.visibility > 0).any(axis=1)
        splits = [splits] if isinstance(splits, str) else list(splits)
        rows = np.flatnonzero(np.isin(tables.split, splits) & labelled)
        self.rows = rows[:max_persons] if max_persons else rows
        self.skipped: Counter = Counter()
        self._pid = None
        # Pairs grouped by image: CSR over pair rows sorted by the image of person a.
        pair_image = tables.image_id[tables.pair_a] if len(tables.pair_a) else np.zeros(0, np.int64)
        self._pair_order = np.argsort(pair_image, kind="stable")
        self._pair_image_sorted = pair_image[self._pair_order]
        self.heatmap_size = cfg.crop_size // cfg.heatmap_stride

    def __len__(self) -> int:
        return len(self.rows)

    def image_pairs(self, image_id: int) -> np.ndarray:
        """Pair rows of one image."""
        lo, hi = np.searchsorted(self._pair_image_sorted, [image_id, image_id + 1])
        return self._pair_order[lo:hi]

    def _load(self, row: int, reduction: int = 1) -> np.ndarray | None:
        """BGR image of a person row decoded at 1/``reduction`` size, or None (counted)."""
        if self._pid != os.getpid():  # one OpenCV thread per loader process
            cv2.setNumThreads(1)
            self._pid = os.getpid()
        path = self.t.image_file[row]
        image = cv2.imread(path, REDUCED_READ_FLAGS[reduction])
        width, height = (int(v) for v in self.t.image_size[row])
        if image is None:
            reason = "missing" if not os.path.exists(path) else "undecodable"
        elif (abs(image.shape[1] - math.ceil(width / reduction)) > 1
              or abs(image.shape[0] - math.ceil(height / reduction)) > 1):
            reason = "size_mismatch"
        else:
            return image
        self.skipped[reason] += 1
        if sum(self.skipped.values()) <= 5:
            log.warning("skipping %s image %s (person row %d)", reason, path, row)
        return None

    def __getitem__(self, key) -> dict:
        index, draw = key if isinstance(key, tuple) else (key, -1)
        cfg, t = self.cfg, self.t
        row = int(self.rows[index])
        S, P = cfg.crop_size, cfg.max_pairs
        rng = np.random.default_rng((self.seed, draw + 1 if draw >= 0 else 0, index))
        x, y, w, h = t.bbox[row].astype(np.float64)
        center = np.array([x + w / 2, y + h / 2])
        side = max(w, h, 1.0) * cfg.context
        rotation, flip, gain, bias = 0.0, False, np.ones(3), 0.0
        if self.augment and draw >= 0:
            side *= 1.0 + rng.uniform(-cfg.scale_factor, cfg.scale_factor)
            if rng.random() < cfg.rotation_prob:
                rotation = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg)
            flip = bool(rng.random() < cfg.flip_prob)
            gain = 1.0 + rng.uniform(-cfg.colour_jitter, cfg.colour_jitter, size=3)
            bias = 255.0 * 0.5 * rng.uniform(-cfg.colour_jitter, cfg.colour_jitter)
        m = crop_affine(center, side, rotation, S, flip)

        # Decode JPEGs at 1/2, 1/4 or 1/8 size (libjpeg DCT scaling, much cheaper) when the
        # region still keeps at least crop_size pixels: the warp below then never upsamples.
        reduction = next(r for r in (8, 4, 2, 1) if side / r >= S or r == 1)
        image = self._load(row, reduction)
        ok = image is not None
        if ok:
            # A reduced pixel i covers original pixels [r*i, r*i + r): centre r*i + (r - 1)/2.
            m_read = m.copy()
            m_read[:, :2] *= reduction
            m_read[:, 2] += m[:, :2] @ np.full(2, (reduction - 1) / 2.0)
            crop = cv2.warpAffine(image, m_read, (S, S), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
            if self.augment and draw >= 0:
                crop = np.clip(crop.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
        else:
            crop = np.zeros((S, S, 3), np.uint8)

        def inside(p: np.ndarray) -> np.ndarray:
            return np.isfinite(p).all(-1) & (p >= 0).all(-1) & (p <= S - 1).all(-1)

        kp = apply_affine(m, t.keypoints[row].astype(np.float64))
        vis = t.visibility[row]
        weight = ((vis > 0) & inside(kp) & ok).astype(np.float32)
        if flip:
            kp, weight = kp[FLIP_INDEX], weight[FLIP_INDEX]
        heatmaps = gaussian_heatmaps(kp, weight, self.heatmap_size, cfg.heatmap_stride, cfg.sigma)

        point_a = np.zeros((P, 2), np.float32)
        point_b = np.zeros((P, 2), np.float32)
        label = np.zeros(P, np.float32)
        conf = np.zeros(P, np.float32)
        mask = np.zeros(P, bool)
        cross = np.zeros(P, bool)
        joint_a = np.full(P, -1, np.int64)
        joint_b = np.full(P, -1, np.int64)
        if ok and len(t.pair_a):
            prs = self.image_pairs(int(t.image_id[row]))
            pa = apply_affine(m, t.keypoints[t.pair_a[prs], t.joint_a[prs]].astype(np.float64))
            pb = apply_affine(m, t.keypoints[t.pair_b[prs], t.joint_b[prs]].astype(np.float64))
            keep = np.flatnonzero(inside(pa) & inside(pb))
            if len(keep) > P:
                keep = np.sort(rng.choice(keep, P, replace=False))
            n = len(keep)
            sel = prs[keep]
            point_a[:n], point_b[:n] = pa[keep], pb[keep]
            label[:n], conf[:n], mask[:n] = t.label[sel], t.confidence[sel], True
            cross[:n] = t.pair_a[sel] != t.pair_b[sel]
            ja, jb = t.joint_a[sel], t.joint_b[sel]
            joint_a[:n] = FLIP_INDEX[ja] if flip else ja
            joint_b[:n] = FLIP_INDEX[jb] if flip else jb

        return {
            "image": np.ascontiguousarray(crop.transpose(2, 0, 1)),
            "heatmaps": heatmaps, "joint_weight": weight,
            "keypoints": np.where(weight[:, None] > 0, kp, 0).astype(np.float32),
            "point_a": point_a, "point_b": point_b, "pair_label": label,
            "pair_confidence": conf, "pair_mask": mask, "pair_cross": cross,
            "joint_a": joint_a, "joint_b": joint_b,
            "person_row": np.int64(row), "draw": np.int64(draw),
            "person_size": np.float32(max(w, h) * S / side),
            "affine": m.astype(np.float32),
            "image_ok": np.float32(ok), "flipped": flip,
        }
