"""Camera conventions and the H36M distortion model (dataset-formats.md §3.4)."""

import numpy as np
import pytest

from wsp_model import camera


def _rot(axis, deg):
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


R = _rot(0, -100) @ _rot(2, 30)
C = np.array([1500.0, -4000.0, 1600.0])


def test_quaternion_roundtrip_and_known_value():
    q = camera.matrix_to_quaternion(R)
    np.testing.assert_allclose(camera.quaternion_to_matrix(q), R, atol=1e-12)
    # 90 degrees about z: [cos45, 0, 0, sin45]
    np.testing.assert_allclose(camera.quaternion_to_matrix([np.sqrt(.5), 0, 0, np.sqrt(.5)]),
                               [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)


def test_three_extrinsic_conventions_give_the_same_camera_points():
    x = np.array([[100.0, 200.0, 900.0], [-300.0, 50.0, 0.0]])
    expected = (x - C) @ R.T
    r1, c1 = camera.extrinsics_from_vp3d(camera.matrix_to_quaternion(R.T), C)   # q = camera->world
    r2, c2 = camera.extrinsics_from_mks0601(R, -R @ C)                           # t = -R C
    r3, c3 = camera.extrinsics_from_martinez(R, C)                               # T = C
    for r, c in ((r1, c1), (r2, c2), (r3, c3)):
        np.testing.assert_allclose(camera.world_to_camera(x, r, c), expected, atol=1e-9)
    # mixing them up (t taken as the centre) is visibly wrong
    assert np.abs(camera.world_to_camera(x, R, -R @ C) - expected).max() > 100


def test_camera_to_world_inverts_world_to_camera():
    x = np.random.default_rng(0).normal(size=(5, 17, 3)) * 500
    np.testing.assert_allclose(camera.camera_to_world(camera.world_to_camera(x, R, C), R, C), x,
                               atol=1e-9)


def test_h36m_projection_without_distortion_is_pinhole():
    x = np.array([[200.0, -100.0, 4000.0]])
    f, c = np.array([1145.0, 1144.0]), np.array([512.5, 515.4])
    np.testing.assert_allclose(camera.project_h36m(x, f, c, np.zeros(3), np.zeros(2)),
                               camera.project_pinhole(x, f, c))
    np.testing.assert_allclose(camera.project_pinhole(x, f, c), [[512.5 + 1145 * .05, 515.4 - 1144 * .025]])


def test_h36m_distortion_by_hand():
    # x = 0.1, y = 0.2 -> r2 = 0.05; radial = 1 + 0.1*0.05 = 1.005;
    # tan = p1*y + p2*x = 0.01*0.2 + 0.02*0.1 = 0.004
    # x' = 0.1*(1.009) + p2*r2 = 0.1009 + 0.001 = 0.1019 ; y' = 0.2*1.009 + p1*r2 = 0.2018 + 0.0005
    uv = camera.project_h36m([0.1, 0.2, 1.0], [1000, 1000], [0, 0], [0.1, 0, 0], [0.01, 0.02])
    np.testing.assert_allclose(uv, [101.9, 202.3], atol=1e-9)


def test_backproject_inverts_pinhole_and_fit_recovers_intrinsics():
    rng = np.random.default_rng(1)
    x = rng.uniform([-800, -900, 3000], [800, 900, 6000], size=(40, 3))
    f, c = np.array([1497.0, 1496.0]), np.array([1024.0, 1020.0])
    uv = camera.project_pinhole(x, f, c)
    np.testing.assert_allclose(camera.backproject_pinhole(uv, x[:, 2], f, c), x, atol=1e-6)
    f_hat, c_hat = camera.fit_pinhole_intrinsics(uv, x)
    np.testing.assert_allclose(f_hat, f, atol=1e-6)
    np.testing.assert_allclose(c_hat, c, atol=1e-6)
