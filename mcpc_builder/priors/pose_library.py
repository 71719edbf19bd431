"""P6 (opt-in): within-person depth order voted by the nearest poses of a 3D pose library.

``lifting`` labels only what geometry forces: most 2D poses admit 3D lifts that disagree on most
joint pairs, so it leaves many pairs of a person unlabelled. A library of real 3D poses (motion
capture, ``synth.pose_library`` format: ``.npz`` or ``.bvh``) chooses between those lifts
statistically: each library pose is seen through ``views`` sampled cameras (the geometry of the
``pipelines.bench.mocap_priors`` harness, optionally mirrored left-right, with COCO-sized
annotator click noise), and every view stores its normalised 2D body pose and the true depth
order of every joint pair. A person is labelled from the ``k`` views nearest its own 2D pose:
a pair is ordered when at least ``agreement`` of them order it the same way by at least
``min_gap_m``.

Features: the 12 body joints (shoulders, elbows, wrists, hips, knees, ankles) about the mid-hip
point, divided by their RMS distance from it; a person needs both hips and ``min_joints`` of the
12 labelled, and is compared on the joints it has. ``torso_filter``:
the neighbours are taken, nearest first, among the ``candidates`` nearest views whose torso
orientation (the depth signs of hip line, shoulder line and spine) ``lifting`` did not rule out
for this person -- the geometric and statistical priors checking each other; with fewer than
``k`` such views the filter is dropped for that person.

What it is not: a library of one actor (``../shared/fixtures/mocap-dev``: 123 poses of 11
activities) covers few of the poses people take in the wild; its labels are as good as the
library's coverage of the test poses. So it is off unless a library is named
(``mcpc-build --pose-library FILE``), and the build manifest records which file it was.

Nearest neighbours are brute force (float32 matrix products, chunked): with a library of
~50k views this is ~1 ms per person on one core; no index structure is needed at this size.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..joints import BODY_POINTS, MCPC21
from ..synth.annotator import SIGMAS
from ..synth.pose_library import READ_ERRORS, as_data_error
from .config import PoseLibraryConfig, PriorConfig
from .pairs import Pairs

J = MCPC21.index
IMAGE_SIZE = 1000  # pixels, the sampled cameras' square image
FEATURE_JOINTS = np.array([J[p] for p in (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")])
PAIR_A, PAIR_B = np.triu_indices(MCPC21.num_joints, 1)
_BODY_ROWS = np.array([BODY_POINTS.index(p) for p in MCPC21.body_points])
CLICK_SIGMA = SIGMAS[_BODY_ROWS]  # OKS sigma of each MCPC-21 joint


HIP_SLOTS = [list(FEATURE_JOINTS).index(J[h]) for h in ("left_hip", "right_hip")]


def about_mid_hip(points: np.ndarray) -> np.ndarray:
    """(N, 12, 2) float64 feature-joint positions relative to the mid-hip point."""
    x = np.asarray(points, np.float64)
    return x - 0.5 * (x[:, HIP_SLOTS[0]] + x[:, HIP_SLOTS[1]])[:, None]


def normalised(points: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """(N, 24) float32 normalised 2D body pose from (N, 12, 2) feature-joint positions: about the
    mid-hip point, divided by the RMS distance from it. ``present`` (12,) bool, or (N, 12) one
    row per person: use only these joints (the others are 0 in the output); default all, and a
    person missing one is a NaN row.
    """
    x = about_mid_hip(points)
    if present is None:
        m = np.float64(len(FEATURE_JOINTS))
    else:
        present = np.broadcast_to(present, x.shape[:2])
        x = np.where(present[..., None], x, 0.0)
        m = present.sum(1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt((x ** 2).sum((1, 2)) / m)
        f = x / np.where(rms > 0, rms, np.nan)[:, None, None]
    return f.reshape(len(f), -1).astype(np.float32)


def features(keypoints: np.ndarray) -> np.ndarray:
    """(N, 24) float32 normalised 2D body pose from (N, 21, 2) MCPC-21 keypoints; NaN rows for
    persons without all 12 feature joints."""
    return normalised(np.asarray(keypoints, np.float64)[:, FEATURE_JOINTS])


def sample_cameras(target: np.ndarray, rng: np.random.Generator):
    """World->camera rotations and centres aimed at ``target`` (V, 3) (metres, Z up).

    Height 0.5-3 m, horizontal distance 2-15 m, random yaw around the person, aimed at the target
    with 0.3 m jitter, focal length 0.6-2.0 x the image width.

    Returns R (V, 3, 3) rows = camera x (right), y (down), z (forward) in world coordinates;
    centre (V, 3); focal (V,) pixels.
    """
    v = len(target)
    yaw = rng.uniform(0, 2 * np.pi, v)
    dist = rng.uniform(2.0, 15.0, v)
    height = rng.uniform(0.5, 3.0, v)
    centre = np.stack([target[:, 0] + dist * np.cos(yaw), target[:, 1] + dist * np.sin(yaw),
                       height], axis=1)
    aim = target + rng.normal(0, 0.3, (v, 3))
    fwd = aim - centre
    fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    down = np.cross(fwd, right)
    focal = rng.uniform(0.6, 2.0, v) * IMAGE_SIZE
    return np.stack([right, down, fwd], axis=1), centre, focal


def project_views(world: np.ndarray, R: np.ndarray, centre: np.ndarray, focal: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(V, J, 3) world points seen by the cameras of ``sample_cameras``: (V, J, 2) pixels and
    (V, J) camera depth, metres."""
    cam = np.einsum("vij,vkj->vki", R, world - centre[:, None])
    z = cam[..., 2]
    return focal[:, None, None] * cam[..., :2] / z[..., None] + IMAGE_SIZE / 2, z


