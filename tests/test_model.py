"""ResNet backbone (torchvision key names) + the per-joint 2.5D head: shapes, weights, checkpoints."""

import pytest
import torch

from wsp_model.config import ModelConfig
from wsp_model.model import (BalancedFork, IntegralPose3D, PoseNet25D, ResNetBackbone,
                             build_model, build_pose_net, fork, layout_matrix, load_model,
                             load_torchvision_weights, normalise_image, soft_argmax)


@pytest.mark.parametrize("depth,expansion", [(18, 1), (34, 1), (50, 4)])
def test_backbone_outputs_stride_32_features_with_declared_channels(depth, expansion):
    net = ResNetBackbone(depth, width=8).eval()
    x = torch.randn(2, 3, 64, 96)
    feats = net.features(x)
    assert [f.shape[-2:] for f in feats] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert net.out_channels == 8 * 8 * expansion == feats[-1].shape[1]
    assert net(x).shape == (2, net.out_channels, 2, 3)


def test_backbone_keys_follow_torchvision_resnet_names():
    keys = set(ResNetBackbone(50, width=8).state_dict())
    for k in ("conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer1.0.bn3.weight",
              "layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_mean",
              "layer4.2.conv3.weight"):
        assert k in keys
    assert not any(k.startswith(("stem", "fc")) for k in keys)
    keys18 = set(ResNetBackbone(18, width=8).state_dict())
    assert "layer2.0.downsample.0.weight" in keys18 and "layer1.0.downsample.0.weight" not in keys18


def _torchvision_layout_state(depth: int) -> dict:
    """A random state_dict in torchvision's ResNet layout (our keys + a 1000-way ``fc``)."""
    torch.manual_seed(1)
    state = {k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v.clone()
             for k, v in ResNetBackbone(depth, 64).state_dict().items()}
    state["fc.weight"] = torch.randn(1000, 512 if depth < 50 else 2048)
    state["fc.bias"] = torch.randn(1000)
    return state


def test_torchvision_checkpoint_loads_into_the_backbone(tmp_path):
    state = _torchvision_layout_state(18)
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    net = build_pose_net(ModelConfig(depth=18, width=64, deconv_filters=8,
                                     backbone_weights=str(path)))
    assert torch.equal(net.backbone.state_dict()["layer3.1.conv2.weight"],
                       state["layer3.1.conv2.weight"])
    assert torch.equal(net.backbone.conv1.weight, state["conv1.weight"])
    # a DDP-style "module." prefix inside {"state_dict": ...} loads too
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, tmp_path / "ddp.pth")
    fresh = load_torchvision_weights(ResNetBackbone(18, 64), tmp_path / "ddp.pth")
    assert torch.equal(fresh.bn1.running_mean, state["bn1.running_mean"])


def test_torchvision_checkpoint_of_another_depth_is_refused_naming_the_file(tmp_path):
    torch.save(_torchvision_layout_state(18), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match="r18.pth.*ResNet-34"):
        load_torchvision_weights(ResNetBackbone(34, 64), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match="shape"):
        load_torchvision_weights(ResNetBackbone(18, 32), tmp_path / "r18.pth")
    with pytest.raises(FileNotFoundError):
        load_torchvision_weights(ResNetBackbone(18, 64), tmp_path / "missing.pth")


def test_head_predicts_a_heatmap_and_a_depth_map_per_joint_at_stride_4():
    net = build_pose_net(ModelConfig(depth=18, width=8, deconv_filters=16, num_joints=21))
    out = net(torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8))
    assert out["heatmaps"].shape == (2, 21, 16, 16)
    assert out["depth"].shape == (2, 21, 16, 16)
    assert net.stride == 4


def test_unknown_depth_is_refused():
    with pytest.raises(ValueError, match="18"):
        ResNetBackbone(101)


