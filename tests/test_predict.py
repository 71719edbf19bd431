"""`wsp-predict` on a synthetic frame with a tiny fine-tuned-format checkpoint."""

import json

import cv2
import numpy as np
import pytest
import torch

from wsp_model import head3d, predict
from wsp_model.model import PoseNet25D, ResNetBackbone


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    base = tmp_path_factory.mktemp("predict")
    torch.manual_seed(0)
    model = head3d.IntegralPose3D(PoseNet25D(ResNetBackbone(18, 8), 21, 2, 16), "h36m17")
    meta = {"kind": "finetune", "layout": "h36m17", "num_joints": 17, "dataset": "h36m",
            "model_args": model.model_args(),
            "backbone": {"depth": 18, "width": 8, "init": "scratch"},
            "head": {"deconv_layers": 2, "deconv_filters": 16, "depth_range_mm": 1000.0},
            "crop": {"crop_size": 32, "padding": 1.15, "scale_jitter": 0.0, "shift_jitter": 0.0,
                     "colour_jitter": 0.0}, "mean_crop_mm": 2000.0}
    path = base / "ckpt.pt"
    torch.save({"model": model.state_dict(), "meta": meta}, path)
    img = np.full((120, 160, 3), 90, np.uint8)
    cv2.line(img, (80, 20), (80, 100), (60, 90, 210), 6)
    cv2.imwrite(str(base / "person.jpg"), img)
    return base


def test_predict_writes_root_relative_joints_json_and_png(checkpoint):
    out = checkpoint / "result"
    rc = predict.main(["--checkpoint", str(checkpoint / "ckpt.pt"), "--image",
                       str(checkpoint / "person.jpg"), "--bbox", "60,15,40,90", "--out", str(out)])
    assert rc == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    p = np.array(doc["joints_3d_mm"])
    assert p.shape == (17, 3) and np.allclose(p[0], 0.0)     # pelvis is the root
    assert doc["joint_names"][1] == "right_hip" and doc["root_joint"] == "hip"
    uv = np.array(doc["joints_2d_px"])
    # 2D predictions lie inside the padded person box
    assert (uv[:, 0] > 60 - 30).all() and (uv[:, 0] < 100 + 30).all()
    # the assumed root depth makes the crop span mean_crop_mm: Z = 2000 * f / side
    assert doc["assumed_root_depth_mm"] == pytest.approx(2000 * 160 / (1.15 * 90))
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_predict_rejects_bad_inputs(checkpoint, tmp_path, capsys):
    assert predict.main(["--checkpoint", str(checkpoint / "ckpt.pt"),
                         "--image", str(tmp_path / "missing.jpg")]) == 2
    assert "not a readable image" in capsys.readouterr().err
    assert predict.main(["--checkpoint", str(checkpoint / "ckpt.pt"), "--image",
                         str(checkpoint / "person.jpg"), "--bbox", "1,2,3"]) == 2
    assert "--bbox: expected 4 numbers" in capsys.readouterr().err
    torch.save({"model": {}, "meta": {"kind": "pretrain"}}, tmp_path / "pre.pt")
    assert predict.main(["--checkpoint", str(tmp_path / "pre.pt"), "--image",
                         str(checkpoint / "person.jpg")]) == 2


def _with_meta(checkpoint, tmp_path, **changes):
    from wsp_model.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(checkpoint / "ckpt.pt")
    ckpt["meta"].update(changes)
    return save_checkpoint(ckpt, tmp_path / "changed.pt")


def test_predict_says_when_the_checkpoint_was_trained_on_synthetic_data_only(checkpoint, tmp_path,
                                                                            capsys):
    path = _with_meta(checkpoint, tmp_path, synthetic_sources=["coco", "mpii", "h36m"])
    out = tmp_path / "result"
    assert predict.main(["--checkpoint", str(path), "--image", str(checkpoint / "person.jpg"),
                         "--out", str(out)]) == 0
    assert "NOTE: this checkpoint was trained on synthetic data only (coco, mpii, h36m)" \
        in capsys.readouterr().out
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["trained_on_synthetic_data_only"] is True
    assert doc["synthetic_sources"] == ["coco", "mpii", "h36m"] and "real photos" in doc["note"]


def test_predict_is_silent_about_synthetic_data_when_there_was_none(checkpoint, tmp_path, capsys):
    path = _with_meta(checkpoint, tmp_path, synthetic_sources=[])
    out = tmp_path / "result"
    assert predict.main(["--checkpoint", str(path), "--image", str(checkpoint / "person.jpg"),
                         "--out", str(out)]) == 0
    assert "NOTE" not in capsys.readouterr().out
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["trained_on_synthetic_data_only"] is False and doc["note"] is None


def test_predict_refuses_a_crafted_checkpoint_without_running_it(checkpoint, tmp_path, capsys):
    import os

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"model": {}, "meta": Payload()}, tmp_path / "crafted.pt")
    assert predict.main(["--checkpoint", str(tmp_path / "crafted.pt"), "--image",
                         str(checkpoint / "person.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wsp-predict: error: {tmp_path / 'crafted.pt'}: refused") and not marker.exists()


@pytest.mark.parametrize("option, value, words", [
    ("--bbox", "5000,5000,10,10", "lies outside the 160x120 image"),
    ("--bbox", "-50,10,20,20", "lies outside the 160x120 image"),
    ("--bbox", "nan,1,10,10", "expected finite numbers"),
    ("--bbox", "10,10,0,20", "width and height must be > 0"),
    ("--focal", "0", "expected a finite focal length > 0"),
    ("--focal", "-100", "expected a finite focal length > 0"),
    ("--focal", "nan", "expected a finite focal length > 0"),
    ("--focal", "inf", "expected a finite focal length > 0"),
])
def test_predict_refuses_a_box_off_the_image_and_a_bad_focal_naming_the_option(
        checkpoint, tmp_path, capsys, option, value, words):
    out = tmp_path / "result"
    rc = predict.main(["--checkpoint", str(checkpoint / "ckpt.pt"), "--image",
                       str(checkpoint / "person.jpg"), f"{option}={value}", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"wsp-predict: error: {option}: ") and words in err
    assert not list(tmp_path.iterdir())  # nothing written
