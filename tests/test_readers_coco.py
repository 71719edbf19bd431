"""COCO reader: the real val2017 sample (cross-checked with pycocotools) and small synthetic files
written in the official format, including every kind of bad input."""

import json
import logging
import math
import tracemalloc
from pathlib import Path

import msgspec
import numpy as np
import pytest
from pycocotools.coco import COCO

from mcpc_builder.errors import DataError
from mcpc_builder.joints import COCO17, MCPC21
from mcpc_builder.readers import discover, read_coco, read_source
from mcpc_builder.readers.json_file import number_arrays

FIXTURE = Path(__file__).parent / "data" / "coco-val2017-sample"
FIXTURE_ANN = FIXTURE / "annotations" / "person_keypoints_val2017.json"
J = MCPC21.joint


# ---------------------------------------------------------------- the real val2017 sample


@pytest.fixture(scope="module")
def real():
    return read_coco(FIXTURE_ANN, "val2017")


def test_real_sample_keeps_12_of_14_people_and_counts_the_two_without_keypoints(real):
    assert len(real) == 12
    assert real.persons_read == 14
    assert dict(real.skipped) == {"no_keypoints": 2}
    assert 1202706 not in real.source_ann_id and 508900 not in real.source_ann_id


def test_real_sample_image_fields_and_several_people_per_image(real):
    assert list(real.image_paths) == ["val2017/000000000785.jpg", "val2017/000000040083.jpg",
                                      "val2017/000000196141.jpg", "val2017/000000197388.jpg"]
    assert real.image_width.tolist() == [640, 500, 640, 640]
    assert real.image_height.tolist() == [425, 333, 429, 392]
    assert np.bincount(real.image_index).tolist() == [1, 2, 4, 5]
    assert all((FIXTURE / p).is_file() for p in real.image_paths)


def test_real_sample_bbox_is_xywh_as_in_the_file(real):
    row = int(np.flatnonzero(real.source_ann_id == 442619)[0])
    np.testing.assert_allclose(real.bbox[row], [280.79, 44.73, 218.7, 346.68], rtol=1e-6)
    row = int(np.flatnonzero(real.source_ann_id == 543117)[0])
    np.testing.assert_allclose(real.bbox[row], [0.5, 43.74, 90.1, 220.09], rtol=1e-6)


def test_real_sample_matches_pycocotools(real):
    coco = COCO(str(FIXTURE_ANN))
    ids = coco.getAnnIds(iscrowd=False)
    anns = coco.loadAnns([int(i) for i in ids])
    kept = sorted((a["image_id"], a["id"]) for a in anns if a["num_keypoints"] > 0)
    assert real.source_ann_id.tolist() == [ann_id for _, ann_id in kept]
    for row, ann_id in enumerate(real.source_ann_id):
        ann = coco.loadAnns([int(ann_id)])[0]  # int(): numpy ids make loadAnns return None
        kp = np.array(ann["keypoints"], np.float32).reshape(17, 3)
        lab = kp[:, 2] > 0
        coco_cols = [J(p) for p in COCO17.body_points]
        np.testing.assert_array_equal(real.visibility[row, coco_cols], kp[:, 2])
        np.testing.assert_array_equal(real.keypoints[row, coco_cols][lab], kp[lab, :2])
        assert np.isnan(real.keypoints[row, coco_cols][~lab]).all()


def test_unlabelled_keypoint_is_nan_never_zero(real):
    # Annotation 1717641 has 12 labelled points; its face (v=0, x=y=0 in the file) is unlabelled.
    row = int(np.flatnonzero(real.source_ann_id == 1717641)[0])
    assert real.visibility[row, J("nose")] == 0
    assert np.isnan(real.keypoints[row, J("nose")]).all()
    assert not (real.keypoints[real.visibility > 0] == 0).all(axis=-1).any()


def test_real_sample_visibility_codes_are_0_1_2_with_occluded_points(real):
    assert set(np.unique(real.visibility)) == {0, 1, 2}
    assert (real.visibility == 1).sum() > 0


