"""MPII readers on small files written here in the official formats: the RELEASE .mat (scipy
savemat, with its arity and empty-field quirks) and the HRNet converted JSON; image sizes from
real JPEG headers; bad input."""

import json
import logging

import cv2
import numpy as np
import pytest
import scipy.io

from mcpc_builder.errors import DataError
from mcpc_builder.joints import MCPC21, MPII16
from mcpc_builder.readers import discover, read_mpii_json, read_mpii_mat, read_source
from mcpc_builder.readers.jpeg_size import image_size
from mcpc_builder.readers.mpii import BBOX_MARGIN, MIN_BBOX_MARGIN_PX

J = MCPC21.joint
W, H = 200, 150
EMPTY = np.zeros((0, 0))


def _jpeg(path, width=W, height=H):
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", np.full((height, width, 3), 90, np.uint8))
    path.write_bytes(buf.tobytes())


def _structs(records, fields):
    """A 1xN MATLAB struct array (all elements share ``fields``; absent values are [])."""
    arr = np.zeros((1, len(records)), dtype=[(f, object) for f in fields])
    for i, rec in enumerate(records):
        for f in fields:
            arr[0, i][f] = rec.get(f, EMPTY)
    return arr


def _rect(points=None, head=None, scale=1.2, objpos=(60, 80)):
    """One annorect. points: [(id, x, y, is_visible)] 1-based; is_visible may be '1', '' or []."""
    rect = {"scale": scale, "objpos": {"x": objpos[0], "y": objpos[1]}}
    if head is not None:
        rect.update(zip(("x1", "y1", "x2", "y2"), head))
    if points is not None:
        rect["annopoints"] = {"point": _structs(
            [{"id": i, "x": x, "y": y, "is_visible": v} for i, x, y, v in points],
            ["id", "x", "y", "is_visible"])}
    return rect


RECT_FIELDS = ["x1", "y1", "x2", "y2", "scale", "objpos", "annopoints"]
PERSON_A = [(0, 41, 141, 1), (5, 81, 140, 0), (9, 61, 11, "1"), (12, 45, 41, EMPTY),
            (13, 77, 40, 1), (6, 60, 90, "0")]


def _write_mat(root, video_field="vididx"):
    """Six images: several people; one person; a test image; a person without points; nobody;
    a person whose image file is missing."""
    images = [
        ("000000001.jpg", 1, [_rect(PERSON_A, head=(50, 10, 70, 30)),
                              _rect([(8, 150, 50, 1)])], RECT_FIELDS),
        ("000000002.jpg", 1, [_rect([(2, 100, 100, 1), (3, 120, 100, 1)], head=(1, 1, 3, 3))],
         RECT_FIELDS),
        ("000000003.jpg", 0, [{"scale": 2.0, "objpos": {"x": 50, "y": 60}}], ["scale", "objpos"]),
        ("000000004.jpg", 1, [_rect(None)], RECT_FIELDS),
        ("000000005.jpg", 1, [], RECT_FIELDS),
        ("000000006.jpg", 1, [_rect([(7, 20, 20, 1)])], RECT_FIELDS),
    ]
    annolist = _structs(
        [{"image": {"name": name}, "annorect": _structs(rects, fields) if rects else EMPTY,
          "frame_sec": 12, video_field: 3} for name, _, rects, fields in images],
        ["image", "annorect", "frame_sec", video_field])
    release = {"annolist": annolist,
               "img_train": np.array([[t for _, t, _, _ in images]], np.uint8),
               "version": "12",
               "single_person": np.array([[1], [1], [EMPTY], [EMPTY], [EMPTY], [1]], object),
               "act": _structs([{"act_name": "x", "cat_name": "y", "act_id": 1}] * 6,
                               ["act_name", "cat_name", "act_id"]),
               "video_list": np.array([["abc"]], object)}
    root.mkdir(parents=True, exist_ok=True)
    path = root / "mpii_human_pose_v1_u12_1.mat"
    scipy.io.savemat(path, {"RELEASE": release})
    for name, *_ in images[:5]:
        _jpeg(root / "images" / name)
    return path


