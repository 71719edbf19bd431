"""The within-person lifting prior on people small enough to reason about, and the vectorised
enumeration against the per-person, per-hypothesis reference."""

from __future__ import annotations

import numpy as np
import pytest

from mcpc_builder.joints import MCPC21
from mcpc_builder.persons import PersonTable
from mcpc_builder.priors import PriorConfig, apply_priors
from mcpc_builder.priors.lifting import lifting
from mcpc_builder.priors.pairs import RULE_CODE
from mcpc_builder.priors.person_scale import person_scale

J = MCPC21.index
H = 300.0  # standing height, pixels


def project(points3d: dict, focal: float = 2000.0, depth: float = 6.0) -> np.ndarray:
    """(21, 2) pixels of body points given in metres (x right, y down, z away from the camera),
    seen from ``depth`` metres; unnamed joints NaN."""
    kp = np.full((21, 2), np.nan)
    for name, (x, y, z) in points3d.items():
        kp[J[name]] = (320 + focal * x / (depth + z), 240 + focal * y / (depth + z))
    return kp


def body(knee_forward: float = 0.0, turn_deg: float = 0.0, face: bool = True) -> dict:
    """A 1.7 m person facing the camera (its left on the image right), standing upright; the
    left thigh raised towards the camera by ``knee_forward`` (0..1 of the thigh), the whole body
    turned by ``turn_deg`` about the vertical (positive: the left side comes closer)."""
    h = 1.7
    p = {}
    for side, s in (("left", 1), ("right", -1)):
        p[f"{side}_shoulder"] = (s * 0.18 * h / 2, -0.818 * h, 0.0)
        p[f"{side}_elbow"] = (s * 0.2 * h / 2, -0.818 * h + 0.186 * h, 0.0)
        p[f"{side}_wrist"] = (s * 0.2 * h / 2, -0.818 * h + 0.332 * h, 0.0)
        p[f"{side}_hip"] = (s * 0.11 * h / 2, -0.53 * h, 0.0)
        p[f"{side}_knee"] = (s * 0.11 * h / 2, -0.53 * h + 0.245 * h, 0.0)
        p[f"{side}_ankle"] = (s * 0.11 * h / 2, -0.039 * h, 0.0)
        if face:
            p[f"{side}_ear"] = (s * 0.044 * h, -0.93 * h, 0.0)
            p[f"{side}_eye"] = (s * 0.019 * h, -0.937 * h, -0.05 * h)
    if face:
        p["nose"] = (0.0, -0.918 * h, -0.066 * h)
    if knee_forward:
        hx, hy, hz = p["left_hip"]
        a = np.arcsin(knee_forward)
        t = 0.245 * h
        p["left_knee"] = (hx, hy + t * np.cos(a), hz - t * np.sin(a))
        p["left_ankle"] = (hx, hy + t * np.cos(a) + 0.246 * h, hz - t * np.sin(a))
    if turn_deg:
        c, s_ = np.cos(np.radians(turn_deg)), np.sin(np.radians(turn_deg))
        p = {k: (x * c + z * s_, y, -x * s_ + z * c) for k, (x, y, z) in p.items()}
    p["pelvis"] = tuple(np.mean([p["left_hip"], p["right_hip"]], axis=0))
    p["thorax"] = tuple(np.mean([p["left_shoulder"], p["right_shoulder"]], axis=0))
    return p


def table_of(*kps, visibility=None) -> PersonTable:
    n = len(kps)
    kp = np.stack(kps).astype(np.float32)
    vis = np.where(np.isfinite(kp).all(-1), 2, 0).astype(np.uint8) if visibility is None \
        else np.asarray(visibility, np.uint8)
    return PersonTable("coco", "val", np.arange(n), np.array([f"{i}.jpg" for i in range(n)],
                                                             object),
                       np.full(n, 640, np.int32), np.full(n, 480, np.int32),
                       np.zeros((n, 4), np.float32), kp, vis, np.arange(n))


