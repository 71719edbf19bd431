"""Perspective priors: from 2D keypoints to relative-depth pair labels (../shared/design/
relative-depth-priors.md).

One module per physical cue, each a function from person arrays to ``Pairs``:
``foot_contact`` (P1), ``person_scale`` (P2), ``foreshortening`` (P3), ``facing`` (P4),
``occlusion`` (P5); ``combine`` merges them. ``apply_priors`` runs them over a ``PersonTable``,
vectorised over all its persons (no loop per person or per pair).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..persons import PersonTable
from . import combine as combine_mod
from . import foot_contact, foreshortening
from .config import RULE_NAMES, PriorConfig
from .facing import facing
from .occlusion import occlusion
from .pairs import RULE_CODE, Pairs
from .person_scale import person_scale, scale_order

SIGN_SOURCES = ("facing", "occlusion", "foot_contact")

__all__ = ["PriorConfig", "PriorResult", "Pairs", "RULE_NAMES", "apply_priors"]


@dataclass
class PriorResult:
    """What the priors say about one person table.

    Arguments:
        pairs: merged labels (rows of the table), sorted by (person_a, joint_a, person_b, joint_b).
        scale: (N,) float person scale (standing height, pixels; NaN unknown).
        grounded: (N,) bool, P1 judged the person standing on the ground.
        produced, dropped: (R,) int64 per rule in ``RULE_NAMES`` order: labels produced, and
            labels dropped as contradictions (pair-level and person-pair-level).
        raw: each rule's own labels before merging (only rules that ran).
    """

    pairs: Pairs
    scale: np.ndarray
    grounded: np.ndarray
    produced: np.ndarray
    dropped: np.ndarray
    raw: dict[str, Pairs]


def apply_priors(table: PersonTable, config: PriorConfig | None = None,
                 evaluate_disabled: bool = False) -> PriorResult:
    """Run the enabled rules over every person of ``table`` and merge their labels.

    Arguments:
        table: persons grouped by image.
        config: thresholds; default ``PriorConfig()``.
        evaluate_disabled: also run disabled rules (their labels appear in ``raw`` only), so an
            audit can measure them.
    """
    config = config or PriorConfig()
    run = set(RULE_NAMES) if evaluate_disabled else set(config.enabled)
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

    raw: dict[str, Pairs] = {}
    orders = []
    if "foot_contact" in run:
        across, near, far = foot_contact.across_people(img, kp, labelled, is_grounded, scale,
                                                       image_size, config)
        raw["foot_contact"] = Pairs.concat(
            [foot_contact.within_person(kp, is_grounded, scale, config), across])
        if "foot_contact" in config.enabled:
            orders.append((near, far))
    if "person_scale" in run:
        raw["person_scale"], near, far = scale_order(img, scale, has_legs, labelled, image_size,
                                                     config)
        if "person_scale" in config.enabled:
            orders.append((near, far))
    if "facing" in run:
        raw["facing"] = facing(kp, vis, scale, config)
    if "occlusion" in run:
        raw["occlusion"] = occlusion(img, kp, vis, scale, config)
    used: dict[str, Pairs] = {r: raw[r] for r in config.enabled if r in raw}
    if "foreshortening" in run:
        # P3 orders a tilted limb only where another rule fixed the sign.
        in_plane = foreshortening.in_plane(kp, labelled, scale, config)
        measured_in_plane = in_plane
        if not config.foreshortening.emit_equal:
            in_plane = Pairs.empty()
        signers = [r for r in SIGN_SOURCES if r in config.enabled]
        used["foreshortening"] = Pairs.concat([in_plane, foreshortening.signed_by(
            Pairs.concat([raw[r] for r in signers]), kp, labelled, scale, config)])
        raw["foreshortening"] = used["foreshortening"]
        if evaluate_disabled:  # measured with every sign source
            raw["foreshortening"] = Pairs.concat([measured_in_plane, foreshortening.signed_by(
                Pairs.concat([raw[r] for r in SIGN_SOURCES]), kp, labelled, scale, config)])

    parts = [used[r] for r in config.enabled]
    # Where P1 and P2 both order a pair of people and disagree, nothing is said about them.
    banned = combine_mod.person_pair_conflicts(orders)
    kept_parts, removed = [], np.zeros(len(RULE_NAMES), np.int64)
    for part in parts:
        part, gone = combine_mod.drop_person_pairs(part, banned)
        kept_parts.append(part)
        removed += gone
    merged = combine_mod.combine(kept_parts, len(table))
    produced = np.zeros(len(RULE_NAMES), np.int64)
    for rule in config.enabled:
        produced[RULE_CODE[rule]] = len(used[rule])
    return PriorResult(merged.pairs, scale, is_grounded, produced, merged.dropped + removed, raw)
