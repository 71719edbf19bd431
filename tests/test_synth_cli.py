"""The `mcpc-build synth` and `mcpc-build render` verbs."""

import json

import cv2

from mcpc_builder.cli import main


def test_synth_verb_writes_a_coco_root_and_refuses_a_non_empty_dir(tmp_path, capsys):
    out = tmp_path / "coco"
    assert main(["synth", "--format", "coco", "--out", str(out), "--n-images", "3",
                 "--seed", "4", "--quiet"]) == 0
    doc = json.loads((out / "annotations/person_keypoints_train2017.json").read_text())
    assert len(doc["images"]) == 2
    assert (out / "annotations/person_keypoints_val2017.json").is_file()
    assert (out / "ground_truth/person_keypoints_train2017.npz").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temp dir renamed
    before = (out / "annotations/person_keypoints_train2017.json").read_bytes()
    capsys.readouterr()
    assert main(["synth", "--format", "coco", "--out", str(out), "--n-images", "3",
                 "--seed", "5", "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "annotations/person_keypoints_train2017.json").read_bytes() == before
    assert main(["synth", "--format", "mpii", "--out", str(out), "--n-images", "2",
                 "--quiet", "--overwrite"]) == 0
    assert (out / "mpii_human_pose_v1_u12_1.mat").is_file()
    assert not (out / "annotations").exists()                # replaced, not merged


def test_render_verb_writes_a_png(tmp_path):
    out = tmp_path / "scene.png"
    assert main(["render", "--out", str(out), "--seed", "3", "--people", "2"]) == 0
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 500 and image.shape[1] > 800


def test_synth_verb_takes_a_world_config_and_rejects_unknown_keys(tmp_path, capsys):
    import numpy as np

    good = tmp_path / "world.yaml"
    good.write_text("child_fraction: 1.0\ndistance: [3, 5]\n")
    out = tmp_path / "kids"
    assert main(["synth", "--format", "coco", "--out", str(out), "--n-images", "6",
                 "--world-config", str(good), "--quiet"]) == 0
    gt = np.load(out / "ground_truth/person_keypoints_train2017.npz")
    real = gt["iscrowd"] == 0
    assert real.sum() > 3 and gt["is_child"][real].all()
    bad = tmp_path / "bad.yaml"
    bad.write_text("distanse: 3\n")
    capsys.readouterr()
    assert main(["synth", "--format", "coco", "--out", str(tmp_path / "x"), "--n-images", "2",
                 "--world-config", str(bad), "--quiet"]) == 2
    assert "distanse" in capsys.readouterr().err