def test_pelvis_and_thorax_are_mid_hips_and_mid_shoulders(real):
    kp, vis = real.keypoints, real.visibility
    both = (vis[:, J("left_hip")] > 0) & (vis[:, J("right_hip")] > 0)
    mid = 0.5 * (kp[:, J("left_hip")] + kp[:, J("right_hip")])
    np.testing.assert_allclose(kp[both, J("pelvis")], mid[both])
    assert (vis[~both, J("pelvis")] == 0).all()
    sh = (vis[:, J("left_shoulder")] > 0) & (vis[:, J("right_shoulder")] > 0)
    np.testing.assert_allclose(kp[sh, J("thorax")],
                               0.5 * (kp[sh, J("left_shoulder")] + kp[sh, J("right_shoulder")]))
    assert (vis[:, J("upper_neck")] == 0).all() and (vis[:, J("head_top")] == 0).all()


# ---------------------------------------------------------------- small synthetic files


def _kp(points: dict, v: int = 2) -> list:
    """51 COCO values with the named joints at the given (x, y) and visibility v."""
    out = [0] * 51
    for name, (x, y) in points.items():
        j = COCO17.joint(name)
        out[3 * j:3 * j + 3] = [x, y, v]
    return out


def _ann(ann_id, image_id, points=None, **extra):
    points = points or {"left_hip": (40, 60), "right_hip": (20, 61), "nose": (30, 20)}
    kp = _kp(points)
    ann = {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
           "keypoints": kp, "num_keypoints": sum(1 for v in kp[2::3] if v > 0),
           "bbox": [10.0, 10.0, 50.0, 80.0], "area": 1200.0,
           "segmentation": [[10, 10, 60, 10, 60, 90, 10, 90]]}
    ann.update(extra)
    return ann


def _jpeg(width, height) -> bytes:
    """A real JPEG of the annotated size (the reader checks each image header)."""
    import cv2

    w = int(width) if isinstance(width, (int, float)) and width and width > 0 else 8
    h = int(height) if isinstance(height, (int, float)) and height and height > 0 else 8
    return cv2.imencode(".jpg", np.zeros((min(h, 4000), min(w, 4000), 3), np.uint8))[1].tobytes()


def _write_root(tmp_path, anns, images=None, split="val2017", make_images=True, text=None):
    images = images if images is not None else [
        {"id": i, "file_name": "%012d.jpg" % i, "width": 100, "height": 120, "license": 1}
        for i in (1, 2, 3)]
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    if make_images:
        (root / split).mkdir()
        for im in images:
            (root / split / im["file_name"]).write_bytes(_jpeg(im.get("width"), im.get("height")))
    doc = {"info": {}, "licenses": [], "categories": [{"id": 1, "name": "person"}],
           "images": images, "annotations": anns}
    path = root / "annotations" / f"person_keypoints_{split}.json"
    path.write_text(text if text is not None else json.dumps(doc))
    return path


def test_persons_are_grouped_by_image_then_annotation_id(tmp_path):
    path = _write_root(tmp_path, [_ann(30, 2), _ann(5, 3), _ann(10, 2), _ann(7, 1), _ann(1, 3)])
    table = read_coco(path, "val2017")
    assert table.source_ann_id.tolist() == [7, 10, 30, 1, 5]
    assert table.image_index.tolist() == [0, 1, 1, 2, 2]
    assert list(table.image_paths) == ["val2017/000000000001.jpg", "val2017/000000000002.jpg",
                                       "val2017/000000000003.jpg"]


def test_left_and_right_are_kept_and_coordinates_unchanged(tmp_path):
    path = _write_root(tmp_path, [_ann(1, 1, {"left_wrist": (70, 50), "right_wrist": (12, 51)})])
    table = read_coco(path, "val2017")
    np.testing.assert_array_equal(table.keypoints[0, J("left_wrist")], [70, 50])
    np.testing.assert_array_equal(table.keypoints[0, J("right_wrist")], [12, 51])
    assert table.visibility[0].sum() == 4