def click_noise(uv: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(V, J, 2) keypoints plus annotators' click noise: per joint its OKS ``sigma`` (J,) times
    sqrt(area / 2) per axis (the OKS sigma is the spread of the click's distance), area = half
    the box of the V-th set of keypoints."""
    area = 0.5 * np.prod(uv.max(1) - uv.min(1), axis=1)
    return uv + rng.normal(size=uv.shape) * (sigma[None, :, None]
                                             * np.sqrt(area / 2)[:, None, None])


def mirrored(joints21: np.ndarray) -> np.ndarray:
    """(N, 21, 3) poses mirrored left-right (world x negated, left and right joints swapped)."""
    out = joints21[:, MCPC21.flip_index].copy()
    out[..., 0] *= -1
    return out


@dataclass(frozen=True, eq=False)  # hashed by identity: ``view_orders`` caches per index
class LibraryIndex:
    """Library views, one row each.

    features: (V, 24) float32; gap: (V, P) float16 true z_a - z_b of the pairs (``PAIR_A``,
    ``PAIR_B``), metres of the library body; torso: (V,) int8 the view's torso hypothesis
    (``lifting.torso_hypothesis``); group: (V,) str the pose's activity; pose: (V,) int64 the
    library pose; stature: the library body's stature, metres; points: (V, 12, 2) float32 the
    views' 2D feature joints (pixels), for people with some of them unlabelled (None: not kept).
    """

    features: np.ndarray
    gap: np.ndarray
    torso: np.ndarray
    group: np.ndarray
    pose: np.ndarray
    stature: float
    points: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.features)

    def subset(self, keep: np.ndarray) -> "LibraryIndex":
        """The views where ``keep`` (V,) bool holds (e.g. all but one activity, to measure)."""
        return LibraryIndex(self.features[keep], self.gap[keep], self.torso[keep],
                            self.group[keep], self.pose[keep], self.stature,
                            None if self.points is None else self.points[keep])


def build_index(joints21: np.ndarray, stature: float, group: np.ndarray, views: int = 200,
                seed: int = 1, mirror: bool = True, noise: bool = True) -> LibraryIndex:
    """Project (N, 21, 3) library poses (metres, Z up) through ``views`` cameras each.

    ``mirror`` adds every pose mirrored left-right (its own cameras); ``noise`` adds 2D click
    noise the size of COCO annotators' (OKS sigma x sqrt(area) per keypoint, area = half the
    projected box) to the features, as the people they are compared with carry it.
    """
    from .lifting import torso_hypothesis

    rng = np.random.default_rng(seed)
    group = np.asarray(group)
    pose_id = np.arange(len(joints21))
    if mirror:
        joints21 = np.concatenate([joints21, mirrored(joints21)])
        group = np.concatenate([group, group])
        pose_id = np.concatenate([pose_id, pose_id])
    pose = np.repeat(np.arange(len(joints21)), views)
    world = joints21[pose]
    uv, z = project_views(world, *sample_cameras(world[:, J["pelvis"]], rng))
    if noise:
        uv = click_noise(uv, CLICK_SIGMA, rng)
    gap = (z[:, PAIR_A] - z[:, PAIR_B]).astype(np.float16)
    return LibraryIndex(features(uv), gap, torso_hypothesis(z).astype(np.int8), group[pose],
                        pose_id[pose], float(stature), uv[:, FEATURE_JOINTS].astype(np.float32))


@functools.lru_cache(maxsize=4)
def _cached_index(path: str, mtime_ns: int, size: int, views: int, seed: int, mirror: bool,
                  noise: bool) -> LibraryIndex:
    from ..synth.pose_library import load_pose_library

    lib = load_pose_library(path)
    return build_index(lib.joints[:, _BODY_ROWS], lib.stature, lib.activity, views, seed,
                       mirror, noise)


def load_index(config: PoseLibraryConfig) -> LibraryIndex:
    """The index of the library ``config.path`` names (cached per file and parameters).

    Raises ``DataError`` naming the file when it is missing or not a pose library."""
    path = config.path
    try:
        st = os.stat(path)
    except OSError:
        raise DataError(path, "pose library not found (priors.pose_library.path / "
                              "--pose-library)") from None
    try:
        return _cached_index(str(Path(path).resolve()), st.st_mtime_ns, st.st_size,
                             config.views, config.seed, config.mirror, config.noise)
    except DataError:
        raise
    except READ_ERRORS as err:
        raise as_data_error(path, err) from None


def smallest(d: np.ndarray, count: int, stride: int = 8) -> np.ndarray:
    """(Q, count) column indices of the ``count`` smallest entries of each row of ``d`` (Q, V),
    smallest first (ties: lower column first). Exact.

    A full ``argpartition`` of every row costs most of the prior's time. Instead a threshold is
    taken from every ``stride``-th column (the entry expected to have ~2 x ``count`` entries of
    the row below it), the entries under it are sorted, and only rows where fewer than ``count``
    entries fell under it take the full partition.
    """
    q, v = d.shape
    count = min(count, v)
    if q == 0:
        return np.zeros((0, count), np.int64)
    out = np.empty((q, count), np.int64)
    m = 2 * count // stride
    if v < 4 * count * stride or m < 1:
        rows = np.arange(q)
    else:
        sub = d[:, ::stride]
        thr = np.partition(sub, m, axis=1)[:, m]
        mask = d <= thr[:, None]
        under = np.count_nonzero(mask, axis=1)
        enough = under >= count
        rows = np.flatnonzero(enough)
        # The entries under the threshold, row-major (so ascending column within a row), laid
        # out as one padded row each and sorted stably: by value, ties by column.
        r, c = np.divmod(np.flatnonzero(mask[enough]), v)
        under = under[enough]
        at = np.arange(len(r)) - (np.cumsum(under) - under)[r]
        vals = np.full((len(rows), int(under.max(initial=0))), np.inf, d.dtype)
        cols = np.zeros(vals.shape, np.int64)
        vals[r, at] = d[rows[r], c]
        cols[r, at] = c
        first = np.argsort(vals, axis=1, kind="stable")[:, :count]
        out[enough] = np.take_along_axis(cols, first, 1)
        rows = np.flatnonzero(~enough)
    if len(rows):
        dd = d[rows]
        part = np.argpartition(dd, count - 1, axis=1)[:, :count] if count < v \
            else np.tile(np.arange(v), (len(rows), 1))
        order = np.lexsort((part, np.take_along_axis(dd, part, 1)), axis=1)
        out[rows] = np.take_along_axis(part, order, 1)
    return out


def nearest(query: np.ndarray, index_features: np.ndarray, count: int,
            index_sq: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` nearest index rows of each query, nearest first: (Q, count) int64 rows and
    (Q, count) float32 Euclidean distances. ``index_sq``: the rows' squared norms, if known."""
    index_sq = (index_features ** 2).sum(1) if index_sq is None else index_sq
    # |q|^2 - 2 q.f + |f|^2, in place (the same roundings as written out).
    d = query @ index_features.T
    d *= -2
    d += (query ** 2).sum(1)[:, None]
    d += index_sq[None]
    near = smallest(d, count)
    return near, np.sqrt(np.maximum(np.take_along_axis(d, near, 1), 0))


def nearest_on_joints(query: np.ndarray, present: np.ndarray, centred: np.ndarray,
                      joint_sq: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``nearest`` for queries each normalised on its own joints (``normalised(points,
    present)``), against library views normalised on the same joints, without recomputing the
    views' features per subset of joints.

    Both sides are normalised to an RMS of 1 over the m joints they share, so |f|^2 = m on each
    side and |q - f_v|^2 = 2m - 2 q . f_v, with q . f_v = q . c_v / rms_v (q is 0 off its
    joints; c_v the view's points about its mid-hip) and rms_v^2 = the mean over those joints of
    |c_vj|^2 (``joint_sq``). Two matrix products, whatever the mix of subsets in a batch.

    Arguments:
        query: (Q, 24) float32; present: (Q, 12) bool; centred: (V, 24) float32 views' points
        about their mid-hip; joint_sq: (V, 12) float32 each joint's squared distance from it.
    """
    m = present.sum(1).astype(np.float32)[:, None]                           # (Q, 1)
    rms = present.astype(np.float32) @ joint_sq.T                           # (Q, V), in place:
    rms /= m
    np.sqrt(rms, out=rms)
    np.maximum(rms, np.float32(1e-12), out=rms)
    d = query @ centred.T
    d /= rms
    np.subtract(m, d, out=d)
    d *= 2                                                                  # 2 (m - q.f)
    near = smallest(d, count)
    return near, np.sqrt(np.maximum(np.take_along_axis(d, near, 1), 0))


def centred_views(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (V, 24) float32 views' feature joints about their mid-hip, and (V, 12) float32 each
    joint's squared distance from it (``nearest_on_joints``'s library side)."""
    x = about_mid_hip(points)
    return (x.reshape(len(x), -1).astype(np.float32),
            (x ** 2).sum(-1).astype(np.float32))


@functools.lru_cache(maxsize=2)
def view_orders(index: LibraryIndex, min_gap_m: float) -> np.ndarray:
    """(V, P) int8 each view's order of each pair: +1 a closer by >= ``min_gap_m``, -1 farther,
    0 a tie. Cached per index (the index of ``load_index`` is itself cached, so the shards of a
    build share one); read-only."""
    g = np.float16(min_gap_m)
    order = np.where(index.gap <= -g, 1, np.where(index.gap >= g, -1, 0)).astype(np.int8)
    order.flags.writeable = False
    return order


def vote(query: np.ndarray, index: LibraryIndex, cfg: PoseLibraryConfig,
         keep_torso: np.ndarray | None = None, distance_scale: float | np.ndarray = 1.0,
         order: np.ndarray | None = None, chunk: int = 128, present: np.ndarray | None = None
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair labels of each query from its ``k`` nearest library views.

    Arguments:
        query: (Q, 24) float32 features (finite); keep_torso: (Q, 8) bool torso hypotheses
            ``lifting`` keeps for each query, or None (no filter); order: ``view_orders`` of
            the index (computed when None; pass it when voting many times on one index);
            present: (Q, 12) bool the joints each query was normalised on (``normalised(points,
            present)``), compared with the views on those joints (``nearest_on_joints``; needs
            ``index.points``); None: all 12, against ``index.features``; distance_scale: a
            float or (Q,) per query.
    Returns:
        label: (Q, P) int8 +1 (a closer) / -1 / 0; margin: (Q, P) float32 the smallest |gap|
        among the agreeing views over the library stature (0 where unlabelled); distance: (Q,)
        float32 feature distance to the k-th (farthest) voting view, times ``distance_scale``
        (features on fewer joints: see ``pose_library``): how well the library covers the
        query's pose. Queries beyond ``max_distance`` get no label.
    """
    q_n, p_n = len(query), len(PAIR_A)
    label = np.zeros((q_n, p_n), np.int8)
    margin = np.zeros((q_n, p_n), np.float32)
    distance = np.full(q_n, np.inf, np.float32)
    if q_n == 0 or len(index) == 0:
        return label, margin, distance
    k = min(cfg.k, len(index))
    need = math.ceil(cfg.agreement * k - 1e-9)
    order = view_orders(index, cfg.min_gap_m) if order is None else order
    count = max(cfg.candidates, k) if keep_torso is not None else k
    if present is None:
        lib_f = np.ascontiguousarray(index.features, np.float32)
        lib_sq = (lib_f ** 2).sum(1)
    else:
        centred, joint_sq = centred_views(index.points)
    scale = np.broadcast_to(np.asarray(distance_scale, np.float32), (q_n,))
    for s in range(0, q_n, chunk):
        q = np.ascontiguousarray(query[s:s + chunk], np.float32)
        if present is None:
            cand, dist = nearest(q, lib_f, count, lib_sq)
        else:
            cand, dist = nearest_on_joints(q, present[s:s + chunk], centred, joint_sq, count)
        if keep_torso is not None:
            allowed = np.take_along_axis(keep_torso[s:s + chunk], index.torso[cand].astype(np.intp),
                                         1)
            enough = allowed.sum(1) >= k
            # Allowed candidates first (stable: nearest first within each class).
            rank = np.argsort(~allowed, axis=1, kind="stable")
            filtered = np.take_along_axis(cand, rank, 1)
            nn = np.where(enough[:, None], filtered[:, :k], cand[:, :k])
            kth = np.where(enough, np.take_along_axis(dist, rank, 1)[:, k - 1], dist[:, k - 1])
        else:
            nn = cand[:, :k]
            kth = dist[:, k - 1]
        kth = kth * scale[s:s + chunk]
        o = order[nn]  # (q, k, P) int8
        n_close = (o == 1).sum(1, dtype=np.int32)
        n_far = (o == -1).sum(1, dtype=np.int32)
        lab = np.where(n_close >= need, 1, np.where(n_far >= need, -1, 0)).astype(np.int8)
        if cfg.max_distance is not None:
            lab[kth > cfg.max_distance] = 0
        # The margin only where a pair is labelled: the smallest |gap| of its agreeing views.
        qi, pi = np.nonzero(lab)
        agree = o[qi, :, pi] == lab[qi, pi][:, None]  # (L, k)
        mag = np.abs(index.gap[nn[qi], pi[:, None]]).astype(np.float32)
        label[s:s + chunk] = lab
        margin[s + qi, pi] = np.where(agree, mag, np.inf).min(1) / index.stature
        distance[s:s + chunk] = kth
    return label, margin, distance


def pose_library(keypoints: np.ndarray, labelled: np.ndarray, config: PriorConfig,
                 keep_torso: np.ndarray | None = None, index: LibraryIndex | None = None
                 ) -> Pairs:
    """Within-person labels voted by the library's nearest views.

    Arguments:
        keypoints: (N, 21, 2) pixels, NaN unlabelled; labelled: (N, 21) bool;
        keep_torso: (N, 8) bool torso hypotheses ``lifting`` keeps per person (used when
            ``torso_filter``), or None; index: a prepared ``LibraryIndex`` (default: the one
            ``config.pose_library.path`` names).
    Only pairs of two labelled joints are emitted, for persons with both hips and at least
    ``min_joints`` of the 12 feature joints labelled. A person missing some is compared with the
    library views on the joints it has (``nearest_on_joints``: all subsets in one pass); its
    feature distance is scaled by sqrt(12 / joints) before it is compared
    with ``near_distance`` and ``max_distance``.
    """
    cfg = config.pose_library
    index = index if index is not None else load_index(cfg)
    pts = np.asarray(keypoints, np.float64)[:, FEATURE_JOINTS]
    have = np.isfinite(pts).all(-1)  # (N, 12)
    count = have.sum(1)
    ok = have[:, HIP_SLOTS].all(1) & (count >= min(cfg.min_joints, len(FEATURE_JOINTS)))
    if index.points is None:
        ok &= count == len(FEATURE_JOINTS)
    order = view_orders(index, cfg.min_gap_m) if ok.any() else None
    out = []
    # People with all 12 joints against the index's features; the others each on the joints it
    # has, all subsets in one pass (``nearest_on_joints``).
    for rows in (np.flatnonzero(ok & (count == len(FEATURE_JOINTS))),
                 np.flatnonzero(ok & (count < len(FEATURE_JOINTS)))):
        if not len(rows):
            continue
        full = bool(count[rows[0]] == len(FEATURE_JOINTS))
        present = None if full else have[rows]
        q = normalised(pts[rows], present)
        kt = keep_torso[rows] if (keep_torso is not None and cfg.torso_filter) else None
        label, margin, distance = vote(q, index, cfg, kt,
                                       np.sqrt(len(FEATURE_JOINTS) / count[rows]), order,
                                       present=present)
        lab = labelled[rows]
        hit = (label != 0) & lab[:, PAIR_A] & lab[:, PAIR_B]
        n, p = np.nonzero(hit)  # person-major
        confidence = np.where(distance[n] <= cfg.near_distance, cfg.confidence_near,
                              cfg.confidence_far)
        out.append(Pairs.make("pose_library", rows[n], PAIR_A[p], rows[n], PAIR_B[p],
                              label[n, p], confidence, margin[n, p]))
    if not out:
        return Pairs.empty()
    pairs = Pairs.concat(out)
    return pairs.take(np.argsort(pairs.person_a, kind="stable"))  # person-major
