"""Merge the rules' labels: identical pairs become one row, contradictions are dropped and counted.

Pairs are first written in one canonical direction ((person, joint) of a before b, flipping the
label when swapped), then grouped. A group whose labels all agree becomes one row with the
highest confidence (its prior is the rule that gave it) and the largest margin; a group with
disagreeing labels (+1 vs -1, or ordered vs equal) is dropped entirely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import RULE_NAMES
from .pairs import NUM_JOINTS, Pairs


@dataclass
class Combined:
    """The merged labels and what happened to each rule's labels.

    Arguments:
        pairs: the merged pairs, sorted by (person_a, joint_a, person_b, joint_b).
        produced, dropped: (R,) int64 per rule (``RULE_NAMES`` order): labels the rule gave, and
            how many of them fell in a contradiction.
    """

    pairs: Pairs
    produced: np.ndarray
    dropped: np.ndarray


def canonical(pairs: Pairs) -> Pairs:
    """Each pair with (person_a, joint_a) <= (person_b, joint_b), label flipped where swapped.

    Works in place on ``pairs`` (and returns it).
    """
    a = pairs.person_a * NUM_JOINTS + pairs.joint_a
    b = pairs.person_b * NUM_JOINTS + pairs.joint_b
    swap = np.flatnonzero(a > b)
    pairs.person_a[swap], pairs.person_b[swap] = pairs.person_b[swap], pairs.person_a[swap]
    pairs.joint_a[swap], pairs.joint_b[swap] = pairs.joint_b[swap], pairs.joint_a[swap]
    pairs.label[swap] = -pairs.label[swap]
    return pairs


def combine(parts: list[Pairs], num_persons: int) -> Combined:
    """Merge the labels of several rules.

    Arguments:
        parts: each rule's labels (rows refer to one person table of ``num_persons`` rows).
    """
    pairs = canonical(Pairs.concat(parts))  # concat copies, so canonical may work in place
    r = len(RULE_NAMES)
    produced = np.bincount(pairs.rule, minlength=r).astype(np.int64)
    if len(pairs) == 0:
        return Combined(pairs, produced, np.zeros(r, np.int64))
    n21 = max(num_persons, 1) * NUM_JOINTS
    key = ((pairs.person_a * NUM_JOINTS + pairs.joint_a) * n21
           + pairs.person_b * NUM_JOINTS + pairs.joint_b)
    # One int64 sort key: the pair, then highest confidence first (quantised to 1/2^14), then
    # rule order, so the group's first row is the one kept and every tie is broken by a fixed
    # order (deterministic). The pair key needs < 2^46 (20M persons per call).
    assert n21 * n21 < (1 << 46), "too many persons for one combine call"
    rank = np.round((1.0 - pairs.confidence.astype(np.float64)) * ((1 << 14) - 1)).astype(np.int64)
    order = np.argsort((key << 17) | (rank << 3) | pairs.rule.astype(np.int64), kind="stable")
    key = key[order]
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    size = np.diff(np.r_[start, len(key)])
    lab = pairs.label[order].astype(np.int16)
    lo = np.minimum.reduceat(lab, start)
    hi = np.maximum.reduceat(lab, start)
    agree = lo == hi
    bad_rows = order[np.repeat(~agree, size)]
    dropped = np.bincount(pairs.rule[bad_rows], minlength=r).astype(np.int64)
    multi = agree & (size > 1)  # merged groups take the largest margin of their rows
    merged = pairs.take(order[start[agree]])
    if multi.any():
        with np.errstate(invalid="ignore"):
            margin = np.fmax.reduceat(pairs.margin[order], start)
        merged.margin = margin[agree].astype(np.float32)
    return Combined(merged, produced, dropped)


def person_pair_conflicts(orders: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Unordered person pairs that two person-level rules order oppositely.

    Arguments:
        orders: per rule, (near, far) (P,) int64 person rows.
    Returns:
        (C, 2) int64 sorted person rows (lower first) of the conflicting pairs.
    """
    keys, signs = [], []
    for near, far in orders:
        lo, hi = np.minimum(near, far), np.maximum(near, far)
        keys.append(np.stack([lo, hi], axis=1))
        signs.append(np.where(near == lo, 1, -1))
    if not keys:
        return np.zeros((0, 2), np.int64)
    k = np.concatenate(keys).astype(np.int64)
    s = np.concatenate(signs)
    if len(k) == 0:
        return np.zeros((0, 2), np.int64)
    uniq, inv = np.unique(k, axis=0, return_inverse=True)
    inv = inv.ravel()
    lo = np.full(len(uniq), 2)
    hi = np.full(len(uniq), -2)
    np.minimum.at(lo, inv, s)
    np.maximum.at(hi, inv, s)
    return uniq[lo != hi]


def drop_person_pairs(pairs: Pairs, banned: np.ndarray) -> tuple[Pairs, np.ndarray]:
    """Remove cross-person labels between banned person pairs.

    Arguments:
        banned: (C, 2) int64 person rows, lower first.
    Returns:
        the kept pairs, and (R,) int64 count of removed labels per rule.
    """
    r = len(RULE_NAMES)
    if len(banned) == 0 or len(pairs) == 0:
        return pairs, np.zeros(r, np.int64)
    cross = np.flatnonzero(pairs.person_a != pairs.person_b)
    lo = np.minimum(pairs.person_a[cross], pairs.person_b[cross])
    hi = np.maximum(pairs.person_a[cross], pairs.person_b[cross])
    span = int(max(hi.max(initial=0), banned.max())) + 1
    bad = np.sort(banned[:, 0] * span + banned[:, 1])
    key = lo * span + hi
    found = bad[np.minimum(np.searchsorted(bad, key), len(bad) - 1)] == key
    hit = np.zeros(len(pairs), bool)
    hit[cross[found]] = True
    if not hit.any():
        return pairs, np.zeros(r, np.int64)
    return pairs.take(~hit), np.bincount(pairs.rule[hit], minlength=r).astype(np.int64)
