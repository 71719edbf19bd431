"""3D pose from the shared 2.5D head (Sun et al. 2018, integral regression).

The 3D model is ``model.IntegralPose3D``: the pre-training network ``PoseNet25D`` whole (per
joint a heatmap and a depth map) plus a learned metric depth scale. Its soft-argmax gives each
joint's crop position (u, v) in [0, 1] and its depth read under the same softmax weights, in mm
after the scale. ``lift_to_camera`` turns these into root-relative 3D in mm with the frame's
pinhole intrinsics and the root's depth (ground-truth root depth at training and evaluation, as
Integral / mks0601 evaluate; at inference without one, a depth implied by the training set's mean
crop size). ``load_finetuned`` rebuilds a fine-tuned model from its checkpoint.
"""

from __future__ import annotations

import torch

from .model import IntegralPose3D, load_model, read_checkpoint, soft_argmax

__all__ = ["IntegralPose3D", "soft_argmax", "lift_to_camera", "load_finetuned", "predict_batches"]


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


def load_finetuned(checkpoint: str | dict, device: str | torch.device = "cpu") -> tuple[IntegralPose3D, dict]:
    """A fine-tuned checkpoint (``wsp_model.finetune``) -> (model in eval mode, its meta dict).

    Loaded with ``weights_only=True``; the model is rebuilt from ``meta["model_args"]``. The meta
    also holds ``layout``, ``crop`` (the CropConfig fields), ``mean_crop_mm`` and
    ``synthetic_sources`` (data of the embedded synthetic default this model was trained on).
    """
    ckpt = read_checkpoint(checkpoint)
    if (ckpt.get("meta") or {}).get("kind") != "finetune":
        raise ValueError(f"{checkpoint if isinstance(checkpoint, str) else 'checkpoint'}: "
                         "not a fine-tuned 3D checkpoint (meta.kind != 'finetune')")
    model, meta = load_model(ckpt)
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
