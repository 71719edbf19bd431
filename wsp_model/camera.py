"""Camera geometry for Human3.6M and MPI-INF-3DHP: pure functions with shapes in the docstrings.

Conventions (../shared/reference/dataset-formats.md §3.4):
- We hold extrinsics as ``R`` = world->camera rotation (3, 3) and ``C`` = camera centre in world,
  so ``X_cam = (X_world - C) @ R.T``. Camera frame is OpenCV's: x right, y down, z forward.
- VideoPose3D stores a quaternion [w, x, y, z] that rotates camera->world, plus C (mm; metres once
  loaded); mks0601 JSON stores R world->camera and ``t = -R C`` (mm); Martinez/metadata.xml stores
  R world->camera and T = C. ``extrinsics_from_*`` turn each into (R, C).
- The H36M projection model is not OpenCV's: ``project_h36m`` (``mcpc_builder.geometry``) follows Martinez
  ``project_point_radial`` with tangential coefficients in metadata order p = [p1, p2];
  VideoPose3D stores them swapped ([p2, p1]).
"""

from __future__ import annotations

import numpy as np

# The geometry shared with the builder lives once in mcpc_builder.geometry (re-exported here).
from mcpc_builder.geometry import (camera_to_world, matrix_to_quaternion,  # noqa: F401
                                   project_h36m, project_pinhole, quaternion_to_matrix,
                                   world_to_camera)


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
