"""Camera and rotation geometry shared by the builder and the model: pure numpy functions.

Conventions: rotations are (3, 3) float64 matrices acting on column vectors (``R @ x``); camera
frames are OpenCV's (x right, y down, z forward); pixels are 0-based, x right, y down. Units are
whatever the caller's points are in (metres or millimetres) unless a docstring says otherwise.
Nothing here imports torch or either package, so both ``mcpc_builder`` and ``wsp_model`` sit on it.
"""

from __future__ import annotations

import math

import numpy as np


def rot_x(a: float) -> np.ndarray:
    """(3, 3) rotation by ``a`` radians about the x axis (right-handed)."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    """(3, 3) rotation by ``a`` radians about the y axis (right-handed)."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    """(3, 3) rotation by ``a`` radians about the z axis (right-handed)."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# ------------------------------------------------------------------------------ quaternions
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


# ---------------------------------------------------------------------------------- cameras
def world_to_camera(x_world: np.ndarray, r: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(..., 3) world points -> (..., 3) camera-frame points, same unit as ``centre``.

    Arguments:
        r: (3, 3) world->camera rotation. centre: (3,) camera centre in world.
    """
    return (np.asarray(x_world, dtype=np.float64) - np.asarray(centre, dtype=np.float64)) \
        @ np.asarray(r).T


def camera_to_world(x_cam: np.ndarray, r: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 3) world points (inverse of ``world_to_camera``)."""
    return np.asarray(x_cam, dtype=np.float64) @ np.asarray(r) \
        + np.asarray(centre, dtype=np.float64)


def look_at_rotation(centre: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """(3, 3) world->camera rotation (rows: camera x right, y down, z forward in world
    coordinates) of a camera at ``centre`` (3,) looking at ``target`` (3,) in a Z-up world,
    rolled by ``roll`` radians about its optical axis (positive: image x turns towards y)."""
    fwd = np.asarray(target, dtype=np.float64) - np.asarray(centre, dtype=np.float64)
    fwd = fwd / np.linalg.norm(fwd)
    right = np.cross(fwd, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    if roll != 0.0:
        c, s = math.cos(roll), math.sin(roll)
        right, down = c * right + s * down, -s * right + c * down
    return np.stack([right, down, fwd], axis=0)


def project_intrinsics(x_cam: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection by an intrinsic matrix.

    Arguments:
        x_cam: (..., 3) camera-frame points (metres or mm). K: (3, 3) intrinsics, pixels.

    Returns:
        uv (..., 2) float64 pixels; z (...) depth in the unit of ``x_cam`` (points at z = 0 are
        divided by 1e-9 instead of 0).
    """
    x_cam = np.asarray(x_cam, dtype=float)
    z = x_cam[..., 2]
    safe = np.where(np.abs(z) < 1e-9, 1e-9, z)
    uv_h = x_cam @ K.T
    return uv_h[..., :2] / safe[..., None], z


def project_pinhole(x_cam: np.ndarray, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) float64 pixels, no distortion.

    Arguments:
        f: (2,) focal lengths [fx, fy] or one focal length, px. c: (2,) principal point
            [cx, cy], px.
    """
    x_cam = np.asarray(x_cam, dtype=np.float64)
    return x_cam[..., :2] / x_cam[..., 2:3] * _pair(f) + _pair(c)


def _pair(v) -> np.ndarray:
    """(2,) float64 from a pair in any shape; a scalar stays a scalar (fx = fy)."""
    v = np.asarray(v, dtype=np.float64)
    return v if v.ndim == 0 else v.reshape(2)


def project_h36m(x_cam: np.ndarray, f: np.ndarray, c: np.ndarray, k: np.ndarray,
                 p: np.ndarray) -> np.ndarray:
    """Project camera-frame points with the official Human3.6M distortion model (Martinez
    ``project_point_radial``: radial k1..k3 and tangential p1, p2).

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
    return xy_d * np.asarray(f, dtype=np.float64).reshape(2) \
        + np.asarray(c, dtype=np.float64).reshape(2)


# ------------------------------------------------------------------------------------ boxes
JOINT_BOX_ENLARGE = 1.2  # mks0601 / VideoPose3D: the joints' extent enlarged x1.2


def joint_bbox(uv: np.ndarray, enlarge: float = JOINT_BOX_ENLARGE) -> np.ndarray:
    """Box around 2D joints, enlarged about its centre.

    Arguments:
        uv: (..., J, 2) pixels.
        enlarge: side multiplier (1.2, as the mks0601 Human3.6M boxes).

    Returns:
        (..., 4) float64 [x, y, w, h] pixels.
    """
    uv = np.asarray(uv)
    lo, hi = uv.min(-2), uv.max(-2)
    ctr, size = (lo + hi) / 2, (hi - lo) * enlarge
    return np.concatenate([ctr - size / 2, size], axis=-1)
