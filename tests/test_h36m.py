"""Human3.6M readers on the synthetic release (dataset-formats.md §3)."""

import json
import shutil

import cv2
import numpy as np
import pytest

from mcpc_builder import joints
from mcpc_builder.errors import DataError
from mcpc_builder.synth import h36m_format
from wsp_model import camera, h36m


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("h36m")
    return h36m_format.write(out, seed=3, n_frames=2, subjects=(1, 9, 11))


def test_vp3d_2d_is_the_distorted_projection_of_the_3d(root):
    frames = h36m.read_vp3d(root, subjects=(1, 9))
    for ci in range(4):
        sel = (frames.subject == 9) & (frames.camera == ci)
        cam = frames.cameras[(9, ci)]
        uv = cam.project(frames.joints_cam[sel])
        np.testing.assert_allclose(uv, frames.joints_2d[sel], atol=1e-3)
        pinhole = camera.project_pinhole(frames.joints_cam[sel], cam.f, cam.c)
        assert np.abs(pinhole - frames.joints_2d[sel]).max() > 0.2  # the distortion matters


def test_vp3d_and_mks0601_and_martinez_cameras_agree(root):
    vp3d = h36m.load_vp3d_cameras(root / "h36m_cameras.json")
    gt = np.load(root / "ground_truth" / "cameras.npz")
    x = np.array([[300.0, -200.0, 1000.0], [0.0, 0.0, 0.0]])
    for subject in (1, 9, 11):
        mks = h36m.load_mks0601_cameras(root / f"annotations/Human36M_subject{subject}_camera.json", subject)
        for ci in range(4):
            r_gt, c_gt = gt[f"S{subject}/{ci}/R"], gt[f"S{subject}/{ci}/C"] * 1000
            r_m, c_m = camera.extrinsics_from_martinez(r_gt, c_gt)
            expected = camera.world_to_camera(x, r_m, c_m)
            np.testing.assert_allclose(vp3d[(subject, ci)].world_to_camera(x), expected, atol=1e-6)
            np.testing.assert_allclose(mks[(subject, ci)].world_to_camera(x), expected, atol=1e-3)
            # VP3D stores tangential distortion swapped: the reader restores [p1, p2]
            np.testing.assert_allclose(vp3d[(subject, ci)].p, gt[f"S{subject}/{ci}/p"])


def test_readers_keep_the_subjects_right_side_at_1_3_and_14_16(root):
    world = np.load(root / "ground_truth" / "joints_world.npz")["S9/14/1"] * 1000  # Walking 1
    frames = h36m.read_mks0601(root, subjects=(9,))
    sel = (frames.sequence == "s_09_act_14_subact_01_ca_02")
    cam = frames.cameras[(9, 1)]
    body = {p: cam.world_to_camera(world[:, joints.BODY_POINTS.index(p)])
            for p in ("right_hip", "right_ankle", "left_shoulder", "right_wrist")}
    got = frames.joints_cam[sel]
    np.testing.assert_allclose(got[:, 1], body["right_hip"], atol=0.01)
    np.testing.assert_allclose(got[:, 3], body["right_ankle"], atol=0.01)
    np.testing.assert_allclose(got[:, 11], body["left_shoulder"], atol=0.01)
    np.testing.assert_allclose(got[:, 16], body["right_wrist"], atol=0.01)
    vp = h36m.read_vp3d(root, subjects=(9,))
    vsel = (vp.sequence == "Walking 1") & (vp.camera == 1)
    np.testing.assert_allclose(vp.joints_cam[vsel], got, atol=0.01)


def test_corrupt_s11_directions_is_dropped_by_both_readers(root):
    vp = h36m.read_vp3d(root, subjects=(11,))
    assert "Directions" not in set(vp.sequence) and "Directions 1" in set(vp.sequence)
    assert vp.skipped["corrupt S11 Directions"] == 1
    mks = h36m.read_mks0601(root, subjects=(11,))
    assert "s_11_act_02_subact_02_ca_01" not in set(mks.sequence)
    assert "s_11_act_02_subact_02_ca_02" in set(mks.sequence)
    bad = root / "images/s_11_act_02_subact_02_ca_01/s_11_act_02_subact_02_ca_01_000001.jpg"
    assert not bad.read_bytes().endswith(b"\xff\xd9")  # truncated: no JPEG end-of-image marker
    assert all((root / p).read_bytes().endswith(b"\xff\xd9") for p in mks.image_paths[:8])
    assert cv2.imread(str(root / mks.image_paths[0])) is not None


def test_action_names_are_canonical_and_prefixes_do_not_merge(root):
    vp = h36m.read_vp3d(root, subjects=(1,))
    assert "TakingPhoto 1" in set(vp.sequence) and "WalkingDog" in set(vp.sequence)
    assert set(vp.action) == {"Directions", "Sitting", "SittingDown", "Photo", "Walking", "WalkDog"}
    counts = {a: int((vp.action == a).sum()) for a in set(vp.action)}
    assert counts["Sitting"] == counts["SittingDown"] == counts["Walking"] == counts["WalkDog"]
    assert h36m.canonical_action("Eating 2") == "Eating"
    with pytest.raises(ValueError):
        h36m.canonical_action("Dancing 1")


def test_standard_split_and_frame_paths(root):
    test = h36m.read_h36m(root, "test")
    assert set(test.subject.tolist()) == {9, 11}
    assert test.image_paths[0].startswith("images/s_09_act_02_subact_01_ca_01/")
    assert test.image_paths[0].endswith("_000001.jpg") and test.frame[0] == 0
    assert (test.joints_cam[..., 2] > 1000).all()   # metres of depth in front of every camera


def test_truncated_json_names_the_file(root, tmp_path):
    copy = tmp_path / "h36m"
    shutil.copytree(root / "annotations", copy / "annotations")
    p = copy / "annotations" / "Human36M_subject9_joint_3d.json"
    p.write_text(p.read_text()[:100])
    with pytest.raises(DataError, match="Human36M_subject9_joint_3d.json"):
        h36m.read_mks0601(copy, subjects=(9,))


def test_2d_shorter_than_mocap_is_an_error(root, tmp_path):
    for name in ("data_3d_h36m.npz", "h36m_cameras.json"):
        shutil.copy(root / name, tmp_path / name)
    with np.load(root / "data_2d_h36m_gt.npz", allow_pickle=True) as f:
        pos = f["positions_2d"].item()
        meta = f["metadata"]
    pos["S9"]["Walking 1"][2] = pos["S9"]["Walking 1"][2][:1]
    np.savez(tmp_path / "data_2d_h36m_gt.npz", positions_2d=np.array(pos, dtype=object), metadata=meta)
    with pytest.raises(DataError, match="S9/Walking 1/camera 2"):
        h36m.read_vp3d(tmp_path, subjects=(9,))
