"""A tiny MCPC build directory written by hand for the wsp_model tests.

Images are small JPEGs (cv2) with each person drawn as a stick figure; persons / pairs shards use
the real Parquet schemas and the manifest records the schema version and the source root, as
``mcpc_builder.build`` does. Pair labels come from a made-up depth per joint (``joint_depth``), so
tests can check orders. Everything is deterministic for a given ``seed``. Also the tests' shared
check of a one-line CLI error (``one_error_line``).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mcpc_builder.joints import MCPC21
from mcpc_builder.contract import (MANIFEST_NAME, PAIRS_SCHEMA, PAIRS_SHARD, PERSONS_SCHEMA,
                                   PERSONS_SHARD, SCHEMA_VERSION, file_sha256)

# A standing person, MCPC-21 order, in units of its height (x right, y down from the head top).
_TEMPLATE = np.array([
    [0.00, 0.08], [-0.02, 0.06], [0.02, 0.06], [-0.05, 0.07], [0.05, 0.07],    # face
    [-0.12, 0.20], [0.12, 0.20], [-0.16, 0.36], [0.16, 0.36], [-0.18, 0.50], [0.18, 0.50],
    [-0.08, 0.52], [0.08, 0.52], [-0.09, 0.74], [0.09, 0.74], [-0.09, 0.97], [0.09, 0.97],
    [0.00, 0.52], [0.00, 0.20], [0.00, 0.14], [0.00, 0.00],                     # pelvis..head_top
], dtype=np.float32)
# Made-up depth per joint (metres): the person's left side is nearer the camera.
_JOINT_DEPTH = np.where(np.arange(21) % 2 == 1, -0.2, 0.2).astype(np.float32)
_JOINT_DEPTH[17:] = 0.0


def write_tiny_build(out: Path, n_images: int = 6, image_size: tuple[int, int] = (128, 96),
                     seed: int = 0, n_val_images: int = 2, shards: int = 2,
                     ground_truth: bool = False) -> Path:
    """Write images + shards + manifest under ``out``; return the build directory.

    Persons alternate 1 and 2 per image; the last ``n_val_images`` images are split "val".
    Pairs: left/right shoulder, hip, knee, ankle of each person (label from ``_JOINT_DEPTH``),
    one equal pair (pelvis, thorax), and a cross-person pair (nose of person 0 nearer).
    ``ground_truth``: also write ``source/ground_truth/person_keypoints_all.npz`` as the synthetic
    COCO writer does (``ann_id``, ``image_id``, ``joints_cam`` with z = 3 m + ``_JOINT_DEPTH``).
    """
    rng = np.random.default_rng(seed)
    out = Path(out)
    root = out / "source"
    build = out / "build"
    (root / "images").mkdir(parents=True, exist_ok=True)
    build.mkdir(parents=True, exist_ok=True)
    width, height = image_size
    persons, pairs = [], []
    person_id = 0
    for img in range(n_images):
        canvas = np.full((height, width, 3), 40 + 20 * (img % 3), np.uint8)
        n_people = 1 + img % 2
        ids = []
        for k in range(n_people):
            h = rng.uniform(0.55, 0.8) * height
            x0 = width * (0.3 + 0.4 * k) + rng.uniform(-5, 5)
            y0 = rng.uniform(2, height - h - 2)
            kp = _TEMPLATE * h + np.array([x0, y0], np.float32)
            vis = np.full(21, 2, np.uint8)
            vis[3:5] = 0 if k else 2                    # second person: ears unlabelled
            kp[vis == 0] = np.nan
            for a, b in MCPC21.edges:
                if vis[a] and vis[b]:
                    cv2.line(canvas, tuple(int(v) for v in kp[a]), tuple(int(v) for v in kp[b]),
                             (200, 180, 160), 2)
            for j in range(21):
                if vis[j]:
                    c = (0, 0, 255) if j % 2 == 1 else (255, 0, 0)
                    cv2.circle(canvas, tuple(int(v) for v in kp[j]), 2, c, -1)
            xs, ys = kp[vis > 0, 0], kp[vis > 0, 1]
            bbox = [xs.min() - 3, ys.min() - 3, xs.max() - xs.min() + 6, ys.max() - ys.min() + 6]
            persons.append(dict(
                person_id=person_id, source="coco", split="val" if img >= n_images - n_val_images else "train",
                image_id=img, image_path=f"images/{img:06d}.jpg", image_width=width,
                image_height=height, bbox=[float(v) for v in bbox],
                keypoints=[float(v) for v in kp.reshape(-1)], visibility=[int(v) for v in vis],
                source_ann_id=1000 + person_id, scale=float(h), grounded=True))
            for left, right in ((5, 6), (11, 12), (13, 14), (15, 16)):
                pairs.append(dict(person_a=person_id, joint_a=left, person_b=person_id,
                                  joint_b=right, label=1, confidence=0.9, prior="fixture",
                                  margin=float("nan")))
            pairs.append(dict(person_a=person_id, joint_a=17, person_b=person_id, joint_b=18,
                              label=0, confidence=0.5, prior="fixture", margin=float("nan")))
            ids.append(person_id)
            person_id += 1
        if len(ids) == 2:
            pairs.append(dict(person_a=ids[0], joint_a=0, person_b=ids[1], joint_b=0, label=1,
                              confidence=1.0, prior="fixture_cross", margin=float("nan")))
        cv2.imwrite(str(root / "images" / f"{img:06d}.jpg"), canvas)
    # Whole images per shard.
    image_of = np.array([p["image_id"] for p in persons])
    shard_of_image = np.arange(n_images) * shards // n_images
    entries = []
    for s in range(shards):
        keep = [p for p in persons if shard_of_image[p["image_id"]] == s]
        ids = {p["person_id"] for p in keep}
        keep_pairs = [q for q in pairs if q["person_a"] in ids]
        entry = {"index": s}
        for kind, rows, schema, name in (("persons", keep, PERSONS_SCHEMA, PERSONS_SHARD),
                                         ("pairs", keep_pairs, PAIRS_SCHEMA, PAIRS_SHARD)):
            path = build / name.format(s)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
            entry[kind] = {"file": name.format(s), "rows": len(rows),
                           "bytes": path.stat().st_size, "sha256": file_sha256(path)}
        entries.append(entry)
    del image_of
    if ground_truth:
        (root / "ground_truth").mkdir(exist_ok=True)
        joints = np.zeros((len(persons), 21, 3), np.float32)
        joints[:, :, :2] = _TEMPLATE
        joints[:, :, 2] = 3.0 + _JOINT_DEPTH
        np.savez(root / "ground_truth" / "person_keypoints_all.npz",
                 ann_id=np.array([p["source_ann_id"] for p in persons], np.int64),
                 image_id=np.array([p["image_id"] for p in persons], np.int64), joints_cam=joints)
    manifest = {"format": "mcpc", "schema_version": SCHEMA_VERSION, "builder_version": "fixture",
                "sources": {"coco": {"root": str(root.resolve()), "synthetic": True,
                                     "synthetic_reason": "test fixture"}},
                "shards": entries}
    (build / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
    return build


def one_error_line(capsys, prog: str) -> str:
    """The single stderr line (asserted single, prefixed and traceback-free), without prefix."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    return lines[0][len(f"{prog}: error: "):]