def lifted(kp: np.ndarray, visibility=None) -> dict:
    res = apply_priors(table_of(kp, visibility=None if visibility is None else [visibility]))
    p = res.raw["lifting"]
    return {(int(a), int(b)): int(l) for a, b, l in zip(p.joint_a, p.joint_b, p.label)}


def order(got: dict, a: str, b: str):
    """+1 when the prior says a is closer than b, -1 farther, None unlabelled."""
    if (J[a], J[b]) in got:
        return got[J[a], J[b]]
    if (J[b], J[a]) in got:
        return -got[J[b], J[a]]
    return None


def test_thigh_pointing_at_the_camera_puts_the_knee_in_front_of_the_hip():
    # The hip cannot extend the thigh far behind the body of a person facing the camera, so the
    # strongly foreshortened thigh points forwards.
    got = lifted(project(body(knee_forward=0.95)))
    assert order(got, "left_knee", "left_hip") == 1
    assert order(got, "left_knee", "pelvis") == 1


def test_frontal_face_puts_the_nose_in_front_of_the_ears():
    got = lifted(project(body()))
    assert order(got, "nose", "left_ear") == 1
    assert order(got, "nose", "right_ear") == 1


def test_in_plane_person_without_face_gets_no_order_it_cannot_know():
    # Every limb at full length, no face: nothing is in front of anything by more than the margin.
    got = lifted(project(body(face=False)))
    assert got == {}


def test_labels_follow_the_true_depth_of_a_turned_person():
    truth = body(knee_forward=0.95, turn_deg=35)
    got = lifted(project(truth))
    assert len(got) >= 2
    for (a, b), label in got.items():
        za, zb = truth[MCPC21.body_points[a]][2], truth[MCPC21.body_points[b]][2]
        assert label == (1 if za < zb else -1), (MCPC21.body_points[a], MCPC21.body_points[b])


def test_mirror_image_gives_the_mirrored_labels():
    kp = project(body(knee_forward=0.95, turn_deg=20))
    flipped = kp.copy()
    flipped[:, 0] = 640 - flipped[:, 0]
    flipped = flipped[MCPC21.flip_index]  # the person's left becomes their right
    a, b = lifted(kp), lifted(flipped)
    fi = MCPC21.flip_index
    mirrored = {}
    for (x, y), lab in a.items():
        fx, fy = int(fi[x]), int(fi[y])
        mirrored[(fx, fy) if (fx, fy) in b or (fy, fx) not in b else (fy, fx)] = \
            lab if (fx, fy) in b or (fy, fx) not in b else -lab
    assert mirrored == b and len(b) > 0


def test_hidden_ear_is_the_farther_one():
    truth = body(turn_deg=75)  # the left side turned towards the camera: right ear hidden
    vis = np.where(np.isfinite(project(truth)).all(-1), 2, 0)
    vis[J["right_ear"]] = 1
    got = lifted(project(truth), vis)
    assert order(got, "left_ear", "right_ear") == 1


def test_unscaled_person_gets_nothing_and_the_rule_needs_no_flags():
    kp = project(body(knee_forward=0.95))
    lab = np.isfinite(kp).all(-1)
    cfg = PriorConfig()
    pr = lifting(kp[None], lab[None], np.array([np.nan]), cfg)
    assert len(pr) == 0
    s, _ = person_scale(kp[None], lab[None], cfg)
    assert len(lifting(kp[None], lab[None], s, cfg, visibility=None)) > 0