def test_crowd_and_zero_keypoint_people_are_skipped_and_counted(tmp_path):
    crowd = _ann(2, 1, iscrowd=1, segmentation={"counts": [0, 10], "size": [120, 100]})
    empty = _ann(3, 1, keypoints=[0] * 51, num_keypoints=0)
    path = _write_root(tmp_path, [_ann(1, 1), crowd, empty])
    table = read_coco(path, "val2017")
    assert table.source_ann_id.tolist() == [1]
    assert table.skipped["crowd"] == 1 and table.skipped["no_keypoints"] == 1
    assert table.persons_read == 3


def test_images_without_people_are_counted_and_left_out(tmp_path):
    path = _write_root(tmp_path, [_ann(1, 2)])
    table = read_coco(path, "val2017")
    assert table.skipped["images_without_people"] == 2
    assert list(table.image_paths) == ["val2017/000000000002.jpg"]


def test_file_without_annotations_gives_an_empty_table_counting_its_images(tmp_path):
    table = read_coco(_write_root(tmp_path, []), "val2017")
    assert len(table) == 0 and table.num_images == 0
    assert dict(table.skipped) == {"images_without_people": 3}


BAD_RECORDS = {
    "bad_keypoint_count": dict(keypoints=[30, 20, 2] * 16),
    "out_of_image": dict(keypoints=_kp({"nose": (102.5, 20)})),
    "bad_bbox": dict(bbox=[10.0, 10.0, 0.0, 80.0]),
    "missing_field": dict(bbox=None),
    "bad_visibility": dict(keypoints=_kp({"nose": (30, 20)}, v=3)),
    "missing_image": dict(image_id=99),
}


@pytest.mark.parametrize("reason", list(BAD_RECORDS))
def test_bad_record_is_skipped_counted_and_logged_with_file_and_record(tmp_path, caplog, reason):
    bad = {**_ann(8, 1), **BAD_RECORDS[reason]}
    if bad["bbox"] is None:
        del bad["bbox"]
    path = _write_root(tmp_path, [_ann(1, 1), bad])
    with caplog.at_level(logging.INFO, logger="mcpc_builder.readers"):
        table = read_coco(path, "val2017")
    assert table.source_ann_id.tolist() == [1]
    assert table.skipped[reason] == 1
    line = next(r.getMessage() for r in caplog.records if f"({reason})" in r.getMessage())
    assert str(path) in line and "annotations[1] (id 8)" in line


def test_negative_bbox_is_skipped_as_bad_bbox(tmp_path):
    path = _write_root(tmp_path, [_ann(1, 1), _ann(2, 1, bbox=[10.0, 10.0, 20.0, -5.0])])
    assert read_coco(path, "val2017").skipped["bad_bbox"] == 1


def test_point_within_one_pixel_of_the_border_is_kept(tmp_path):
    path = _write_root(tmp_path, [_ann(1, 1, {"nose": (100.9, 120.5)})])
    assert len(read_coco(path, "val2017")) == 1


@pytest.mark.parametrize("token", ["NaN", "Infinity", "1e999"])
def test_non_finite_keypoint_is_skipped_and_counted(tmp_path, token):
    # Python's json writes NaN / Infinity tokens; 1e999 overflows to inf.
    path = _write_root(tmp_path, [_ann(1, 1), _ann(2, 1, {"nose": (12345, 20)})])
    path.write_text(path.read_text().replace("12345", token))
    table = read_coco(path, "val2017")
    assert table.source_ann_id.tolist() == [1]
    assert table.skipped["non_finite"] == 1


@pytest.mark.parametrize("token,got", [('"7"', "str"), ("true", "bool"), ("[1]", "array"),
                                       ("1" + "0" * 400, "Number out of range")])
