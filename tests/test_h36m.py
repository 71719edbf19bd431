"""Human3.6M readers on the synthetic release (dataset-formats.md §3)."""

import json
import shutil

import cv2
import numpy as np
import pytest

from mcpc_builder import joints
from mcpc_builder.errors import DataError
from mcpc_builder.synth import h36m_format
from wsp_model import camera, h36m, pose3d_data


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
    data = h36m.load_object_npz(root / "data_2d_h36m_gt.npz")
    pos, meta = data["positions_2d"], np.array(data["metadata"], dtype=object)
    pos["S9"]["Walking 1"][2] = pos["S9"]["Walking 1"][2][:1]
    np.savez(tmp_path / "data_2d_h36m_gt.npz", positions_2d=np.array(pos, dtype=object), metadata=meta)
    with pytest.raises(DataError, match="S9/Walking 1/camera 2"):
        h36m.read_vp3d(tmp_path, subjects=(9,))


class _Payload:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.path}",))


def test_vp3d_npz_reads_like_numpy_without_allow_pickle(root):
    with np.load(root / "data_3d_h36m.npz", allow_pickle=True) as f:   # the trusted reference
        expected = f["positions_3d"].item()
    got = h36m.load_object_npz(root / "data_3d_h36m.npz")["positions_3d"]
    assert sorted(got) == sorted(expected)
    for s_name in expected:
        for seq, arr in expected[s_name].items():
            assert got[s_name][seq].dtype == arr.dtype and np.array_equal(got[s_name][seq], arr)


def test_a_crafted_vp3d_npz_does_not_run_code(root, tmp_path):
    marker = tmp_path / "pwned"
    for name in ("data_2d_h36m_gt.npz", "h36m_cameras.json"):
        shutil.copy(root / name, tmp_path / name)
    np.savez(tmp_path / "data_3d_h36m.npz",
             positions_3d=np.array({"S9": {"Walking 1": _Payload(marker)}}, dtype=object))
    with pytest.raises(DataError, match=r"data_3d_h36m.npz: positions_3d: refused: refused global "
                                        r"(posix|os)\.system"):
        h36m.read_vp3d(tmp_path, subjects=(9,))
    assert not marker.exists()


def _vp3d_root_with_videos(root, dest, subjects=(9, 11)):
    """A VideoPose3D-style root: the npz files plus official-layout videos made from the
    synthetic mks0601 frames (frame i of the video = mocap frame i)."""
    dest.mkdir()
    for name in ("data_3d_h36m.npz", "data_2d_h36m_gt.npz", "h36m_cameras.json"):
        shutil.copy(root / name, dest / name)
    for subject in subjects:
        for action in h36m_format.RECORDED:
            action_idx = h36m_format.ACTIONS.index(action) + 2
            for sub, seq in zip((1, 2), h36m_format._vp3d_names(subject, action)):
                for ci in range(4):
                    folder = "s_%02d_act_%02d_subact_%02d_ca_%02d" % (subject, action_idx, sub, ci + 1)
                    files = sorted((root / "images" / folder).glob("*.jpg"))
                    first = cv2.imread(str(files[0]))
                    if first is None:   # the truncated corrupt sequence: no video either
                        continue
                    video = h36m.video_path(dest, subject, seq, ci)
                    video.parent.mkdir(parents=True, exist_ok=True)
                    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 50,
                                        (first.shape[1], first.shape[0]))
                    for f in files:
                        w.write(cv2.imread(str(f)))
                    w.release()
    return dest


def test_an_npz_root_without_videos_is_refused_saying_what_to_provide(root, tmp_path):
    for name in ("data_3d_h36m.npz", "data_2d_h36m_gt.npz", "h36m_cameras.json"):
        shutil.copy(root / name, tmp_path / name)
    with pytest.raises(DataError, match=r"holds poses but no images.*S<n>/Videos/<sequence>\."
                                        r"<camera id>\.mp4.*first missing: .*S9/Videos/"):
        pose3d_data.load_records("h36m", tmp_path, "test")
    with pytest.raises(DataError, match="not a Human3.6M root"):
        pose3d_data.load_records("h36m", tmp_path / "nothing", "test")


