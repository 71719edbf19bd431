"""Pre-training losses: heatmap MSE on labelled joints and the pairwise depth-ranking loss.

Ranking loss (Chen et al. 2016, "Single-Image Depth Perception in the Wild"), per pair k with
predicted depths z_a, z_b sampled from the depth map at the two points:

    psi_k = log(1 + exp(r_k * (z_a - z_b)))   if r_k = +1 / -1
    psi_k = (z_a - z_b) ** 2                  if r_k = 0 (about equal depth)

Our label ``r = +1`` means "a is closer to the camera than b" and the depth map grows with
distance, so ``r = +1`` asks for ``z_a < z_b``: this is Chen's loss ``log(1 + exp(-r'(z_a - z_b)))``
with their ``r' = -r`` (their relation reads "a farther"). The loss of a batch is
``sum_k s_k * c_k * psi_k / sum_k s_k`` over valid pairs: a pair of confidence c counts c times a
sure one, and ``s_k`` is ``within_person_weight`` for a pair of two joints of one person, 1 for a
cross-person pair (with the default weight 1 this is the plain mean over valid pairs). Cross-person
labels ("every joint of the nearer person is closer") outnumber within-person ones by an order of
magnitude; a weight above 1 keeps the within-person order from being drowned out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def heatmap_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean squared heatmap error over labelled joints.

    Arguments:
        pred, target: (B, K, h, w) float heatmaps (target peaks at 1).
        weight: (B, K) float, 1 for a labelled joint inside the crop, 0 otherwise.

    Returns:
        scalar: ``sum_{b,k} weight * mean_{h,w} (pred - target)^2 / max(sum weight, 1)``.
    """
    per_joint = (pred.float() - target.float()).pow(2).mean(dim=(2, 3))
    weight = weight.float()
    return (per_joint * weight).sum() / weight.sum().clamp(min=1.0)


def sample_depth(depth: torch.Tensor, points: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
    """Bilinear samples of a depth map at input-image points.

    Arguments:
        depth: (B, 1, h, w) float depth map covering the whole input image (any stride).
        points: (B, P, 2) float (x, y) in input pixels, 0-based pixel centres.
        input_size: (H, W) of the network input, pixels.

    Returns:
        (B, P) float32 depths (border values for points outside the image).
    """
    height, width = input_size
    # align_corners=False: normalised -1 / +1 are the outer edges of the image, which in
    # pixel-centre coordinates are -0.5 and W - 0.5, at every map resolution alike.
    scale = points.new_tensor([2.0 / width, 2.0 / height])
    grid = (points.float() + 0.5) * scale - 1.0
    out = F.grid_sample(depth.float(), grid.unsqueeze(1), mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out[:, 0, 0, :]


def ranking_loss(z_a: torch.Tensor, z_b: torch.Tensor, label: torch.Tensor,
                 confidence: torch.Tensor, mask: torch.Tensor, cross: torch.Tensor | None = None,
                 within_person_weight: float = 1.0) -> torch.Tensor:
    """Confidence-weighted pairwise ranking loss (see module docstring).

    Arguments:
        z_a, z_b: (...,) float predicted depths of the pair's two points (larger = farther).
        label: (...,) int/float, +1 a closer, -1 a farther, 0 about equal.
        confidence: (...,) float in (0, 1].
        mask: (...,) bool, False for padding.
        cross: (...,) bool, True for a cross-person pair; needed when ``within_person_weight``
            is not 1 (None: every pair counts 1).
        within_person_weight: share s of a within-person pair relative to a cross-person one.

    Returns:
        scalar ``sum(s * c * psi) / sum(s)`` over valid pairs (s = 1 for cross pairs; 0 when
        no pair counts).
    """
    diff = z_a.float() - z_b.float()
    label = label.to(diff.dtype)
    ordered = F.softplus(label * diff)
    term = torch.where(label == 0, diff.pow(2), ordered)
    share = mask.to(diff.dtype)
    if within_person_weight != 1.0:
        if cross is None:
            raise ValueError("within_person_weight != 1 needs the pairs' cross-person flags")
        if within_person_weight < 0:
            raise ValueError(f"within_person_weight must be >= 0, got {within_person_weight}")
        share = share * torch.where(cross.bool(), 1.0, float(within_person_weight)).to(diff.dtype)
    weight = confidence.to(diff.dtype) * share
    # no valid pair (or only zero-weight ones): the numerator is 0 too, so the loss is 0
    return (weight * term).sum() / share.sum().clamp(min=1e-6)


def pair_order_correct(z_a: torch.Tensor, z_b: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """(...,) bool: the predicted order agrees with an ordered label (+1 needs z_a < z_b)."""
    return torch.sign(z_b.float() - z_a.float()) == label.float()