@pytest.fixture(scope="module")
def mat_tables(tmp_path_factory):
    path = _write_mat(tmp_path_factory.mktemp("mpii"))
    return read_mpii_mat(path)


def test_mat_splits_come_from_img_train(mat_tables):
    assert sorted(mat_tables) == ["test", "train"]
    assert len(mat_tables["test"]) == 0
    assert dict(mat_tables["test"].skipped) == {"test_split_unlabelled": 1}


def test_mat_reads_several_people_one_person_and_a_lone_point(mat_tables):
    train = mat_tables["train"]
    assert train.source_ann_id.tolist() == [0, 1, 100]  # imgidx * 100 + ridx, 0-based
    assert train.image_index.tolist() == [0, 0, 1]
    assert list(train.image_paths) == ["images/000000001.jpg", "images/000000002.jpg"]
    assert train.image_width.tolist() == [W, W] and train.image_height.tolist() == [H, H]
    np.testing.assert_array_equal(train.keypoints[1, J("upper_neck")], [149, 49])
    assert (train.visibility[1] > 0).sum() == 1


def test_mat_coordinates_are_shifted_to_0_based_and_keep_left_and_right(mat_tables):
    kp = mat_tables["train"].keypoints[0]
    np.testing.assert_array_equal(kp[J("right_ankle")], [40, 140])
    np.testing.assert_array_equal(kp[J("left_ankle")], [80, 139])
    np.testing.assert_array_equal(kp[J("right_shoulder")], [44, 40])
    np.testing.assert_array_equal(kp[J("head_top")], [60, 10])
    np.testing.assert_array_equal(kp[J("pelvis")], [59, 89])  # MPII's own pelvis, not mid-hips
    np.testing.assert_array_equal(kp[J("thorax")], [60, 39.5])  # synthesised: mid-shoulders
    assert np.isnan(kp[J("nose")]).all()
    np.testing.assert_array_equal(mat_tables["train"].keypoints[2, J("right_hip")], [99, 99])
    np.testing.assert_array_equal(mat_tables["train"].keypoints[2, J("left_hip")], [119, 99])


def test_mat_visibility_maps_1_to_visible_0_to_occluded_and_unknown_to_visible(mat_tables):
    vis = mat_tables["train"].visibility[0]
    assert vis[J("right_ankle")] == 2      # is_visible 1
    assert vis[J("left_ankle")] == 1       # is_visible 0
    assert vis[J("head_top")] == 2         # is_visible '1' (char)
    assert vis[J("right_shoulder")] == 2   # is_visible [] (unknown)
    assert vis[J("pelvis")] == 1           # is_visible '0' (char)
    assert vis[J("nose")] == 0             # MPII has no nose


def test_mat_bbox_is_joint_extent_with_head_box_plus_margin_clipped(mat_tables):
    # Person A, 0-based: joints x 40..80, y 10..140; head box x 49..69, y 9..29.
    x0, y0, x1, y1 = 40, 9, 80, 140
    m = BBOX_MARGIN * max(x1 - x0, y1 - y0)
    want = [x0 - m, 0.0, (x1 + m) - (x0 - m), H - 0.0]  # top and bottom clipped to the image
    np.testing.assert_allclose(mat_tables["train"].bbox[0], want, rtol=1e-6)
    lone = MIN_BBOX_MARGIN_PX
    np.testing.assert_allclose(mat_tables["train"].bbox[1], [149 - lone, 49 - lone, 2 * lone,
                                                             2 * lone])


def test_mat_counts_people_without_points_images_without_people_and_missing_images(mat_tables):
    train = mat_tables["train"]
    assert dict(train.skipped) == {"no_keypoints": 1, "images_without_people": 1,
                                   "missing_image": 1}
    assert train.persons_read == 5


def test_mat_accepts_vidx_as_well_as_vididx(tmp_path):
    tables = read_mpii_mat(_write_mat(tmp_path, video_field="vidx"))
    assert tables["train"].source_ann_id.tolist() == [0, 1, 100]


def test_mat_missing_image_is_logged_with_file_and_record(tmp_path, caplog):
    path = _write_mat(tmp_path)
    with caplog.at_level(logging.INFO, logger="mcpc_builder.readers"):
        read_mpii_mat(path)
    line = next(r.getMessage() for r in caplog.records if "(missing_image)" in r.getMessage())
    assert str(path) in line and "annolist(6).annorect(1)" in line