@pytest.mark.parametrize("crowd", [0, 1])
def test_non_number_in_keypoints_is_one_data_error_naming_the_record(tmp_path, token, got, crowd):
    # Even in a crowd annotation (skipped anyway): the file is malformed there.
    path = _write_root(tmp_path, [_ann(1, 1), _ann(2, 1, {"nose": (12345, 20)}, iscrowd=crowd)])
    path.write_text(path.read_text().replace("12345", token))
    with pytest.raises(DataError, match=got) as err:
        read_coco(path, "val2017")
    assert err.value.record == "$.annotations[1].keypoints[0]"
    assert str(err.value).startswith(str(path))


def test_non_number_in_bbox_is_one_data_error_naming_the_record(tmp_path):
    path = _write_root(tmp_path, [_ann(1, 1), _ann(2, 1, bbox=[1.0, 2.0, "wide", 4.0])])
    with pytest.raises(DataError, match="got `str`") as err:
        read_coco(path, "val2017")
    assert err.value.record == "$.annotations[1].bbox[2]"


def test_null_keypoints_or_bbox_are_skipped_as_missing_field(tmp_path):
    path = _write_root(tmp_path, [_ann(1, 1), _ann(2, 1, keypoints=None), _ann(3, 2, bbox=None),
                                  _ann(4, 2, keypoints=None, bbox=None)])
    table = read_coco(path, "val2017")
    assert table.source_ann_id.tolist() == [1]
    assert dict(table.skipped) == {"missing_field": 3, "images_without_people": 1}


def test_nan_elsewhere_in_the_file_reads_the_same_persons(tmp_path):
    # A NaN token sends the whole file through the lenient parse; the persons must not change.
    anns = [_ann(i, 1 + i % 3, {"nose": (10.25 + i, 20.5), "left_hip": (3 * i, 1e-3),
                                "right_hip": (0.1, 2e1)}, bbox=[0.5, 1e-2, 33.3 + i, 7.0])
            for i in range(1, 9)]
    clean = read_coco(_write_root(tmp_path / "clean", anns), "val2017")
    path = _write_root(tmp_path / "nan", anns + [_ann(9, 1, {"nose": (12345, 20)}, iscrowd=1)])
    path.write_text(path.read_text().replace("12345", "NaN"))
    lenient = read_coco(path, "val2017")
    assert lenient.skipped["crowd"] == 1 and len(lenient) == len(clean) == 8
    for name in ("source_ann_id", "image_index", "keypoints", "visibility", "bbox"):
        np.testing.assert_array_equal(getattr(lenient, name), getattr(clean, name))


def test_number_arrays_decode_in_chunks_only_the_wanted_records():
    raws = [msgspec.Raw(b"[1, 2.5, -3e2]"), None, msgspec.Raw(b"null"), msgspec.Raw(b"[4,5]"),
            msgspec.Raw(b"[6,7,8]"), msgspec.Raw(b"[]"), msgspec.Raw(b"[0.1,0.2,0.3]")]
    wanted = np.array([True, True, True, True, False, True, True])
    for chunk in (1, 2, 3, 100):
        lengths, values = number_arrays(raws, 3, wanted, chunk=chunk)
        assert lengths.tolist() == [3, -1, -1, 2, 3, 0, 3]
        np.testing.assert_array_equal(values, [[1, 2.5, -300], [0.1, 0.2, 0.3]])
    with pytest.raises(msgspec.ValidationError):
        number_arrays([msgspec.Raw(b'[1, "2"]')], 2, np.ones(1, bool))


