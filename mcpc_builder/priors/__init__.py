"""Perspective priors: from 2D keypoints to relative-depth pair labels (../shared/design/
relative-depth-priors.md).

One module per physical cue, each a function from person arrays to ``Pairs``:
``foot_contact`` (P1), ``person_scale`` (P2), ``foreshortening`` (P3), ``facing`` (P4),
``occlusion`` (P5), ``lifting`` (the within-person prior: the 3D lifts of each person's 2D
skeleton enumerated with bone-length ranges and joint limits, labelling the pairs every surviving
lift orders) and, opt-in, ``pose_library`` (P6: the pair orders the nearest views of a 3D pose
library agree on); ``combine`` merges them. ``apply_priors`` runs them over a ``PersonTable``,
vectorised over all its persons (no loop per person or per pair).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..persons import PersonTable
from . import combine as combine_mod
from . import cross_person, foot_contact, foreshortening
from .config import RULE_NAMES, PriorConfig
from .facing import facing
from .lifting import lifting_with_torso
from . import pose_library as pose_library_mod  # the module stays ``priors.pose_library``
from .pose_library import LibraryIndex
from .occlusion import occlusion
from .cross_person import PersonOrder
from .pairs import RULE_CODE, Pairs
from .person_scale import person_scale, scale_order

SIGN_SOURCES = ("facing", "occlusion", "foot_contact")

__all__ = ["PriorConfig", "PriorResult", "Pairs", "RULE_NAMES", "apply_priors"]


@dataclass
class PriorResult:
    """What the priors say about one person table.

    Arguments:
        parts: merged labels (rows of the table) in two parts, to be read one after the other
            (``pairs`` joins them): the merged joint-level labels sorted by (person_a, joint_a,
            person_b, joint_b), then the cross-person blocks of P1/P2 in person-pair order
            (deterministic).
        scale: (N,) float person scale (standing height, pixels; NaN unknown).
        grounded: (N,) bool, P1 judged the person standing on the ground.
        produced, dropped: (R,) int64 per rule in ``RULE_NAMES`` order: labels produced, and
            labels dropped (contradictions at pair level plus person-pair conflicts);
        conflicts: (R,) int64 the part of ``dropped`` lost to person-pair conflicts (P1 and P2
            ordering two people oppositely). produced - dropped - kept labels of a rule is the
            number merged as duplicates into an identical label (kept once, under the most
            confident rule).
        raw: each rule's own labels before merging (only rules that ran).
    """

    parts: list[Pairs]
    scale: np.ndarray
    grounded: np.ndarray
    produced: np.ndarray
    dropped: np.ndarray
    raw: dict[str, Pairs]
    conflicts: np.ndarray | None = None

    @property
    def pairs(self) -> Pairs:
        """All merged labels as one ``Pairs`` (a copy of ``parts`` joined)."""
        parts = [p for p in self.parts if len(p)]
        return parts[0] if len(parts) == 1 else Pairs.concat(parts)


def apply_priors(table: PersonTable, config: PriorConfig | None = None,
                 evaluate_disabled: bool = False, keep_raw: bool = True,
                 library_index: LibraryIndex | None = None) -> PriorResult:
    """Run the enabled rules over every person of ``table`` and merge their labels.

    Arguments:
        table: persons grouped by image.
        config: thresholds; default ``PriorConfig()``.
        evaluate_disabled: also run disabled rules (their labels appear in ``raw`` only), so an
            audit can measure them.
        keep_raw: fill ``raw`` with each rule's own keypoint pairs (the build skips it).
        library_index: the pose library's prepared index (default: the file
            ``config.pose_library.path`` names; without either, ``pose_library`` does not run).
    """
    config = config or PriorConfig()
    run = set(RULE_NAMES) if evaluate_disabled else set(config.enabled)
    if library_index is None and not config.pose_library.path:
        run.discard("pose_library")
    kp = np.asarray(table.keypoints, np.float64)
    vis = np.asarray(table.visibility, np.uint8)
    labelled = (vis > 0) & np.isfinite(kp).all(axis=-1)
    kp = np.where(labelled[..., None], kp, np.nan)
    img = np.asarray(table.image_index, np.int64)
    wh = np.stack([table.image_width[img], table.image_height[img]], axis=1).astype(np.float64) \
        if len(img) else np.zeros((0, 2))
    image_size = wh.max(axis=1) if len(img) else np.zeros(0)

    scale, has_legs = person_scale(kp, labelled, config)
    is_grounded = foot_contact.grounded(kp, labelled, scale, wh, config)

    # Each rule gives keypoint pairs (``joint_level``) and/or ordered person pairs.
    joint_level: dict[str, Pairs] = {}
    person_level: dict[str, PersonOrder] = {}
    if "foot_contact" in run:
        # Off by default (real gait); still measured when an audit asks for disabled rules.
        within = foot_contact.within_person(kp, is_grounded, scale, config) \
            if config.foot_contact.within_person or (keep_raw and evaluate_disabled) else None
        joint_level["foot_contact"] = within if config.foot_contact.within_person \
            else Pairs.empty()
        person_level["foot_contact"] = foot_contact.across_people(img, kp, is_grounded, scale,
                                                                  config)
    if "person_scale" in run:
        person_level["person_scale"] = scale_order(img, scale, has_legs, config)
    if "facing" in run:
        joint_level["facing"] = facing(kp, vis, scale, config)
    if "occlusion" in run:
        joint_level["occlusion"] = occlusion(img, kp, vis, scale, config)
    keep_torso = None
    if "lifting" in run or "pose_library" in run:
        lifted, keep_torso = lifting_with_torso(kp, labelled, scale, config, vis)
        if "lifting" in run:
            joint_level["lifting"] = lifted
    if "pose_library" in run:
        joint_level["pose_library"] = pose_library_mod.pose_library(
            kp, labelled, config, keep_torso, library_index)
    if "foreshortening" in run:
        # P3 orders a tilted limb only where another rule fixed the sign (within-person pairs).
        # Label-0 limbs: merged only if emit_equal, measured when an audit asks for them.
        emit_equal = config.foreshortening.emit_equal
        in_plane = foreshortening.in_plane(kp, labelled, scale, config) \
            if emit_equal or (keep_raw and evaluate_disabled) else None
        signers = [r for r in SIGN_SOURCES if r in config.enabled and r in joint_level]
        joint_level["foreshortening"] = Pairs.concat(
            ([in_plane] if emit_equal else [])
            + [foreshortening.signed_by(Pairs.concat([joint_level[r] for r in signers]), kp,
                                        labelled, scale, config)])

    raw: dict[str, Pairs] = {}
    if keep_raw:
        for rule in RULE_NAMES:
            if rule not in run:
                continue
            parts = [joint_level[rule]] if rule in joint_level else []
            if rule == "foot_contact" and not config.foot_contact.within_person \
                    and evaluate_disabled:
                parts = [within]
            if rule in person_level:
                parts.append(cross_person.expand(person_level[rule], scale, labelled,
                                                 image_size, config))
            raw[rule] = Pairs.concat(parts)
        if evaluate_disabled and "foreshortening" in run:  # measured with every sign source
            raw["foreshortening"] = Pairs.concat([in_plane, foreshortening.signed_by(
                Pairs.concat([joint_level[r] for r in SIGN_SOURCES]), kp, labelled, scale,
                config)])

    # Merge. Person pairs that P1 and P2 order oppositely say nothing (not even P5's pairs).
    orders = cross_person.merge_orders(
        [person_level[r] for r in config.enabled if r in person_level], scale, labelled,
        image_size, config)
    produced = orders.produced.copy()
    dropped = orders.dropped.copy()
    parts = []
    for rule in config.enabled:
        if rule in joint_level:
            part = joint_level[rule]
            produced[RULE_CODE[rule]] += len(part)
            part, gone = combine_mod.drop_person_pairs(part, orders.banned)
            dropped += gone
            parts.append(part)
    conflicts = dropped.copy()  # so far every drop was a person-pair conflict
    # Only the person pairs that also hold a joint-level cross-person label can collide with
    # one; their blocks are merged, the rest are unique and are expanded straight into the
    # output (no sort, no copy).
    touch = np.zeros(len(orders.key), bool)
    joint_cross = [p.take(p.person_a != p.person_b) for p in parts]
    if len(orders.key) and any(len(p) for p in joint_cross):
        cp = Pairs.concat(joint_cross)
        span = len(table) + 1
        keys = np.unique(np.minimum(cp.person_a, cp.person_b) * span
                         + np.maximum(cp.person_a, cp.person_b))
        bk = orders.key
        touch = keys[np.minimum(np.searchsorted(keys, bk), len(keys) - 1)] == bk
    merged = combine_mod.combine(parts + [orders.expand(labelled, touch)], len(table))
    dropped += merged.dropped
    rest = orders.expand(labelled, ~touch)
    return PriorResult([merged.pairs, rest], scale, is_grounded, produced, dropped, raw,
                       conflicts)
