"""Pre-training losses against hand-computed values and gradients."""

import math

import pytest
import torch

from wsp_model.losses import (heatmap_kl, heatmap_mse, pair_order_correct, ranking_loss,
                               sample_depth, sample_joint_depth)


def test_ranking_loss_matches_hand_values_for_each_label():
    z_a = torch.tensor([0.0, 0.0, 0.0])
    z_b = torch.tensor([1.0, 1.0, 1.0])
    ones = torch.ones(3, dtype=torch.bool)
    # +1 (a closer) and a is indeed nearer: log(1 + e^-1); -1: log(1 + e^1); 0: (0 - 1)^2.
    expect = [math.log1p(math.exp(-1.0)), math.log1p(math.exp(1.0)), 1.0]
    for i, label in enumerate((1.0, -1.0, 0.0)):
        loss = ranking_loss(z_a[i:i + 1], z_b[i:i + 1], torch.tensor([label]), torch.ones(1),
                            ones[i:i + 1])
        assert loss.item() == pytest.approx(expect[i], rel=1e-6)


def test_ranking_loss_weights_by_confidence_and_ignores_padding():
    z_a = torch.tensor([0.0, 2.0, 5.0])
    z_b = torch.tensor([1.0, 2.0, -7.0])
    label = torch.tensor([1.0, 0.0, 1.0])
    conf = torch.tensor([0.5, 1.0, 1.0])
    mask = torch.tensor([True, True, False])
    loss = ranking_loss(z_a, z_b, label, conf, mask)
    # (0.5 * log(1 + e^-1) + 1.0 * 0) / 2 valid pairs; the padded pair contributes nothing.
    assert loss.item() == pytest.approx(0.5 * math.log1p(math.exp(-1.0)) / 2, rel=1e-6)


def test_within_person_weight_shares_the_loss_between_pair_kinds():
    # cross pair: label +1, equal depths -> log 2, confidence 1; within pair: label 0, depths
    # 1 vs 0 -> 1, confidence 0.5; third pair is padding.
    z_a = torch.tensor([0.0, 1.0, 9.0])
    z_b = torch.tensor([0.0, 0.0, -9.0])
    label = torch.tensor([1.0, 0.0, 1.0])
    conf = torch.tensor([1.0, 0.5, 1.0])
    mask = torch.tensor([True, True, False])
    cross = torch.tensor([True, False, True])
    log2 = math.log(2.0)
    # weight 3: (1 * log 2 + 3 * 0.5 * 1) / (1 + 3)
    loss = ranking_loss(z_a, z_b, label, conf, mask, cross, within_person_weight=3.0)
    assert loss.item() == pytest.approx((log2 + 1.5) / 4.0, rel=1e-6)
    # weight 1 is the plain mean over valid pairs, with or without the flags
    plain = (log2 + 0.5) / 2.0
    assert ranking_loss(z_a, z_b, label, conf, mask, cross, 1.0).item() == pytest.approx(plain, rel=1e-6)
    assert ranking_loss(z_a, z_b, label, conf, mask).item() == pytest.approx(plain, rel=1e-6)
    # weight 0 leaves only the cross pair
    assert ranking_loss(z_a, z_b, label, conf, mask, cross, 0.0).item() == pytest.approx(log2, rel=1e-6)
    # only zero-weight pairs: no loss rather than 0 / 0
    only_within = torch.tensor([False, True, False])
    assert ranking_loss(z_a, z_b, label, conf, only_within, cross, 0.0).item() == 0.0


def test_within_person_weight_needs_the_cross_flags():
    one = torch.ones(1)
    with pytest.raises(ValueError, match="cross-person flags"):
        ranking_loss(one, one, one, one, torch.ones(1, dtype=torch.bool), within_person_weight=2.0)


def test_ranking_loss_gradient_pushes_closer_point_to_smaller_depth():
    z_a = torch.tensor([0.3], requires_grad=True)
    z_b = torch.tensor([0.1], requires_grad=True)
    ranking_loss(z_a, z_b, torch.tensor([1.0]), torch.tensor([0.8]),
                 torch.tensor([True])).backward()
    # d/dz_a c * log(1 + exp(d)) = c * sigmoid(d), d = 0.2; d/dz_b is its negative.
    sig = 1.0 / (1.0 + math.exp(-0.2))
    assert z_a.grad.item() == pytest.approx(0.8 * sig, rel=1e-6)
    assert z_b.grad.item() == pytest.approx(-0.8 * sig, rel=1e-6)


def test_equal_pair_gradient_is_twice_the_difference():
    z_a = torch.tensor([0.5], requires_grad=True)
    z_b = torch.tensor([0.2], requires_grad=True)
    ranking_loss(z_a, z_b, torch.tensor([0.0]), torch.tensor([1.0]), torch.tensor([True])).backward()
    assert z_a.grad.item() == pytest.approx(0.6, rel=1e-6)
    assert z_b.grad.item() == pytest.approx(-0.6, rel=1e-6)