def test_number_arrays_give_the_float_decode_to_the_bit_for_ints_and_floats():
    # Integers are decoded as ints and converted by numpy; the values must be exactly those a
    # list[float] decode gives, including ints past 2**53 (rounded) and -0 (plain 0.0).
    tokens = ["0", "-0", "-0.0", "7", "-300", "2.5", "1e3", str(2 ** 53 + 1), str(2 ** 63 - 1),
              str(-(2 ** 63)), "123456789.123456789", "1e-320"]
    raw = msgspec.Raw(("[" + ",".join(tokens) + "]").encode())
    lengths, values = number_arrays([raw], len(tokens), np.ones(1, bool))
    expected = np.array(msgspec.json.decode(bytes(raw), type=list[float]), np.float64)
    assert lengths.tolist() == [len(tokens)]
    assert values.tobytes() == expected.tobytes()
    # An integer beyond int64 is left to the full decode (which reads or rejects it exactly).
    with pytest.raises(msgspec.ValidationError):
        number_arrays([msgspec.Raw(b"[1," + str(2 ** 64).encode() + b"]")], 2, np.zeros(1, bool))


def test_table_stays_valid_after_the_file_is_truncated(tmp_path):
    # The file is parsed from a memory map: nothing in the table may still view it.
    people = [_ann(j + 1, j % 3 + 1, {"nose": (10 + j, 20), "left_hip": (30, 40 + j)})
              for j in range(9)]
    path = _write_root(tmp_path, people)
    table = read_coco(path, "val2017")
    path.write_bytes(b"")
    order = np.argsort(table.source_ann_id)
    assert table.source_ann_id[order].tolist() == list(range(1, 10))
    np.testing.assert_array_equal(table.keypoints[order, J("nose")],
                                  [[10 + j, 20] for j in range(9)])
    np.testing.assert_array_equal(table.keypoints[order, J("left_hip"), 1], 40 + np.arange(9))
    with pytest.raises(DataError, match="cut short"):
        read_coco(path, "val2017")


def test_reader_memory_stays_below_python_floats_for_the_keypoints(tmp_path):
    # Decoding keypoints into Python lists of floats (32 bytes a number) peaks at > 7x the file
    # here; decoded in chunks into float64 arrays the reader stays under 5x.
    rng = np.random.default_rng(0)
    images = [{"id": i, "file_name": "%012d.jpg" % i, "width": 640, "height": 480}
              for i in range(1, 201)]
    kp = np.round(rng.uniform(0, 400, (20000, 17, 3)), 2)
    kp[..., 2] = 2
    anns = [{"id": j + 1, "image_id": j % 200 + 1, "category_id": 1, "iscrowd": 0,
             "num_keypoints": 17, "keypoints": kp[j].ravel().tolist(),
             "bbox": [1.5, 2.5, 300.25, 400.75]} for j in range(len(kp))]
    path = _write_root(tmp_path, [], images=images, make_images=False,
                       text=json.dumps({"images": images, "annotations": anns}))
    del anns
    tracemalloc.start()
    try:
        table = read_coco(path, "val2017", check_images=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(table) == 20000
    assert peak < 5 * path.stat().st_size


def test_missing_annotation_file_is_a_data_error_naming_it(tmp_path):
    with pytest.raises(DataError, match="person_keypoints_val2017.json: annotation file not found"):
        read_coco(tmp_path / "annotations" / "person_keypoints_val2017.json", "val2017")


def test_truncated_json_is_one_data_error_with_file_and_byte(tmp_path):
    path = _write_root(tmp_path, [_ann(1, 1)])
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError) as err:
        read_coco(path, "val2017")
    assert str(path) in str(err.value) and f"byte {len(data) // 2}" in str(err.value)


def test_invalid_json_character_reports_its_byte_offset(tmp_path):
    path = _write_root(tmp_path, [], text='{"images": [], "annotations": [}')
    with pytest.raises(DataError, match=r"invalid JSON.*byte 31"):
        read_coco(path, "val2017")


@pytest.mark.parametrize("text,what", [
    ("[]", "expected a COCO keypoints JSON object"),
    ('{"images": []}', "annotations"),
    ('{"images": [], "annotations": [{"id": "seven"}]}', r"\$.annotations\[0\].id"),
])
def test_wrong_structure_is_a_data_error_naming_file_and_record(tmp_path, text, what):
    path = _write_root(tmp_path, [], text=text)
    with pytest.raises(DataError, match=what) as err:
        read_coco(path, "val2017")
    assert str(err.value).startswith(str(path))


