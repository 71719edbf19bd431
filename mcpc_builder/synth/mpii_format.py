"""Write a synthetic MPII Human Pose root in the official layouts, with ground truth.

    <root>/mpii_human_pose_v1_u12_1.mat   struct RELEASE (annolist, img_train, version,
                                          single_person, act, video_list), dataset-formats.md §2.1
    <root>/annot/{train,valid}.json       HRNet's converted list (image, center, scale, joints,
                                          joints_vis), §2.3
    <root>/images/%09d.jpg                JPEG images
    <root>/ground_truth/{train,valid}.npz ``ann_id`` = index in that JSON list
    <root>/ground_truth/mat.npz           ``ann_id`` = imgidx * 100 + ridx (0-based)

As in MPII: coordinates are 1-based MATLAB pixels; only joints inside the image are annotated
(``is_visible`` 0 when occluded), missing joints are simply absent from ``annopoints.point``;
test images (``img_train`` 0) have ``annorect`` with only ``scale`` and ``objpos``; people too
small to label have an ``annorect`` without ``annopoints`` (empty field); a few images store
``is_visible`` as a character ('0'/'1') instead of a number, as some images of the real file do.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import scipy.io
from tqdm import tqdm

from .. import atomic
from ..contract import ground_truth_path, write_ground_truth
from ..joints import BODY_POINTS, MCPC21, MPII16
from .coco_format import _write_jpeg
from .render import render_scene
from .annotator import annotate
from .camera import project_camera
from .scene import sample_scene
from .visibility import visibility, visibility_with_causes
from .worlds import WorldConfig

MAT_NAME = "mpii_human_pose_v1_u12_1.mat"
MAT_HEADER = "MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Fri Jan 10 12:00:00 2014"
MPII_FROM_BODY = np.array([BODY_POINTS.index(p) for p in MPII16.body_points])
MCPC_FROM_BODY = np.array([BODY_POINTS.index(p) for p in MCPC21.body_points])
TEST_FRACTION = 0.2           # images with img_train = 0
VALID_FRACTION = 0.25         # of the training images, listed in annot/valid.json
CHAR_VISIBLE_FRACTION = 0.1   # images whose is_visible fields are stored as characters
MIN_LABELLED_JOINTS = 6       # fewer in-image joints: annorect without annopoints
MIN_PERSON_PIXELS = 40.0      # skeleton extent below this: annorect without annopoints
MIN_SHOWN_PIXELS = 300        # (almost) hidden people: annorect without annopoints
# (pose family -> activity) in MPII's act fields: category, activity, id.
ACTIVITIES = {
    "standing": ("miscellaneous", "standing, talking", 85),
    "walking": ("walking", "walking, for exercise, with ski poles", 61),
    "running": ("running", "running, general", 34),
    "reaching": ("home activities", "reaching overhead, stretching", 17),
    "sitting": ("inactivity quiet/light", "sitting quietly", 29),
    "lying": ("inactivity quiet/light", "lying quietly", 98),
    "jumping": ("sports", "jumping rope", 44),
}
# A pose-library activity (e.g. "kick", "walk" from mocap clip names) has no entry in MPII's
# activity table: such images go under MPII's generic category "miscellaneous", keep the
# library's activity as their act_name, and get act_id -1 (MPII's id for an image without a
# listed activity).
GENERIC_CATEGORY = "miscellaneous"


def activity_fields(pose: str) -> tuple[str, str, int]:
    """MPII (category, activity, act_id) of a synthetic person's pose family or library activity."""
    if pose in ACTIVITIES:
        return ACTIVITIES[pose]
    return GENERIC_CATEGORY, str(pose), -1
RECT_FIELDS = ("x1", "y1", "x2", "y2", "annopoints", "scale", "objpos")
TEST_RECT_FIELDS = ("scale", "objpos")


def _struct(records: list[dict], names: tuple[str, ...]) -> np.ndarray:
    """A (1, n) MATLAB struct array (numpy record array of objects) for ``scipy.io.savemat``."""
    arr = np.empty((1, len(records)), dtype=[(n, object) for n in names])
    for k, rec in enumerate(records):
        for n in names:
            arr[0, k][n] = rec.get(n, np.zeros((0, 0)))
    return arr


