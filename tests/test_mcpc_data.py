"""MCPC build -> training samples: manifest check, crops, heatmaps, pairs, flip, bad images."""

import json
from dataclasses import replace

import numpy as np
import pytest

from mcpc_builder.errors import DataError
from mcpc_builder.joints import MCPC21
from mcpc_fixture import write_tiny_build
from wsp_model.config import DataConfig
from wsp_model.mcpc_data import McpcDataset, apply_affine, crop_affine, read_build

CFG = DataConfig(crop_size=64, heatmap_stride=4, sigma=1.5, max_pairs=16, rotation_prob=0.0,
                 flip_prob=0.0, scale_factor=0.0, colour_jitter=0.0)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return write_tiny_build(tmp_path_factory.mktemp("mcpc"))


def test_reader_refuses_another_schema_version(tmp_path):
    b = write_tiny_build(tmp_path, n_images=2, shards=1)
    manifest = json.loads((b / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (b / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="schema_version 99"):
        read_build(b)


def test_reader_joins_pairs_to_person_rows_across_shards(build):
    t = read_build(build)
    assert len(t) == 9                      # 6 images alternating 1 and 2 persons
    # Every person has its shoulder pair, whichever shard it was written to.
    assert set(t.person_id[t.pair_a[t.joint_a == 5]]) == set(t.person_id)
    cross = t.pair_a != t.pair_b
    assert cross.sum() == 3 and np.all(t.image_id[t.pair_a[cross]] == t.image_id[t.pair_b[cross]])
    assert t.image_file[0].endswith("images/000000.jpg")


def test_unaugmented_crop_centres_the_person_and_peaks_heatmaps_at_joints(build):
    t = read_build(build)
    ds = McpcDataset(t, CFG, "train", augment=False)
    s = ds[0]
    row = s["person_row"]
    x, y, w, h = t.bbox[row]
    m = crop_affine(np.array([x + w / 2, y + h / 2]), max(w, h) * CFG.context, 0.0, 64, False)
    assert apply_affine(m, np.array([x + w / 2, y + h / 2])) == pytest.approx([31.5, 31.5])
    j = MCPC21.joint("left_knee")
    kx, ky = s["keypoints"][j]
    peak = np.unravel_index(s["heatmaps"][j].argmax(), s["heatmaps"][j].shape)
    assert peak == (int(round((ky + 0.5) / 4 - 0.5)), int(round((kx + 0.5) / 4 - 0.5)))
    assert s["heatmaps"][j].max() > 0.6 and s["joint_weight"][j] == 1
    assert s["image"].shape == (3, 64, 64) and s["image"].dtype == np.uint8


def test_sample_holds_cross_person_pairs_when_both_people_fit(build):
    t = read_build(build)
    ds = McpcDataset(t, replace(CFG, context=3.0), "train", augment=False)
    rows_with_neighbour = [i for i in range(len(ds)) if (t.image_id == t.image_id[ds.rows[i]]).sum() == 2]
    s = ds[rows_with_neighbour[0]]
    assert s["pair_cross"][s["pair_mask"]].sum() == 1
    # Both persons' within-person pairs are inside the region too: 2 x 5 + 1 cross.
    assert s["pair_mask"].sum() == 11


def test_flip_swaps_left_and_right_and_keeps_pair_labels_on_the_same_points(build):
    t = read_build(build)
    plain = McpcDataset(t, CFG, "train", augment=False)[0]
    flipped_ds = McpcDataset(t, replace(CFG, flip_prob=1.0), "train", augment=True)
    f = flipped_ds[(0, 0)]
    assert f["flipped"] and not plain["flipped"]
    ls, rs = MCPC21.joint("left_shoulder"), MCPC21.joint("right_shoulder")
    # The physical left shoulder now sits at the mirrored x and is called the right shoulder.
    assert f["keypoints"][rs] == pytest.approx([63 - plain["keypoints"][ls][0], plain["keypoints"][ls][1]])
    assert np.allclose(f["heatmaps"][rs], plain["heatmaps"][ls][:, ::-1], atol=1e-5)
    # Pairs: same order of physical points, mirrored coordinates, mapped joint ids, same label.
    m = plain["pair_mask"]
    assert np.array_equal(f["pair_mask"], m)
    assert np.array_equal(f["pair_label"], plain["pair_label"])
    assert np.allclose(f["point_a"][m, 0], 63 - plain["point_a"][m, 0], atol=1e-4)
    assert np.array_equal(f["joint_a"][m], MCPC21.flip_index[plain["joint_a"][m]])
    # The flipped pair's point a is where the flipped heatmap of its (renamed) joint peaks, and a
    # "left shoulder closer than right shoulder" pair now says "right shoulder closer than left".
    k = int(np.flatnonzero((plain["joint_a"] == ls) & m)[0])
    assert f["joint_a"][k] == rs and f["joint_b"][k] == ls and f["pair_label"][k] == 1
    assert f["point_a"][k] == pytest.approx(f["keypoints"][rs], abs=1e-4)


def test_augmentation_is_a_function_of_the_draw(build):
    t = read_build(build)
    ds = McpcDataset(t, DataConfig(crop_size=64, max_pairs=16), "train", augment=True, seed=3)
    a, b, c = ds[(2, 7)], ds[(2, 7)], ds[(2, 8)]
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["point_a"], b["point_a"])
    assert not np.array_equal(a["image"], c["image"])


def test_loader_skips_a_corrupt_image_and_counts_it(tmp_path):
    b = write_tiny_build(tmp_path, n_images=4, n_val_images=0, shards=1)
    t = read_build(b)
    (tmp_path / "source" / "images" / "000000.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (tmp_path / "source" / "images" / "000001.jpg").unlink()
    ds = McpcDataset(t, CFG, "train", augment=False)
    samples = [ds[i] for i in range(len(ds))]
    bad = [s for s in samples if s["image_ok"] == 0]
    assert len(bad) == 3                    # image 0: 1 person, image 1: 2 persons
    assert ds.skipped == {"undecodable": 1, "missing": 2}
    assert all(s["joint_weight"].sum() == 0 and not s["pair_mask"].any() for s in bad)
    assert all(s["joint_weight"].sum() > 0 for s in samples if s["image_ok"] == 1)


@pytest.mark.parametrize("crop_size", [64, 16])   # 16: the image is decoded at 1/4 size
def test_crop_pixels_line_up_with_transformed_keypoints(tmp_path, crop_size):
    import cv2

    b = write_tiny_build(tmp_path, n_images=1, n_val_images=0, shards=1, image_size=(640, 480))
    t = read_build(b)
    j = MCPC21.joint("left_knee")
    x, y = t.keypoints[0, j]
    canvas = np.zeros((480, 640, 3), np.uint8)
    cv2.circle(canvas, (int(round(x)), int(round(y))), 6, (255, 255, 255), -1)
    cv2.imwrite(t.image_file[0], cv2.GaussianBlur(canvas, (0, 0), 4))
    cfg = replace(CFG, crop_size=crop_size, heatmap_stride=1)
    s = McpcDataset(t, cfg, "train", augment=False)[0]
    bright = s["image"].astype(float).sum(0)
    peak = np.array(np.unravel_index(bright.argmax(), bright.shape))[::-1]
    side = max(t.bbox[0, 2:]) * cfg.context
    assert side / crop_size >= (4 if crop_size == 16 else 1)
    assert np.abs(peak - s["keypoints"][j]).max() <= 1.0
