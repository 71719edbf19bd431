"""The opt-in pose-library prior (P6, ``priors.pose_library``): its index, its vote, the torso
filter, its place in ``apply_priors``, the build and the audit, and its errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from mcpc_builder.errors import DataError
from mcpc_builder.joints import MCPC21
from mcpc_builder.persons import PersonTable
from mcpc_builder.priors import apply_priors
from mcpc_builder.priors import pose_library as pl
from mcpc_builder.priors.config import PoseLibraryConfig, PriorConfig
from mcpc_builder.priors.lifting import torso_hypothesis
from mcpc_builder.priors.pairs import RULE_CODE
from mcpc_fixture import one_error_line
from test_synth_worlds import write_library

J = MCPC21.index
SMALL = dict(views=40, seed=3)  # a quick index: 6 poses x 2 (mirrored) x 40 cameras
VOTE = dict(k=10, candidates=100)  # 40 views per pose: k well below it


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return write_library(tmp_path_factory.mktemp("lib") / "lib.npz", n=6, seed=0)


@pytest.fixture(scope="module")
def index(library):
    return pl.load_index(PoseLibraryConfig(path=str(library), **SMALL))


def seen(index_seed: int, library, n_views: int, drop=()):
    """Library poses seen through new cameras (another seed): a PersonTable (one person per
    image, MCPC-21, every flag 2 as an MPII-style source without occlusion flags) and the
    (N, 21) true depths."""
    from mcpc_builder.synth.pose_library import load_pose_library

    lib = load_pose_library(str(library))
    world = lib.joints[:, pl._BODY_ROWS]
    pose = np.repeat(np.arange(len(world)), n_views)
    w = world[pose]
    R, centre, focal = pl.sample_cameras(w[:, J["pelvis"]], np.random.default_rng(index_seed))
    cam = np.einsum("vij,vkj->vki", R, w - centre[:, None])
    uv = focal[:, None, None] * cam[..., :2] / cam[..., 2:] + pl.IMAGE_SIZE / 2
    vis = np.full(uv.shape[:2], 2, np.uint8)
    for name in drop:
        vis[:, J[name]] = 0
        uv[:, J[name]] = np.nan
    n = len(uv)
    lo, hi = np.nanmin(uv, 1), np.nanmax(uv, 1)
    table = PersonTable("mpii", "test", np.arange(n), np.array([f"{i}.jpg" for i in range(n)],
                                                               object),
                        np.full(n, pl.IMAGE_SIZE, np.int32), np.full(n, pl.IMAGE_SIZE, np.int32),
                        np.concatenate([lo, hi - lo], 1).astype(np.float32),
                        uv.astype(np.float32), vis, np.arange(n))
    return table, cam[..., 2]


def precision(pairs, depth, tol=0.05):
    gap = depth[pairs.person_a, pairs.joint_a] - depth[pairs.person_b, pairs.joint_b]
    truth = np.where(gap < -tol, 1, np.where(gap > tol, -1, 0))
    return float((truth == pairs.label).mean())


def test_features_are_translation_and_scale_free_and_need_all_twelve_joints():
    rng = np.random.default_rng(0)
    kp = rng.normal(0, 50, (2, 21, 2))
    f = pl.features(kp)
    assert f.shape == (2, 24) and np.allclose(pl.features(3 * kp + 7.0), f, atol=1e-5)
    kp[1, J["left_knee"]] = np.nan
    assert np.isfinite(pl.features(kp)[0]).all() and np.isnan(pl.features(kp)[1]).all()


def test_mirroring_swaps_sides_and_is_an_involution():
    x = np.random.default_rng(1).normal(size=(3, 21, 3))
    m = pl.mirrored(x)
    assert np.allclose(pl.mirrored(m), x)
    assert np.allclose(m[:, J["left_wrist"], 0], -x[:, J["right_wrist"], 0])
    assert np.allclose(m[:, J["left_wrist"], 1:], x[:, J["right_wrist"], 1:])


def test_index_stores_true_orders_torso_and_groups(index, library):
    assert len(index) == 6 * 2 * SMALL["views"]
    assert index.gap.shape == (len(index), len(pl.PAIR_A)) and index.features.shape[1] == 24
    assert set(index.group) == {"walk", "run", "punch"}  # take numbers dropped
    assert set(np.unique(index.torso)) <= set(range(8))
    # A mirrored pose is stored under its source pose's id.
    assert np.array_equal(np.unique(index.pose), np.arange(6))
    sub = index.subset(index.group != "run")
    assert len(sub) == len(index) * 2 // 3 and "run" not in set(sub.group)


def test_torso_hypothesis_reads_the_three_torso_signs():
    z = np.zeros((2, 21))
    z[1, J["left_hip"]] = 1.0        # hip line +
    z[1, J["left_shoulder"]] = -1.0  # shoulder line -
    # spine: mid-shoulders at -0.5, mid-hips at 0.5: -.
    assert torso_hypothesis(z).tolist() == [0, 0b011]


def _toy_index(gaps, torso=None):
    v = len(gaps)
    gap = np.zeros((v, len(pl.PAIR_A)), np.float16)
    gap[:, 0] = gaps
    feats = np.zeros((v, 24), np.float32)
    feats[:, 0] = np.arange(v)  # view i is at distance i from a query at 0
    return pl.LibraryIndex(feats, gap, np.asarray(torso if torso is not None else [0] * v,
                                                  np.int8), np.array(["a"] * v),
                           np.arange(v), 1.6)


def test_vote_labels_only_what_every_neighbour_agrees_on_and_reports_the_smallest_gap():
    q = np.zeros((1, 24), np.float32)
    cfg = PoseLibraryConfig(path="x", k=3, agreement=1.0, min_gap_m=0.05, candidates=5)
    lab, margin, dist = pl.vote(q, _toy_index([-0.2, -0.1, -0.3, 0.4]), cfg)
    assert lab[0, 0] == 1 and abs(margin[0, 0] - 0.1 / 1.6) < 1e-3  # a closer in all three
    assert abs(dist[0] - 2.0) < 1e-5  # the third neighbour is at distance 2
    lab, _, _ = pl.vote(q, _toy_index([-0.2, -0.1, -0.3, 0.4]),
                        dataclasses.replace(cfg, max_distance=1.5))
    assert not lab.any()  # the library does not cover the query closely enough
    # A scaled distance (features on fewer joints) is what max_distance sees.
    lab, _, dist = pl.vote(q, _toy_index([-0.2, -0.1, -0.3, 0.4]),
                           dataclasses.replace(cfg, max_distance=3.0), distance_scale=2.0)
    assert abs(dist[0] - 4.0) < 1e-5 and not lab.any()
    lab, _, _ = pl.vote(q, _toy_index([-0.2, 0.1, -0.3, -0.4]), cfg)
    assert lab[0, 0] == 0  # one of the three disagrees
    lab, _, _ = pl.vote(q, _toy_index([-0.2, -0.03, -0.3, -0.4]), cfg)
    assert lab[0, 0] == 0  # 3 cm is a tie, not an order
    lab, _, _ = pl.vote(q, _toy_index([-0.2, 0.1, -0.3, -0.4]),
                     dataclasses.replace(cfg, agreement=0.6))
    assert lab[0, 0] == 1  # two of three suffice at 0.6
    assert not lab[0, 1:].any()  # pairs with no gap in any view stay unlabelled


def test_torso_filter_skips_views_lifting_ruled_out_and_falls_back_when_too_few_remain():
    q = np.zeros((1, 24), np.float32)
    cfg = PoseLibraryConfig(path="x", k=2, agreement=1.0, candidates=5)
    idx = _toy_index([0.3, 0.2, -0.2, -0.3, -0.4], torso=[1, 1, 0, 0, 0])
    keep = np.zeros((1, 8), bool)
    keep[0, 0] = True
    assert pl.vote(q, idx, cfg)[0][0, 0] == -1             # nearest two: farther
    assert pl.vote(q, idx, cfg, keep)[0][0, 0] == 1        # torso 1 ruled out: the next two
    keep_one = np.zeros((1, 8), bool)
    keep_one[0, 1] = True
    idx1 = _toy_index([0.3, -0.2, -0.2, -0.3, -0.4], torso=[1, 0, 0, 0, 0])
    # Only one allowed view (fewer than k): the filter is dropped, the nearest two disagree.
    assert pl.vote(q, idx1, cfg, keep_one)[0][0, 0] == 0


def test_library_poses_seen_by_new_cameras_get_right_labels_without_occlusion_flags(library,
                                                                                     index):
    table, depth = seen(11, library, 15)
    cfg = PriorConfig().with_pose_library(library)
    cfg = dataclasses.replace(cfg, pose_library=dataclasses.replace(cfg.pose_library, **SMALL,
                                                                    **VOTE))
    res = apply_priors(table, cfg, library_index=index)
    mine = res.raw["pose_library"]
    assert (mine.person_a == mine.person_b).all() and (mine.rule == RULE_CODE["pose_library"]).all()
    per = np.bincount(mine.person_a, minlength=len(table))
    assert np.median(per) >= 20 and precision(mine, depth) >= 0.95
    assert np.isin(mine.confidence, np.float32([0.97, 0.9])).all()
    assert (mine.margin >= cfg.pose_library.min_gap_m / index.stature - 1e-3).all()
    # The merged labels carry them (lifting and the library agree or both are dropped).
    merged = res.pairs
    assert (merged.rule == RULE_CODE["pose_library"]).sum() > 0.5 * len(mine)


def test_only_labelled_joints_and_only_people_with_min_joints_body_joints(library, index):
    cfg = PoseLibraryConfig(path=str(library), **SMALL, **VOTE, min_joints=12)
    prior_cfg = dataclasses.replace(PriorConfig(), pose_library=cfg)
    table, _ = seen(12, library, 4, drop=("nose",))
    kp = np.asarray(table.keypoints, np.float64)
    labelled = table.visibility > 0
    out = pl.pose_library(kp, labelled, prior_cfg, index=index)
    assert len(out) and not ((out.joint_a == J["nose"]) | (out.joint_b == J["nose"])).any()
    table2, depth2 = seen(12, library, 4, drop=("left_ankle",))
    kp2 = np.asarray(table2.keypoints, np.float64)
    assert len(pl.pose_library(kp2, table2.visibility > 0, prior_cfg, index=index)) == 0
    # With min_joints 11 the person without a left ankle is compared on the 11 joints it has.
    eleven = dataclasses.replace(prior_cfg, pose_library=dataclasses.replace(cfg, min_joints=11))
    part = pl.pose_library(kp2, table2.visibility > 0, eleven, index=index)
    assert len(part) and not ((part.joint_a == J["left_ankle"])
                              | (part.joint_b == J["left_ankle"])).any()
    assert precision(part, depth2) >= 0.9
    assert (np.diff(part.person_a) >= 0).all()  # person-major
    # Without a hip there is no centre: never labelled, whatever min_joints says.
    table3, _ = seen(12, library, 4, drop=("left_hip",))
    three = dataclasses.replace(prior_cfg, pose_library=dataclasses.replace(cfg, min_joints=3))
    assert len(pl.pose_library(np.asarray(table3.keypoints, np.float64),
                               table3.visibility > 0, three, index=index)) == 0


def test_normalised_on_a_subset_ignores_the_missing_joints():
    rng = np.random.default_rng(4)
    pts = rng.normal(0, 40, (3, 12, 2))
    present = np.ones(12, bool)
    present[[0, 11]] = False
    moved = pts.copy()
    moved[:, [0, 11]] += 500.0  # the absent joints may be anywhere (or NaN)
    moved[2, 0] = np.nan
    f = pl.normalised(pts, present)
    assert np.allclose(pl.normalised(moved, present), f)
    assert np.allclose(f.reshape(3, 12, 2)[:, [0, 11]], 0)
    # RMS 1 over the joints it uses; all 12 present is the plain feature.
    assert np.allclose((f.reshape(3, 12, 2)[:, present] ** 2).sum((1, 2)) / 10, 1, atol=1e-5)
    assert np.allclose(pl.normalised(pts, np.ones(12, bool)), pl.normalised(pts), atol=1e-6)


def test_nearest_on_joints_equals_recomputing_the_views_on_each_persons_joints(index):
    """Per-person subsets of joints in one batch give the neighbours (and distances) of the plain
    search against the views' features recomputed on that person's joints."""
    rng = np.random.default_rng(9)
    rows = rng.choice(len(index), 40, replace=False)
    pts = index.points[rows].astype(np.float64) + rng.normal(0, 3.0, (40, 12, 2))
    present = np.ones((40, 12), bool)
    for i in range(40):  # hips always kept; 0-4 other joints dropped
        drop = rng.choice([s for s in range(12) if s not in pl.HIP_SLOTS], rng.integers(0, 5),
                          replace=False)
        present[i, drop] = False
    q = pl.normalised(np.where(present[..., None], pts, np.nan), present)
    centred, joint_sq = pl.centred_views(index.points)
    near, dist = pl.nearest_on_joints(q, present, centred, joint_sq, 30)
    for i in range(40):
        views = pl.normalised(index.points, present[i])
        ref_near, ref_dist = pl.nearest(q[i:i + 1], views, 30)
        assert np.allclose(dist[i], ref_dist[0], atol=1e-3)
        # The same views but where two lie within rounding of each other.
        assert np.mean(near[i] == ref_near[0]) > 0.9
        assert set(near[i, :25]) <= set(ref_near[0])
    assert dist.shape == (40, 30) and (np.diff(dist, axis=1) >= -1e-4).all()


def test_pose_library_is_off_without_a_library_and_a_config_cannot_enable_it_without_one():
    assert "pose_library" not in PriorConfig().enabled
    with pytest.raises(ValueError, match="pose_library.path"):
        PriorConfig(enabled=("lifting", "pose_library"))
    with pytest.raises(ValueError, match="agreement"):
        PriorConfig(pose_library=PoseLibraryConfig(agreement=0.2))
    cfg = PriorConfig().with_pose_library("lib.npz")
    assert "pose_library" in cfg.enabled and cfg.pose_library.path == "lib.npz"
    assert PriorConfig.from_dict(cfg.to_dict()) == cfg


def test_missing_or_bad_library_is_one_data_error_naming_the_file(tmp_path):
    with pytest.raises(DataError, match="nowhere.npz: pose library not found"):
        pl.load_index(PoseLibraryConfig(path=str(tmp_path / "nowhere.npz")))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="bad.npz"):
        pl.load_index(PoseLibraryConfig(path=str(bad)))
    np.savez(tmp_path / "few.npz", joints=np.zeros((2, 3, 3)), joint_names=np.array(["a", "b", "c"]))
    with pytest.raises(DataError, match="few.npz: pose library: missing joint names"):
        pl.load_index(PoseLibraryConfig(path=str(tmp_path / "few.npz")))
    data = bytearray(write_library(tmp_path / "ok.npz").read_bytes())
    data[200:260] = b"\x00" * 60  # a corrupted member; the zip directory is intact
    (tmp_path / "crc.npz").write_bytes(bytes(data))
    with pytest.raises(DataError, match="crc.npz: pose library: "):
        pl.load_index(PoseLibraryConfig(path=str(tmp_path / "crc.npz")))


def test_build_with_a_pose_library_records_it_and_writes_its_labels(tmp_path, library, capsys):
    import hashlib

    import pyarrow.dataset as ds

    from mcpc_builder.cli import main

    out = tmp_path / "b"
    assert main(["--out", str(out), "--pose-library", str(library), "--quiet"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    lib = m["pose_library"]
    assert lib["sha256"] == hashlib.sha256(library.read_bytes()).hexdigest()
    assert lib["poses"] == 6 and lib["views"] == 6 * 2 * 200
    assert "pose_library" in m["priors_enabled"]
    assert m["labels"]["per_prior"]["pose_library"]["kept_same_person"] > 0
    priors = ds.dataset(out / "pairs", format="parquet").to_table(columns=["prior"])
    assert "pose_library" in set(priors.column("prior").to_pylist())
    # The preview draws them (a colour of their own).
    assert main(["preview", "--build", str(out), "--n", "1", "--out", str(tmp_path / "p")]) == 0
    assert list((tmp_path / "p").glob("*.png"))
    # Another library is another build: the folder is not silently reused.
    other = write_library(tmp_path / "other.npz", n=6, seed=5)
    assert main(["--out", str(out), "--pose-library", str(other), "--quiet"]) == 2
    assert "--overwrite" in one_error_line(capsys, "mcpc-build")
    assert main(["--out", str(tmp_path / "c"), "--pose-library", str(tmp_path / "no.npz"),
                 "--quiet"]) == 2
    assert "no.npz: pose library not found" in one_error_line(capsys, "mcpc-build")
    assert not (tmp_path / "c" / "manifest.json").exists()


def test_audit_refuses_to_score_a_library_on_its_own_poses(tmp_path, library, capsys):
    from mcpc_builder.cli import main

    assert main(["audit", "--out", str(tmp_path / "a"), "--poses", str(library),
                 "--pose-library", str(library), "--n-images", "5"]) == 2
    assert "its own poses" in one_error_line(capsys, "mcpc-build")


@pytest.mark.slow
def test_mocap_harness_holds_each_activity_out_of_the_library():
    """On the real mocap dev set (when it is next to the checkout)."""
    from pipelines.bench import mocap_priors as mp

    if not mp.DEFAULT_POSES.exists():
        pytest.skip("../shared/fixtures/mocap-dev is not next to this checkout")
    cfg = PriorConfig().with_pose_library(mp.DEFAULT_POSES)
    cfg = dataclasses.replace(cfg, pose_library=dataclasses.replace(cfg.pose_library, views=20))
    rep = mp.measure(mp.DEFAULT_POSES, n_views=3, seed=0, config=cfg)
    coco = rep["coco"]["pose_library"]
    assert coco["people"] == 123 * 3 and coco["labels"] > 0 and coco["precision"] > 0.9
    # The held-out vote is not the library recognising its own poses: with every activity in
    # the library the same views get more labels.
    table, _, activity, _ = mp.views(mp.DEFAULT_POSES, 3, 0, "coco")
    held = mp._priors_holding_out(table, activity, cfg, mp.DEFAULT_POSES).raw["pose_library"]
    full = apply_priors(table, cfg, evaluate_disabled=True).raw["pose_library"]
    assert len(held) == coco["labels"] and len(full) > 1.2 * len(held)


@pytest.mark.parametrize("v, count", [(50, 7), (20000, 40), (20000, 400)])
def test_smallest_is_an_exact_sorted_selection_with_ties_to_the_lower_column(v, count):
    rng = np.random.default_rng(v + count)
    d = rng.normal(size=(64, v)).astype(np.float32)
    d[:, ::97] = np.round(d[:, ::97], 1)  # ties
    d[5] = 1.0                             # a row of ties only: the threshold path falls back
    d[6, :count] = -5.0
    want = np.lexsort((np.tile(np.arange(v), (64, 1)), d), axis=1)[:, :count]
    assert np.array_equal(pl.smallest(d, count), want)


def test_library_size_subsets_are_seeded_per_pose_cuts_a_library_still_loads(tmp_path):
    from mcpc_builder.synth.pose_library import load_pose_library
    from pipelines.bench.library_size import library_subset

    full = write_library(tmp_path / "lib.npz", n=12)
    for d in "abc":
        (tmp_path / d).mkdir()
    path, poses, activities = library_subset(full, 0.5, 0, tmp_path / "a")
    again, _, _ = library_subset(full, 0.5, 0, tmp_path / "b")
    assert poses == 6 and 1 <= activities <= 3
    lib, sub = load_pose_library(full), load_pose_library(path)
    assert np.array_equal(sub.joints, load_pose_library(again).joints)   # same seed, same poses
    rows = [int(np.flatnonzero((lib.joints == j).all((1, 2)))[0]) for j in sub.joints]
    assert rows == sorted(rows) and len(set(rows)) == 6                   # library order, no repeat
    assert list(sub.activity) == [lib.activity[r] for r in rows]
    other, _, _ = library_subset(full, 0.5, 1, tmp_path / "c")
    assert not np.array_equal(load_pose_library(other).joints, sub.joints)
