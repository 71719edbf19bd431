"""Plain-torch ResNet backbone and the 2.5D pose head shared by pre-training and fine-tuning.

``ResNetBackbone(depth, width)`` is a ResNet-18/34/50 (He et al. 2016) without the classifier;
its modules carry torchvision's names (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layer2.0.downsample.0``), so a torchvision ResNet ``state_dict`` loads into it
(``load_torchvision_weights``; the user's own file, nothing is downloaded).

``PoseNet25D`` puts a SimpleBaseline deconvolution head (Xiao et al. 2018) on it and predicts, per
joint j of the canonical MCPC-21 layout, a heatmap (softmax logits) and a *depth map*: joint j's
relative depth of ANY person in the crop is map j read at that person's joint-j location. A hidden
joint thus has a depth of its own, not its occluder's, and cross-person pairs compare two maps
(or one map) at two people's joints. Pre-training supervises the heatmaps (softmax cross-entropy
to a Gaussian) and the per-joint depths (pairwise ranking); fine-tuning (``IntegralPose3D``)
keeps this whole network and adds only a metric depth scale: 3D = the same head's soft-argmax 2D
+ its per-joint depth read under the heatmap, in mm (Sun et al. 2018, "Integral regression").

Checkpoints carry their model arguments (``meta["model_args"]``, as nanoGPT's do) and
``load_model(path)`` rebuilds either model from one with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import nn

from mcpc_builder.errors import DataError

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
    """ResNet-18/34/50 feature extractor with torchvision's module names (no ``fc``).

    Arguments:
        depth: 18, 34 or 50.
        width: channels of the stem and first stage (64 = standard, the only width a torchvision
            checkpoint fits); stages use width * 1/2/4/8.
    """

    def __init__(self, depth: int = 50, width: int = 64):
        super().__init__()
        if depth not in RESNET_STAGES:
            raise ValueError(f"ResNet depth must be one of {sorted(RESNET_STAGES)}, got {depth}")
        kind, blocks = RESNET_STAGES[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.depth, self.width = depth, width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
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
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) -> (B, out_channels, H/32, W/32)."""
        return self.features(x)[-1]


def load_torchvision_weights(backbone: ResNetBackbone, path: str | os.PathLike) -> ResNetBackbone:
    """Load a torchvision ResNet checkpoint the user has (e.g. ``resnet50-0676ba61.pth``).

    Accepts a bare ``state_dict`` or a dict holding one under ``state_dict`` / ``model``; a
    ``module.`` prefix (DDP) is removed and the classifier (``fc.*``) ignored. Every backbone
    weight must be present with the right shape, else ``DataError`` naming the file and key.
    Loaded with ``weights_only=True``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: backbone weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling problem is the file's
        raise DataError(path, f"not a torch state_dict readable with weights_only=True "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise DataError(path, f"expected a state_dict (dict of tensors), got {type(state).__name__}")
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise DataError(path, f"not a torchvision ResNet-{backbone.depth} (width "
                         f"{backbone.width}) state_dict: {len(missing)} keys missing (first "
                         f"{missing[:3]}), {len(unexpected)} unexpected (first {unexpected[:3]})")
    for k, v in state.items():
        if not isinstance(v, torch.Tensor) or v.shape != own[k].shape:
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise DataError(path, f"key {k} has shape {shape}, the backbone needs "
                             f"{tuple(own[k].shape)}")
    backbone.load_state_dict(state)
    return backbone


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


class BalancedFork(torch.autograd.Function):
    """Identity into two branches (heatmaps, depth) whose gradients meet on shared features.

    Backward returns ``g_heatmaps + s * g_depth`` with ``s = min(1, ratio * |g_heatmaps| /
    |g_depth|)`` (norms over the batch): the depth branch's gradient on the shared features is at
    most ``ratio`` times the heatmaps'. Why: the pairwise ranking loss's gradient on the shared
    weights is 4-16x the heatmap loss's once trained, 12-14x at initialisation
    (``pipelines.bench.gradient_share``, README), and AdamW divides each weight's step by the
    running size of the summed gradient, so the heatmaps on shared weights moved that much slower
    than in 2D-only pre-training. The balance is taken at the shared representation (as MGDA-UB
    takes its gradients there, Sener & Koltun 2018), so it costs no second backward pass. The
    branches' own parameters are untouched.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, ratio: float):
        ctx.ratio = float(ratio)
        ctx.set_materialize_grads(False)    # an unused branch's gradient stays None, not zeros
        return x.view_as(x), x.view_as(x)

    @staticmethod
    def backward(ctx, g_main: torch.Tensor | None, g_depth: torch.Tensor | None):
        if g_depth is None:
            return g_main, None
        if g_main is None:  # no heatmap gradient: the depth branch alone (nothing to balance)
            return g_depth, None
        n_main, n_depth = g_main.float().norm(), g_depth.float().norm()
        scale = torch.clamp(ctx.ratio * n_main / n_depth.clamp_min(1e-30), max=1.0)
        return g_main + scale.to(g_depth.dtype) * g_depth, None