def _scalar(v: float) -> np.ndarray:
    return np.array([[float(v)]])


def _head_rect(uv_top: np.ndarray, uv_neck: np.ndarray) -> tuple[float, float, float, float]:
    """A square head box (0-based pixels) around the head segment, side = its length."""
    centre = 0.5 * (uv_top + uv_neck)
    half = 0.5 * max(float(np.linalg.norm(uv_top - uv_neck)), 2.0)
    return centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half


def write(out_dir: Path, seed: int, n_images: int = 160, config: WorldConfig = WorldConfig(),
          progress: bool = True) -> Path:
    """Write a synthetic MPII root into ``out_dir`` (created) and return it.

    Arguments:
        out_dir: root directory.
        seed: random seed; the same seed gives identical files.
        n_images: number of images (a fifth are test images without joints).
        config: the world's ranges.
        progress: show a tqdm bar.
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    n_images = int(n_images)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    names = (np.sort(rng.choice(99999998, size=n_images, replace=False)) + 1) * 10
    n_test = int(round(TEST_FRACTION * n_images)) if n_images > 1 else 0
    is_test = np.zeros(n_images, bool)
    is_test[rng.choice(n_images, size=n_test, replace=False)] = True
    train_idx = np.flatnonzero(~is_test)
    n_valid = int(round(VALID_FRACTION * len(train_idx))) if len(train_idx) > 1 else 0
    is_valid = np.zeros(n_images, bool)
    is_valid[rng.choice(train_idx, size=n_valid, replace=False)] = True
    n_videos = max(1, n_images // 8)
    video_list = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789_-"), 11)) for _ in range(n_videos)]
    annolist, single_person, acts = [], [], []
    json_lists: dict[str, list] = {"train": [], "valid": []}
    gt: dict[str, dict] = {k: _empty_gt() for k in ("train", "valid", "mat")}
    cams: dict[str, list] = {"image": [], "K": [], "R": [], "t": [], "width": [], "height": []}
    for imgidx in tqdm(range(n_images), desc="synth mpii", unit="img", disable=not progress):
        scene = sample_scene(rng, config, n_people=None)
        while not scene.people:
            scene = sample_scene(rng, config)
        rendering = render_scene(scene, rng)
        image_name = "%09d.jpg" % names[imgidx]
        _write_jpeg(out_dir / "images" / image_name, rendering.image)
        cam = scene.camera
        for key, value in (("image", image_name), ("K", cam.K), ("R", cam.R), ("t", cam.t),
                           ("width", cam.width), ("height", cam.height)):
            cams[key].append(value)
        X_cam = scene.joints_camera()
        uv, _ = project_camera(X_cam, cam.K)
        if config.annotator.exact:
            vis, self_only = visibility(scene), None
        else:
            vis, self_only = visibility_with_causes(scene)
        char_vis = rng.random() < CHAR_VISIBLE_FRACTION
        rects = []
        for ridx, person in enumerate(scene.people):
            shown = int((rendering.person_index == ridx).sum())
            uv_r, vis_r = uv[ridx], vis[ridx]
            if self_only is not None:  # the annotator's clicks; the ground truth stays exact
                uv_r, vis_r = annotate(rng, uv_r, vis_r, self_only[ridx], shown, config.annotator)
            rect, joints16, vis16 = _annorect(uv_r, vis_r, bool(is_test[imgidx]),
                                              char_vis, shown)
            rects.append(rect)
            _append_gt(gt["mat"], imgidx * 100 + ridx, imgidx, ridx, X_cam[ridx], vis[ridx],
                       person)
            if not is_test[imgidx] and joints16 is not None:
                split = "valid" if is_valid[imgidx] else "train"
                json_lists[split].append({
                    "joints_vis": [int(v > 0) for v in vis16],
                    "joints": [[float(x), float(y)] for x, y in joints16],
                    "image": image_name,
                    "scale": float(rect["scale"][0, 0]),
                    "center": [float(rect["objpos"][0, 0]["x"][0, 0]),
                               float(rect["objpos"][0, 0]["y"][0, 0])],
                })
                _append_gt(gt[split], len(json_lists[split]) - 1, imgidx, ridx, X_cam[ridx],
                           vis[ridx], person)
        fields = TEST_RECT_FIELDS if is_test[imgidx] else RECT_FIELDS
        annolist.append({
            "image": _struct([{"name": np.array([image_name])}], ("name",)),
            "annorect": _struct(rects, fields),
            "frame_sec": _scalar(int(rng.integers(1, 600))),
            "vididx": _scalar(1 + int(rng.integers(n_videos))),
        })
        single_person.append(_single_person(uv, vis))
        cat, act_name, act_id = activity_fields(scene.people[0].pose)
        acts.append({"cat_name": np.array([cat]), "act_name": np.array([act_name]),
                     "act_id": _scalar(act_id)})
    sp = np.empty((n_images, 1), dtype=object)
    for k, v in enumerate(single_person):
        sp[k, 0] = v
    act = _struct(acts, ("cat_name", "act_name", "act_id")).reshape(n_images, 1)
    vids = np.empty((1, n_videos), dtype=object)
    for k, v in enumerate(video_list):
        vids[0, k] = np.array([v])
    release = {
        "annolist": _struct(annolist, ("image", "annorect", "frame_sec", "vididx")),
        "img_train": (~is_test).astype(np.float64).reshape(1, n_images),
        "version": np.array(["12"]),
        "single_person": sp,
        "act": act,
        "video_list": vids,
    }
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"RELEASE": release}, do_compression=False, oned_as="row")
    data = bytearray(buf.getvalue())
    # The 116-byte text header carries a creation time; a fixed one keeps files reproducible.
    data[:116] = MAT_HEADER.ljust(116).encode("ascii")
    atomic.write_bytes(out_dir / MAT_NAME, bytes(data))
    for split in ("train", "valid"):
        path = out_dir / "annot" / f"{split}.json"
        atomic.write_bytes(path, json.dumps(json_lists[split]).encode())
        _save_gt(ground_truth_path(out_dir, split), gt[split], cams)
    _save_gt(ground_truth_path(out_dir, "mat"), gt["mat"], cams)
    return out_dir


def _annorect(uv: np.ndarray, vis: np.ndarray, test: bool, char_vis: bool, shown_pixels: int):
    """One person's annorect record, and for annotated people the JSON joints (16, 2) 1-based
    ([-1, -1] missing) and flags (16,) 0/1/2 in MPII order (None, None otherwise).

    Arguments:
        uv: (22, 2) pixels 0-based; vis: (22,) flags 0/1/2 (BODY_POINTS order).
        test: a test image (no head box, no joints).
        char_vis: store ``is_visible`` as '0'/'1' characters.
        shown_pixels: how many pixels of the person the image shows (hidden people get no
            joints).
    """
    ext = uv[vis > 0] if np.any(vis > 0) else uv
    lo, hi = ext.min(axis=0), ext.max(axis=0)
    extent = float(max(hi[0] - lo[0], hi[1] - lo[1]))
    torso = 0.5 * (uv[BODY_POINTS.index("pelvis")] + uv[BODY_POINTS.index("thorax")])
    objpos = np.round(torso) + 1.0
    rect = {
        "scale": _scalar(round(max(extent, 1.0) / 200.0, 4)),
        "objpos": _struct([{"x": _scalar(objpos[0]), "y": _scalar(objpos[1])}], ("x", "y")),
    }
    if test:
        return rect, None, None
    top, neck = uv[BODY_POINTS.index("head_top")], uv[BODY_POINTS.index("upper_neck")]
    x1, y1, x2, y2 = _head_rect(top, neck)
    rect.update({"x1": _scalar(round(x1) + 1), "y1": _scalar(round(y1) + 1),
                 "x2": _scalar(round(x2) + 1), "y2": _scalar(round(y2) + 1)})
    v16 = vis[MPII_FROM_BODY]
    if (int((v16 > 0).sum()) < MIN_LABELLED_JOINTS or extent < MIN_PERSON_PIXELS
            or shown_pixels < MIN_SHOWN_PIXELS):
        rect["annopoints"] = np.zeros((0, 0))
        return rect, None, None
    uv16 = np.round(uv[MPII_FROM_BODY]) + 1.0
    points = []
    for k in np.flatnonzero(v16 > 0):
        flag = int(v16[k] == 2)
        points.append({"id": _scalar(int(k)), "x": _scalar(uv16[k, 0]), "y": _scalar(uv16[k, 1]),
                       "is_visible": np.array([str(flag)]) if char_vis else _scalar(flag)})
    rect["annopoints"] = _struct([{"point": _struct(points, ("id", "x", "y", "is_visible"))}],
                                 ("point",))
    joints = np.where((v16 > 0)[:, None], uv16, -1.0)
    return rect, joints, v16


def _single_person(uv: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """(k, 1) float64 1-based indices of people whose boxes overlap nobody else's, or (0, 0)."""
    boxes = []
    for i in range(len(uv)):
        pts = uv[i][vis[i] > 0] if np.any(vis[i] > 0) else uv[i]
        boxes.append(np.concatenate([pts.min(0), pts.max(0)]))
    alone = []
    for i, a in enumerate(boxes):
        if all(a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]
               for j, b in enumerate(boxes) if j != i):
            alone.append(i + 1)
    return np.array(alone, np.float64).reshape(-1, 1) if alone else np.zeros((0, 0))


