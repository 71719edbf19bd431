"""Round trip: the synthetic world writes COCO / MPII datasets in the official formats; the
readers must give back the ground-truth projection of every labelled joint, left and right kept."""

import numpy as np
import pytest

from mcpc_builder.joints import COCO17, MCPC21
from mcpc_builder.readers import discover, read_coco, read_mpii_json, read_mpii_mat
from mcpc_builder.synth import write_dataset

# Annotations are integer pixels (rounded, and COCO clips to the last pixel): within 1 px.
ATOL_PX = 1.0
COCO_COLS = [MCPC21.joint(p) for p in COCO17.body_points]


def _project(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(J, 2) pixels of (J, 3) camera-frame points."""
    uvw = X @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    return write_dataset("coco", tmp_path_factory.mktemp("synth-coco"), seed=11, n_images=8)


@pytest.fixture(scope="module")
def mpii_root(tmp_path_factory):
    return write_dataset("mpii", tmp_path_factory.mktemp("synth-mpii"), seed=11, n_images=10)


def test_coco_round_trip_gives_the_true_projection_and_visibility(coco_root):
    checked = 0
    for split, ann_file, image_dir in discover("coco", coco_root):
        table = read_coco(ann_file, split, image_dir)
        gt = np.load(coco_root / "ground_truth" / f"person_keypoints_{split}.npz")
        labelled_gt = (gt["iscrowd"] == 0) & (gt["visibility"][:, COCO_COLS] > 0).any(axis=1)
        assert sorted(table.source_ann_id) == sorted(gt["ann_id"][labelled_gt])
        cam_row = {int(i): k for k, i in enumerate(gt["camera_image_id"])}
        row_of = {int(a): k for k, a in enumerate(gt["ann_id"])}
        for p, ann_id in enumerate(table.source_ann_id):
            g = row_of[int(ann_id)]
            uv = _project(gt["camera_K"][cam_row[int(gt["image_id"][g])]], gt["joints_cam"][g])
            lab = table.visibility[p, COCO_COLS] > 0
            np.testing.assert_array_equal(table.visibility[p, COCO_COLS],
                                          gt["visibility"][g, COCO_COLS])
            np.testing.assert_allclose(table.keypoints[p, COCO_COLS][lab],
                                       uv[COCO_COLS][lab], atol=ATOL_PX)
            checked += int(lab.sum())
    assert checked > 50


def _check_mpii(table, gt, same_visibility: bool) -> int:
    row_of = {int(a): k for k, a in enumerate(gt["ann_id"])}
    checked = 0
    for p, ann_id in enumerate(table.source_ann_id):
        g = row_of[int(ann_id)]
        uv = _project(gt["camera_K"][gt["imgidx"][g]], gt["joints_cam"][g])
        true_vis = gt["visibility"][g]
        native = true_vis > 0  # MPII labels exactly the in-image joints it has
        mpii_cols = native.copy()
        mpii_cols[COCO_COLS[:5]] = False  # nose, eyes, ears: not MPII joints
        assert (table.visibility[p, mpii_cols] > 0).all()
        assert (table.visibility[p, COCO_COLS[:5]] == 0).all()
        np.testing.assert_allclose(table.keypoints[p, mpii_cols], uv[mpii_cols], atol=ATOL_PX)
        if same_visibility:
            np.testing.assert_array_equal(table.visibility[p, mpii_cols], true_vis[mpii_cols])
        else:  # the JSON keeps no occlusion flag
            assert (table.visibility[p, mpii_cols] == 2).all()
        checked += int(mpii_cols.sum())
    return checked


def test_mpii_mat_round_trip_gives_the_true_projection_and_visibility(mpii_root):
    tables = read_mpii_mat(mpii_root / "mpii_human_pose_v1_u12_1.mat")
    gt = np.load(mpii_root / "ground_truth" / "mat.npz")
    assert _check_mpii(tables["train"], gt, same_visibility=True) > 50
    assert tables["test"].skipped["test_split_unlabelled"] > 0 and len(tables["test"]) == 0


@pytest.mark.parametrize("split", ["train", "valid"])
def test_mpii_json_round_trip_gives_the_true_projection(mpii_root, split):
    table = read_mpii_json(mpii_root / "annot" / f"{split}.json", split)
    gt = np.load(mpii_root / "ground_truth" / f"{split}.npz")
    assert len(table) == len(gt["ann_id"])
    assert _check_mpii(table, gt, same_visibility=False) > 10