def test_missing_image_file_skips_its_people(tmp_path):
    path = _write_root(tmp_path, [_ann(1, 1), _ann(2, 2)])
    (path.parent.parent / "val2017" / "000000000002.jpg").unlink()
    table = read_coco(path, "val2017")
    assert table.source_ann_id.tolist() == [1]
    assert table.skipped["missing_image"] == 1


def test_missing_image_folder_is_a_data_error_unless_images_are_not_checked(tmp_path):
    path = _write_root(tmp_path, [_ann(1, 1)], make_images=False)
    with pytest.raises(DataError, match="val2017: image folder not found"):
        read_coco(path, "val2017")
    assert len(read_coco(path, "val2017", check_images=False)) == 1


def test_numpy_annotation_ids_are_python_ints_for_pycocotools(real):
    coco = COCO(str(FIXTURE_ANN))
    assert coco.loadAnns(real.source_ann_id[0]) is None  # the pitfall itself
    assert coco.loadAnns([int(real.source_ann_id[0])])[0]["id"] == real.source_ann_id[0]


# ---------------------------------------------------------------- discover


def test_discover_finds_every_keypoints_file_and_its_image_folder(tmp_path):
    path = _write_root(tmp_path, [_ann(1, 1)])
    (path.parent / "person_keypoints_train2017.json").write_text(path.read_text())
    root = path.parent.parent
    found = discover("coco", root)
    assert [(s, f.name, d) for s, f, d in found] == [
        ("train2017", "person_keypoints_train2017.json", root / "train2017"),
        ("val2017", "person_keypoints_val2017.json", root / "val2017")]
    assert discover("coco", root, ["val"])[0][0] == "val2017"


def test_discover_without_keypoints_files_lists_what_was_expected(tmp_path):
    (tmp_path / "annotations").mkdir()
    with pytest.raises(DataError, match="person_keypoints_<split>.json"):
        discover("coco", tmp_path)
    path = _write_root(tmp_path, [_ann(1, 1)])
    with pytest.raises(DataError, match="person_keypoints_test2017.json"):
        discover("coco", path.parent.parent, ["test2017"])


def test_read_source_reads_a_discovered_split(tmp_path):
    path = _write_root(tmp_path, [_ann(1, 1)])
    (split, ann_file, image_dir), = discover("coco", path.parent.parent)
    table = read_source("coco", split, ann_file, image_dir)
    assert table.split == "val2017" and table.source == "coco" and len(table) == 1
    assert not math.isnan(float(table.bbox[0, 2]))


# ---------------------------------------------------------------- keypoint layouts by name


def _layout_file(tmp_path, names, joints: dict, v: int = 2, **ann_extra):
    """A one-person file whose person category lists ``names``; ``joints`` {name: (x, y)}."""
    kp = [0] * (3 * len(names))
    for name, (x, y) in joints.items():
        j = names.index(name)
        kp[3 * j:3 * j + 3] = [x, y, v]
    ann = {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "keypoints": kp,
           "num_keypoints": len(joints), "bbox": [5.0, 5.0, 80.0, 100.0]}
    ann.update(ann_extra)
    path = _write_root(tmp_path, [ann])
    doc = json.loads(path.read_text())
    doc["categories"] = [{"id": 1, "name": "person", "keypoints": list(names)}]
    path.write_text(json.dumps(doc))
    return path


POSETRACK = ["nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder",
             "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
             "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
H36M_MMPOSE = ["root", "right_hip", "right_knee", "right_foot", "left_hip", "left_knee",
               "left_foot", "spine", "thorax", "neck_base", "head", "left_shoulder",
               "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist"]
CROWDPOSE = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
             "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
             "right_ankle", "head", "neck"]