def test_mat_duplicate_or_out_of_range_joint_id_is_a_bad_keypoint_count(tmp_path):
    root = tmp_path / "m"
    path = _write_mat(root)
    mat = scipy.io.loadmat(path, struct_as_record=True)
    rel = mat["RELEASE"][0, 0]
    rel["annolist"][0, 1]["annorect"][0, 0]["annopoints"][0, 0]["point"][0, 1]["id"][0, 0] = 2
    scipy.io.savemat(path, {"RELEASE": rel})
    tables = read_mpii_mat(path)
    assert tables["train"].skipped["bad_keypoint_count"] == 1
    assert 100 not in tables["train"].source_ann_id


def test_mat_point_without_coordinates_is_a_missing_field(tmp_path):
    path = _write_mat(tmp_path)
    mat = scipy.io.loadmat(path, struct_as_record=True)
    rel = mat["RELEASE"][0, 0]
    rel["annolist"][0, 0]["annorect"][0, 1]["annopoints"][0, 0]["point"][0, 0]["x"] = EMPTY
    scipy.io.savemat(path, {"RELEASE": rel})
    train = read_mpii_mat(path)["train"]
    assert train.skipped["missing_field"] == 1
    assert train.source_ann_id.tolist() == [0, 100]


@pytest.mark.parametrize("content,message", [
    ({"foo": np.ones(2)}, "no struct RELEASE"),
    ({"RELEASE": {"img_train": np.ones(2)}}, "RELEASE has no field 'annolist'"),
    ({"RELEASE": {"annolist": _structs([{"image": {"name": "a.jpg"}}], ["image"])}},
     "RELEASE has no field 'img_train'"),
])
def test_wrong_mat_structure_is_a_data_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "mpii_human_pose_v1_u12_1.mat"
    scipy.io.savemat(path, content)
    with pytest.raises(DataError, match=message) as err:
        read_mpii_mat(path)
    assert str(err.value).startswith(str(path))


def test_unreadable_or_missing_mat_is_a_data_error(tmp_path):
    path = tmp_path / "mpii_human_pose_v1_u12_1.mat"
    with pytest.raises(DataError, match="annotation file not found"):
        read_mpii_mat(path)
    path.write_bytes(b"this is not a MATLAB file at all" * 8)
    with pytest.raises(DataError, match="not a readable MATLAB .mat file"):
        read_mpii_mat(path)


# ---------------------------------------------------------------- converted JSON


def _joints(points):
    """16 [x, y] (1-based) with [-1, -1] for missing, and joints_vis."""
    joints = [[-1.0, -1.0]] * 16
    vis = [0] * 16
    for name, (x, y) in points.items():
        joints[MPII16.joint(name)] = [float(x), float(y)]
        vis[MPII16.joint(name)] = 1
    return joints, vis


def _record(image, points=None, **extra):
    joints, vis = _joints(points or {"right_ankle": (41, 141), "left_ankle": (81, 140),
                                     "head_top": (61, 11)})
    rec = {"joints_vis": vis, "joints": joints, "image": image, "scale": 1.5,
           "center": [60.0, 80.0]}
    rec.update(extra)
    return rec


def _write_json(tmp_path, records, split="train", text=None):
    root = tmp_path / "mpii"
    (root / "annot").mkdir(parents=True, exist_ok=True)
    for name in ("000000001.jpg", "000000002.jpg"):
        _jpeg(root / "images" / name)
    path = root / "annot" / f"{split}.json"
    path.write_text(text if text is not None else json.dumps(records))
    return path


def test_json_groups_by_image_and_keeps_list_index_as_id(tmp_path):
    path = _write_json(tmp_path, [_record("000000002.jpg"), _record("000000001.jpg"),
                                  _record("000000001.jpg")])
    table = read_mpii_json(path, "train")
    assert table.source_ann_id.tolist() == [1, 2, 0]
    assert list(table.image_paths) == ["images/000000001.jpg", "images/000000002.jpg"]
    assert table.image_width.tolist() == [W, W] and table.image_height.tolist() == [H, H]


