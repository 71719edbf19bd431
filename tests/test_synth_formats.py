"""Synthetic datasets in the official COCO and MPII formats, and their ground truth."""

import json

import cv2
import numpy as np
import pytest
import scipy.io

from mcpc_builder.joints import COCO17, MCPC21, MPII16
from mcpc_builder.synth import write_dataset
from mcpc_builder.synth.coco_format import mask_rle

COCO_SEED, COCO_IMAGES = 2, 32    # this seed's train2017 has crowd, 0-keypoint and empty images
MPII_SEED, MPII_IMAGES = 0, 24    # this seed has one- and several-person images, test images,
                                  # annorects without annopoints and character is_visible


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    return write_dataset("coco", tmp_path_factory.mktemp("coco"), seed=COCO_SEED,
                         n_images=COCO_IMAGES)


@pytest.fixture(scope="module")
def mpii_root(tmp_path_factory):
    return write_dataset("mpii", tmp_path_factory.mktemp("mpii"), seed=MPII_SEED,
                         n_images=MPII_IMAGES)


def _coco(root, split="train2017"):
    return json.loads((root / "annotations" / f"person_keypoints_{split}.json").read_text())


def _project(X, K):
    uv = X @ K.T
    return uv[..., :2] / uv[..., 2:]


# ------------------------------------------------------------------------------------------ COCO
def test_same_seed_writes_identical_files(coco_root, mpii_root, tmp_path):
    again = write_dataset("coco", tmp_path / "coco", seed=COCO_SEED, n_images=COCO_IMAGES)
    for split in ("train2017", "val2017"):
        name = f"annotations/person_keypoints_{split}.json"
        assert (again / name).read_bytes() == (coco_root / name).read_bytes()
        a = np.load(again / f"ground_truth/person_keypoints_{split}.npz")
        b = np.load(coco_root / f"ground_truth/person_keypoints_{split}.npz")
        for key in b.files:
            np.testing.assert_array_equal(a[key], b[key])
    mpii = write_dataset("mpii", tmp_path / "mpii", seed=MPII_SEED, n_images=MPII_IMAGES)
    for name in ("annot/train.json", "annot/valid.json", "mpii_human_pose_v1_u12_1.mat"):
        assert (mpii / name).read_bytes() == (mpii_root / name).read_bytes()
    other = write_dataset("coco", tmp_path / "other", seed=COCO_SEED + 1, n_images=4)
    assert (other / "annotations/person_keypoints_val2017.json").read_bytes() != \
        (coco_root / "annotations/person_keypoints_val2017.json").read_bytes()


def test_coco_file_has_the_official_fields_and_loads_with_pycocotools(coco_root):
    from pycocotools.coco import COCO

    doc = _coco(coco_root)
    assert set(doc) == {"info", "licenses", "images", "annotations", "categories"}
    (cat,) = doc["categories"]
    assert cat["id"] == 1 and cat["name"] == "person"
    assert cat["keypoints"] == list(COCO17.joint_names)
    assert cat["skeleton"][:2] == [[16, 14], [14, 12]] and len(cat["skeleton"]) == 19
    img = doc["images"][0]
    assert set(img) >= {"id", "file_name", "width", "height", "license", "coco_url",
                        "date_captured", "flickr_url"}
    assert img["file_name"] == "%012d.jpg" % img["id"]
    ann = doc["annotations"][0]
    assert set(ann) == {"id", "image_id", "category_id", "keypoints", "num_keypoints", "bbox",
                        "area", "iscrowd", "segmentation"}
    coco = COCO(str(coco_root / "annotations/person_keypoints_train2017.json"))
    assert len(coco.getImgIds()) == len(doc["images"]) == 24
    assert coco.getCatIds(catNms=["person"]) == [1]
    for info in coco.loadImgs(coco.getImgIds()[:5]):
        image = cv2.imread(str(coco_root / "train2017" / info["file_name"]))
        assert image.shape == (info["height"], info["width"], 3)