def test_sample_depth_reads_pixel_centres_and_interpolates_between_them():
    # A 2x2 depth map covering an 8x8 input (stride 4): map pixel (i, j) centres at input
    # coordinates 4 * j + 1.5, 4 * i + 1.5.
    depth = torch.tensor([[1.0, 3.0], [5.0, 7.0]]).view(1, 1, 2, 2)
    points = torch.tensor([[[1.5, 1.5], [5.5, 1.5], [3.5, 1.5], [3.5, 3.5], [0.0, 0.0]]])
    z = sample_depth(depth, points, (8, 8))
    assert z[0].tolist() == pytest.approx([1.0, 3.0, 2.0, 4.0, 1.0])


def test_sample_depth_passes_gradient_to_the_four_neighbours():
    depth = torch.zeros(1, 1, 2, 2, requires_grad=True)
    sample_depth(depth, torch.tensor([[[3.5, 3.5]]]), (8, 8)).sum().backward()
    assert depth.grad.view(-1).tolist() == pytest.approx([0.25] * 4)


def test_heatmap_mse_averages_only_labelled_joints():
    pred = torch.zeros(1, 3, 2, 2)
    target = torch.zeros(1, 3, 2, 2)
    target[0, 0, 0, 0] = 1.0       # joint 0: error 1 on one of 4 pixels -> 0.25
    target[0, 1] = 2.0             # joint 1: error 4 everywhere -> 4
    target[0, 2] = 100.0           # joint 2 unlabelled: ignored
    weight = torch.tensor([[1.0, 1.0, 0.0]])
    assert heatmap_mse(pred, target, weight).item() == pytest.approx((0.25 + 4.0) / 2)


def test_pair_order_correct_follows_label_convention():
    z_a = torch.tensor([1.0, 1.0, 1.0])
    z_b = torch.tensor([2.0, 0.0, 0.0])
    label = torch.tensor([1.0, 1.0, -1.0])
    assert pair_order_correct(z_a, z_b, label).tolist() == [True, False, True]


def test_heatmap_kl_is_zero_at_the_target_and_ignores_unlabelled_joints():
    target = torch.zeros(1, 2, 4, 4)
    target[0, 0, 1, 2] = 1.0
    target[0, 1, 3, 3] = 1.0
    sharp = torch.where(target > 0, 30.0, -30.0)
    assert heatmap_kl(sharp, target, torch.ones(1, 2)).item() == pytest.approx(0.0, abs=1e-6)
    # uniform logits: KL of a one-hot target = log(16) per labelled joint
    flat = torch.zeros(1, 2, 4, 4)
    assert heatmap_kl(flat, target, torch.ones(1, 2)).item() == pytest.approx(math.log(16), rel=1e-5)
    # an unlabelled joint with a wrong prediction does not count
    wrong = sharp.clone()
    wrong[0, 1] = flat[0, 1]
    assert heatmap_kl(wrong, target, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-6)


def test_joint_depth_reads_each_points_own_joint_map():
    # joint 0's map is 1 everywhere, joint 1's map grows with x: the same pixel gives two depths
    depth = torch.zeros(1, 2, 8, 8)
    depth[0, 0] = 1.0
    depth[0, 1] = torch.arange(8.0).view(1, 8)
    points = torch.tensor([[[3.0, 3.0], [3.0, 3.0], [6.0, 1.0], [0.0, 0.0]]])
    joint = torch.tensor([[0, 1, 1, -1]])
    z = sample_joint_depth(depth, points, joint, (8, 8))
    assert z[0, :3].tolist() == pytest.approx([1.0, 3.0, 6.0])
    assert z.shape == (1, 4)    # padding (-1) reads map 0 and is masked by the loss


def test_ranking_on_joint_depths_moves_only_the_pairs_maps():
    depth = torch.zeros(1, 3, 4, 4, requires_grad=True)
    points = torch.tensor([[[1.0, 1.0], [2.0, 2.0]]])
    z_a = sample_joint_depth(depth, points[:, :1], torch.tensor([[0]]), (4, 4))
    z_b = sample_joint_depth(depth, points[:, 1:], torch.tensor([[2]]), (4, 4))
    ranking_loss(z_a, z_b, torch.tensor([[1.0]]), torch.ones(1, 1), torch.ones(1, 1, dtype=torch.bool)).backward()
    g = depth.grad[0]
    assert g[0, 1, 1] > 0 and g[2, 2, 2] < 0     # a (closer) pushed nearer, b farther
    assert g[1].abs().sum() == 0                 # joint 1's map untouched
