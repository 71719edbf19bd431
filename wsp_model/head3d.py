"""3D pose head: integral (soft-argmax) regression on a 2.5D heatmap (Sun et al. 2018).

``IntegralPose3D`` puts a deconvolution head on the (pre-trained) ResNet backbone that predicts,
per joint, a 2D heatmap and a depth map at stride 4. A softmax over each heatmap gives the joint's
expected crop position (u, v) in [0, 1] (differentiable soft-argmax) and its expected
root-relative depth (the depth map averaged under the same weights). ``lift_to_camera`` turns
these into root-relative 3D in mm with the frame's pinhole intrinsics and the root's depth
(ground-truth root depth at training and evaluation, as Integral / mks0601 evaluate; at inference
without one, a depth implied by the training set's mean crop size).
"""

from __future__ import annotations

import torch
from torch import nn

from .model import DeconvHead, ResNetBackbone, normalise_image


def soft_argmax(logits: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integral regression.

    Arguments:
        logits: (B, J, h, w) unnormalised heatmaps.
        depth: (B, J, h, w) per-pixel depth values (any unit).

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


def lift_to_camera(uv: torch.Tensor, z_rel_mm: torch.Tensor, box: torch.Tensor, f: torch.Tensor,
                   c: torch.Tensor, root_depth_mm: torch.Tensor, root: int) -> torch.Tensor:
    """Back-project crop positions and relative depths to root-relative camera-frame 3D.

    Arguments:
        uv: (B, J, 2) crop-normalised positions in [0, 1].
        z_rel_mm: (B, J) depth relative to the root, mm (re-centred on the root here).
        box: (B, 3) crop [centre x, centre y, side], original px.
        f, c: (B, 2) pinhole intrinsics, px.
        root_depth_mm: (B,) root depth, mm.
        root: root joint index.

    Returns:
        (B, J, 3) float32 root-relative 3D, mm (the root is exactly 0).
    """
    px = (uv - 0.5) * box[:, None, 2:3] + box[:, None, :2]                  # original pixels
    z = root_depth_mm[:, None] + (z_rel_mm - z_rel_mm[:, root:root + 1])
    xy = (px - c[:, None]) / f[:, None] * z[..., None]
    p = torch.cat([xy, z[..., None]], dim=-1)
    return p - p[:, root:root + 1]


class IntegralPose3D(nn.Module):
    """Backbone + 2.5D integral head.

    Arguments:
        backbone: a ``ResNetBackbone`` (pre-trained or fresh).
        num_joints: J.
        deconv_layers, deconv_filters: the head's transposed convolutions (3 -> stride 4).
        depth_range_mm: the depth maps' unit: a raw value of 1 is this many mm.

    ``forward(image (B, 3, H, W) uint8 RGB) -> {"uv": (B, J, 2), "z_rel": (B, J) mm,
    "heatmaps": (B, J, h, w) softmax weights}``.
    """

    def __init__(self, backbone: ResNetBackbone, num_joints: int = 17, deconv_layers: int = 3,
                 deconv_filters: int = 256, depth_range_mm: float = 1000.0):
        super().__init__()
        self.backbone = backbone
        self.num_joints = num_joints
        self.depth_range_mm = float(depth_range_mm)
        self.head = DeconvHead(backbone.out_channels, 2 * num_joints, deconv_layers, deconv_filters)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = self.head(self.backbone(normalise_image(image)))
        j = self.num_joints
        uv, z, prob = soft_argmax(maps[:, :j], maps[:, j:])
        return {"uv": uv, "z_rel": z * self.depth_range_mm, "heatmaps": prob}


def load_finetuned(checkpoint: str | dict, device: str | torch.device = "cpu") -> tuple[IntegralPose3D, dict]:
    """A fine-tuned checkpoint (``wsp_model.finetune``) -> (model in eval mode, its meta dict).

    The meta holds ``backbone`` {depth, width}, ``head`` {deconv_layers, deconv_filters,
    depth_range_mm}, ``layout``, ``crop`` (the CropConfig fields) and ``mean_crop_mm``.
    """
    ckpt = checkpoint if isinstance(checkpoint, dict) else torch.load(
        checkpoint, map_location="cpu", weights_only=False)
    meta = ckpt.get("meta", {})
    if meta.get("kind") != "finetune":
        raise ValueError(f"{checkpoint if isinstance(checkpoint, str) else 'checkpoint'}: "
                         "not a fine-tuned 3D checkpoint (meta.kind != 'finetune')")
    bb, hd = meta["backbone"], meta["head"]
    model = IntegralPose3D(ResNetBackbone(bb["depth"], bb["width"]), meta["num_joints"],
                           hd["deconv_layers"], hd["deconv_filters"], hd["depth_range_mm"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), meta


@torch.no_grad()
def predict_batches(model: IntegralPose3D, batches, root: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` over collated ``Pose3DCrops`` batches.

    Returns:
        pred (N, J, 3) and gt (N, J, 3) float32 root-relative mm, in batch order (CPU).
    """
    preds, gts = [], []
    for batch in batches:
        out = model(batch["image"])
        preds.append(lift_to_camera(out["uv"], out["z_rel"], batch["box"], batch["f"], batch["c"],
                                    batch["root_depth"], root).float().cpu())
        gts.append(batch["joints_rel"].float().cpu())
    if not preds:
        return torch.zeros(0, model.num_joints, 3), torch.zeros(0, model.num_joints, 3)
    return torch.cat(preds), torch.cat(gts)