def test_json_joints_are_0_based_missing_is_unlabelled_and_labelled_is_visible(tmp_path):
    table = read_mpii_json(_write_json(tmp_path, [_record("000000001.jpg")]), "train")
    kp, vis = table.keypoints[0], table.visibility[0]
    np.testing.assert_array_equal(kp[J("right_ankle")], [40, 140])
    np.testing.assert_array_equal(kp[J("left_ankle")], [80, 139])
    assert vis[J("right_ankle")] == 2 and vis[J("head_top")] == 2
    assert vis[J("right_knee")] == 0 and np.isnan(kp[J("right_knee")]).all()
    assert (vis > 0).sum() == 3


def test_json_joint_at_minus_one_is_unlabelled_even_if_marked_labelled(tmp_path):
    rec = _record("000000001.jpg")
    rec["joints_vis"] = [1] * 16
    table = read_mpii_json(_write_json(tmp_path, [rec]), "train")
    assert (table.visibility[0] > 0).sum() == 3


def test_json_bbox_is_joint_extent_plus_margin(tmp_path):
    table = read_mpii_json(_write_json(tmp_path, [_record("000000001.jpg")]), "train")
    x0, y0, x1, y1 = 40, 10, 80, 140
    m = BBOX_MARGIN * max(x1 - x0, y1 - y0)
    assert y0 - m < 0 and y1 + m > H  # so the box is clipped to the image at top and bottom
    np.testing.assert_allclose(table.bbox[0], [x0 - m, 0, x1 - x0 + 2 * m, H], rtol=1e-6)


JSON_BAD = {
    "missing_image": dict(image="000000009.jpg"),
    "bad_keypoint_count": dict(joints=[[10.0, 10.0]] * 15),
    "out_of_image": dict(joints=_joints({"right_ankle": (203, 10)})[0]),
    "missing_field": dict(joints=None),
    "no_keypoints": dict(joints_vis=[0] * 16),
}


@pytest.mark.parametrize("reason", list(JSON_BAD))
def test_json_bad_record_is_skipped_counted_and_logged(tmp_path, caplog, reason):
    bad = {**_record("000000002.jpg"), **JSON_BAD[reason]}
    bad = {k: v for k, v in bad.items() if v is not None}
    path = _write_json(tmp_path, [_record("000000001.jpg"), bad])
    with caplog.at_level(logging.INFO, logger="mcpc_builder.readers"):
        table = read_mpii_json(path, "train")
    assert table.source_ann_id.tolist() == [0]
    assert dict(table.skipped) == {reason: 1}
    line = next(r.getMessage() for r in caplog.records if f"({reason})" in r.getMessage())
    assert str(path) in line and "[1]" in line


def test_missing_image_folder_is_a_data_error(tmp_path):
    path = _write_json(tmp_path, [_record("000000001.jpg")])
    with pytest.raises(DataError, match="elsewhere: image folder not found"):
        read_mpii_json(path, "train", image_dir=tmp_path / "elsewhere")


def test_json_point_on_the_border_within_one_pixel_is_kept(tmp_path):
    rec = _record("000000001.jpg", {"right_ankle": (201, 151)})  # 0-based (200, 150)
    assert len(read_mpii_json(_write_json(tmp_path, [rec]), "train")) == 1


def test_json_nan_joint_is_skipped_as_non_finite(tmp_path):
    rec = _record("000000002.jpg", {"right_ankle": (float("nan"), 10), "head_top": (5, 5)})
    path = _write_json(tmp_path, [_record("000000001.jpg"), rec])
    assert read_mpii_json(path, "train").skipped["non_finite"] == 1


def test_json_test_split_without_joints_is_counted_unlabelled(tmp_path):
    recs = [{"image": "000000001.jpg", "center": [50.0, 50.0], "scale": 1.0}] * 2
    table = read_mpii_json(_write_json(tmp_path, recs, split="test"), "test")
    assert len(table) == 0 and dict(table.skipped) == {"test_split_unlabelled": 2}


