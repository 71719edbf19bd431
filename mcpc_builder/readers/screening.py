"""The skip rules every reader applies to person records, vectorised, with stable reason names.

A record that cannot be used is skipped and counted under one reason (the first that applies, in
the order of ``SKIP_REASONS``); the build manifest reports these counts per source and split.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

# Stable names (the manifest and the tests use them). Person reasons first, then image counts.
SKIP_REASONS: tuple[str, ...] = (
    "not_person",             # COCO annotation of another category
    "crowd",                  # COCO iscrowd = 1
    "missing_field",          # a required per-record field is absent or null
    "duplicate_annotation_id",  # COCO annotation id already used by an earlier annotation
    "test_split_unlabelled",  # MPII test split: persons carry no joints
    "unsafe_image_path",      # image name absolute or with ".." (would leave the dataset root)
    "missing_image",          # image not listed (COCO) or image file absent
    "bad_image",              # image file empty, corrupt or not JPEG / PNG (header unreadable)
    "image_size_mismatch",    # image header size differs from the annotation's width / height
    "no_keypoints",           # no labelled keypoint (COCO num_keypoints == 0)
    "bad_keypoint_count",     # keypoint array of the wrong length
    "bad_visibility",         # visibility flag outside {0, 1, 2}
    "non_finite",             # NaN or inf in keypoints, bbox or image size
    "out_of_image",           # a labelled point outside the image beyond OUT_OF_IMAGE_TOLERANCE
    "bad_bbox",               # bbox not 4 numbers, or zero / negative width or height
    "too_many_persons",       # image with more persons than the build's max_persons_per_image
    "images_without_people",  # images of the file with no person record at all (not persons)
)
PERSON_REASONS = SKIP_REASONS[:-1]
REASON_CODE = {name: code for code, name in enumerate(SKIP_REASONS, start=1)}
KEEP = 0

# Pixels a labelled point may lie outside the image extent [0, W] x [0, H] (annotators click on
# the border; rounding puts such clicks a fraction of a pixel outside).
OUT_OF_IMAGE_TOLERANCE = 1.0


def first_reason(reason: np.ndarray, mask: np.ndarray, name: str) -> None:
    """Set ``reason`` (N,) uint8 to ``name``'s code where ``mask`` and no reason is set yet."""
    reason[mask & (reason == KEEP)] = REASON_CODE[name]


def screen_points(reason: np.ndarray, points: np.ndarray, labelled: np.ndarray,
                  width: np.ndarray, height: np.ndarray) -> None:
    """Apply the no_keypoints / non_finite / out_of_image rules, in place on ``reason``.

    Arguments:
        reason: (N,) uint8 reason codes, KEEP (0) where nothing applies yet; updated in place.
        points: (N, J, 2) float64, original pixels, 0-based; unlabelled entries are ignored.
        labelled: (N, J) bool, True where the source labels the joint.
        width, height: (N,) float64, size in pixels of each person's image.
    """
    first_reason(reason, ~labelled.any(axis=1), "no_keypoints")
    bad_value = labelled & ~np.isfinite(points).all(axis=2)
    first_reason(reason, bad_value.any(axis=1) | ~np.isfinite(width) | ~np.isfinite(height),
                 "non_finite")
    tol = OUT_OF_IMAGE_TOLERANCE
    with np.errstate(invalid="ignore"):
        x, y = points[..., 0], points[..., 1]
        outside = ((x < -tol) | (x > width[:, None] + tol)
                   | (y < -tol) | (y > height[:, None] + tol))
    first_reason(reason, (labelled & outside).any(axis=1), "out_of_image")


def screen_bbox(reason: np.ndarray, bbox: np.ndarray) -> None:
    """Apply the non_finite / bad_bbox rules to (N, 4) float64 xywh boxes, in place."""
    first_reason(reason, ~np.isfinite(bbox).all(axis=1), "non_finite")
    with np.errstate(invalid="ignore"):
        first_reason(reason, ~((bbox[:, 2] > 0) & (bbox[:, 3] > 0)), "bad_bbox")


def count_reasons(reason: np.ndarray) -> Counter:
    """Counter of reason names over the (N,) uint8 codes, KEEP excluded."""
    codes, counts = np.unique(reason[reason != KEEP], return_counts=True)
    return Counter({SKIP_REASONS[c - 1]: int(k) for c, k in zip(codes, counts)})


def first_failing(reason: np.ndarray, name: str) -> int | None:
    """Index of the first record skipped for ``name`` (for messages and tests), or None."""
    hits = np.flatnonzero(reason == REASON_CODE[name])
    return int(hits[0]) if len(hits) else None
