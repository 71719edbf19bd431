import numpy as np
import pytest

from mcpc_builder.joints import (COCO17, H36M17, LAYOUTS, MCPC21, MPI3DHP17, MPII16, convert,
                                 mapping)


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_flip_is_an_involution(layout):
    flip = layout.flip_index
    assert np.array_equal(flip[flip], np.arange(layout.num_joints))


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_flip_pairs_join_left_to_right(layout):
    for left, right in layout.flip_pairs:
        assert layout.body_points[left].startswith("left_")
        assert layout.body_points[right] == "right_" + layout.body_points[left][5:]


def test_h36m_right_side_is_1_to_3_and_14_to_16():
    assert H36M17.right_joints == (1, 2, 3, 14, 15, 16)
    assert H36M17.left_joints == (4, 5, 6, 11, 12, 13)


def test_layout_sizes_and_known_orders():
    assert [lay.num_joints for lay in (COCO17, MPII16, H36M17, MPI3DHP17, MCPC21)] == [17, 16, 17, 17, 21]
    assert MPII16.joint("right_ankle") == 0 and MPII16.joint("left_wrist") == 15
    assert COCO17.joint("left_shoulder") == 5
    assert MPI3DHP17.joint("pelvis") == 14
    assert MCPC21.joint_names[:17] == COCO17.joint_names


def test_coco_edges_are_the_official_skeleton_zero_based():
    assert (15, 13) in map(tuple, COCO17.edges.tolist())  # official [16, 14]
    assert len(COCO17.edges) == 19


@pytest.mark.parametrize("src,dst", [(COCO17, MCPC21), (MPII16, MCPC21), (MCPC21, H36M17),
                                     (MPI3DHP17, H36M17), (H36M17, MPI3DHP17), (MPII16, H36M17)])
def test_mapping_keeps_left_and_right(src, dst):
    m = mapping(src, dst)
    for j, s in enumerate(m):
        if s >= 0:
            assert src.body_points[s] == dst.body_points[j]
            for side in ("left_", "right_"):
                assert src.body_points[s].startswith(side) == dst.body_points[j].startswith(side)


def test_convert_coco_to_mcpc_synthesises_pelvis_and_thorax_only():
    pts = np.arange(17 * 2, dtype=np.float32).reshape(17, 2)
    vis = np.full(17, 2, np.uint8)
    vis[COCO17.joint("left_hip")] = 1
    out, out_vis, syn = convert(pts, vis, COCO17, MCPC21)
    pelvis = MCPC21.joint("pelvis")
    expect = 0.5 * (pts[COCO17.joint("left_hip")] + pts[COCO17.joint("right_hip")])
    np.testing.assert_allclose(out[pelvis], expect)
    assert out_vis[pelvis] == 1 and syn[pelvis]
    assert syn[MCPC21.joint("thorax")] and not syn[MCPC21.joint("nose")]
    # head_top / upper_neck cannot be derived from COCO: unlabelled, NaN, never (0, 0).
    for p in ("head_top", "upper_neck"):
        assert out_vis[MCPC21.joint(p)] == 0 and np.isnan(out[MCPC21.joint(p)]).all()


def test_convert_masks_unlabelled_source_joints_as_nan():
    pts = np.zeros((2, 17, 2), np.float32)  # COCO writes (0, 0) for v=0
    vis = np.zeros((2, 17), np.uint8)
    out, out_vis, syn = convert(pts, vis, COCO17, MCPC21)
    assert np.isnan(out).all() and not out_vis.any() and not syn.any()


def test_convert_batch_3d_mpii_to_h36m_spine_is_mid_pelvis_thorax():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(4, 16, 3)).astype(np.float32)
    vis = np.full((4, 16), 2, np.uint8)
    out, _, syn = convert(pts, vis, MPII16, H36M17)
    spine = H36M17.joint("spine")
    np.testing.assert_allclose(out[:, spine], 0.5 * (pts[:, 6] + pts[:, 7]), rtol=1e-6)
    assert syn[:, spine].all() and not syn[:, H36M17.joint("pelvis")].any()
