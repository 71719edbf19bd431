"""3D head, crops and fine-tuning on the shared engine (tiny sizes)."""

import json

import numpy as np
import pytest
import torch

from mcpc_builder.synth import h36m_format
from wsp_model import evaluate, h36m, head3d, pose3d_data
from wsp_model.config import ModelConfig, TrainConfig
from wsp_model.finetune import (FinetuneConfig, HeadConfig, backbone_from_init, finetune,
                                fit_depth_scale, network_from_init)
from wsp_model.model import build_pose_net, pose_net_args

TINY_HEAD = HeadConfig(deconv_layers=2, deconv_filters=16, backbone_depth=18, backbone_width=8)
TINY_CROP = pose3d_data.CropConfig(crop_size=32)


def test_soft_argmax_finds_a_sharp_peak_and_its_depth():
    logits = torch.full((1, 1, 4, 8), -50.0)
    logits[0, 0, 1, 6] = 50.0
    depth = torch.zeros(1, 1, 4, 8)
    depth[0, 0, 1, 6] = 0.3
    uv, z, prob = head3d.soft_argmax(logits, depth)
    np.testing.assert_allclose(uv[0, 0].numpy(), [6.5 / 8, 1.5 / 4], atol=1e-6)
    assert z.item() == pytest.approx(0.3, abs=1e-6)
    assert prob.sum().item() == pytest.approx(1.0)


def test_lift_to_camera_inverts_projection_into_the_crop():
    rng = np.random.default_rng(0)
    xc = rng.uniform([-600, -900, 3500], [600, 900, 4500], size=(2, 17, 3))
    f, c = np.array([[1145.0, 1144.0]] * 2), np.array([[512.0, 515.0]] * 2)
    box = np.array([[500.0, 480.0, 420.0], [530.0, 500.0, 380.0]])
    uv_px = xc[..., :2] / xc[..., 2:] * f[:, None] + c[:, None]
    uv = (uv_px - box[:, None, :2]) / box[:, None, 2:] + 0.5
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    rel = head3d.lift_to_camera(t(uv), t(xc[..., 2] - xc[:, :1, 2] + 77.0), t(box), t(f), t(c),
                                t(xc[:, 0, 2]), root=0)
    np.testing.assert_allclose(rel.numpy(), xc - xc[:, :1], atol=1e-6)


def test_crop_puts_a_joint_where_its_target_says(tmp_path):
    import cv2

    img = np.zeros((200, 300, 3), np.uint8)
    cv2.circle(img, (210, 60), 2, (255, 255, 255), -1)
    path = tmp_path / "dot.jpg"
    cv2.imwrite(str(path), img)
    xc = np.zeros((1, 17, 3), np.float32)
    xc[..., 2] = 4000.0
    xc[0, 5] = [(210 - 150) * 4000 / 1000.0, (60 - 100) * 4000 / 1000.0, 4000.0]
    recs = pose3d_data.Pose3DRecords(np.array([str(path)], dtype=object),
                                     np.array([[150, 20, 100, 100]], np.float32), xc,
                                     np.array([[1000.0, 1000.0]], np.float32),
                                     np.array([[150.0, 100.0]], np.float32),
                                     np.array(["a"], dtype=object), "h36m17")
    s = pose3d_data.Pose3DCrops(recs, pose3d_data.CropConfig(crop_size=64, padding=1.0), augment=False)[0]
    u, v = s["uv"][5] * 64 - 0.5
    bright = np.argwhere(s["image"][0] > 128)
    np.testing.assert_allclose(bright.mean(0), [v, u], atol=1.0)
    np.testing.assert_allclose(s["joints_rel"][0], 0.0)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("finetune")
    root = h36m_format.write(base / "h36m", seed=1, n_frames=2, subjects=(1, 9))
    mcfg = ModelConfig(depth=18, width=8, deconv_layers=2, deconv_filters=16)
    torch.manual_seed(0)
    pre = build_pose_net(mcfg)
    with torch.no_grad():   # a recognisable head: fine-tuning must start from these weights
        pre.head.final.bias.copy_(torch.linspace(-1, 1, pre.head.final.bias.numel()))
    torch.save({"model": pre.state_dict(), "meta": {"kind": "pretrain", "model_args": pose_net_args(mcfg),
                                                    "synthetic_sources": ["coco", "mpii"]}},
               base / "pretrained.pt")
    train = pose3d_data.from_h36m(h36m.read_mks0601(root, (1,)), root)
    val = pose3d_data.from_h36m(h36m.read_mks0601(root, (9,), every=2), root)
    cfg = FinetuneConfig(data=TINY_CROP, head=TINY_HEAD, train=TrainConfig(
        max_steps=3, batch_size=8, num_workers=0, log_every=1, progress=False, warmup_steps=1))
    result = finetune(cfg, base / "run", str(base / "pretrained.pt"), train_records=train,
                      val_records=val, synthetic_data="h36m-synthetic")
    return {"base": base, "root": root, "result": result, "pre": pre, "val": val, "train": train}


