"""The perspective priors on hand-made persons small enough to check by hand, and the vectorised
rules against the per-person reference implementation on synthetic scenes."""

from __future__ import annotations

import numpy as np
import pytest

from mcpc_builder.joints import BODY_POINTS, COCO17, MCPC21, convert
from mcpc_builder.persons import PersonTable
from mcpc_builder.priors import PriorConfig, apply_priors
from mcpc_builder.priors.combine import combine
from mcpc_builder.priors.config import RULE_NAMES
from mcpc_builder.priors.pairs import RULE_CODE, Pairs
from mcpc_builder.priors.person_scale import FOREARM, SHIN, THIGH, TORSO, UPPER_ARM

J = MCPC21.index
W, H = 640, 480


def standing(x: float, foot_y: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """An upright person facing the camera, every limb in the image plane, standing height h px.

    Returns keypoints (21, 2) and visibility (21,) (upper_neck / head_top unlabelled, as COCO).
    """
    kp = np.full((21, 2), np.nan)
    knee_y = foot_y - SHIN * h
    hip_y = knee_y - THIGH * h
    sho_y = hip_y - TORSO * h
    for side, sign in (("left", 1), ("right", -1)):  # the person's left is on the image right
        leg_x = x + sign * 0.055 * h
        kp[J[f"{side}_ankle"]] = (leg_x, foot_y)
        kp[J[f"{side}_knee"]] = (leg_x, knee_y)
        kp[J[f"{side}_hip"]] = (leg_x, hip_y)
        arm_x = x + sign * 0.10 * h
        kp[J[f"{side}_shoulder"]] = (arm_x, sho_y)
        kp[J[f"{side}_elbow"]] = (arm_x, sho_y + UPPER_ARM * h)
        kp[J[f"{side}_wrist"]] = (arm_x, sho_y + (UPPER_ARM + FOREARM) * h)
        kp[J[f"{side}_eye"]] = (x + sign * 0.02 * h, sho_y - 0.12 * h)
        kp[J[f"{side}_ear"]] = (x + sign * 0.04 * h, sho_y - 0.11 * h)
    kp[J["nose"]] = (x, sho_y - 0.10 * h)
    kp[J["pelvis"]] = 0.5 * (kp[J["left_hip"]] + kp[J["right_hip"]])
    kp[J["thorax"]] = 0.5 * (kp[J["left_shoulder"]] + kp[J["right_shoulder"]])
    vis = np.full(21, 2, np.uint8)
    vis[[J["upper_neck"], J["head_top"]]] = 0
    return kp, vis


def table_of(*people, image=None) -> PersonTable:
    """A table of people (kp, vis); all in one 640x480 image unless ``image`` gives indices."""
    n = len(people)
    image = np.zeros(n, np.int64) if image is None else np.asarray(image, np.int64)
    m = int(image.max()) + 1
    return PersonTable("coco", "val", image, np.array([f"{i}.jpg" for i in range(m)], object),
                       np.full(m, W, np.int32), np.full(m, H, np.int32),
                       np.zeros((n, 4), np.float32),
                       np.stack([p[0] for p in people]).astype(np.float32),
                       np.stack([p[1] for p in people]).astype(np.uint8), np.arange(n))


def labels(pairs: Pairs, rule: str | None = None) -> dict:
    """{(person_a, joint_a, person_b, joint_b): label} of one rule (or all)."""
    keep = np.ones(len(pairs), bool) if rule is None else pairs.rule == RULE_CODE[rule]
    p = pairs.take(keep)
    return dict(zip(zip(p.person_a.tolist(), p.joint_a.tolist(), p.person_b.tolist(),
                        p.joint_b.tolist()), p.label.tolist()))


def canonical_labels(pairs: Pairs) -> dict:
    """``labels`` with each pair written (person, joint) of a <= b, label flipped if swapped."""
    out = {}
    for (pa, ja, pb, jb), v in labels(pairs).items():
        out[(pa, ja, pb, jb) if (pa, ja) <= (pb, jb) else (pb, jb, pa, ja)] = \
            v if (pa, ja) <= (pb, jb) else -v
    return out


def cross(lab: dict) -> dict:
    return {k: v for k, v in lab.items() if k[0] != k[2]}


# ------------------------------------------------------------------------------- P1 / P2 scale
def test_scale_of_an_upright_person_is_its_standing_height():
    res = apply_priors(table_of(standing(300, 400, 250)))
    assert res.scale[0] == pytest.approx(250, rel=1e-3)
    assert res.grounded[0]


def test_lower_grounded_person_is_closer_in_every_joint_when_far_apart():
    near, far = standing(200, 450, 300), standing(450, 300, 100)
    res = apply_priors(table_of(near, far))
    got = cross(labels(res.raw["foot_contact"]))
    labelled = 19  # 21 minus upper_neck, head_top
    assert len(got) == labelled * labelled
    assert all(k[0] == 0 and k[2] == 1 and v == 1 for k, v in got.items())


def test_nearby_grounded_people_get_only_the_root_pair():
    a, b = standing(200, 400, 200), standing(450, 385, 185)
    got = cross(labels(apply_priors(table_of(a, b)).raw["foot_contact"]))
    assert got == {(0, J["pelvis"], 1, J["pelvis"]): 1}


def test_grounded_people_on_the_same_row_get_no_order():
    a, b = standing(200, 400, 200), standing(450, 402, 190)
    assert cross(labels(apply_priors(table_of(a, b)).raw["foot_contact"])) == {}


def test_clearly_lower_ankle_is_closer_than_the_other():
    kp, vis = standing(300, 400, 250)
    kp[J["right_ankle"], 1] -= 0.1 * 250  # right foot raised: the left one is lower
    on = PriorConfig.from_dict({"foot_contact": {"within_person": True}})
    res = apply_priors(table_of((kp, vis)), on)
    assert res.grounded[0]
    assert labels(res.raw["foot_contact"]) == {(0, J["left_ankle"], 0, J["right_ankle"]): 1}


def test_within_person_ankle_rule_is_off_by_default_but_measured():
    kp, vis = standing(300, 400, 250)
    kp[J["right_ankle"], 1] -= 0.1 * 250
    assert labels(apply_priors(table_of((kp, vis))).pairs, "foot_contact") == {}
    measured = apply_priors(table_of((kp, vis)), evaluate_disabled=True).raw["foot_contact"]
    assert labels(measured) == {(0, J["left_ankle"], 0, J["right_ankle"]): 1}


def test_slightly_lifted_foot_abstains():
    kp, vis = standing(300, 400, 250)
    kp[J["right_ankle"], 1] -= 0.03 * 250  # within what a walking heel lift does
    assert labels(apply_priors(table_of((kp, vis))).raw["foot_contact"]) == {}


def test_sitting_person_is_not_grounded():
    kp, vis = standing(300, 400, 250)
    for side in ("left", "right"):  # thighs horizontal: knees at hip height
        hip = kp[J[f"{side}_knee"]].copy()
        kp[J[f"{side}_hip"]] = hip
        kp[J[f"{side}_knee"]] = hip + (0.2 * 250, 0)
    kp[J["pelvis"]] = 0.5 * (kp[J["left_hip"]] + kp[J["right_hip"]])
    assert not apply_priors(table_of((kp, vis))).grounded[0]


def test_cut_off_person_is_not_grounded():
    kp, vis = standing(300, H - 2, 250)  # feet on the bottom image border
    assert not apply_priors(table_of((kp, vis))).grounded[0]


def test_person_twice_as_large_is_closer_and_smaller_ratios_abstain():
    big, small = standing(200, 300, 300), standing(450, 300, 140)
    got = cross(labels(apply_priors(table_of(big, small)).raw["person_scale"]))
    assert got and all(k[0] == 0 and k[2] == 1 and v == 1 for k, v in got.items())
    similar = standing(450, 300, 220)  # ratio 1.36: a child could be this much smaller
    assert cross(labels(apply_priors(table_of(big, similar)).raw["person_scale"])) == {}


def test_ground_contact_and_scale_disagreeing_leave_the_people_unordered():
    low_small, high_big = standing(150, 450, 100), standing(400, 330, 250)
    res = apply_priors(table_of(low_small, high_big))
    assert cross(labels(res.raw["foot_contact"]))  # says person 0 is closer
    assert cross(labels(res.raw["person_scale"]))  # says person 1 is closer
    assert cross(labels(res.pairs)) == {}
    assert res.dropped[RULE_CODE["foot_contact"]] > 0 and res.dropped[RULE_CODE["person_scale"]] > 0


# ------------------------------------------------------------------------------ P3 / P4 / P5
def test_limb_seen_at_full_length_gives_equal_label_and_tilted_one_abstains():
    kp, vis = standing(300, 400, 250)
    sho, elb, wri = J["left_shoulder"], J["left_elbow"], J["left_wrist"]
    kp[elb] = kp[sho] + (0, 0.99 * UPPER_ARM * 250)  # l/L = 0.99: in the image plane
    kp[wri] = kp[elb] + (0, 0.5 * FOREARM * 250)     # l/L = 0.5: tilted, sign unknown
    on = sorted(set(PriorConfig().enabled) | {"foreshortening"})
    config = PriorConfig.from_dict({"enabled": on, "foreshortening": {"emit_equal": True}})
    got = labels(apply_priors(table_of((kp, vis)), config).raw["foreshortening"])
    assert got[(0, sho, 0, elb)] == 0
    assert (0, elb, 0, wri) not in got and (0, wri, 0, elb) not in got
    # Off by default: the equal labels are below the precision bar on the audit.
    config = PriorConfig.from_dict({"enabled": on})
    assert labels(apply_priors(table_of((kp, vis)), config).raw["foreshortening"]) == {}


def test_frontal_face_puts_nose_and_eyes_before_the_ears():
    on = PriorConfig.from_dict({"enabled": ["facing"], "facing": {"face_order": True}})
    got = labels(apply_priors(table_of(standing(300, 400, 250)), on).raw["facing"])
    for front in ("nose", "left_eye", "right_eye"):
        for ear in ("left_ear", "right_ear"):
            assert got[(0, J[front], 0, J[ear])] == 1


def test_turned_torso_side_showing_its_ear_is_nearer():
    kp, vis = standing(300, 400, 250)
    mid = kp[J["thorax"]].copy()
    for side in ("left", "right"):  # shoulder line at half its width: turned ~60 deg
        kp[J[f"{side}_shoulder"], 0] = mid[0] + 0.5 * (kp[J[f"{side}_shoulder"], 0] - mid[0])
    vis[J["right_ear"]] = 1  # right ear hidden behind the head: the left side faces us
    vis[J["nose"]] = 1
    on = sorted(set(PriorConfig().enabled) | {"foreshortening", "facing"})
    res = apply_priors(table_of((kp, vis)), PriorConfig.from_dict({"enabled": on}))
    face = labels(res.raw["facing"])
    assert face[(0, J["left_shoulder"], 0, J["right_shoulder"])] == 1
    fs = labels(res.raw["foreshortening"])
    assert fs[(0, J["left_shoulder"], 0, J["right_shoulder"])] == 1  # signed by facing
    merged = labels(res.pairs)
    assert merged[(0, J["left_shoulder"], 0, J["right_shoulder"])] == 1


def test_hidden_wrist_on_another_persons_thigh_is_behind_it():
    front = standing(300, 450, 300)
    kp, vis = standing(420, 400, 250)
    thigh_mid = 0.5 * (front[0][J["left_hip"]] + front[0][J["left_knee"]])
    kp[J["right_wrist"]] = thigh_mid + (1.0, 0.0)
    vis[J["right_wrist"]] = 1
    got = labels(apply_priors(table_of(front, (kp, vis))).raw["occlusion"])
    assert got[(0, J["left_hip"], 1, J["right_wrist"])] == 1
    assert got[(0, J["left_knee"], 1, J["right_wrist"])] == 1


def test_hidden_joint_away_from_every_body_part_gives_no_occlusion_label():
    kp, vis = standing(300, 400, 250)
    vis[J["left_wrist"]] = 1  # hidden, but by nothing we know of
    kp[J["left_wrist"]] += (60.0, 0.0)
    assert labels(apply_priors(table_of((kp, vis))).raw["occlusion"]) == {}


# ------------------------------------------------------------------------------------ combine
def _pairs(rule, rows):
    a = np.array(rows, dtype=float)
    return Pairs.make(rule, a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5])