def test_an_npz_root_with_the_official_videos_gives_frames_and_exact_targets(root, tmp_path):
    vp = _vp3d_root_with_videos(root, tmp_path / "vp3d")
    recs = pose3d_data.load_records("h36m", vp, "test")
    mks = pose3d_data.load_records("h36m", root, "test")
    assert len(recs) == len(mks) - 3 * 2   # S11 "Directions": VP3D drops all 4 cameras, mks0601 1
    assert (vp / "vp3d_frames").is_dir() and all(map(lambda p: cv2.imread(p) is not None,
                                                     recs.image_paths[:8]))
    # Row for row, the decoded frame is the synthetic frame and the 3D target is the same.
    names = [p.split("/")[-1] for p in mks.image_paths]
    for i in (0, 7, len(recs) - 1):
        parts = recs.image_paths[i].split("/")
        subject, (seq, cam_id), f = int(parts[-3][1:]), parts[-2].rsplit(".", 1), int(parts[-1][6:12])
        ci = h36m.CAMERA_IDS.index(cam_id)
        action = h36m.canonical_action(seq)
        sub = h36m_format._vp3d_names(subject, action).index(seq) + 1
        action_idx = h36m_format.ACTIONS.index(action) + 2
        folder = "s_%02d_act_%02d_subact_%02d_ca_%02d" % (subject, action_idx, sub, ci + 1)
        j = names.index(f"{folder}_{f + 1:06d}.jpg")
        np.testing.assert_allclose(recs.joints_cam[i], mks.joints_cam[j], atol=0.5)   # float32 m
        a = cv2.imread(recs.image_paths[i]).astype(float)
        b = cv2.imread(str(mks.image_paths[j])).astype(float)
        h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])   # mp4v: even sizes
        assert np.abs(a[:h, :w] - b[:h, :w]).mean() < 6.0
    # A second load reuses the decoded frames.
    before = {p: (vp / p).stat().st_mtime_ns for p in ["vp3d_frames"]}
    again = pose3d_data.load_records("h36m", vp, "test", every=2)
    assert len(again) < len(recs) and before == {p: (vp / p).stat().st_mtime_ns for p in before}


def test_undistorted_crop_puts_a_joint_at_its_pinhole_target(root):
    frames = h36m.read_vp3d(root, subjects=(9,))
    cam = frames.cameras[(9, 0)]
    x = np.array([0.32 * 1000, -0.28 * 1000, 1000.0])       # far off-axis: distortion is large
    distorted = cam.project(x[None])[0]
    pinhole = camera.project_pinhole(x[None], cam.f, cam.c)[0]
    assert np.linalg.norm(distorted - pinhole) > 3.0
    img = np.zeros((cam.height, cam.width, 3), np.uint8)
    cv2.circle(img, tuple(int(round(v)) for v in distorted), 1, (255, 255, 255), -1)
    box = np.array([pinhole[0], pinhole[1], 40.0])
    crop = pose3d_data.crop_image_undistorted(img, box, 80, cam.f, cam.c, cam.k, cam.p)
    ys, xs = np.nonzero(crop[..., 0] > 60)
    target = pose3d_data.to_crop_normalised(pinhole, box) * 80 - 0.5
    assert np.hypot(xs.mean() - target[0], ys.mean() - target[1]) < 1.0
    plain = pose3d_data.crop_image(img, box, 80)      # no undistortion: the dot is elsewhere
    ys, xs = np.nonzero(plain[..., 0] > 60)
    assert np.hypot(xs.mean() - target[0], ys.mean() - target[1]) > 3.0
    # Without distortion the two crops agree.
    zero = pose3d_data.crop_image_undistorted(img, box, 80, cam.f, cam.c, np.zeros(3), np.zeros(2))
    assert np.abs(zero.astype(int) - plain.astype(int)).max() <= 1


def test_mks0601_crops_take_the_distortion_from_a_vp3d_camera_file_beside_them(root, tmp_path):
    recs = pose3d_data.load_records("h36m", root, "test")
    vp3d = h36m.load_vp3d_cameras(root / "h36m_cameras.json")
    i = int(np.flatnonzero((recs.extra["subject"] == 9))[0])
    np.testing.assert_allclose(recs.extra["k"][i], vp3d[(9, 0)].k)
    bare = tmp_path / "mks"                         # the mks0601 set alone: no distortion known
    shutil.copytree(root / "annotations", bare / "annotations")
    assert not pose3d_data.load_records("h36m", bare, "test").extra["k"].any()