HALPE = list(COCO17.joint_names) + ["head", "neck", "hip", "left_big_toe", "right_big_toe",
                                    "left_small_toe", "right_small_toe", "left_heel",
                                    "right_heel"]


def test_posetrack_head_points_are_neck_and_head_top_never_eyes_nor_occluded(tmp_path):
    path = _layout_file(tmp_path, POSETRACK, {"head_bottom": (40, 30), "head_top": (41, 10),
                                              "left_hip": (45, 70), "right_hip": (35, 70)},
                        v=1, iscrowd=False)
    table = read_coco(path, "val2017")
    assert table.keypoint_layout == "posetrack18"
    np.testing.assert_array_equal(table.keypoints[0, J("upper_neck")], [40, 30])
    np.testing.assert_array_equal(table.keypoints[0, J("head_top")], [41, 10])
    assert table.visibility[0, J("left_eye")] == 0 and table.visibility[0, J("right_eye")] == 0
    # PoseTrack's v=1 only says "labelled": no joint is claimed occluded.
    assert set(table.visibility[0][table.visibility[0] > 0].tolist()) == {2}


def test_boolean_iscrowd_is_read_as_crowd(tmp_path):
    path = _layout_file(tmp_path, POSETRACK, {"head_top": (41, 10), "nose": (40, 20)},
                        iscrowd=True)
    table = read_coco(path, "val2017")
    assert len(table) == 0 and table.skipped["crowd"] == 1


def test_h36m_layout_puts_the_pelvis_at_the_pelvis_not_the_nose(tmp_path):
    path = _layout_file(tmp_path, H36M_MMPOSE, {"root": (40, 60), "head": (40, 10),
                                                "right_foot": (30, 100), "spine": (40, 45)})
    table = read_coco(path, "val2017")
    assert table.keypoint_layout == "h36m17"
    np.testing.assert_array_equal(table.keypoints[0, J("pelvis")], [40, 60])
    np.testing.assert_array_equal(table.keypoints[0, J("head_top")], [40, 10])
    np.testing.assert_array_equal(table.keypoints[0, J("right_ankle")], [30, 100])
    assert table.visibility[0, J("nose")] == 0


def test_crowdpose_14_joints_are_read_not_dropped(tmp_path):
    path = _layout_file(tmp_path, CROWDPOSE, {"head": (40, 8), "neck": (40, 25),
                                              "left_wrist": (60, 50)})
    table = read_coco(path, "val2017")
    assert len(table) == 1 and table.keypoint_layout == "crowdpose14"
    np.testing.assert_array_equal(table.keypoints[0, J("head_top")], [40, 8])
    np.testing.assert_array_equal(table.keypoints[0, J("left_wrist")], [60, 50])
    # CrowdPose's "neck" has no verified MCPC meaning: dropped, never guessed.
    assert table.visibility[0, J("upper_neck")] == 0 and table.visibility[0, J("thorax")] == 0


def test_halpe_hip_is_the_pelvis_and_feet_are_dropped(tmp_path):
    path = _layout_file(tmp_path, HALPE, {"hip": (40, 60), "left_heel": (50, 110),
                                          "nose": (40, 20)})
    table = read_coco(path, "val2017")
    assert table.keypoint_layout == "halpe26"
    np.testing.assert_array_equal(table.keypoints[0, J("pelvis")], [40, 60])
    assert int((table.visibility[0] > 0).sum()) == 2


def test_joints_are_mapped_by_name_in_whatever_order_the_file_lists_them(tmp_path):
    names = list(reversed(COCO17.joint_names))
    path = _layout_file(tmp_path, names, {"nose": (40, 20), "left_ankle": (50, 100)})
    table = read_coco(path, "val2017")
    np.testing.assert_array_equal(table.keypoints[0, J("nose")], [40, 20])
    np.testing.assert_array_equal(table.keypoints[0, J("left_ankle")], [50, 100])