def test_combine_merges_identical_pairs_and_drops_contradictions():
    p1 = _pairs("foot_contact", [(0, 15, 1, 15, 1, 0.7), (0, 5, 1, 5, 1, 0.7)])
    # Same pair written the other way round (label flipped) merges; (0,5)-(1,5) contradicts.
    p2 = _pairs("person_scale", [(1, 15, 0, 15, -1, 0.9), (1, 5, 0, 5, 1, 0.8)])
    out = combine([p1, p2], num_persons=2)
    assert labels(out.pairs) == {(0, 15, 1, 15): 1}
    assert out.pairs.confidence[0] == pytest.approx(0.9)
    assert out.pairs.rule[0] == RULE_CODE["person_scale"]  # the more confident rule
    assert out.produced[RULE_CODE["foot_contact"]] == 2
    assert out.dropped[RULE_CODE["foot_contact"]] == 1
    assert out.dropped[RULE_CODE["person_scale"]] == 1


def test_combine_drops_ordered_versus_equal():
    p1 = _pairs("foreshortening", [(0, 5, 0, 7, 0, 0.6)])
    p2 = _pairs("occlusion", [(0, 7, 0, 5, 1, 0.75)])
    out = combine([p1, p2], num_persons=1)
    assert len(out.pairs) == 0 and out.dropped.sum() == 2


