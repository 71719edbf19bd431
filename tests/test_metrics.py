"""Metrics on hand-computed cases (dataset-formats.md §4.4, §5)."""

import numpy as np
import pytest

from mcpc_builder import joints
from wsp_model import metrics

# A chiral (non-planar) 4-joint skeleton, mm; joint 0 is the root.
SKEL = np.array([[0, 0, 0], [100, 0, 0], [0, 200, 0], [0, 0, 300]], dtype=np.float64)


def _rot_z(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def test_mpjpe_of_known_offset_on_one_joint():
    gt = SKEL[None]
    pred = gt.copy()
    pred[0, 1] += [30, 40, 0]  # one joint 50 mm off, 3 exact
    assert metrics.mpjpe(pred, gt) == pytest.approx(50 / 4)
    np.testing.assert_allclose(metrics.mpjpe_errors(pred, gt)[0], [0, 50, 0, 0])


def test_mpjpe_ignores_global_translation_through_root():
    gt = SKEL[None]
    pred = gt + np.array([1000.0, -500.0, 20.0])
    assert metrics.mpjpe(pred, gt) == pytest.approx(0.0)
    # without root alignment the whole 1118 mm offset shows
    assert metrics.mpjpe(pred, gt, root=None) == pytest.approx(np.sqrt(1000**2 + 500**2 + 20**2))


def test_root_offset_counts_on_every_other_joint():
    gt = SKEL[None]
    pred = gt.copy()
    pred[0, 0] += [0, 0, 80]  # only the root moves: after root alignment the other 3 are 80 off
    assert metrics.mpjpe(pred, gt) == pytest.approx(3 * 80 / 4)


def test_pa_mpjpe_zero_for_rotated_scaled_translated_copy_but_mpjpe_not():
    gt = SKEL[None]
    pred = (0.5 * SKEL @ _rot_z(90).T + [10, 20, 30])[None]
    assert metrics.pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-9)
    assert metrics.mpjpe(pred, gt) > 100
    np.testing.assert_allclose(metrics.procrustes_align(pred, gt), gt, atol=1e-9)


def test_pa_mpjpe_refuses_reflection_of_chiral_skeleton():
    gt = SKEL[None]
    mirrored = gt * np.array([-1.0, 1.0, 1.0])  # a mirror image is no rotation of a chiral set
    assert metrics.pa_mpjpe(mirrored, gt) > 10.0
    aligned = metrics.procrustes_align(mirrored, gt)[0]
    # the fitted map is a proper rotation: the aligned set keeps the mirror's handedness
    c = aligned - aligned.mean(0)
    assert np.linalg.det(c[1:] - c[0]) * np.linalg.det((SKEL - SKEL.mean(0))[1:] - (SKEL - SKEL.mean(0))[0]) < 0


def test_pa_mpjpe_of_planar_mirror_is_zero():
    # a planar set's mirror image *is* a rotation (turn it over), so PA finds it
    plane = np.array([[0, 0, 0], [100, 0, 0], [0, 200, 0], [50, 80, 0]], dtype=np.float64)[None]
    assert metrics.pa_mpjpe(plane * [-1, 1, 1], plane) == pytest.approx(0.0, abs=1e-7)


def test_n_mpjpe_removes_scale_only():
    gt = SKEL[None]
    assert metrics.n_mpjpe(2.0 * gt, gt) == pytest.approx(0.0, abs=1e-9)
    assert metrics.mpjpe(2.0 * gt, gt) == pytest.approx((100 + 200 + 300) / 4)
    rotated = (SKEL @ _rot_z(180).T)[None]
    assert metrics.n_mpjpe(rotated, gt) > 50


def test_pck_is_strict_and_uses_only_the_14_official_joints():
    err = np.zeros((2, 17))
    err[:, :14] = 100.0
    err[0, 3] = 150.0       # exactly at the threshold: wrong (strict <)
    err[:, 14:] = 1000.0    # pelvis, spine, head: excluded from the total
    assert metrics.pck(err, 150, joints.MPI3DHP_PCK_JOINTS) == pytest.approx(100 * 27 / 28)
    assert metrics.pck(err, 150) == pytest.approx(100 * 27 / 34)


