"""The labelled keypoint pairs every rule returns, and index helpers shared by the rules.

Persons are addressed by their *row* in the ``PersonTable`` the rules were given; the writer turns
rows into global person ids. Joints are MCPC-21 indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..joints import MCPC21
from .config import RULE_NAMES

RULE_CODE = {name: i for i, name in enumerate(RULE_NAMES)}
NUM_JOINTS = MCPC21.num_joints
PELVIS = MCPC21.joint("pelvis")


@dataclass
class Pairs:
    """K labelled pairs.

    Arguments:
        person_a, person_b: (K,) int64 person rows (equal for a within-person pair).
        joint_a, joint_b: (K,) int8 MCPC-21 joints.
        label: (K,) int8, +1 a closer than b, -1 a farther, 0 about equal depth.
        confidence: (K,) float32 in (0, 1].
        margin: (K,) float32, estimated |dz| in units of the person scale (body height); NaN if
            the rule gives none.
        rule: (K,) int8 index into ``config.RULE_NAMES``.
    """

    person_a: np.ndarray
    joint_a: np.ndarray
    person_b: np.ndarray
    joint_b: np.ndarray
    label: np.ndarray
    confidence: np.ndarray
    margin: np.ndarray
    rule: np.ndarray

    def __len__(self) -> int:
        return len(self.person_a)

    @classmethod
    def make(cls, rule: str, person_a, joint_a, person_b, joint_b, label, confidence,
             margin=None) -> "Pairs":
        person_a = np.asarray(person_a, np.int64)
        k = len(person_a)
        bc = lambda v, dt: np.broadcast_to(np.asarray(v, dt), (k,)).copy()  # noqa: E731
        return cls(person_a, bc(joint_a, np.int8), bc(person_b, np.int64), bc(joint_b, np.int8),
                   bc(label, np.int8), np.clip(bc(confidence, np.float32), 1e-3, 1.0),
                   bc(np.nan if margin is None else margin, np.float32),
                   np.full(k, RULE_CODE[rule], np.int8))

    @classmethod
    def empty(cls) -> "Pairs":
        return cls.make("foot_contact", [], [], [], [], [], [])

    @classmethod
    def concat(cls, parts: list["Pairs"]) -> "Pairs":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS))

    def take(self, idx) -> "Pairs":
        return Pairs(*(getattr(self, f)[idx] for f in FIELDS))


FIELDS = ("person_a", "joint_a", "person_b", "joint_b", "label", "confidence", "margin", "rule")


def euclidean(v: np.ndarray) -> np.ndarray:
    """(...) Euclidean length of 2D vectors v (..., 2); bit-identical to
    ``np.linalg.norm(v, axis=-1)`` (the same two products and one sum) without its overhead."""
    x, y = v[..., 0], v[..., 1]
    return np.sqrt(x * x + y * y)


def image_groups(image_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end row of each person's image group.

    Arguments:
        image_index: (N,) int64, non-decreasing (persons of one image are contiguous).
    Returns:
        start, end: (N,) int64, the rows [start, end) hold the person's image.
    """
    n = len(image_index)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(np.diff(image_index)) + 1
    bounds = np.concatenate([[0], change, [n]])
    sizes = np.diff(bounds)
    start = np.repeat(bounds[:-1], sizes)
    end = np.repeat(bounds[1:], sizes)
    return start, end


def person_pairs(image_index: np.ndarray, eligible: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Every unordered pair of eligible persons sharing an image, i < j.

    Arguments:
        image_index: (N,) int64, non-decreasing.
        eligible: (N,) bool or None (all).
    Returns:
        first, second: (P,) int64 person rows, first < second, same image.
    """
    rows = np.arange(len(image_index)) if eligible is None else np.flatnonzero(eligible)
    if len(rows) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    _, end = image_groups(image_index[rows])
    later = end - np.arange(len(rows)) - 1  # partners after each eligible person in its image
    total = int(later.sum())
    first = np.repeat(np.arange(len(rows)), later)
    offset = np.arange(total) - np.repeat(np.cumsum(later) - later, later)
    second = first + 1 + offset
    return rows[first], rows[second]


def all_joint_pairs(near: np.ndarray, far: np.ndarray, labelled: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every labelled joint of ``near`` against every labelled joint of ``far``.

    Arguments:
        near, far: (P,) int64 person rows, near closer than far.
        labelled: (N, 21) bool.
    Returns:
        person_a, joint_a, person_b, joint_b, source: (K,) arrays; ``source`` is the index into
        ``near`` each pair came from.
    """
    ja, jb = np.meshgrid(np.arange(NUM_JOINTS), np.arange(NUM_JOINTS), indexing="ij")
    ja, jb = ja.ravel(), jb.ravel()
    ok = labelled[near][:, ja] & labelled[far][:, jb]  # (P, 441)
    src, k = np.nonzero(ok)
    return near[src], ja[k], far[src], jb[k], src
