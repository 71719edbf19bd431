"""Canonical persons: the readers' output, as flat arrays ready for vectorised priors.

One ``PersonTable`` holds every kept person of one source/split in the MCPC-21 layout
(``joints.MCPC21``). Persons of one image are contiguous (``image_index`` is non-decreasing), so a
shard writer can cut between images and the priors can group people by image with ``np.unique``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .joints import MCPC21

NUM_JOINTS = MCPC21.num_joints  # 21


@dataclass
class PersonTable:
    """Kept persons of one source split.

    Arguments:
        source: ``"coco"``, ``"mpii"``, ... (one value for the whole table).
        split: ``"train"``, ``"val"``, ... (one value for the whole table).
        image_index: (N,) int64, index into ``image_paths``; non-decreasing.
        image_paths: (M,) str, image path relative to the source root, one per image.
        image_width, image_height: (M,) int32 pixels, one per image.
        bbox: (N, 4) float32 xywh, original pixels.
        keypoints: (N, 21, 2) float32 MCPC-21, original pixels, 0-based; NaN where unlabelled.
        visibility: (N, 21) uint8, 0 unlabelled / 1 labelled-occluded / 2 visible.
        source_ann_id: (N,) int64, the source's own annotation id (COCO ``id``; MPII: see reader).
        skipped: Counter of skipped persons by reason (also images without people).
        image_ids: (M,) int64, the source's own id of each image (default 0..M-1).
    """

    source: str
    split: str
    image_index: np.ndarray
    image_paths: np.ndarray
    image_width: np.ndarray
    image_height: np.ndarray
    bbox: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    source_ann_id: np.ndarray
    skipped: Counter = field(default_factory=Counter)
    persons_read: int = 0
    image_ids: np.ndarray | None = None
    keypoint_layout: str = ""  # the source file's joint layout, e.g. coco17, posetrack18

    def __post_init__(self) -> None:
        if self.image_ids is None:
            self.image_ids = np.arange(len(self.image_paths), dtype=np.int64)
        assert len(self.image_ids) == len(self.image_paths)
        n = len(self.image_index)
        assert self.bbox.shape == (n, 4), self.bbox.shape
        assert self.keypoints.shape == (n, NUM_JOINTS, 2), self.keypoints.shape
        assert self.visibility.shape == (n, NUM_JOINTS), self.visibility.shape
        assert self.source_ann_id.shape == (n,)
        assert len(self.image_paths) == len(self.image_width) == len(self.image_height)
        if n > 1:
            assert np.all(np.diff(self.image_index) >= 0), "persons must be grouped by image"

    def __len__(self) -> int:
        return len(self.image_index)

    @property
    def num_images(self) -> int:
        return len(self.image_paths)

    @classmethod
    def empty(cls, source: str, split: str) -> "PersonTable":
        return cls(source, split, np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0, np.int32),
                   np.zeros(0, np.int32), np.zeros((0, 4), np.float32),
                   np.zeros((0, NUM_JOINTS, 2), np.float32), np.zeros((0, NUM_JOINTS), np.uint8),
                   np.zeros(0, np.int64))

    def take(self, rows: np.ndarray) -> "PersonTable":
        """A table of the given person rows (sorted), keeping the image arrays whole."""
        rows = np.asarray(rows)
        return PersonTable(self.source, self.split, self.image_index[rows], self.image_paths,
                           self.image_width, self.image_height, self.bbox[rows],
                           self.keypoints[rows], self.visibility[rows], self.source_ann_id[rows],
                           Counter(self.skipped), self.persons_read, self.image_ids,
                           self.keypoint_layout)