def test_coco_keypoints_are_ints_with_unlabelled_at_zero(coco_root):
    for split in ("train2017", "val2017"):
        doc = _coco(coco_root, split)
        sizes = {im["id"]: (im["width"], im["height"]) for im in doc["images"]}
        for ann in doc["annotations"]:
            kp = np.array(ann["keypoints"])
            assert kp.shape == (51,) and all(isinstance(v, int) for v in ann["keypoints"])
            kp = kp.reshape(17, 3)
            assert set(np.unique(kp[:, 2])) <= {0, 1, 2}
            assert np.all(kp[kp[:, 2] == 0, :2] == 0)
            assert ann["num_keypoints"] == int((kp[:, 2] > 0).sum())
            w, h = sizes[ann["image_id"]]
            lab = kp[:, 2] > 0
            assert np.all((kp[lab, 0] >= 0) & (kp[lab, 0] < w) & (kp[lab, 1] >= 0)
                          & (kp[lab, 1] < h))
            x, y, bw, bh = ann["bbox"]
            assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h
            assert 0 < ann["area"] <= bw * bh


def test_coco_has_crowds_tiny_people_and_empty_images(coco_root):
    from pycocotools import mask as mask_utils

    doc = _coco(coco_root)
    crowd = [a for a in doc["annotations"] if a["iscrowd"]]
    tiny = [a for a in doc["annotations"] if not a["iscrowd"] and a["num_keypoints"] == 0]
    with_people = {a["image_id"] for a in doc["annotations"]}
    assert crowd and tiny
    assert any(im["id"] not in with_people for im in doc["images"])
    for a in crowd:
        assert a["num_keypoints"] == 0 and set(a["segmentation"]) == {"counts", "size"}
        img = next(im for im in doc["images"] if im["id"] == a["image_id"])
        rle = mask_utils.frPyObjects(a["segmentation"], img["height"], img["width"])
        assert mask_utils.area(rle) == a["area"]
    assert max(a["area"] for a in tiny) < min(a["area"] for a in doc["annotations"]
                                              if a["num_keypoints"] > 0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' decode on numpy 2
def test_mask_rle_round_trips_through_pycocotools():
    from pycocotools import mask as mask_utils

    mask = np.zeros((5, 4), bool)
    mask[0, 0] = mask[1:4, 2] = True
    rle = mask_rle(mask)
    assert rle["size"] == [5, 4] and rle["counts"][0] == 0  # starts with a (0-length) run of 0s
    decoded = mask_utils.decode(mask_utils.frPyObjects(rle, 5, 4))
    np.testing.assert_array_equal(decoded.astype(bool), mask)


def test_coco_ground_truth_reprojects_onto_the_keypoints(coco_root):
    for split in ("train2017", "val2017"):
        doc = _coco(coco_root, split)
        gt = np.load(coco_root / f"ground_truth/person_keypoints_{split}.npz")
        assert len(gt["ann_id"]) == len(doc["annotations"])
        assert gt["joints_cam"].shape == (len(doc["annotations"]), MCPC21.num_joints, 3)
        row = {int(a): i for i, a in enumerate(gt["ann_id"])}
        K_of = {int(i): K for i, K in zip(gt["camera_image_id"], gt["camera_K"])}
        checked = 0
        for ann in doc["annotations"]:
            i = row[ann["id"]]
            assert gt["image_id"][i] == ann["image_id"]
            if ann["iscrowd"]:
                assert np.isnan(gt["joints_cam"][i]).all()
                continue
            X = gt["joints_cam"][i].astype(np.float64)
            assert np.all(X[:, 2] > 0)                      # in front of the camera
            kp = np.array(ann["keypoints"]).reshape(17, 3)
            lab = kp[:, 2] > 0
            uv = _project(X[:17], K_of[ann["image_id"]])   # MCPC-21 starts with COCO's 17
            assert np.all(np.abs(uv[lab] - kp[lab, :2]) <= 0.5 + 1e-3)
            checked += int(lab.sum())
        assert checked > 100 or split == "val2017"


# ------------------------------------------------------------------------------------------ MPII
def test_mpii_mat_has_the_official_structure(mpii_root):
    mat = scipy.io.loadmat(mpii_root / "mpii_human_pose_v1_u12_1.mat", struct_as_record=False)
    assert mat["RELEASE"].shape == (1, 1)
    rel = mat["RELEASE"][0, 0]
    assert set(rel._fieldnames) == {"annolist", "img_train", "version", "single_person", "act",
                                    "video_list"}
    n = MPII_IMAGES
    assert rel.annolist.shape == (1, n) and rel.img_train.shape == (1, n)
    assert rel.act.shape == (n, 1) and rel.single_person.shape == (n, 1)
    assert rel.video_list.shape[0] == 1
    assert set(rel.act[0, 0]._fieldnames) == {"act_name", "cat_name", "act_id"}
    arities = set()
    for a, train in zip(rel.annolist[0], rel.img_train[0]):
        assert a.image[0, 0].name[0].endswith(".jpg") and len(a.image[0, 0].name[0]) == 13
        assert (mpii_root / "images" / a.image[0, 0].name[0]).is_file()
        rects = a.annorect
        assert rects.shape[0] == 1 and rects.shape[1] >= 1
        arities.add(min(rects.shape[1], 2))
        if not train:
            assert "annopoints" not in rects[0, 0]._fieldnames   # test images carry no joints
            continue
        for r in rects[0]:
            assert {"x1", "y1", "x2", "y2", "scale", "objpos", "annopoints"} <= set(r._fieldnames)
            assert r.x1[0, 0] < r.x2[0, 0] and r.y1[0, 0] < r.y2[0, 0]
            if r.annopoints.size:
                pts = r.annopoints[0, 0].point
                assert pts.shape[0] == 1
                ids = [int(p.id[0, 0]) for p in pts[0]]
                assert len(set(ids)) == len(ids) and all(0 <= i < 16 for i in ids)
    assert arities == {1, 2}
    squeezed = scipy.io.loadmat(mpii_root / "mpii_human_pose_v1_u12_1.mat",
                                struct_as_record=False, squeeze_me=True)["RELEASE"]
    kinds = {type(a.annorect).__name__ for a in squeezed.annolist}
    assert kinds == {"mat_struct", "ndarray"}  # one person: a lone struct; several: an array


def test_mpii_points_are_one_based_projections_of_the_ground_truth(mpii_root):
    rel = scipy.io.loadmat(mpii_root / "mpii_human_pose_v1_u12_1.mat",
                           struct_as_record=False)["RELEASE"][0, 0]
    gt = np.load(mpii_root / "ground_truth/mat.npz")
    row = {int(a): i for i, a in enumerate(gt["ann_id"])}
    mpii_in_mcpc = [MCPC21.index[p] for p in MPII16.body_points]
    checked = 0
    for imgidx, a in enumerate(rel.annolist[0]):
        for ridx, r in enumerate(a.annorect[0]):
            i = row[imgidx * 100 + ridx]
            assert (gt["imgidx"][i], gt["ridx"][i]) == (imgidx, ridx)
            if "annopoints" not in r._fieldnames or not r.annopoints.size:
                continue
            uv = _project(gt["joints_cam"][i].astype(np.float64), gt["camera_K"][imgidx])
            for p in r.annopoints[0, 0].point[0]:
                k = int(p.id[0, 0])
                xy = np.array([p.x[0, 0], p.y[0, 0]]) - 1.0       # MATLAB 1-based
                assert np.all(np.abs(xy - uv[mpii_in_mcpc[k]]) <= 0.5 + 1e-3)
                assert float(str(np.asarray(p.is_visible).ravel()[0]).strip()) in (0, 1)
                checked += 1
    assert checked > 100


def test_mpii_hrnet_json_fields_and_missing_joints(mpii_root):
    for split in ("train", "valid"):
        people = json.loads((mpii_root / "annot" / f"{split}.json").read_text())
        gt = np.load(mpii_root / "ground_truth" / f"{split}.npz")
        assert len(people) == len(gt["ann_id"]) > 0
        np.testing.assert_array_equal(gt["ann_id"], np.arange(len(people)))
        names = list(gt["image_name"])
        mpii_in_mcpc = [MCPC21.index[p] for p in MPII16.body_points]
        for i, person in enumerate(people):
            assert set(person) == {"image", "center", "scale", "joints", "joints_vis"}
            joints = np.array(person["joints"])
            vis = np.array(person["joints_vis"])
            assert joints.shape == (16, 2) and vis.shape == (16,)
            assert set(np.unique(vis)) <= {0, 1}
            assert np.all(joints[vis == 0] == -1)
            assert person["scale"] > 0 and len(person["center"]) == 2
            K = gt["camera_K"][names.index(person["image"])]
            uv = _project(gt["joints_cam"][i].astype(np.float64), K)[mpii_in_mcpc]
            assert np.all(np.abs(joints[vis == 1] - 1.0 - uv[vis == 1]) <= 0.5 + 1e-3)


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic format"):
        write_dataset("kitti", tmp_path, seed=0)
