"""Pre-training losses: heatmap cross-entropy on labelled joints and the pairwise depth-ranking loss.

Heatmaps are softmax distributions (the fine-tuned 3D head reads them by soft-argmax), so the 2D
loss is the cross-entropy between each labelled joint's softmax and its normalised Gaussian target,
minus the target's entropy (a KL divergence: 0 at a perfect fit). ``heatmap_mse`` stays for
comparison.

Per-joint depth (``sample_joint_depth``): the network has one depth map per joint; a pair point
(x, y, joint j) reads map j at (x, y). A hidden joint has a depth of its own, and joint j of a
neighbour in the crop is read from the same map j at the neighbour's joint.

Ranking loss (Chen et al. 2016, "Single-Image Depth Perception in the Wild"), per pair k with
predicted depths z_a, z_b read at the two points:

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


def heatmap_kl(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean KL(target || softmax(logits)) over labelled joints.

    Arguments:
        logits: (B, K, h, w) float heatmap logits.
        target: (B, K, h, w) float non-negative target maps (e.g. Gaussians); normalised here.
        weight: (B, K) float, 1 for a labelled joint inside the crop, 0 otherwise.

    Returns:
        scalar ``sum_{b,k} weight * KL_bk / max(sum weight, 1)`` (nats).
    """
    logp = torch.log_softmax(logits.float().flatten(2), dim=-1)
    t = target.float().flatten(2)
    t = t / t.sum(-1, keepdim=True).clamp(min=1e-12)
    kl = (t * (torch.log(t.clamp(min=1e-12)) - logp)).sum(-1)
    weight = weight.float()
    return (kl * weight).sum() / weight.sum().clamp(min=1.0)


def sample_joint_depth(depth: torch.Tensor, points: torch.Tensor, joint: torch.Tensor,
                       input_size: tuple[int, int]) -> torch.Tensor:
    """Per-joint depths: point p of joint ``joint[b, p]`` reads depth map ``joint[b, p]`` at p.

    Arguments:
        depth: (B, K, h, w) float per-joint depth maps covering the whole input image.
        points: (B, P, 2) float (x, y) in input pixels, 0-based pixel centres.
        joint: (B, P) int64 joint index in [0, K) (negative = padding, read from map 0).
        input_size: (H, W) of the network input, pixels.

    Returns:
        (B, P) float32 depths.
    """
    every = sample_depth(depth, points, input_size, all_channels=True)          # (B, K, P)
    index = joint.long().clamp(min=0, max=depth.shape[1] - 1)
    return every.gather(1, index[:, None, :])[:, 0]


def sample_depth(depth: torch.Tensor, points: torch.Tensor, input_size: tuple[int, int],
                 all_channels: bool = False) -> torch.Tensor:
    """Bilinear samples of a depth map at input-image points.

    Arguments:
        depth: (B, C, h, w) float depth maps covering the whole input image (any stride).
        points: (B, P, 2) float (x, y) in input pixels, 0-based pixel centres.
        input_size: (H, W) of the network input, pixels.
        all_channels: return every channel (B, C, P); else channel 0 (B, P).

    Returns:
        (B, P) (or (B, C, P)) float32 depths (border values for points outside the image).
    """
    height, width = input_size
    # align_corners=False: normalised -1 / +1 are the outer edges of the image, which in
    # pixel-centre coordinates are -0.5 and W - 0.5, at every map resolution alike.
    scale = points.new_tensor([2.0 / width, 2.0 / height])
    grid = (points.float() + 0.5) * scale - 1.0
    out = F.grid_sample(depth.float(), grid.unsqueeze(1), mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out[:, :, 0, :] if all_channels else out[:, 0, 0, :]


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
