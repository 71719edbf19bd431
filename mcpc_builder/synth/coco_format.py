"""Write a synthetic COCO person-keypoints root in the official layout, with ground truth.

    <root>/annotations/person_keypoints_{train2017,val2017}.json   official fields (see
                                                                  dataset-formats.md §1.1)
    <root>/{train2017,val2017}/%012d.jpg                          JPEG images
    <root>/ground_truth/person_keypoints_{split}.npz              camera-frame joints per annotation

Like real COCO: keypoints are integer pixels with v=0 -> x=y=0, only in-image joints are labelled,
``bbox`` and ``segmentation`` come from the person's visible silhouette, ``area`` is the mask area,
far people too small to label have ``num_keypoints`` 0, a few groups are ``iscrowd`` 1 with an
uncompressed RLE mask, and a few images show nobody.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .. import atomic
from ..contract import ground_truth_path, write_ground_truth
from ..joints import BODY_POINTS, COCO17, MCPC21
from .render import render_scene
from .annotator import AnnotatorConfig, annotate
from .camera import project_camera
from .scene import Scene, sample_scene
from .visibility import visibility, visibility_with_causes
from .worlds import WorldConfig

SPLITS = ("train2017", "val2017")
COCO_FROM_BODY = np.array([BODY_POINTS.index(p) for p in COCO17.body_points])
MCPC_FROM_BODY = np.array([BODY_POINTS.index(p) for p in MCPC21.body_points])
# People whose visible silhouette is smaller than this get no keypoints (as COCO's small people).
MIN_KEYPOINT_AREA = 500.0
EMPTY_IMAGE_FRACTION = 0.04
# Probability that an image with three or more people has its farthest two as one crowd region.
CROWD_PROBABILITY = 0.25
JPEG_QUALITY = 90
CROWD_ID_BASE = 900100000000  # COCO's crowd annotations carry ids of this size

INFO = {
    "description": "Synthetic COCO-format person keypoints (wsp-toolkit synthetic world)",
    "url": "https://cocodataset.org",
    "version": "1.0",
    "year": 2017,
    "contributor": "wsp-toolkit synthetic world",
    "date_created": "2017/09/01",
}
LICENSES = [
    {"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution License"},
]


def coco_category() -> dict:
    """The official person category: 17 keypoint names and the 1-based skeleton."""
    skeleton = [[COCO17.index[a] + 1, COCO17.index[b] + 1] for a, b in COCO17.edge_names]
    return {"supercategory": "person", "id": 1, "name": "person",
            "keypoints": list(COCO17.joint_names), "skeleton": skeleton}


def mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons [[x1, y1, x2, y2, ...], ...] (pixels) of a binary mask's outer contours."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        c = cv2.approxPolyDP(c, 1.0, True).reshape(-1, 2)
        if len(c) >= 3:
            polys.append([round(float(v), 2) for v in c.ravel()])
    return polys


def mask_rle(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE {'counts': [...], 'size': [h, w]} (column-major, starts with 0s)."""
    flat = mask.astype(np.uint8).ravel(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {"counts": [int(c) for c in counts], "size": [int(mask.shape[0]), int(mask.shape[1])]}


def mask_bbox(mask: np.ndarray) -> list[float]:
    """[x, y, w, h] of a mask's pixels (pixel edges, 0-based)."""
    ys, xs = np.nonzero(mask)
    x0, y0 = float(xs.min()), float(ys.min())
    return [x0, y0, float(xs.max()) + 1.0 - x0, float(ys.max()) + 1.0 - y0]


def coco_keypoints(uv: np.ndarray, vis: np.ndarray, width: int, height: int
                   ) -> tuple[list[int], int]:
    """51 ints [x, y, v]*17 from (22, 2) pixels and (22,) flags in BODY_POINTS order."""
    kp = np.zeros((17, 3), dtype=np.int64)
    uv17, v17 = uv[COCO_FROM_BODY], vis[COCO_FROM_BODY]
    lab = v17 > 0
    kp[lab, 0] = np.clip(np.round(uv17[lab, 0]), 0, width - 1).astype(np.int64)
    kp[lab, 1] = np.clip(np.round(uv17[lab, 1]), 0, height - 1).astype(np.int64)
    kp[lab, 2] = v17[lab]
    return [int(v) for v in kp.ravel()], int(lab.sum())


def _split_sizes(n_images: int) -> dict[str, int]:
    n_val = max(1, n_images // 4) if n_images > 1 else 0
    return {"train2017": n_images - n_val, "val2017": n_val}


def write(out_dir: Path, seed: int, n_images: int = 240, config: WorldConfig = WorldConfig(),
          progress: bool = True) -> Path:
    """Write a synthetic COCO root into ``out_dir`` (created) and return it.

    Arguments:
        out_dir: root directory.
        seed: random seed; the same seed gives byte-identical JSON and identical arrays.
        n_images: total images over train2017 and val2017 (a quarter go to val2017).
        config: the world's ranges.
        progress: show a tqdm bar.
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    sizes = _split_sizes(int(n_images))
    all_ids = np.sort(rng.choice(581929, size=sum(sizes.values()), replace=False) + 1)
    perm = rng.permutation(len(all_ids))
    next_ann_id = int(rng.integers(100000, 200000))
    bar = tqdm(total=sum(sizes.values()), desc="synth coco", unit="img", disable=not progress)
    start = 0
    for split in SPLITS:
        ids = np.sort(all_ids[perm[start:start + sizes[split]]])
        start += sizes[split]
        (out_dir / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        gt = {"ann_id": [], "image_id": [], "joints_cam": [], "visibility": [],
              "visibility_true": [], "iscrowd": [],
              "pose": [], "is_child": [], "height": []}
        cams = {"image_id": [], "K": [], "R": [], "t": [], "width": [], "height": []}
        for image_id in ids:
            image_id = int(image_id)
            empty = rng.random() < EMPTY_IMAGE_FRACTION
            scene = sample_scene(rng, config, n_people=0 if empty else None)
            rendering = render_scene(scene, rng)
            cam = scene.camera
            file_name = "%012d.jpg" % image_id
            _write_jpeg(out_dir / split / file_name, rendering.image)
            images.append({
                "license": 4, "file_name": file_name,
                "coco_url": f"http://images.cocodataset.org/{split}/{file_name}",
                "height": int(cam.height), "width": int(cam.width),
                "date_captured": "2013-11-%02d %02d:%02d:%02d" % (
                    1 + image_id % 28, image_id % 24, image_id % 60, (image_id // 7) % 60),
                "flickr_url": f"http://farm{1 + image_id % 9}.staticflickr.com/synthetic/"
                              f"{image_id}.jpg",
                "id": image_id,
            })
            cams["image_id"].append(image_id)
            cams["K"].append(cam.K)
            cams["R"].append(cam.R)
            cams["t"].append(cam.t)
            cams["width"].append(cam.width)
            cams["height"].append(cam.height)
            anns, next_ann_id = _annotate(scene, rendering.person_index, image_id, next_ann_id,
                                          rng, gt, config.annotator)
            annotations.extend(anns)
            bar.update(1)
        doc = {"info": INFO, "licenses": LICENSES, "images": images, "annotations": annotations,
               "categories": [coco_category()]}
        _write_json(out_dir / "annotations" / f"person_keypoints_{split}.json", doc)
        _write_ground_truth(ground_truth_path(out_dir, f"person_keypoints_{split}"), gt, cams)
    bar.close()
    return out_dir


def _annotate(scene: Scene, person_index: np.ndarray, image_id: int, next_ann_id: int,
              rng: np.random.Generator, gt: dict,
              annotator: AnnotatorConfig = AnnotatorConfig()) -> tuple[list[dict], int]:
    """COCO annotations of one image (appending the matching ground truth to ``gt``); the
    keypoints and flags are ``annotator``'s clicks (exact by default)."""
    people = scene.people
    if not people:
        return [], next_ann_id
    X_cam = scene.joints_camera()
    uv, _ = project_camera(X_cam, scene.camera.K)
    if annotator.exact:
        vis, self_only = visibility(scene), None
    else:
        vis, self_only = visibility_with_causes(scene)
    masks = [person_index == i for i in range(len(people))]
    shown = [i for i in range(len(people)) if masks[i].any()]
    # A crowd region: the farthest few people of a busy image, annotated as one RLE mask.
    crowd: list[int] = []
    if len(shown) >= 3 and rng.random() < CROWD_PROBABILITY:
        far_first = sorted(shown, key=lambda i: -X_cam[i, BODY_POINTS.index("pelvis"), 2])
        crowd = far_first[:2]
    anns = []
    for i in shown:
        if i in crowd:
            continue
        area = float(masks[i].sum())
        if area < MIN_KEYPOINT_AREA:
            keypoints, num = [0] * 51, 0
            v_gt = np.zeros(22, np.uint8)
        else:
            uv_i, v_gt = uv[i], vis[i]
            if self_only is not None:
                uv_i, v_gt = annotate(rng, uv_i, v_gt, self_only[i], area, annotator)
            keypoints, num = coco_keypoints(uv_i, v_gt, scene.camera.width,
                                            scene.camera.height)
        polys = mask_polygons(masks[i])
        if not polys:
            continue  # a silhouette too thin for a polygon: nobody would annotate it
        anns.append({
            "segmentation": polys, "num_keypoints": num, "area": area, "iscrowd": 0,
            "keypoints": keypoints, "image_id": image_id, "bbox": mask_bbox(masks[i]),
            "category_id": 1, "id": next_ann_id,
        })
        _append_gt(gt, next_ann_id, image_id, X_cam[i], v_gt, vis[i], 0, people[i])
        next_ann_id += 1
    if crowd:
        mask = np.zeros_like(masks[0])
        for i in crowd:
            mask |= masks[i]
        crowd_id = CROWD_ID_BASE + image_id
        anns.append({
            "segmentation": mask_rle(mask), "num_keypoints": 0, "area": float(mask.sum()),
            "iscrowd": 1, "keypoints": [0] * 51, "image_id": image_id, "bbox": mask_bbox(mask),
            "category_id": 1, "id": crowd_id,
        })
        none = np.zeros(22, np.uint8)
        _append_gt(gt, crowd_id, image_id, np.full((22, 3), np.nan), none, none, 1, None)
    return anns, next_ann_id


def _append_gt(gt: dict, ann_id: int, image_id: int, X_cam: np.ndarray, vis: np.ndarray,
               vis_true: np.ndarray, iscrowd: int, person) -> None:
    gt["ann_id"].append(ann_id)
    gt["image_id"].append(image_id)
    gt["joints_cam"].append(X_cam[MCPC_FROM_BODY])
    gt["visibility"].append(vis[MCPC_FROM_BODY])
    gt["visibility_true"].append(vis_true[MCPC_FROM_BODY])
    gt["iscrowd"].append(iscrowd)
    gt["pose"].append(person.pose if person is not None else "crowd")
    gt["is_child"].append(bool(person.is_child) if person is not None else False)
    gt["height"].append(float(person.height) if person is not None else np.nan)


def _write_ground_truth(path: Path, gt: dict, cams: dict) -> None:
    """``ann_id`` (N,) int64, ``image_id`` (N,) int64, ``joints_cam`` (N, 21, 3) float32 metres
    (camera frame, MCPC-21; NaN for crowd regions), ``visibility`` (N, 21) uint8 as annotated
    (0 where a person got no keypoints), ``visibility_true`` (N, 21) uint8 the world's flags
    (0 outside the image, 1 hidden, 2 visible; 0 for crowd regions), ``iscrowd``, ``pose``, ``is_child``, ``height`` (N,);
    per image ``camera_image_id`` (M,), ``camera_K`` (M, 3, 3), ``camera_R`` (M, 3, 3) world->cam,
    ``camera_t`` (M, 3) metres, ``image_width`` / ``image_height`` (M,)."""
    n = len(gt["ann_id"])
    arrays = {
        "ann_id": np.asarray(gt["ann_id"], np.int64).reshape(n),
        "image_id": np.asarray(gt["image_id"], np.int64).reshape(n),
        "joints_cam": np.asarray(gt["joints_cam"], np.float32).reshape(n, MCPC21.num_joints, 3),
        "visibility": np.asarray(gt["visibility"], np.uint8).reshape(n, MCPC21.num_joints),
        "visibility_true": np.asarray(gt["visibility_true"], np.uint8).reshape(
            n, MCPC21.num_joints),
        "iscrowd": np.asarray(gt["iscrowd"], np.int64).reshape(n),
        "pose": np.asarray(gt["pose"], dtype="<U16").reshape(n),
        "is_child": np.asarray(gt["is_child"], bool).reshape(n),
        "height": np.asarray(gt["height"], np.float32).reshape(n),
        "camera_image_id": np.asarray(cams["image_id"], np.int64),
        "camera_K": np.asarray(cams["K"], np.float64).reshape(-1, 3, 3),
        "camera_R": np.asarray(cams["R"], np.float64).reshape(-1, 3, 3),
        "camera_t": np.asarray(cams["t"], np.float64).reshape(-1, 3),
        "image_width": np.asarray(cams["width"], np.int32),
        "image_height": np.asarray(cams["height"], np.int32),
    }
    write_ground_truth(path, arrays)


def _write_json(path: Path, doc) -> None:
    atomic.write_bytes(path, json.dumps(doc, separators=(",", ":")).encode())


def _write_jpeg(path: Path, image_bgr: np.ndarray) -> None:
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(f"{path}: JPEG encoding failed")
    atomic.write_bytes(path, buf.tobytes())