def test_unknown_keypoint_names_are_refused_naming_file_layout_and_names(tmp_path):
    names = ["a", "b", "c"]
    path = _layout_file(tmp_path, names, {"a": (1, 2)})
    with pytest.raises(DataError) as err:
        read_coco(path, "val2017")
    text = str(err.value)
    assert "person_keypoints_val2017.json" in text and "categories[0].keypoints" in text
    assert "unknown keypoint layout (3 names: a, b, c)" in text and "posetrack18" in text
    assert "\n" not in text


# ---------------------------------------------------------------- builder-side safety


def test_duplicate_annotation_ids_keep_the_first_and_count_the_rest(tmp_path):
    path = _write_root(tmp_path, [_ann(7, 1), _ann(7, 2), _ann(8, 2)])
    table = read_coco(path, "val2017")
    assert table.source_ann_id.tolist() == [7, 8]
    assert table.skipped["duplicate_annotation_id"] == 1


@pytest.mark.parametrize("name", ["../../outside.jpg", "/etc/passwd", "sub/../../x.jpg"])
def test_image_path_leaving_the_dataset_root_is_skipped_and_counted(tmp_path, name):
    images = [{"id": 1, "file_name": "000000000001.jpg", "width": 100, "height": 120},
              {"id": 2, "file_name": name, "width": 100, "height": 120}]
    path = _write_root(tmp_path, [_ann(1, 1), _ann(2, 2)], images=images, make_images=False)
    (path.parent.parent / "val2017").mkdir()
    (path.parent.parent / "val2017" / "000000000001.jpg").write_bytes(_jpeg(100, 120))
    table = read_coco(path, "val2017")
    assert table.source_ann_id.tolist() == [1]
    assert table.skipped["unsafe_image_path"] == 1


def test_a_symlinked_image_in_the_image_folder_is_read(tmp_path):
    # Decision: the annotation text can never leave the root (``..`` / absolute names are
    # refused above), but a symlink the dataset's owner put in the image folder is followed, so
    # image folders assembled from links to shared storage work.
    path = _write_root(tmp_path, [_ann(1, 1), _ann(2, 2)])
    store = tmp_path / "elsewhere"
    store.mkdir()
    (store / "real.jpg").write_bytes(_jpeg(100, 120))
    linked = path.parent.parent / "val2017" / "000000000002.jpg"
    linked.unlink()
    linked.symlink_to(store / "real.jpg")
    table = read_coco(path, "val2017")
    assert table.source_ann_id.tolist() == [1, 2]
    assert not {"bad_image", "missing_image", "unsafe_image_path"} & set(table.skipped)


@pytest.mark.parametrize("content, reason", [(b"", "bad_image"), (b"garbage", "bad_image"),
                                             ("wrong_size", "image_size_mismatch")])
def test_empty_corrupt_or_wrongly_sized_image_is_skipped_and_counted(tmp_path, content, reason):
    path = _write_root(tmp_path, [_ann(1, 1), _ann(2, 2)])
    bad = path.parent.parent / "val2017" / "000000000002.jpg"
    bad.write_bytes(_jpeg(60, 120) if content == "wrong_size" else content)
    table = read_coco(path, "val2017")
    assert table.source_ann_id.tolist() == [1]
    assert table.skipped[reason] == 1
    assert len(read_coco(path, "val2017", check_images=False)) == 2  # annotation-only read


def test_persons_beyond_the_per_image_cap_are_skipped_and_counted(tmp_path):
    from mcpc_builder.build import build
    from mcpc_builder.contract import read_manifest

    path = _write_root(tmp_path, [_ann(i, 1) for i in range(1, 5)] + [_ann(9, 2)])
    out = build(["coco"], tmp_path / "b", roots={"coco": path.parent.parent}, progress=False,
                max_persons_per_image=3)
    split = read_manifest(out)["sources"]["coco"]["splits"]["val2017"]
    assert split["persons_kept"] == 1 and split["persons_skipped"]["too_many_persons"] == 4