def test_soft_argmax_reads_position_and_depth_under_the_peak():
    logits = torch.full((1, 2, 8, 8), -50.0)
    logits[0, 0, 2, 5] = 50.0                    # joint 0 at column 5, row 2
    logits[0, 1, 7, 0] = 50.0
    depth = torch.zeros(1, 2, 8, 8)
    depth[0, 0, 2, 5] = 3.0
    depth[0, 1] = -1.0
    uv, z, prob = soft_argmax(logits, depth)
    assert uv[0, 0].tolist() == pytest.approx([5.5 / 8, 2.5 / 8])
    assert uv[0, 1].tolist() == pytest.approx([0.5 / 8, 7.5 / 8])
    assert z[0].tolist() == pytest.approx([3.0, -1.0])
    assert prob.sum(dim=(2, 3))[0].tolist() == pytest.approx([1.0, 1.0])


def test_layout_matrix_copies_shared_joints_and_averages_h36m_spine():
    from mcpc_builder import joints

    m = layout_matrix("mcpc21", "h36m17")
    assert m.shape == (17, 21)
    assert torch.allclose(m.sum(1), torch.ones(17))
    spine = joints.H36M17.joint("spine")
    pelvis, thorax = joints.MCPC21.joint("pelvis"), joints.MCPC21.joint("thorax")
    assert m[spine, pelvis] == 0.5 and m[spine, thorax] == 0.5
    assert m[joints.H36M17.joint("left_wrist"), joints.MCPC21.joint("left_wrist")] == 1.0
    with pytest.raises(ValueError, match="head_top"):
        layout_matrix("coco17", "h36m17")


def test_3d_model_keeps_the_whole_pretrained_network():
    net = PoseNet25D(ResNetBackbone(18, 8), 21, 2, 8)
    model = IntegralPose3D(net, "h36m17", depth_scale_mm=500.0).eval()
    own = {k for k in model.state_dict() if k.startswith("net.")}
    assert own == {"net." + k for k in net.state_dict()}
    out = model(torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8))
    assert out["uv"].shape == (2, 17, 2) and out["z_rel"].shape == (2, 17)
    # z is the pre-trained per-joint depth times the metric scale, mapped to H36M joints
    raw = net(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    _, z, _ = soft_argmax(raw["heatmaps"], raw["depth"])
    mapped = layout_matrix("mcpc21", "h36m17") @ z[0]
    got = model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))["z_rel"][0]
    assert torch.allclose(got, mapped * 500.0, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["pose25d", "pose3d"])
def test_load_model_rebuilds_from_checkpoint_args_with_weights_only(tmp_path, kind):
    torch.manual_seed(0)
    net = PoseNet25D(ResNetBackbone(18, 8), 21, 2, 8)
    model = net if kind == "pose25d" else IntegralPose3D(net, "h36m17")
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "meta": {"model_args": model.model_args(),
                                                      "synthetic_sources": ["coco"]}}, path)
    loaded, meta = load_model(path)
    assert type(loaded) is type(model) and meta["synthetic_sources"] == ["coco"]
    x = torch.randint(0, 255, (1, 3, 32, 32), dtype=torch.uint8)
    model.eval()
    key = "heatmaps"
    assert torch.equal(loaded(x)[key], model(x)[key])
    assert build_model(model.model_args()).state_dict().keys() == model.state_dict().keys()


def test_load_model_refuses_a_checkpoint_without_model_args(tmp_path):
    torch.save({"model": {}, "meta": {"kind": "pretrain"}}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="model_args"):
        load_model(tmp_path / "old.pt")


def test_normalise_image_maps_imagenet_mean_to_zero():
    mean = torch.tensor([0.485, 0.456, 0.406]) * 255
    image = mean.round().to(torch.uint8).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert normalise_image(image).abs().max().item() < 0.01


def test_shared_depth_adds_one_scene_map_to_every_joints_residual():
    torch.manual_seed(0)
    net = PoseNet25D(ResNetBackbone(18, 8), 21, 2, 8, shared_depth=True).eval()
    assert net.head.final.out_channels == 43
    with torch.no_grad():
        net.head.final.bias.zero_()
        net.head.final.bias[42] = 2.0           # the scene map
        net.head.final.bias[21 + 3] = -0.5      # joint 3's residual
    out = net(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    maps = net.head(net.backbone(normalise_image(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))))
    assert torch.allclose(out["depth"], maps[:, 21:42] + maps[:, 42:43])
    assert out["depth"].shape == (1, 21, 4, 4)      # 2 deconvolutions: stride 8
    rebuilt = build_model(net.model_args())
    assert rebuilt.shared_depth and rebuilt.head.final.out_channels == 43


