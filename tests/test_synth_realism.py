"""Realism of the dev / held_out worlds: gait, bodies, annotator, chairs, uneven ground."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcpc_builder.synth import annotator as ann
from mcpc_builder.synth.anthropometry import sample_body_anthropometric
from mcpc_builder.synth.body import J, body_lowest_point, forward_kinematics, sample_body
from mcpc_builder.synth.gait import gait_angles
from mcpc_builder.synth.ground import GroundConfig
from mcpc_builder.synth.person import Realism, build_person
from mcpc_builder.synth.scene import sample_scene
from mcpc_builder.synth.visibility import visibility, visibility_with_causes
from mcpc_builder.synth.worlds import WorldConfig

ADULT = sample_body(np.random.default_rng(0), 1.75, False)


def _walker(phase: float, running: bool = False):
    """Heights (m) above the ground of the left heel, left toe, both ankles at a gait phase."""
    ang, _, lift = gait_angles(np.random.default_rng(1), running, phase)
    joints, body = forward_kinematics(ADULT, ang.clamped())
    up = -body_lowest_point(body) + lift * ADULT.height
    foot = {p.part: p for p in body if p.part.endswith("_foot")}

    def low(p, end):
        return float(getattr(p, end)[2] - p.radius + up)

    return {"l_heel": low(foot["left_foot"], "a"), "l_toe": low(foot["left_foot"], "b"),
            "r_sole": min(low(foot["right_foot"], "a"), low(foot["right_foot"], "b")),
            "l_sole": min(low(foot["left_foot"], "a"), low(foot["left_foot"], "b")),
            "l_ankle": float(joints[J["left_ankle"], 2] + up),
            "r_ankle": float(joints[J["right_ankle"], 2] + up)}


def test_walking_heel_strikes_then_rises_then_toes_off():
    strike = _walker(0.05)
    assert strike["l_heel"] < strike["l_toe"] and strike["l_heel"] < 0.04   # heel first
    flat = _walker(0.25)
    assert max(flat["l_heel"], flat["l_toe"]) < 0.02                         # foot flat
    toe_off = _walker(0.62)
    assert toe_off["l_toe"] < 0.01 and toe_off["l_heel"] > 0.10             # heel lifted


def test_walking_lifts_the_swing_foot_with_small_toe_clearance():
    swing = [_walker(p) for p in np.arange(0.66, 0.86, 0.02)]
    # The swing ankle rides well above the stance ankle; the toe just clears the ground.
    assert max(s["l_ankle"] - s["r_ankle"] for s in swing) > 0.08
    assert min(s["l_sole"] for s in swing) < 0.03
    assert all(s["l_sole"] > -1e-9 for s in swing)
    assert min(s["r_sole"] for s in swing) < 1e-6                           # stance foot down


def test_running_has_flight_phases_with_both_feet_off_the_ground():
    for phase in (0.45, 0.95):
        s = _walker(phase, running=True)
        assert min(s["l_sole"], s["r_sole"]) > 0.05
    stance = _walker(0.2, running=True)
    assert min(stance["l_sole"], stance["r_sole"]) < 1e-6


def _ratios(sampler, n=400, **kw):
    rng = np.random.default_rng(3)
    shapes = [sampler(rng, 1.75, False, **kw) for _ in range(n)]
    h = np.array([s.height for s in shapes])
    return {k: np.array([getattr(s, k) for s in shapes]) / h
            for k in ("thigh", "shank", "torso", "upper_arm", "shoulder_half_width",
                      "torso_width")}


def test_anthropometric_segments_vary_independently_with_published_spreads():
    anth = _ratios(sample_body_anthropometric)
    fixed = _ratios(lambda rng, h, c: sample_body(rng, h, c))
    cv = {k: v.std() / v.mean() for k, v in anth.items()}
    assert 0.02 < cv["thigh"] < 0.045 and 0.02 < cv["upper_arm"] < 0.045
    assert 0.04 < cv["shoulder_half_width"] < 0.075
    # Thigh and shank no longer move together (the fixed model splits one leg length).
    assert abs(np.corrcoef(anth["thigh"], anth["shank"])[0, 1]) < 0.3
    assert np.corrcoef(fixed["thigh"], fixed["shank"])[0, 1] < -0.5
    # Published means: thigh 0.245 H, upper arm 0.186 H (Drillis & Contini).
    assert abs(anth["thigh"].mean() - 0.245) < 0.01
    assert abs(anth["upper_arm"].mean() - 0.186) < 0.01
    wide = _ratios(sample_body_anthropometric, breadth_spread=1.5)
    assert wide["torso_width"].std() > 1.3 * anth["torso_width"].std()


def test_children_have_larger_heads_and_shorter_legs():
    rng = np.random.default_rng(4)
    kids = [sample_body_anthropometric(rng, 1.0, True) for _ in range(200)]
    adults = [sample_body_anthropometric(rng, 1.75, False) for _ in range(200)]
    head = [np.mean([s.head / s.height for s in g]) for g in (kids, adults)]
    leg = [np.mean([(s.thigh + s.shank + s.ankle_height) / s.height for s in g])
           for g in (kids, adults)]
    assert head[0] > head[1] + 0.04 and leg[0] < leg[1] - 0.04


def test_click_noise_matches_coco_oks_sigmas():
    area = 10000.0  # pixels^2: s = 100 px
    cfg = ann.AnnotatorConfig(noise_scale=1.0)
    rng = np.random.default_rng(5)
    uv = np.zeros((22, 2))
    vis = np.full(22, 2, np.uint8)
    clicks = np.stack([ann.annotate(rng, uv, vis, np.zeros(22, bool), area, cfg)[0]
                       for _ in range(3000)])
    # COCO: sigma_i^2 = E[d_i^2 / s^2], d the 2D distance -> per axis sigma_i * s / sqrt(2).
    d2 = (clicks ** 2).sum(-1).mean(0) / area
    for name in ("nose", "left_ear", "left_shoulder", "right_hip", "left_ankle"):
        i = ann.BODY_POINTS.index(name)
        assert math.sqrt(d2[i]) == pytest.approx(ann.COCO_OKS_SIGMAS[name], rel=0.05)


def test_visibility_errors_happen_at_the_configured_rates():
    cfg = ann.AnnotatorConfig(self_hidden_marked_visible=0.4, other_hidden_marked_visible=0.1,
                              visible_marked_hidden=0.05, hidden_face_unlabelled=0.0)
    rng = np.random.default_rng(6)
    n = 4000
    vis = np.array([2] * 8 + [1] * 14, np.uint8)
    self_only = np.array([False] * 8 + [True] * 7 + [False] * 7)
    out = np.stack([ann.annotate(rng, np.zeros((22, 2)), vis, self_only, 5000.0, cfg)[1]
                    for _ in range(n)])
    assert (out[:, :8] == 1).mean() == pytest.approx(0.05, abs=0.01)
    assert (out[:, 8:15] == 2).mean() == pytest.approx(0.4, abs=0.02)
    assert (out[:, 15:] == 2).mean() == pytest.approx(0.1, abs=0.015)
    # The exact annotator returns the world's flags and positions untouched.
    exact = ann.annotate(rng, np.ones((22, 2)), vis, self_only, 5000.0, ann.AnnotatorConfig())
    assert (exact[1] == vis).all() and (exact[0] == 1).all()


def test_hidden_face_points_are_left_unlabelled():
    cfg = ann.AnnotatorConfig(hidden_face_unlabelled=1.0)
    vis = np.full(22, 1, np.uint8)
    out = ann.annotate(np.random.default_rng(7), np.zeros((22, 2)), vis, np.ones(22, bool),
                       5000.0, cfg)[1]
    assert (out[ann.FACE] == 0).all() and (out[~ann.FACE] == 1).all()


def test_self_occlusion_is_told_apart_from_occlusion_by_others():
    rng = np.random.default_rng(8)
    seen_self = seen_other = 0
    for _ in range(6):
        scene = sample_scene(rng, WorldConfig(), n_people=3)
        vis, self_only = visibility_with_causes(scene)
        assert (vis == visibility(scene)).all()
        assert not (self_only & (vis != 1)).any()
        seen_self += int(self_only.sum())
        seen_other += int(((vis == 1) & ~self_only).sum())
    assert seen_self > 0 and seen_other > 0


def test_seated_people_sit_on_a_chair_above_the_ground():
    rng = np.random.default_rng(9)
    realism = Realism(seating="chair")
    for k in range(12):
        height = 1.1 if k % 3 == 0 else 1.8
        p = build_person(rng, "sitting", height, k % 3 == 0, rng.uniform(-3, 3), np.zeros(2),
                         realism)
        furniture = [q for q in p.body if q.part == "seat"]
        assert len(furniture) == 6                       # seat, backrest, four legs
        seat = furniture[0]
        seat_top = seat.centre[2] + seat.semi[2]
        assert 0.40 < seat_top < 0.75                    # an ordinary chair (raised for long legs)
        assert p.joints_world[J["pelvis"], 2] > seat_top  # the hips are carried by the seat
        assert body_lowest_point([q for q in p.body if q.part != "seat"]) > -1e-9


def test_chairs_hide_joints_behind_them():
    cfg = WorldConfig(seating="chair", pose_weights=(("sitting", 1.0),))
    hidden_by_furniture = 0
    for seed in range(10):
        scene = sample_scene(np.random.default_rng(seed), cfg, n_people=1)
        vis, self_only = visibility_with_causes(scene)
        hidden_by_furniture += int(((vis == 1) & ~self_only).sum())
    assert hidden_by_furniture > 0


def test_uneven_ground_puts_people_at_different_heights():
    cfg = WorldConfig(ground=GroundConfig(step_probability=1.0, step_height=(0.3, 0.3),
                                          step_offset=(0.0, 0.0)),
                      pose_weights=(("standing", 1.0),))
    two_levels = 0
    for seed in range(8):
        scene = sample_scene(np.random.default_rng(seed), cfg, n_people=4)
        ground = scene.ground
        assert abs(ground.step_height) == pytest.approx(0.3)
        levels = set()
        for p in scene.people:
            under = float(ground.height(p.joints_world[J["pelvis"], :2]))
            # Standing on the ground under them: the lowest body point is on that level.
            assert body_lowest_point(p.body) == pytest.approx(under, abs=1e-9)
            levels.add(round(under, 3))
        assert len(levels) <= 2
        two_levels += len(levels) == 2
        cam_ground = float(ground.height(np.zeros(2)))
        assert scene.camera.centre[2] - cam_ground >= 0.5 - 1e-9
    assert two_levels >= 2


def test_slopes_tilt_the_ground_within_the_configured_angle_and_rise():
    cfg = WorldConfig(ground=GroundConfig(slope_probability=1.0, max_slope=8.0, slope_rise=0.5))
    grounds = [sample_scene(np.random.default_rng(s), cfg).ground for s in range(20)]
    grads = [np.linalg.norm(g.gradient) for g in grounds]
    assert max(grads) <= math.tan(math.radians(8.0)) + 1e-12 and np.mean(grads) > 0.02
    far = np.array([[100.0, 0.0], [0.0, 100.0], [-100.0, -100.0]])
    assert all(np.abs(g.height(far)).max() <= 0.5 + 1e-12 for g in grounds)


def test_ground_rays_hit_the_height_field():
    from mcpc_builder.synth.ground import Ground, ray_entry

    ground = Ground(np.zeros(2), np.array([0.1, 0.05]), np.array([0.6, 0.8]), 0.3, 0.4, 0.5)
    rng = np.random.default_rng(10)
    C = np.array([-3.0, -4.0, 1.7])
    d = rng.normal(size=(3, 500))
    d[2] = -np.abs(d[2]) - 0.05
    s, riser = ray_entry(ground, C, *d)
    hit = C[:, None] + s * d
    on_top = np.isfinite(s) & ~riser
    assert on_top.sum() > 300
    assert np.allclose(hit[2, on_top], ground.height(hit[:2, on_top].T), atol=1e-9)
    # Nothing on the ray before the hit is under the ground.
    for frac in (0.25, 0.5, 0.9):
        p = C[:, None] + frac * s[on_top] * d[:, on_top]
        assert (p[2] >= ground.height(p[:2].T) - 1e-9).all()


def test_realistic_world_writes_noisy_keypoints_and_exact_ground_truth(tmp_path):
    from mcpc_builder.synth import write_dataset
    from mcpc_builder.synth.worlds import load_world

    out = write_dataset("coco", tmp_path / "coco", seed=3, n_images=8, config=load_world("dev"))
    gt = np.load(out / "ground_truth" / "person_keypoints_train2017.npz")
    keep = gt["iscrowd"] == 0
    annotated, true = gt["visibility"][keep], gt["visibility_true"][keep]
    labelled = annotated.sum(1) > 0
    assert labelled.any()
    assert (annotated[labelled] != true[labelled]).any()   # the annotator erred somewhere