def test_finetune_starts_from_the_whole_pretrained_network_and_writes_a_loadable_checkpoint(tiny_run):
    ckpt = torch.load(tiny_run["result"].checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["meta"]["kind"] == "finetune" and ckpt["step"] == 3
    assert ckpt["meta"]["backbone"]["width"] == 8
    model, meta = head3d.load_finetuned(str(tiny_run["result"].checkpoint))
    assert meta["layout"] == "h36m17" and meta["mean_crop_mm"] > 500
    assert set(tiny_run["result"].val_metrics) == {"mpjpe", "pa_mpjpe"}
    # the pre-training's synthetic sources, then this run's synthetic data
    assert meta["synthetic_sources"] == ["coco", "mpii", "h36m-synthetic"]
    net, info = network_from_init(str(tiny_run["base"] / "pretrained.pt"), TINY_HEAD)
    for k, v in tiny_run["pre"].state_dict().items():     # backbone AND head
        assert torch.equal(net.state_dict()[k], v), k
    # 3 small steps move the head's bias only a little away from the pre-trained one
    moved = (model.net.head.final.bias - tiny_run["pre"].head.final.bias).abs().max().item()
    assert moved < 0.1
    assert (tiny_run["base"] / "run" / "train_log.csv").exists()


def test_scratch_init_can_start_from_a_torchvision_backbone_file(tmp_path):
    from wsp_model.model import ResNetBackbone

    state = {k: torch.full_like(v, 0.25) if v.is_floating_point() else v
             for k, v in ResNetBackbone(18, 8).state_dict().items()}
    torch.save(state, tmp_path / "tv.pth")
    head = HeadConfig(deconv_layers=2, deconv_filters=16, backbone_depth=18, backbone_width=8,
                      backbone_weights=str(tmp_path / "tv.pth"))
    net, info = network_from_init("scratch", head)
    assert (net.backbone.conv1.weight == 0.25).all() and info["backbone_weights"]


def test_depth_scale_fit_recovers_a_known_scale(tiny_run):
    from wsp_model.finetune import Finetune3DTask
    from wsp_model.model import IntegralPose3D

    class Truth(torch.nn.Module):
        """Outputs the crops' true root-relative depth / 250 as raw depth."""

        def __init__(self, crops):
            super().__init__()
            self.crops = crops
            self.log_depth_scale = torch.nn.Parameter(torch.tensor(0.0))

        def forward(self, image):
            idx = [self.crops.index(image[b]) for b in range(len(image))]
            z = torch.stack([torch.as_tensor(self.crops.z[i]) for i in idx]) / 250.0
            return {"z_rel": z}

    ds = pose3d_data.Pose3DCrops(tiny_run["train"], TINY_CROP, augment=False)
    items = [ds[i] for i in range(len(ds))]

    class Crops:
        images = [torch.from_numpy(it["image"]) for it in items]
        z = [it["joints_rel"][:, 2] for it in items]

        def index(self, img):
            return next(i for i, x in enumerate(self.images) if torch.equal(x, img))

    scale, r2 = fit_depth_scale(Truth(Crops()), ds, len(ds), root=0)
    assert scale == pytest.approx(250.0, rel=1e-4) and r2 == pytest.approx(1.0, abs=1e-6)
    # a fine-tuning task keeps the fallback scale when the fit explains nothing (scratch)
    task = Finetune3DTask(FinetuneConfig(data=TINY_CROP, head=TINY_HEAD), tiny_run["train"], None,
                          "scratch")
    assert isinstance(task.build_model(), IntegralPose3D)
    cal = task.depth_calibration
    assert cal["fitted"] == (cal["fit_r2"] >= TINY_HEAD.min_calibration_r2 and cal["scale_mm"] > 0)


def test_missing_pretrained_checkpoint_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="make pretrain"):
        backbone_from_init(str(tmp_path / "nope.pt"), TINY_HEAD)


def test_l1_training_reduces_the_error_on_a_fixed_batch(tiny_run):
    torch.manual_seed(0)
    from wsp_model.finetune import Finetune3DTask

    cfg = FinetuneConfig(data=TINY_CROP, head=TINY_HEAD)
    task = Finetune3DTask(cfg, tiny_run["train"].subset(np.arange(4)), None, "scratch")
    model = task.build_model()
    ds = task.train_dataset()
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    batch = {k: torch.as_tensor(v) for k, v in batch.items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss, _ = task.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_evaluate_writes_results_table_and_skeleton_png(tiny_run, tmp_path):
    rep = evaluate.evaluate(tiny_run["result"].checkpoint, tmp_path, "h36m",
                            records=tiny_run["val"], n_figures=2)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["num_frames"] == len(tiny_run["val"])
    assert set(saved["mpjpe"]["per_action"]) == {"Directions", "Sitting", "SittingDown", "Photo",
                                                 "Walking", "WalkDog"}
    assert "avg (actions)" in rep["table"]
    assert (tmp_path / "skeletons.png").read_bytes()[:4] == b"\x89PNG"


def test_ablation_world_records_are_consistent_crops(tmp_path):
    from pipelines.ablation import studio_config, synthetic_records

    recs = synthetic_records(studio_config(), 3, seed=0, out_dir=tmp_path / "w")
    assert len(recs) == 3 and recs.layout == "h36m17"
    uv = recs.joints_cam[..., :2] / recs.joints_cam[..., 2:] * recs.f[:, None] + recs.c[:, None]
    x, y, w, h = recs.bbox.T
    assert ((uv[..., 0] >= x[:, None]) & (uv[..., 0] <= (x + w)[:, None])).all()
    assert ((uv[..., 1] >= y[:, None]) & (uv[..., 1] <= (y + h)[:, None])).all()
    again = synthetic_records(studio_config(), 3, seed=0, out_dir=tmp_path / "w")  # cached
    np.testing.assert_array_equal(again.joints_cam, recs.joints_cam)
    # 1-3 are the right leg: the right hip is ~hip-width from the left hip, not on top of it
    assert (np.linalg.norm(recs.joints_cam[:, 1] - recs.joints_cam[:, 4], axis=-1) > 100).all()
