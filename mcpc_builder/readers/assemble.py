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


def relative_image_dir(image_dir: Path, root: Path) -> str:
    """``image_dir`` relative to the source root, POSIX style ("" if it is the root)."""
    rel = os.path.relpath(os.path.abspath(image_dir), os.path.abspath(root))
    return "" if rel == "." else Path(rel).as_posix()


def assemble_table(source: str, split: str, layout: JointLayout, *, image_key: np.ndarray,
                   ann_id: np.ndarray, points: np.ndarray, visibility: np.ndarray,
                   bbox: np.ndarray, image_paths: np.ndarray, image_width: np.ndarray,
                   image_height: np.ndarray, skipped: Counter, persons_read: int) -> PersonTable:
    """Sort kept persons by (image, annotation id) and convert them to MCPC-21.

    Arguments:
        image_key: (N,) int64, each person's image as an index into the image arrays below.
        ann_id: (N,) int64, the source's annotation id.
        points: (N, J, 2) float, source layout, original pixels, 0-based.
        visibility: (N, J) uint8 0/1/2, source layout.
        bbox: (N, 4) float xywh, original pixels.
        image_paths: (M,) str relative to the source root; image_width, image_height: (M,) pixels.
    Only images holding at least one person are kept in the table.
    """
    order = np.lexsort((ann_id, image_key))
    image_key = image_key[order]
    used, image_index = np.unique(image_key, return_inverse=True)
    keypoints, vis, _ = convert(points[order], visibility[order], layout, MCPC21)
    return PersonTable(
        source=source,
        split=split,
        image_index=image_index.astype(np.int64).reshape(-1),
        image_paths=np.asarray(image_paths, dtype=object)[used],
        image_width=np.asarray(image_width)[used].astype(np.int32),
        image_height=np.asarray(image_height)[used].astype(np.int32),
        bbox=np.ascontiguousarray(bbox[order], dtype=np.float32),
        keypoints=np.ascontiguousarray(keypoints, dtype=np.float32),
        visibility=np.ascontiguousarray(vis, dtype=np.uint8),
        source_ann_id=np.ascontiguousarray(ann_id[order], dtype=np.int64),
        skipped=skipped,
        persons_read=int(persons_read),
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
