"""Kept person records -> one ``PersonTable`` (MCPC-21, grouped by image in a fixed order)."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np

from ..joints import MCPC21, JointLayout, convert
from ..persons import PersonTable

log = logging.getLogger("mcpc_builder.readers")


def unsafe_image_names(names) -> np.ndarray:
    """(M,) bool: image names that could leave the image folder (absolute, a drive, a ``..``
    part, a NUL); such images are never opened and their persons are skipped."""
    def unsafe(name: str) -> bool:
        if name[:1] in ("/", "\\") or name[1:2] == ":" or "\0" in name:
            return True
        return ".." in name and ".." in name.replace("\\", "/").split("/")

    return np.fromiter((unsafe(str(n)) for n in names), bool, count=len(names))


def numeric_image_ids(names) -> np.ndarray:
    """(M,) int64 ids of image file names: the numeric stem (MPII ``015601864.jpg`` -> 15601864)
    when every stem is a number, else the position in ``names``."""
    stems = [Path(str(n)).stem for n in names]
    if stems and all(s.isdigit() and len(s) < 19 for s in stems):
        ids = np.array([int(s) for s in stems], np.int64)
        if len(np.unique(ids)) == len(ids):
            return ids
    return np.arange(len(stems), dtype=np.int64)


def relative_image_dir(image_dir: Path, root: Path) -> str:
    """``image_dir`` relative to the source root, POSIX style ("" if it is the root)."""
    rel = os.path.relpath(os.path.abspath(image_dir), os.path.abspath(root))
    return "" if rel == "." else Path(rel).as_posix()


# Persons converted per block: the conversion's temporaries then stay in cache instead of
# being fresh whole-table arrays (~1.6x faster on COCO-train's 150k persons).
CONVERT_BLOCK = 4096


def assemble_table(source: str, split: str, layout: JointLayout, *, image_key: np.ndarray,
                   ann_id: np.ndarray, points: np.ndarray, visibility: np.ndarray,
                   bbox: np.ndarray, image_paths: np.ndarray, image_width: np.ndarray,
                   image_height: np.ndarray, skipped: Counter, persons_read: int,
                   rows: np.ndarray | None = None,
                   image_ids: np.ndarray | None = None) -> PersonTable:
    """Sort kept persons by (image, annotation id) and convert them to MCPC-21.

    Arguments:
        image_key: (N,) int64, each person's image as an index into the image arrays below.
        ann_id: (N,) int64, the source's annotation id.
        points: (N, J, 2) float, source layout, original pixels, 0-based (a strided view is
            fine: only the kept rows are read, a block at a time).
        visibility: (N, J) uint8 0/1/2 (or float holding those values), source layout.
        bbox: (N, 4) float xywh, original pixels.
        image_paths: (M,) str relative to the source root; image_width, image_height: (M,) pixels.
        rows: (K,) int64, the persons to keep, as indices into the (N,) arrays above
            (default: all of them).
        image_ids: (M,) int64, the source's own image ids (default: the image index).
    Only images holding at least one person are kept in the table.
    """
    if rows is not None:
        image_key, ann_id = image_key[rows], ann_id[rows]
    order = np.lexsort((ann_id, image_key))
    source_rows = order if rows is None else np.asarray(rows)[order]
    image_key = image_key[order]
    # image_key is sorted: the images used are its distinct values, in order.
    starts = np.ones(len(image_key), bool)
    starts[1:] = image_key[1:] != image_key[:-1]
    used = image_key[starts]
    image_index = np.cumsum(starts, dtype=np.int64) - 1
    n = len(order)
    keypoints = np.empty((n, MCPC21.num_joints, points.shape[-1]), np.float32)
    vis = np.empty((n, MCPC21.num_joints), np.uint8)
    for start in range(0, n, CONVERT_BLOCK):
        block = source_rows[start:start + CONVERT_BLOCK]
        keypoints[start:start + len(block)], vis[start:start + len(block)], _ = convert(
            points[block], visibility[block], layout, MCPC21)
    return PersonTable(
        source=source,
        split=split,
        image_index=image_index,
        image_paths=np.asarray(image_paths, dtype=object)[used],
        image_width=np.asarray(image_width)[used].astype(np.int32),
        image_height=np.asarray(image_height)[used].astype(np.int32),
        bbox=np.ascontiguousarray(bbox[source_rows], dtype=np.float32),
        keypoints=keypoints,
        visibility=vis,
        source_ann_id=np.ascontiguousarray(ann_id[order], dtype=np.int64),
        skipped=skipped,
        persons_read=int(persons_read),
        image_ids=None if image_ids is None else np.asarray(image_ids, np.int64)[used],
    )


# Reasons that are a normal part of the official files (logged at INFO, the rest at WARNING).
ROUTINE_REASONS = frozenset({"not_person", "crowd", "no_keypoints", "test_split_unlabelled",
                             "images_without_people"})


def report_skips(path: Path, skipped: Counter, examples: dict[str, str]) -> None:
    """One log line per skip reason, naming the file and the first record skipped for it."""
    for reason, count in sorted(skipped.items()):
        example = examples.get(reason)
        where = f"{path}: {example}" if example else str(path)
        level = logging.INFO if reason in ROUTINE_REASONS else logging.WARNING
        log.log(level, "%s: skipped %d (%s)", where, count, reason)
