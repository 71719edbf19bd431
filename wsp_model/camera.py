"""Camera geometry for Human3.6M and MPI-INF-3DHP: pure functions with shapes in the docstrings.

Conventions (../shared/reference/dataset-formats.md §3.4):
- We hold extrinsics as ``R`` = world->camera rotation (3, 3) and ``C`` = camera centre in world,
  so ``X_cam = (X_world - C) @ R.T``. Camera frame is OpenCV's: x right, y down, z forward.
- VideoPose3D stores a quaternion [w, x, y, z] that rotates camera->world, plus C (mm; metres once
  loaded); mks0601 JSON stores R world->camera and ``t = -R C`` (mm); Martinez/metadata.xml stores
  R world->camera and T = C. ``extrinsics_from_*`` turn each into (R, C).
- The H36M projection model is not OpenCV's: ``project_h36m`` follows Martinez
  ``project_point_radial`` with tangential coefficients in metadata order p = [p1, p2];
  VideoPose3D stores them swapped ([p2, p1]).
"""

from __future__ import annotations

import numpy as np


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) [w, x, y, z] unit quaternion -> (..., 3, 3) rotation matrix (float64)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix -> (4,) [w, x, y, z] unit quaternion with w >= 0 (float64)."""
    r = np.asarray(r, dtype=np.float64)
    tr = np.trace(r)
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k])
        q = [0.0, 0.0, 0.0, 0.0]
        q[0] = (r[k, j] - r[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (r[j, i] + r[i, j]) / s
        q[1 + k] = (r[k, i] + r[i, k]) / s
    q = np.asarray(q)
    q = q / np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def world_to_camera(x_world: np.ndarray, r: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(..., 3) world points -> (..., 3) camera-frame points, same unit as ``centre``.

    Arguments:
        r: (3, 3) world->camera rotation. centre: (3,) camera centre in world.
    """
    return (np.asarray(x_world, dtype=np.float64) - np.asarray(centre, dtype=np.float64)) @ np.asarray(r).T


def camera_to_world(x_cam: np.ndarray, r: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 3) world points (inverse of ``world_to_camera``)."""
    return np.asarray(x_cam, dtype=np.float64) @ np.asarray(r) + np.asarray(centre, dtype=np.float64)


def extrinsics_from_vp3d(orientation: np.ndarray, translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VideoPose3D (quaternion camera->world [w,x,y,z], centre) -> (R world->camera, centre)."""
    return quaternion_to_matrix(orientation).T, np.asarray(translation, dtype=np.float64)


def extrinsics_from_mks0601(r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mks0601 JSON (R world->camera, t = -R C) -> (R, centre = -R^T t), same unit as t."""
    r = np.asarray(r, dtype=np.float64)
    return r, -r.T @ np.asarray(t, dtype=np.float64)


def extrinsics_from_martinez(r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Martinez / metadata.xml (R world->camera, T = centre) -> (R, centre)."""
    return np.asarray(r, dtype=np.float64), np.asarray(t, dtype=np.float64).reshape(3)


def project_h36m(x_cam: np.ndarray, f: np.ndarray, c: np.ndarray, k: np.ndarray,
                 p: np.ndarray) -> np.ndarray:
    """Project camera-frame points with the official Human3.6M distortion model.

    Arguments:
        x_cam: (..., 3) float, camera frame (any unit; z > 0).
        f: (2,) focal lengths [fx, fy], px. c: (2,) principal point [cx, cy], px.
        k: (3,) radial [k1, k2, k3]. p: (2,) tangential in metadata order [p1, p2]
            (VideoPose3D files hold [p2, p1]: pass ``p[::-1]``).

    Returns:
        (..., 2) float64 pixels.
    """
    x_cam = np.asarray(x_cam, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64).reshape(3)
    p = np.asarray(p, dtype=np.float64).reshape(2)
    xy = x_cam[..., :2] / x_cam[..., 2:3]
    r2 = (xy ** 2).sum(-1, keepdims=True)
    radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    tan = p[0] * xy[..., 1:2] + p[1] * xy[..., 0:1]
    xy_d = xy * (radial + tan) + np.array([p[1], p[0]]) * r2
    return xy_d * np.asarray(f, dtype=np.float64).reshape(2) + np.asarray(c, dtype=np.float64).reshape(2)


def project_pinhole(x_cam: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixels, no distortion (mks0601 convention)."""
    x_cam = np.asarray(x_cam, dtype=np.float64)
    return x_cam[..., :2] / x_cam[..., 2:3] * np.asarray(f, dtype=np.float64).reshape(2) \
        + np.asarray(c, dtype=np.float64).reshape(2)


def backproject_pinhole(uv: np.ndarray, depth: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(..., 2) pixels and (...,) depth -> (..., 3) camera-frame points (inverse of the pinhole)."""
    uv = np.asarray(uv, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)[..., None]
    xy = (uv - np.asarray(c, dtype=np.float64).reshape(2)) / np.asarray(f, dtype=np.float64).reshape(2)
    return np.concatenate([xy * depth, depth], axis=-1)


def fit_pinhole_intrinsics(uv: np.ndarray, x_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares (f, c) from 2D/3D correspondences (3DHP test sets ship no intrinsics).

    Arguments:
        uv: (N, 2) pixels. x_cam: (N, 3) camera-frame points.

    Returns:
        f (2,), c (2,) float64 pixels.
    """
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    xy = np.asarray(x_cam, dtype=np.float64).reshape(-1, 3)
    xy = xy[:, :2] / xy[:, 2:3]
    f = np.zeros(2)
    c = np.zeros(2)
    for a in range(2):
        design = np.stack([xy[:, a], np.ones(len(xy))], axis=1)
        (f[a], c[a]), *_ = np.linalg.lstsq(design, uv[:, a], rcond=None)
    return f, c
