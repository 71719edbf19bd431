"""mcpc_builder.geometry: the camera and rotation functions both packages share."""

from __future__ import annotations

import math

import numpy as np

from mcpc_builder import geometry as g


def test_quaternion_round_trip_and_rotation_axes():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[0] >= 0 else -q
        R = g.quaternion_to_matrix(q)
        assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0)
        assert np.allclose(g.matrix_to_quaternion(R), q)
    assert np.allclose(g.rot_z(math.pi / 2) @ [1, 0, 0], [0, 1, 0])
    assert np.allclose(g.quaternion_to_matrix([math.cos(math.pi / 4), 0, 0,
                                               math.sin(math.pi / 4)]), g.rot_z(math.pi / 2))


def test_look_at_puts_the_target_on_the_optical_axis_with_world_up_pointing_up_the_image():
    centre, target = np.array([1.0, -4.0, 1.6]), np.array([0.5, 2.0, 0.9])
    R = g.look_at_rotation(centre, target)
    assert np.allclose(R @ R.T, np.eye(3))
    x = g.world_to_camera(target, R, centre)
    assert np.allclose(x[:2], 0) and x[2] > 0
    above = g.world_to_camera(target + [0, 0, 1.0], R, centre)
    assert above[1] < 0                      # image y points down
    rolled = g.look_at_rotation(centre, target, roll=0.3)
    assert np.allclose(rolled[2], R[2]) and not np.allclose(rolled[0], R[0])


def test_pinhole_by_matrix_and_by_focal_agree_and_distortion_vanishes_with_zero_coefficients():
    rng = np.random.default_rng(1)
    X = rng.uniform([-1, -1, 2], [1, 1, 6], (10, 3))
    f, c = np.array([800.0, 790.0]), np.array([320.0, 240.0])
    K = np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1]])
    uv, z = g.project_intrinsics(X, K)
    assert np.allclose(uv, g.project_pinhole(X, f, c)) and np.allclose(z, X[:, 2])
    assert np.allclose(g.project_h36m(X, f, c, np.zeros(3), np.zeros(2)), uv)
    assert not np.allclose(g.project_h36m(X, f, c, [0.1, 0, 0], [0, 0]), uv)
    assert np.allclose(g.camera_to_world(g.world_to_camera(X, g.rot_x(0.4), c.tolist() + [1]),
                                         g.rot_x(0.4), c.tolist() + [1]), X)


def test_joint_bbox_is_the_extent_enlarged_about_its_centre():
    uv = np.array([[10.0, 20.0], [30.0, 60.0], [20.0, 40.0]])
    assert np.allclose(g.joint_bbox(uv), [8.0, 16.0, 24.0, 48.0])
    assert g.joint_bbox(np.stack([uv, uv])).shape == (2, 4)