def test_json_truncated_or_wrong_top_level_is_one_data_error(tmp_path):
    path = _write_json(tmp_path, [], text=json.dumps([_record("000000001.jpg")])[:50])
    with pytest.raises(DataError, match=r"train.json: invalid JSON: file cut short at byte 50"):
        read_mpii_json(path, "train")
    path.write_text('{"image": "x.jpg"}')
    with pytest.raises(DataError, match="expected a JSON list of MPII person records"):
        read_mpii_json(path, "train")
    with pytest.raises(DataError, match="valid.json: annotation file not found"):
        read_mpii_json(path.parent / "valid.json", "valid")


# ---------------------------------------------------------------- image headers, discover


def test_image_size_reads_jpeg_and_png_headers(tmp_path):
    _jpeg(tmp_path / "a.jpg", 37, 23)
    ok, png = cv2.imencode(".png", np.zeros((11, 13, 3), np.uint8))
    (tmp_path / "b.png").write_bytes(png.tobytes())
    assert image_size(tmp_path / "a.jpg") == (37, 23)
    assert image_size(tmp_path / "b.png") == (13, 11)


def test_image_size_of_a_cut_or_foreign_file_is_a_data_error(tmp_path):
    _jpeg(tmp_path / "a.jpg")
    data = (tmp_path / "a.jpg").read_bytes()
    sof = data.index(b"\xff\xc0")
    (tmp_path / "cut.jpg").write_bytes(data[:sof + 3])
    (tmp_path / "text.jpg").write_text("hello")
    with pytest.raises(DataError, match="cut.jpg: JPEG header has no frame size"):
        image_size(tmp_path / "cut.jpg")
    with pytest.raises(DataError, match="text.jpg: not a JPEG or PNG"):
        image_size(tmp_path / "text.jpg")


def test_unreadable_image_header_skips_the_person_as_bad_image(tmp_path):
    path = _write_json(tmp_path, [_record("000000001.jpg"), _record("000000002.jpg")])
    (path.parent.parent / "images" / "000000002.jpg").write_text("not an image")
    assert read_mpii_json(path, "train").skipped["bad_image"] == 1


def test_discover_prefers_the_mat_and_falls_back_to_json(tmp_path):
    path = _write_json(tmp_path, [_record("000000001.jpg")])
    (path.parent / "valid.json").write_text(path.read_text())
    (path.parent / "trainval.json").write_text(path.read_text())
    root = path.parent.parent
    assert [(s, f.name) for s, f, _ in discover("mpii", root)] == [("train", "train.json"),
                                                                   ("valid", "valid.json")]
    _write_mat(root)
    found = discover("mpii", root)
    assert [(s, f.name, d) for s, f, d in found] == [
        ("train", "mpii_human_pose_v1_u12_1.mat", root / "images")]
    # valid exists only as JSON, and is part of the .mat's train: then both come from the JSON.
    assert [(s, f.name) for s, f, _ in discover("mpii", root, ["train", "valid"])] == [
        ("train", "train.json"), ("valid", "valid.json")]
    assert [(s, f.name) for s, f, _ in discover("mpii", root, ["test"])] == [
        ("test", "mpii_human_pose_v1_u12_1.mat")]
    table = read_source("mpii", *found[0])
    assert table.split == "train" and len(table) == 3


def test_discover_without_mpii_files_names_what_was_expected(tmp_path):
    with pytest.raises(DataError, match="mpii_human_pose_v1_u12_1.mat or annot"):
        discover("mpii", tmp_path)


@pytest.mark.parametrize("folder", ["annotations", ".", "annot"])
def test_discover_reads_both_mmpose_style_split_files(tmp_path, folder):
    root = tmp_path / "mpii"
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir()
    for split in ("train", "val", "trainval"):
        (root / folder / f"mpii_{split}.json").write_text("[]")
    found = discover("mpii", root)
    assert [(s, p.name) for s, p, _ in found] == [("train", "mpii_train.json"),
                                                   ("val", "mpii_val.json")]


def test_unsafe_mpii_image_name_is_skipped_and_counted(tmp_path):
    path = _write_json(tmp_path, [_record("000000001.jpg"), _record("../../etc/x.jpg")])
    table = read_mpii_json(path, "train")
    assert table.source_ann_id.tolist() == [0]
    assert table.skipped["unsafe_image_path"] == 1
