"""From "person A is closer than person B" to keypoint pairs (shared by P1 and P2).

The depth ratio z_far / z_near of two people says how far apart they are relative to the nearer
one's distance; with z_near = f H / s_near and the focal length bounded below (f >= f_min), the
gap in body heights is at least (ratio - 1) f_min / s_near. When that exceeds a body's depth
extent, every joint of the nearer person is closer than every joint of the farther one; otherwise
only the root (pelvis) pair is safe.

Person-level rules are merged *before* expanding to joints (``merge_and_expand``): person pairs
the rules order oppositely are dropped whole, agreeing ones are expanded once. This gives the same
labels as expanding every rule and merging keypoint pairs, without sorting millions of
identical cross-person pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import RULE_NAMES, PriorConfig
from .pairs import PELVIS, RULE_CODE, Pairs, all_joint_pairs


@dataclass
class PersonOrder:
    """Person pairs one rule ordered.

    Arguments:
        rule: rule name.
        near, far: (P,) int64 person rows, near closer.
        depth_ratio: (P,) float, estimated z_far / z_near (>= 1).
        confidence: (P,) float in (0, 1].
    """

    rule: str
    near: np.ndarray
    far: np.ndarray
    depth_ratio: np.ndarray
    confidence: np.ndarray


def depth_gap(order: PersonOrder, scale: np.ndarray, image_size: np.ndarray,
              config: PriorConfig) -> np.ndarray:
    """(P,) lower bound of the depth gap in body heights (see the module docstring).

    Arguments:
        scale: (N,) float pixels (standing height); image_size: (N,) float, max(width, height).
    """
    f_min = config.cross_person.focal_min_factor * image_size[order.near]
    return (order.depth_ratio - 1.0) * f_min / scale[order.near]


def expand(order: PersonOrder, scale: np.ndarray, labelled: np.ndarray,
           image_size: np.ndarray, config: PriorConfig) -> Pairs:
    """The keypoint pairs of one rule's person order (label +1: a = near person's joint).

    Arguments:
        labelled: (N, 21) bool.
    """
    gap = depth_gap(order, scale, image_size, config)
    wide = gap >= config.cross_person.all_joints_min_gap
    near, far, conf = order.near, order.far, order.confidence
    pa, ja, pb, jb, src = all_joint_pairs(near[wide], far[wide], labelled)
    all_pairs = Pairs.make(order.rule, pa, ja, pb, jb, 1, conf[wide][src], gap[wide][src])
    root = ~wide & labelled[near, PELVIS] & labelled[far, PELVIS]
    root_pairs = Pairs.make(order.rule, near[root], PELVIS, far[root], PELVIS, 1, conf[root],
                            gap[root])
    return Pairs.concat([all_pairs, root_pairs])


@dataclass
class MergedOrders:
    """Result of ``merge_and_expand``.

    Arguments:
        pairs: the expanded keypoint pairs, one block per person pair.
        produced, dropped: (R,) int64 per rule: keypoint pairs each rule gives on its own, and
            those lost because the rules disagree about the person pair.
        banned: (C, 2) int64 person rows (lower first) of person pairs the rules disagree on.
    """

    pairs: Pairs
    produced: np.ndarray
    dropped: np.ndarray
    banned: np.ndarray


def merge_and_expand(orders: list[PersonOrder], scale: np.ndarray, labelled: np.ndarray,
                     image_size: np.ndarray, config: PriorConfig) -> MergedOrders:
    """Merge person-level orders of several rules, drop disagreements, expand once.

    A person pair ordered by several agreeing rules becomes all joints if any rule's gap allows
    it (each row keeps the most confident rule that gives that row, and the largest margin), the
    root pair otherwise. A person pair the rules order oppositely gives nothing.
    """
    r = len(RULE_NAMES)
    produced, dropped = np.zeros(r, np.int64), np.zeros(r, np.int64)
    if not orders or sum(len(o.near) for o in orders) == 0:
        return MergedOrders(Pairs.empty(), produced, dropped, np.zeros((0, 2), np.int64))
    near = np.concatenate([o.near for o in orders]).astype(np.int64)
    far = np.concatenate([o.far for o in orders]).astype(np.int64)
    conf = np.concatenate([np.clip(o.confidence, 1e-3, 1.0) for o in orders]).astype(np.float32)
    rule = np.concatenate([np.full(len(o.near), RULE_CODE[o.rule], np.int8) for o in orders])
    gap = np.concatenate([depth_gap(o, scale, image_size, config) for o in orders])
    wide = gap >= config.cross_person.all_joints_min_gap
    n_lab = labelled.sum(axis=1)
    root_ok = labelled[near, PELVIS] & labelled[far, PELVIS]
    rows = np.where(wide, n_lab[near] * n_lab[far], root_ok.astype(np.int64))
    produced += np.bincount(rule, weights=rows, minlength=r).astype(np.int64)

    lo, hi = np.minimum(near, far), np.maximum(near, far)
    key = lo * (len(scale) + 1) + hi
    sign = np.where(near == lo, 1, -1)
    # Group person pairs; within a group most confident first, then rule order.
    order = np.lexsort((rule, -conf, key))
    key_s = key[order]
    start = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]])
    size = np.diff(np.r_[start, len(key_s)])
    s_min = np.minimum.reduceat(sign[order], start)
    s_max = np.maximum.reduceat(sign[order], start)
    conflict = np.repeat(s_min != s_max, size)
    bad = order[conflict]
    dropped += np.bincount(rule[bad], weights=rows[bad], minlength=r).astype(np.int64)
    banned = np.unique(np.stack([lo[bad], hi[bad]], axis=1), axis=0).reshape(-1, 2)

    group = np.repeat(np.arange(len(start)), size)  # group of each sorted row
    ok_group = s_min == s_max
    best = order[start]  # most confident row of each group: it labels the root pair
    any_wide = np.zeros(len(start), bool)
    np.logical_or.at(any_wide, group, wide[order])
    gap_all = np.full(len(start), -np.inf)
    np.maximum.at(gap_all, group, np.where(wide[order], gap[order], -np.inf))
    gap_root = np.maximum.reduceat(gap[order], start)
    # Most confident *wide* row of each group: it labels the non-root joints.
    wide_sorted = np.flatnonzero(wide[order])
    best_wide = np.full(len(start), -1, np.int64)
    if len(wide_sorted):
        g = group[wide_sorted]
        first_of_group = np.r_[True, g[1:] != g[:-1]]
        best_wide[g[first_of_group]] = order[wide_sorted[first_of_group]]

    sel_all = np.flatnonzero(ok_group & any_wide)
    bw = best_wide[sel_all]
    pa, ja, pb, jb, src = all_joint_pairs(near[bw], far[bw], labelled)
    c = conf[bw][src]
    ru = rule[bw][src]
    mg = gap_all[sel_all][src]
    is_root = (ja == PELVIS) & (jb == PELVIS)
    root_best = best[sel_all][src]
    c = np.where(is_root, conf[root_best], c)
    ru = np.where(is_root, rule[root_best], ru)
    mg = np.where(is_root, gap_root[sel_all][src], mg)
    block = Pairs(pa.astype(np.int64), ja.astype(np.int8), pb.astype(np.int64),
                  jb.astype(np.int8), np.ones(len(pa), np.int8), c.astype(np.float32),
                  mg.astype(np.float32), ru.astype(np.int8))
    sel_root = np.flatnonzero(ok_group & ~any_wide)
    b = best[sel_root]
    keep = labelled[near[b], PELVIS] & labelled[far[b], PELVIS]
    sel_root, b = sel_root[keep], b[keep]
    roots = Pairs(near[b], np.full(len(b), PELVIS, np.int8), far[b],
                  np.full(len(b), PELVIS, np.int8), np.ones(len(b), np.int8), conf[b],
                  gap_root[sel_root].astype(np.float32), rule[b])
    return MergedOrders(Pairs.concat([block, roots]), produced, dropped, banned)

