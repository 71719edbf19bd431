"""Plain-torch ResNet backbone and the pre-training head (2D heatmaps + dense relative depth).

``ResNetBackbone(depth, width)`` is a ResNet-18/34/50 (He et al. 2016) without the classifier:
``forward(x) -> (B, out_channels, H/32, W/32)``; ``features(x)`` returns all four stages
(strides 4, 8, 16, 32) for heads that want them. Weights start from He initialisation; nothing is
downloaded. ``PoseDepthNet`` puts a SimpleBaseline deconvolution head (Xiao et al. 2018) on it
and predicts K keypoint heatmaps and one relative-depth map at stride 4.

Fine-tuning reuses the backbone: build a ``ResNetBackbone`` with the same ``depth``/``width``,
load ``backbone_state_dict(checkpoint)`` into it, and add another head on
``backbone.out_channels`` channels.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig

# depth -> (block type, blocks per stage)
RESNET_STAGES = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
                 50: ("bottleneck", (3, 4, 6, 3))}


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalise_image(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 RGB (0-255) -> float32 normalised with ImageNet mean / std.

    Every model input goes through this (pre-training and fine-tuning alike); the memory format
    of ``image`` (e.g. channels_last) is kept.
    """
    mean = image.new_tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    std = image.new_tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    return (image.float() - mean) / std


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, ch: int, stride: int = 1):
        super().__init__()
        out_ch = ch * self.expansion
        self.conv1 = nn.Conv2d(in_ch, ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, stride, 1, bias=False)  # stride on the 3x3 (ResNet v1.5)
        self.bn2 = nn.BatchNorm2d(ch)
        self.conv3 = nn.Conv2d(ch, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


class ResNetBackbone(nn.Module):
    """ResNet-18/34/50 feature extractor.

    Arguments:
        depth: 18, 34 or 50.
        width: channels of the stem and first stage (64 = standard); stages use width * 1/2/4/8.
    """

    def __init__(self, depth: int = 50, width: int = 64):
        super().__init__()
        if depth not in RESNET_STAGES:
            raise ValueError(f"ResNet depth must be one of {sorted(RESNET_STAGES)}, got {depth}")
        kind, blocks = RESNET_STAGES[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.depth, self.width = depth, width
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1))
        stages, in_ch = [], width
        for i, n in enumerate(blocks):
            ch = width * 2 ** i
            layers = []
            for j in range(n):
                layers.append(block(in_ch, ch, stride=2 if (j == 0 and i > 0) else 1))
                in_ch = ch * block.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = in_ch
        self.stage_channels = tuple(width * 2 ** i * block.expansion for i in range(4))
        _init_weights(self)
        # Zero the last BN of each residual branch: blocks start as identities (Goyal et al. 2017).
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (B, 3, H, W) normalised image -> the four stage outputs at strides 4, 8, 16, 32."""
        x = self.stem(x)
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) -> (B, out_channels, H/32, W/32)."""
        return self.features(x)[-1]


class DeconvHead(nn.Module):
    """Stride-2 transposed convolutions (+BN+ReLU) then a 1x1 conv to ``out_channels`` maps."""

    def __init__(self, in_channels: int, out_channels: int, layers: int = 3, filters: int = 256):
        super().__init__()
        mods, ch = [], in_channels
        for _ in range(layers):
            mods += [nn.ConvTranspose2d(ch, filters, 4, 2, 1, bias=False),
                     nn.BatchNorm2d(filters), nn.ReLU(inplace=True)]
            ch = filters
        self.deconv = nn.Sequential(*mods)
        self.final = nn.Conv2d(ch, out_channels, 1)
        _init_weights(self)
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.deconv(x))


class PoseDepthNet(nn.Module):
    """Backbone + deconvolution head: K keypoint heatmaps and one relative-depth map.

    ``forward(image (B,3,H,W)) -> {"heatmaps": (B,K,h,w), "depth": (B,1,h,w)}`` with
    ``h = H / 2**(5 - deconv_layers)``. ``depth`` is relative depth along the camera axis
    (larger = farther), defined up to an offset and scale; only its order is supervised.
    """

    def __init__(self, backbone: ResNetBackbone, num_joints: int = 21, deconv_layers: int = 3,
                 deconv_filters: int = 256):
        super().__init__()
        self.backbone = backbone
        self.num_joints = num_joints
        self.head = DeconvHead(backbone.out_channels, num_joints + 1, deconv_layers, deconv_filters)
        self.stride = 2 ** (5 - deconv_layers)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = self.head(self.backbone(image))
        return {"heatmaps": maps[:, :self.num_joints], "depth": maps[:, self.num_joints:]}


def build_pose_depth_net(cfg: ModelConfig) -> PoseDepthNet:
    return PoseDepthNet(ResNetBackbone(cfg.depth, cfg.width), cfg.num_joints, cfg.deconv_layers,
                        cfg.deconv_filters)


def backbone_state_dict(checkpoint: dict | str) -> dict[str, torch.Tensor]:
    """The ``backbone.*`` weights of a pre-training checkpoint (dict or path), prefix removed."""
    if not isinstance(checkpoint, dict):
        checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = checkpoint.get("model", checkpoint)
    return {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