def fork(x: torch.Tensor, ratio: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(for the heatmaps, for the depth maps): ``x`` twice, gradients balanced by
    ``BalancedFork`` when ``ratio`` is given, untouched when it is None."""
    if ratio is None:
        return x, x
    if not ratio > 0:
        raise ValueError(f"depth_grad_ratio must be > 0, got {ratio}")
    return BalancedFork.apply(x, ratio)


class PoseNet25D(nn.Module):
    """Backbone + deconvolution head: per joint a heatmap and a depth map (see module docstring).

    ``forward(image (B, 3, H, W) uint8 RGB) -> {"heatmaps": (B, K, h, w) logits,
    "depth": (B, K, h, w)}`` with ``h = H / 2**(5 - deconv_layers)``. ``depth[:, j]`` is joint j's
    relative depth along the camera axis (larger = farther), defined up to an offset and scale.
    With ``shared_depth`` the head also predicts one scene depth map D and ``depth[:, j] = D +
    R_j`` (R_j joint j's residual map): every pair teaches D where people are, the residuals
    what is particular to each joint (a hidden joint's own depth, behind its occluder).
    With ``separate_depth_head`` the depth maps come from a deconvolution head of their own
    (``depth_head``) on the shared backbone, so the ranking loss does not compete with the
    heatmaps inside one head (the README's ablation section compares both).
    """

    def __init__(self, backbone: ResNetBackbone, num_joints: int = 21, deconv_layers: int = 3,
                 deconv_filters: int = 256, shared_depth: bool = False,
                 separate_depth_head: bool = False):
        super().__init__()
        self.backbone = backbone
        self.num_joints = num_joints
        self.deconv_layers, self.deconv_filters = deconv_layers, deconv_filters
        self.shared_depth = bool(shared_depth)
        self.separate_depth_head = bool(separate_depth_head)
        depth_maps = num_joints + int(self.shared_depth)
        if self.separate_depth_head:
            self.head = DeconvHead(backbone.out_channels, num_joints, deconv_layers, deconv_filters)
            self.depth_head = DeconvHead(backbone.out_channels, depth_maps, deconv_layers,
                                         deconv_filters)
        else:
            self.head = DeconvHead(backbone.out_channels, num_joints + depth_maps, deconv_layers,
                                   deconv_filters)
            self.depth_head = None
        self.stride = 2 ** (5 - deconv_layers)

    def forward(self, image: torch.Tensor,
                depth_grad_ratio: float | None = None) -> dict[str, torch.Tensor]:
        """``depth_grad_ratio`` (pre-training): cap the depth maps' gradient on the features the
        heatmaps share with them at this multiple of the heatmaps' gradient there
        (``BalancedFork``); None leaves the gradients as they are."""
        features = self.backbone(normalise_image(image))
        k = self.num_joints
        if self.depth_head is not None:
            for_heatmaps, for_depth = fork(features, depth_grad_ratio)
            heatmaps, depth_maps = self.head(for_heatmaps), self.depth_head(for_depth)
        elif depth_grad_ratio is None:
            maps = self.head(features)
            heatmaps, depth_maps = maps[:, :k], maps[:, k:]
        else:
            # the fork sits on the last features both kinds of map share: the deconvolutions'
            # output; the final 1x1 conv's heatmap and depth rows are separate parameters
            shared = self.head.deconv(features)
            for_heatmaps, for_depth = fork(shared, depth_grad_ratio)
            final = self.head.final
            heatmaps = nn.functional.conv2d(for_heatmaps, final.weight[:k], final.bias[:k])
            depth_maps = nn.functional.conv2d(for_depth, final.weight[k:], final.bias[k:])
        depth = depth_maps[:, :k]
        if self.shared_depth:
            depth = depth + depth_maps[:, k:]
        return {"heatmaps": heatmaps, "depth": depth}

    def model_args(self) -> dict:
        """Plain-python arguments that rebuild this network (stored in checkpoints)."""
        return {"kind": "pose25d", "depth": self.backbone.depth, "width": self.backbone.width,
                "num_joints": self.num_joints, "deconv_layers": self.deconv_layers,
                "deconv_filters": self.deconv_filters, "shared_depth": self.shared_depth,
                "separate_depth_head": self.separate_depth_head}


def soft_argmax(logits: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integral regression: expected position and depth under each joint's softmax heatmap.

    Arguments:
        logits: (B, J, h, w) heatmap logits.
        depth: (B, J, h, w) per-joint depth maps (any unit).

    Returns:
        uv (B, J, 2) float32 expected position in [0, 1] (pixel centres at (i + 0.5) / w);
        z (B, J) float32 expected depth; prob (B, J, h, w) the softmax weights.
    """
    b, j, h, w = logits.shape
    prob = torch.softmax(logits.float().flatten(2), dim=-1).view(b, j, h, w)
    xs = (torch.arange(w, device=logits.device, dtype=torch.float32) + 0.5) / w
    ys = (torch.arange(h, device=logits.device, dtype=torch.float32) + 0.5) / h
    u = (prob.sum(dim=2) * xs).sum(-1)
    v = (prob.sum(dim=3) * ys).sum(-1)
    z = (prob * depth.float()).flatten(2).sum(-1)
    return torch.stack([u, v], dim=-1), z, prob


def layout_matrix(src: str, dst: str) -> torch.Tensor:
    """(J_dst, J_src) float32 linear map between joint layouts: a joint both layouts have is
    copied, a ``joints.SYNTHESIS_RULES`` midpoint (e.g. H36M's spine = mid(pelvis, thorax)) is
    averaged; a destination joint neither gives is a ``ValueError``."""
    from mcpc_builder import joints

    s, d = joints.LAYOUTS[src], joints.LAYOUTS[dst]
    vocab = {p: torch.zeros(s.num_joints) for p in joints.BODY_POINTS}
    known = set()
    for i, p in enumerate(s.body_points):
        vocab[p][i] = 1.0
        known.add(p)
    for target, (a, b) in joints.SYNTHESIS_RULES:
        if target not in known and a in known and b in known:
            vocab[target] = 0.5 * (vocab[a] + vocab[b])
            known.add(target)
    missing = [p for p in d.body_points if p not in known]
    if missing:
        raise ValueError(f"layout {src} cannot give {dst} joints {missing}")
    return torch.stack([vocab[p] for p in d.body_points]).float()


class IntegralPose3D(nn.Module):
    """The pre-training network + a metric depth scale: root-relative 3D in the target layout.

    Arguments:
        net: a ``PoseNet25D`` (pre-trained or fresh) over ``src_layout``'s K joints.
        layout: target joint layout name (e.g. ``h36m17``); its joints are a fixed linear map of
            the K canonical joints (``layout_matrix``), so no head weight is new.
        depth_scale_mm: initial metric scale: a raw depth difference of 1 is this many mm
            (learned, as its logarithm).

    ``forward(image (B, 3, H, W) uint8 RGB) -> {"uv": (B, J, 2) crop-normalised, "z_rel": (B, J)
    mm, "heatmaps": (B, K, h, w) softmax weights}``.
    """

    def __init__(self, net: PoseNet25D, layout: str = "h36m17", depth_scale_mm: float = 1000.0,
                 src_layout: str = "mcpc21"):
        super().__init__()
        self.net = net
        self.layout, self.src_layout = layout, src_layout
        matrix = layout_matrix(src_layout, layout)
        if matrix.shape[1] != net.num_joints:
            raise ValueError(f"the network predicts {net.num_joints} joints, layout {src_layout} "
                             f"has {matrix.shape[1]}")
        self.register_buffer("joint_map", matrix)
        self.num_joints = matrix.shape[0]
        self.log_depth_scale = nn.Parameter(torch.tensor(math.log(float(depth_scale_mm))))

    @property
    def backbone(self) -> ResNetBackbone:
        return self.net.backbone

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.net(image)
        uv, z, prob = soft_argmax(out["heatmaps"], out["depth"])
        m = self.joint_map
        return {"uv": torch.einsum("jk,bkc->bjc", m, uv),
                "z_rel": torch.einsum("jk,bk->bj", m, z) * self.log_depth_scale.exp(),
                "heatmaps": prob}

    def model_args(self) -> dict:
        args = self.net.model_args()
        args.update(kind="pose3d", layout=self.layout, src_layout=self.src_layout)
        return args


def build_model(args: dict) -> nn.Module:
    """A fresh ``PoseNet25D`` (``kind`` "pose25d") or ``IntegralPose3D`` ("pose3d") from the
    plain arguments ``model_args()`` returns."""
    net = PoseNet25D(ResNetBackbone(int(args["depth"]), int(args["width"])), int(args["num_joints"]),
                     int(args["deconv_layers"]), int(args["deconv_filters"]),
                     bool(args.get("shared_depth", False)),
                     bool(args.get("separate_depth_head", False)))
    kind = args.get("kind", "pose25d")
    if kind == "pose25d":
        return net
    if kind == "pose3d":
        return IntegralPose3D(net, args["layout"], src_layout=args.get("src_layout", "mcpc21"))
    raise ValueError(f"unknown model kind {kind!r}")


def build_pose_net(cfg: ModelConfig) -> PoseNet25D:
    """The pre-training network of a config (``cfg.backbone_weights``: a torchvision ResNet file)."""
    net = build_model(pose_net_args(cfg))
    if cfg.backbone_weights:
        load_torchvision_weights(net.backbone, cfg.backbone_weights)
    return net


def pose_net_args(cfg: ModelConfig) -> dict:
    """``PoseNet25D.model_args()`` of the network ``build_pose_net(cfg)`` builds."""
    return {"kind": "pose25d", "depth": cfg.depth, "width": cfg.width, "num_joints": cfg.num_joints,
            "deconv_layers": cfg.deconv_layers, "deconv_filters": cfg.deconv_filters,
            "shared_depth": cfg.shared_depth, "separate_depth_head": cfg.separate_depth_head}


def read_checkpoint(checkpoint: dict | str | os.PathLike) -> dict:
    """A checkpoint dict (``torch.load(weights_only=True)`` of a path; a dict is returned as is)."""
    if isinstance(checkpoint, dict):
        return checkpoint
    from .checkpoint import load_checkpoint  # one error naming the file for any unreadable file

    return load_checkpoint(checkpoint)


def load_model(checkpoint: dict | str | os.PathLike) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint holds from its ``meta["model_args"]`` and load its weights.

    Returns (model in eval mode on CPU, the checkpoint's meta). ``ValueError`` when the
    checkpoint has no model arguments (written by an older version).
    """
    ckpt = read_checkpoint(checkpoint)
    meta = ckpt.get("meta", {}) or {}
    args = meta.get("model_args")
    if not args:
        where = checkpoint if not isinstance(checkpoint, dict) else "checkpoint"
        raise ValueError(f"{where}: no meta['model_args']: written by an older version of "
                         "wsp_model; pre-train / fine-tune it again")
    model = build_model(args)
    model.load_state_dict(ckpt["model"])
    return model.eval(), meta


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