def test_auc_over_31_thresholds():
    # every joint 12 mm off: correct for thresholds 15..150 (28 of 31), not for 0, 5, 10
    err = np.full((3, 17), 12.0)
    assert metrics.auc(err, joints.MPI3DHP_PCK_JOINTS) == pytest.approx(100 * 28 / 31)
    # error 0 is still not < 0: the first threshold never counts
    assert metrics.auc(np.zeros((1, 17))) == pytest.approx(100 * 30 / 31)
    assert len(metrics.AUC_THRESHOLDS_MM) == 31


def test_action_wise_mean_differs_from_frame_pooled():
    gt = np.repeat(SKEL[None], 4, axis=0)
    pred = gt.copy()
    pred[:3, 1] += [40, 0, 0]   # 3 "Walking" frames: 10 mm per frame mean
    pred[3, 1] += [200, 0, 0]   # 1 "Eating" frame: 50 mm
    report = metrics.summarize_h36m(pred, gt, ["Walking"] * 3 + ["Eating"], ["a", "b", "c", "d"])
    assert report["mpjpe"]["frame_pooled"] == pytest.approx((3 * 10 + 50) / 4)
    assert report["mpjpe"]["action_wise"] == pytest.approx((10 + 50) / 2)
    assert report["mpjpe"]["per_action"] == pytest.approx({"Eating": 50.0, "Walking": 10.0})
    assert report["mpjpe"]["per_joint"]["b"] == pytest.approx((3 * 40 + 200) / 4)
    assert report["mpjpe"]["per_joint"]["a"] == 0.0


def test_summarize_3dhp_root_relative_pck_auc_mpjpe():
    gt = np.zeros((2, 17, 3))
    gt[:, :, 2] = np.arange(17) * 10.0
    pred = gt + 5000.0          # global offset vanishes at the pelvis
    pred[0, 0, 0] += 200.0      # head top 200 mm off in frame 0 (seq TS1)
    rep = metrics.summarize_3dhp(pred, gt, ["TS1", "TS2"], joints.MPI3DHP17.joint_names,
                                 joints.MPI3DHP_PCK_JOINTS, joints.MPI3DHP_ROOT)
    assert rep["pck150"] == pytest.approx(100 * 27 / 28)
    assert rep["mpjpe"] == pytest.approx(200 / 34)
    assert rep["per_group"]["TS2"]["pck150"] == 100.0
    assert rep["per_group"]["TS1"]["mpjpe"] == pytest.approx(200 / 17)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        metrics.mpjpe(np.zeros((1, 17, 3)), np.zeros((1, 16, 3)))


def test_depth_order_counts_pairs_apart_in_truth_ordered_the_same_way():
    gt = np.array([[[0, 0, 0.0], [0, 0, 100.0], [0, 0, 120.0]]])   # pairs: 100, 120, 20 mm
    same = metrics.depth_order(gt.copy(), gt)
    assert same == 1.0
    flipped = gt.copy()
    flipped[..., 2] *= -1
    assert metrics.depth_order(flipped, gt) == 0.0
    # (0,1) right, (0,2) wrong; (1,2) is 20 mm apart and not counted
    pred = np.array([[[0, 0, 0.0], [0, 0, 50.0], [0, 0, -10.0]]])
    assert metrics.depth_order(pred, gt) == 0.5
    # a flat prediction orders nothing (ties are wrong)
    assert metrics.depth_order(np.zeros_like(gt), gt) == 0.0


def test_error_split_separates_image_plane_from_depth_error_after_root_alignment():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(5, 17, 3)) * 300.0
    pred = gt.copy()
    pred[:, 1:, 2] += 40.0                       # depth wrong by 40 mm on every non-root joint
    pred += np.array([500.0, -200.0, 900.0])     # a global shift the root alignment removes
    split = metrics.error_split(pred, gt, root=0)
    assert split["xy"] == pytest.approx(0.0, abs=1e-9)
    assert split["depth"] == pytest.approx(40.0 * 16 / 17)
    pred[:, 3, 0] += 170.0
    assert metrics.error_split(pred, gt, root=0)["xy"] == pytest.approx(170.0 / 17)
