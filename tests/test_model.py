"""ResNet backbone + deconvolution head: shapes, feature API, checkpoint reuse."""

import pytest
import torch

from wsp_model.config import ModelConfig
from wsp_model.model import (PoseDepthNet, ResNetBackbone, backbone_state_dict,
                             build_pose_depth_net, normalise_image)


@pytest.mark.parametrize("depth,expansion", [(18, 1), (34, 1), (50, 4)])
def test_backbone_outputs_stride_32_features_with_declared_channels(depth, expansion):
    net = ResNetBackbone(depth, width=8).eval()
    x = torch.randn(2, 3, 64, 96)
    feats = net.features(x)
    assert [f.shape[-2:] for f in feats] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert net.out_channels == 8 * 8 * expansion == feats[-1].shape[1]
    assert net(x).shape == (2, net.out_channels, 2, 3)


def test_head_predicts_k_heatmaps_and_one_depth_map_at_stride_4():
    net = build_pose_depth_net(ModelConfig(depth=18, width=8, deconv_filters=16, num_joints=21))
    out = net(torch.randn(2, 3, 64, 64))
    assert out["heatmaps"].shape == (2, 21, 16, 16)
    assert out["depth"].shape == (2, 1, 16, 16)
    assert net.stride == 4


def test_unknown_depth_is_refused():
    with pytest.raises(ValueError, match="18"):
        ResNetBackbone(101)


def test_backbone_weights_transfer_to_a_fresh_backbone():
    net = PoseDepthNet(ResNetBackbone(18, width=8), 21, 2, 8)
    with torch.no_grad():
        net.backbone.stem[0].weight.fill_(0.5)
    fresh = ResNetBackbone(18, width=8)
    missing = fresh.load_state_dict(backbone_state_dict({"model": net.state_dict()}))
    assert not missing.missing_keys and not missing.unexpected_keys
    assert torch.equal(fresh.stem[0].weight, net.backbone.stem[0].weight)


def test_normalise_image_maps_imagenet_mean_to_zero():
    mean = torch.tensor([0.485, 0.456, 0.406]) * 255
    image = mean.round().to(torch.uint8).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert normalise_image(image).abs().max().item() < 0.01
