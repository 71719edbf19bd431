"""From "person A is closer than person B" to keypoint pairs (shared by P1 and P2).

The depth ratio z_far / z_near of two people says how far apart they are relative to the nearer
one's distance; with z_near = f H / s_near and the focal length bounded below (f >= f_min), the
gap in body heights is at least (ratio - 1) f_min / s_near. When that exceeds a body's depth
extent, every joint of the nearer person is closer than every joint of the farther one; otherwise
only the root (pelvis) pair is safe.

Person-level rules are merged *before* expanding to joints (``merge_orders``): person pairs
the rules order oppositely are dropped whole, agreeing ones are expanded once. This gives the same
labels as expanding every rule and merging keypoint pairs, without sorting millions of
identical cross-person pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import RULE_NAMES, PriorConfig
from .pairs import NUM_JOINTS, PELVIS, RULE_CODE, Pairs, all_joint_pairs


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
    """Result of ``merge_orders``: the person pairs the rules agree on, ready to expand.

    Groups are the agreeing person pairs in expansion order: first those that get all joints
    (``wide``), then those that get the root pair only (their pelvis labelled in both).

    Arguments:
        key: (G,) int64 unordered person-pair key ``lo * (N + 1) + hi`` of each group.
        wide: (G,) bool, the group gets every pair of labelled joints, else the root pair only.
        near, far: (G,) int64 person rows (of the group's most confident wide row for wide
            groups, of its most confident row otherwise).
        confidence, rule, margin: (G,) float32 / int8 / float32, what the non-root rows carry.
        root_confidence, root_rule, root_margin: (G,) what the root (pelvis-pelvis) row carries.
        produced, dropped: (R,) int64 per rule: keypoint pairs each rule gives on its own, and
            those lost because the rules disagree about the person pair.
        banned: (C, 2) int64 person rows (lower first) of person pairs the rules disagree on.
    """

    key: np.ndarray
    wide: np.ndarray
    near: np.ndarray
    far: np.ndarray
    confidence: np.ndarray
    rule: np.ndarray
    margin: np.ndarray
    root_confidence: np.ndarray
    root_rule: np.ndarray
    root_margin: np.ndarray
    produced: np.ndarray
    dropped: np.ndarray
    banned: np.ndarray

    def expand(self, labelled: np.ndarray, select: np.ndarray | None = None) -> Pairs:
        """The keypoint pairs of the selected groups (``select`` (G,) bool, default all), one
        block per group in group order, rows of a block in (joint_a, joint_b) order.

        Arguments:
            labelled: (N, 21) bool.
        """
        idx = np.arange(len(self.key)) if select is None else np.flatnonzero(select)
        return expand_groups(labelled, self.near[idx], self.far[idx], self.wide[idx],
                             self.confidence[idx], self.rule[idx], self.margin[idx],
                             self.root_confidence[idx], self.root_rule[idx],
                             self.root_margin[idx])


ROOT_CELL = PELVIS * NUM_JOINTS + PELVIS  # the pelvis-pelvis cell of a (21 x 21) joint grid
_JOINT_A = np.repeat(np.arange(NUM_JOINTS, dtype=np.int8), NUM_JOINTS)  # (441,) row-major grid
_JOINT_B = np.tile(np.arange(NUM_JOINTS, dtype=np.int8), NUM_JOINTS)


def expand_groups(labelled: np.ndarray, near: np.ndarray, far: np.ndarray, wide: np.ndarray,
                  confidence: np.ndarray, rule: np.ndarray, margin: np.ndarray,
                  root_confidence: np.ndarray, root_rule: np.ndarray, root_margin: np.ndarray
                  ) -> Pairs:
    """Keypoint pairs of ordered person pairs (label +1: a = near person's joint).

    A wide group gives every labelled joint of ``near`` against every labelled joint of ``far``
    (its pelvis-pelvis row with the root values), any other group its pelvis-pelvis row alone.
    Built per person pair and then repeated per row (no per-row gathers).

    Arguments:
        labelled: (N, 21) bool; near, far: (G,) int64 person rows; wide: (G,) bool;
        confidence, margin, root_confidence, root_margin: (G,) float32; rule, root_rule: (G,)
        int8.
    """
    g = len(near)
    cells = np.zeros((g, NUM_JOINTS, NUM_JOINTS), bool)
    w = np.flatnonzero(wide)
    cells[w] = labelled[near[w]][:, :, None] & labelled[far[w]][:, None, :]
    narrow = np.flatnonzero(~wide)
    cells[narrow, PELVIS, PELVIS] = labelled[near[narrow], PELVIS] & labelled[far[narrow], PELVIS]
    cells = cells.reshape(g, NUM_JOINTS * NUM_JOINTS)
    count = np.count_nonzero(cells, axis=1)
    flat = cells.ravel()
    pairs = Pairs(np.repeat(np.asarray(near, np.int64), count),
                  np.compress(flat, np.tile(_JOINT_A, g)),
                  np.repeat(np.asarray(far, np.int64), count),
                  np.compress(flat, np.tile(_JOINT_B, g)),
                  np.ones(int(count.sum()), np.int8),
                  np.repeat(np.asarray(confidence, np.float32), count),
                  np.repeat(np.asarray(margin, np.float32), count),
                  np.repeat(np.asarray(rule, np.int8), count))
    has_root = np.flatnonzero(cells[:, ROOT_CELL])
    pos = (np.cumsum(count) - count)[has_root] + np.count_nonzero(cells[has_root, :ROOT_CELL], axis=1)
    pairs.confidence[pos] = root_confidence[has_root]
    pairs.rule[pos] = root_rule[has_root]
    pairs.margin[pos] = root_margin[has_root]
    return pairs


def merge_orders(orders: list[PersonOrder], scale: np.ndarray, labelled: np.ndarray,
                 image_size: np.ndarray, config: PriorConfig) -> MergedOrders:
    """Merge person-level orders of several rules and drop disagreements (expand later).

    A person pair ordered by several agreeing rules becomes all joints if any rule's gap allows
    it (each row keeps the most confident rule that gives that row, and the largest margin), the
    root pair otherwise. A person pair the rules order oppositely gives nothing.
    """
    r = len(RULE_NAMES)
    produced, dropped = np.zeros(r, np.int64), np.zeros(r, np.int64)
    if not orders or sum(len(o.near) for o in orders) == 0:
        e = np.zeros(0, np.int64)
        f, i8 = np.zeros(0, np.float32), np.zeros(0, np.int8)
        return MergedOrders(e, np.zeros(0, bool), e, e, f, i8, f, f, i8, f, produced, dropped,
                            np.zeros((0, 2), np.int64))
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

    ok_group = s_min == s_max
    best = order[start]  # most confident row of each group: it labels the root pair
    wide_s = wide[order]
    any_wide = np.logical_or.reduceat(wide_s, start)
    gap_all = np.maximum.reduceat(np.where(wide_s, gap[order], -np.inf), start)
    gap_root = np.maximum.reduceat(gap[order], start)
    # Most confident *wide* row of each group: it labels the non-root joints.
    wide_sorted = np.flatnonzero(wide_s)
    best_wide = np.full(len(start), -1, np.int64)
    if len(wide_sorted):
        group = np.repeat(np.arange(len(start)), size)[wide_sorted]
        first_of_group = np.r_[True, group[1:] != group[:-1]]
        best_wide[group[first_of_group]] = order[wide_sorted[first_of_group]]

    sel_all = np.flatnonzero(ok_group & any_wide)
    sel_root = np.flatnonzero(ok_group & ~any_wide)
    b = best[sel_root]
    keep = labelled[near[b], PELVIS] & labelled[far[b], PELVIS]
    sel_root, b = sel_root[keep], b[keep]
    bw = best_wide[sel_all]
    rb = best[sel_all]
    groups = np.concatenate([sel_all, sel_root])
    who = np.concatenate([bw, b])  # the row whose persons and non-root values the group takes
    root_who = np.concatenate([rb, b])
    return MergedOrders(
        key=key_s[start[groups]],
        wide=np.r_[np.ones(len(sel_all), bool), np.zeros(len(sel_root), bool)],
        near=near[who], far=far[who], confidence=conf[who], rule=rule[who],
        margin=np.r_[gap_all[sel_all], gap_root[sel_root]].astype(np.float32),
        root_confidence=conf[root_who], root_rule=rule[root_who],
        root_margin=gap_root[groups].astype(np.float32),
        produced=produced, dropped=dropped, banned=banned)