def _empty_gt() -> dict:
    return {"ann_id": [], "imgidx": [], "ridx": [], "joints_cam": [], "visibility": [],
            "pose": [], "is_child": [], "height": []}


def _append_gt(gt: dict, ann_id: int, imgidx: int, ridx: int, X_cam: np.ndarray,
               vis: np.ndarray, person) -> None:
    gt["ann_id"].append(ann_id)
    gt["imgidx"].append(imgidx)
    gt["ridx"].append(ridx)
    gt["joints_cam"].append(X_cam[MCPC_FROM_BODY])
    gt["visibility"].append(vis[MCPC_FROM_BODY])
    gt["pose"].append(person.pose)
    gt["is_child"].append(bool(person.is_child))
    gt["height"].append(float(person.height))


def _save_gt(path: Path, gt: dict, cams: dict) -> None:
    """``ann_id`` (N,) int64, ``imgidx``/``ridx`` (N,) int64 0-based, ``joints_cam`` (N, 21, 3)
    float32 camera-frame metres in MCPC-21 order, ``visibility`` (N, 21) uint8 true COCO-style
    flags (0 out of image; also as ``visibility_true``, the contract's name), ``pose``, ``is_child``, ``height`` (N,); per image (indexed by imgidx)
    ``image_name`` (M,), ``camera_K`` (M, 3, 3), ``camera_R`` (M, 3, 3) world->cam, ``camera_t``
    (M, 3) metres, ``image_width`` / ``image_height`` (M,)."""
    n = len(gt["ann_id"])
    write_ground_truth(path, {
        "image_name": np.asarray(cams["image"], dtype="<U32"),
        "camera_K": np.asarray(cams["K"], np.float64).reshape(-1, 3, 3),
        "camera_R": np.asarray(cams["R"], np.float64).reshape(-1, 3, 3),
        "camera_t": np.asarray(cams["t"], np.float64).reshape(-1, 3),
        "image_width": np.asarray(cams["width"], np.int32),
        "image_height": np.asarray(cams["height"], np.int32),
        "ann_id": np.asarray(gt["ann_id"], np.int64).reshape(n),
        "imgidx": np.asarray(gt["imgidx"], np.int64).reshape(n),
        "ridx": np.asarray(gt["ridx"], np.int64).reshape(n),
        "joints_cam": np.asarray(gt["joints_cam"], np.float32).reshape(n, MCPC21.num_joints, 3),
        "visibility": np.asarray(gt["visibility"], np.uint8).reshape(n, MCPC21.num_joints),
        "visibility_true": np.asarray(gt["visibility"], np.uint8).reshape(n, MCPC21.num_joints),
        "pose": np.asarray(gt["pose"], dtype="<U16").reshape(n),
        "is_child": np.asarray(gt["is_child"], bool).reshape(n),
        "height": np.asarray(gt["height"], np.float32).reshape(n),
    })