def test_separate_depth_head_keeps_the_heatmaps_free_of_the_depth_loss_and_round_trips():
    torch.manual_seed(0)
    net = PoseNet25D(ResNetBackbone(18, 8), 21, 2, 8, separate_depth_head=True)
    assert net.head.final.out_channels == 21 and net.depth_head.final.out_channels == 21
    out = net(torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8))
    assert out["heatmaps"].shape == out["depth"].shape == (2, 21, 4, 4)
    out["depth"].sum().backward()               # a depth loss ...
    assert all(p.grad is None for p in net.head.parameters())       # ... never reaches the heatmaps
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.depth_head.parameters())
    assert any(p.grad is not None for p in net.backbone.parameters())   # the backbone is shared
    rebuilt = build_model(net.model_args())
    assert rebuilt.separate_depth_head and rebuilt.depth_head.final.out_channels == 21
    rebuilt.load_state_dict(net.state_dict())
    both = PoseNet25D(ResNetBackbone(18, 8), 21, 2, 8, shared_depth=True, separate_depth_head=True)
    assert both.depth_head.final.out_channels == 22      # 21 residuals + the scene map
    old = dict(net.model_args())
    del old["separate_depth_head"]                     # checkpoints written before the option
    assert build_model(old).depth_head is None


def test_balanced_fork_caps_the_depth_branch_gradient_at_ratio_times_the_heatmaps():
    x = torch.zeros(3, 4, requires_grad=True)
    u, v = torch.randn(3, 4), 10 * torch.randn(3, 4)
    for ratio in (0.5, 1.0, 100.0):
        a, b = BalancedFork.apply(x, ratio)
        x.grad = None
        ((a * u).sum() + (b * v).sum()).backward()
        scale = min(1.0, ratio * u.norm().item() / v.norm().item())
        assert torch.allclose(x.grad, u + scale * v, atol=1e-5)
    a, b = fork(x, None)
    assert a is x and b is x                        # no ratio: no fork at all
    with pytest.raises(ValueError, match="depth_grad_ratio"):
        fork(x, 0.0)
    a, b = BalancedFork.apply(x, 1.0)               # only the depth branch used: passed as it is
    x.grad = None
    (b * v).sum().backward()
    assert torch.allclose(x.grad, v)


@pytest.mark.parametrize("separate", [False, True])
def test_depth_grad_ratio_keeps_outputs_and_own_parameters_and_shrinks_the_shared_gradient(separate):
    torch.manual_seed(0)
    net = PoseNet25D(ResNetBackbone(18, 8), 21, 2, 8, separate_depth_head=separate)
    image = torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8)
    grads, outs = [], []
    for ratio, depth_weight in ((None, 1e4), (1e9, 1e4), (0.1, 1e4), (None, 0.0)):
        net.zero_grad()
        torch.manual_seed(1)
        out = net(image, depth_grad_ratio=ratio)
        (out["heatmaps"].logsumexp((2, 3)).mean() + depth_weight * out["depth"].mean()).backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
        outs.append(out)
    plain, loose, tight, heatmaps_only = grads
    assert torch.allclose(outs[0]["heatmaps"], outs[2]["heatmaps"], atol=1e-6)
    assert torch.allclose(outs[0]["depth"], outs[2]["depth"], atol=1e-6)
    for name in plain:            # a ratio never reached: the gradients of the plain network
        assert torch.allclose(plain[name], loose[name], atol=1e-6, rtol=1e-4), name
    own = "depth_head.final.weight" if separate else "head.final.weight"
    assert torch.allclose(plain[own], tight[own], atol=1e-6)    # each branch's own weights: as they are
    stem = "backbone.conv1.weight"                              # shared: the depth part capped
    assert (tight[stem] - heatmaps_only[stem]).norm() < 0.5 * (plain[stem] - heatmaps_only[stem]).norm()