# --------------------------------------------------------------------- config and vectorising
def test_prior_config_round_trips_through_yaml(tmp_path):
    cfg = PriorConfig.from_dict({"enabled": ["foot_contact", "facing"],
                                 "person_scale": {"min_ratio": 1.8}})
    path = tmp_path / "priors.yaml"
    path.write_text(cfg.to_yaml())
    assert PriorConfig.from_yaml(path) == cfg
    with pytest.raises(ValueError):
        PriorConfig.from_dict({"person_scale": {"min_raito": 1.8}})
    with pytest.raises(ValueError):
        PriorConfig.from_dict({"enabled": ["shadows"]})


def test_shipped_default_yaml_equals_the_built_in_defaults():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "pipelines" / "configs" / "priors_default.yaml"
    assert PriorConfig.from_yaml(path) == PriorConfig()


def _synthetic_table(n_scenes: int, seed: int) -> PersonTable:
    """Persons of synthetic scenes as a COCO reader would give them, plus random noise flags."""
    from mcpc_builder.synth.world import sample_scene

    rng = np.random.default_rng(seed)
    coco = [BODY_POINTS.index(p) for p in COCO17.body_points]
    kps, viss, img = [], [], []
    for i in range(n_scenes):
        scene = sample_scene(rng)
        if not scene.people:
            continue
        uv, _, v = scene.keypoints()
        k, vv, _ = convert(np.round(uv[:, coco]), v[:, coco], COCO17, MCPC21)
        # Extra hidden flags exercise the occlusion and facing branches more often.
        flip = (rng.random(vv.shape) < 0.08) & (vv == 2)
        vv = np.where(flip, 1, vv).astype(np.uint8)
        for j in range(len(k)):
            kps.append(k[j])
            viss.append(vv[j])
            img.append(i)
    n = len(kps)
    _, image_index = np.unique(img, return_inverse=True)
    m = int(image_index.max()) + 1
    return PersonTable("coco", "train", image_index.astype(np.int64),
                       np.array([f"{i}.jpg" for i in range(m)], object),
                       np.full(m, 640, np.int32), np.full(m, 480, np.int32),
                       np.zeros((n, 4), np.float32), np.array(kps, np.float32),
                       np.array(viss, np.uint8), np.arange(n, dtype=np.int64))