def _random_people(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    kps, viss = [], []
    for _ in range(n):
        b = body(knee_forward=rng.uniform(0, 0.95), turn_deg=rng.uniform(-80, 80),
                 face=bool(rng.random() < 0.8))
        b = {k: (x + rng.normal(0, 0.06), y + rng.normal(0, 0.04), z + rng.normal(0, 0.08))
             for k, (x, y, z) in b.items()}
        kp = project(b, depth=rng.uniform(3, 10))
        kp += rng.normal(0, 1.5, kp.shape)
        vis = np.where(np.isfinite(kp).all(-1), 2, 0)
        vis[(rng.random(21) < 0.15) & (vis == 2)] = 1
        kps.append(kp)
        viss.append(vis)
    return np.array(kps), np.array(viss, np.uint8)


def _scaled_people(n: int, seed: int, overrides: dict):
    """``_random_people`` with unlabelled joints NaN, a config from ``overrides`` and the
    people's scale: (keypoints, visibility, labelled, config, scale)."""
    kp, vis = _random_people(n, seed)
    cfg = PriorConfig.from_dict(overrides)
    lab = vis > 0
    kp = np.where(lab[..., None], kp, np.nan)
    scale, _ = person_scale(kp, lab, cfg)
    return kp, vis, lab, cfg, scale


@pytest.mark.parametrize("overrides", [{}, {"lifting": {"spread": 1.0, "use_visibility": False,
                                                        "min_margin": 0.01}},
                                       {"lifting": {"oks_noise": True, "noise": 0.03}}])
def test_vectorised_lifting_equals_the_per_hypothesis_reference(overrides):
    from pipelines.bench.reference_priors import reference_lifting

    kp, vis, lab, cfg, scale = _scaled_people(40, 3, overrides)
    p = lifting(kp, lab, scale, cfg, vis)
    got = sorted(zip(p.person_a.tolist(), p.joint_a.tolist(), p.person_b.tolist(),
                     p.joint_b.tolist(), p.label.tolist(),
                     np.round(p.confidence.astype(float), 4).tolist()))
    want = sorted((a, b, c, d, e, round(float(np.float32(f)), 4))
                  for a, b, c, d, e, f in reference_lifting(kp, vis, scale, cfg))
    assert got == want
    assert len(got) > 30  # the people really exercised the enumeration


def test_lifting_labels_are_merged_into_the_build_labels():
    res = apply_priors(table_of(project(body(knee_forward=0.95))))
    assert (res.pairs.rule == RULE_CODE["lifting"]).any()


def test_oracle_diagnostic_reproduces_the_prior_and_an_oracle_torso_only_adds(tmp_path):
    # pipelines.bench.lifting_oracle re-derives the prior's labels from its per-hypothesis
    # bounds; its "actual" labels must be exactly the ones lifting() writes.
    from mcpc_builder.audit import depth_lookup, load_ground_truth
    from mcpc_builder.readers.coco import read_coco
    from mcpc_builder.synth import write_dataset
    from mcpc_builder.synth.worlds import load_world
    from pipelines.bench import lifting_oracle

    root = write_dataset("coco", tmp_path / "coco", seed=5, n_images=30, config=load_world("dev"))
    gt = load_ground_truth(root, "coco")
    split = sorted(gt)[0]
    table = read_coco(root / "annotations" / f"person_keypoints_{split}.json", split, root=root)
    kp = np.asarray(table.keypoints, np.float64)
    vis = np.asarray(table.visibility, np.uint8)
    depth = depth_lookup(gt[split], np.asarray(table.source_ann_id))
    cfg = PriorConfig()
    res = lifting_oracle.diagnose(kp, vis, depth, cfg, 0.05)

    labelled = (vis > 0) & np.isfinite(kp).all(-1)
    kp_nan = np.where(labelled[..., None], kp, np.nan)
    scale, _ = person_scale(kp_nan, labelled, cfg)
    many = np.isfinite(scale) & (scale > 0) & (labelled.sum(1) >= lifting_oracle.MIN_JOINTS)
    pairs = lifting(kp_nan[many], labelled[many], scale[many], cfg, vis[many])
    assert res["persons"] == int(many.sum()) > 5
    assert res["actual"]["labels"] == len(pairs.label) > 0
    # the true torso hypothesis is one of the surviving ones nearly always: its bounds are
    # inside the hull over all of them, so it labels at least as many pairs
    assert res["oracle_torso"]["labels"] >= res["actual"]["labels"]
    assert res["true_hypothesis_survives"] > 0.9
    assert sum(res["surviving_torso_hypotheses"]) == res["persons"]


def test_pair_radius_is_the_ordered_sum_over_all_bones():
    """The widening adds only a pair's own bones, which equals the full sum over every bone in
    bone order (the other terms are exact zeros) and the matrix product it replaces."""
    from mcpc_builder.priors.lifting import PAIR_COEF2, pair_radius

    rng = np.random.default_rng(5)
    rad = rng.uniform(0, 40, (30, PAIR_COEF2.shape[1])) ** rng.uniform(0.5, 2, (30, 1))
    rad[rng.random(rad.shape) < 0.2] = 0.0
    pair = rng.integers(0, len(PAIR_COEF2), 500)
    person = rng.integers(0, len(rad), 500)
    want = np.zeros(500)
    for b in range(PAIR_COEF2.shape[1]):
        want = want + rad[person, b] ** 2 * PAIR_COEF2[pair, b]
    got = pair_radius(rad, pair, person, 0.5)
    assert np.array_equal(got, 0.5 * np.sqrt(want))
    np.testing.assert_allclose(got, 0.5 * np.sqrt((rad ** 2) @ PAIR_COEF2.T)[person, pair],
                               rtol=1e-12)


@pytest.mark.parametrize("overrides", [{}, {"lifting": {"spread": 1.0, "min_margin": 0.01,
                                                        "batch": 7}}])
def test_lifting_labels_are_exactly_those_of_the_dense_pair_bounds(overrides):
    """lifting widens only the pairs whose centre bounds clear the margin; its labels, margins
    and order are those of thresholding the dense ``pair_bounds`` of every pair."""
    from mcpc_builder.priors.lifting import PAIR_A, PAIR_B, pair_bounds

    kp, vis, lab, cfg, scale = _scaled_people(60, 11, overrides)
    got = lifting(kp, lab, scale, cfg, vis)
    rows = np.flatnonzero(np.isfinite(scale) & (scale > 0))
    h = scale[rows].astype(np.float64)
    lo, hi, _ = pair_bounds(kp[rows], h, cfg, visibility=vis[rows])
    m = cfg.lifting.min_margin * h[:, None]
    ok = lab[rows][:, PAIR_A] & lab[rows][:, PAIR_B]
    closer, farther = ok & (hi < -m), ok & (lo > m)
    r, p = np.nonzero(closer | farther)
    label = np.where(closer[r, p], 1, -1)
    margin = (np.where(label == 1, -hi[r, p], lo[r, p]) / h[r]).astype(np.float32)
    assert len(got) > 30
    assert np.array_equal(got.person_a, rows[r]) and np.array_equal(got.joint_a, PAIR_A[p])
    assert np.array_equal(got.joint_b, PAIR_B[p]) and np.array_equal(got.label, label)
    assert np.array_equal(got.margin, margin)


def test_oks_noise_shares_the_allowance_by_the_click_spread_of_each_bone():
    from mcpc_builder.priors.lifting import BONE, BONE_NOISE_WEIGHT

    assert abs(BONE_NOISE_WEIGHT.mean() - 1.0) < 1e-12
    # The hips are clicked least precisely (OKS sigma 0.107), the face most (0.025-0.035).
    assert BONE_NOISE_WEIGHT[BONE["hip_line"]] == BONE_NOISE_WEIGHT.max()
    assert BONE_NOISE_WEIGHT[BONE["left_thigh"]] > BONE_NOISE_WEIGHT[BONE["left_forearm"]] \
        > BONE_NOISE_WEIGHT[BONE["nose"]]
    assert BONE_NOISE_WEIGHT[BONE["left_thigh"]] == BONE_NOISE_WEIGHT[BONE["right_thigh"]]