@pytest.mark.parametrize("overrides", [{}, {"foreshortening": {"emit_equal": True},
                                            "person_scale": {"min_ratio": 1.5},
                                            "foot_contact": {"within_person": True},
                                            "facing": {"self_occluded_face": False,
                                                       "torso_side_hips": True,
                                                       "face_order": True},
                                            "occlusion": {"face_behind_own_body": True}}])
def test_vectorised_priors_equal_the_per_person_reference(overrides):
    from pipelines.bench.reference_priors import reference_priors

    table = _synthetic_table(120, seed=11)
    # lifting has its own per-person reference test (test_lifting.py); pose_library needs a
    # library (test_pose_library.py).
    enabled = [r for r in RULE_NAMES if r not in ("lifting", "pose_library")]
    config = PriorConfig.from_dict({"enabled": enabled, **overrides})
    res = apply_priors(table, config)
    ref = reference_priors(table, config)
    assert np.allclose(res.scale, ref["scale"], equal_nan=True)
    assert res.grounded.tolist() == ref["grounded"]
    total = 0
    for rule in config.enabled:
        p = res.raw[rule]
        got = sorted(zip(p.person_a.tolist(), p.joint_a.tolist(), p.person_b.tolist(),
                         p.joint_b.tolist(), p.label.tolist(),
                         np.round(p.confidence.astype(float), 4).tolist()))
        want = sorted((a, b, c, d, e, round(float(np.float32(f)), 4))
                      for a, b, c, d, e, f in ref["raw"][rule])
        assert got == want, rule
        total += len(got)
    assert total > 1000  # the scenes really exercised the rules
    assert canonical_labels(res.pairs) == ref["merged"]


def test_disabled_rules_are_measured_but_never_merged():
    near, far = standing(200, 450, 300), standing(450, 300, 100)
    config = PriorConfig.from_dict({"enabled": ["facing"], "facing": {"face_order": True}})
    res = apply_priors(table_of(near, far), config, evaluate_disabled=True)
    assert len(res.raw["foot_contact"]) > 0 and len(res.raw["person_scale"]) > 0
    assert set(res.pairs.rule.tolist()) == {RULE_CODE["facing"]}
    assert res.produced[RULE_CODE["foot_contact"]] == 0
