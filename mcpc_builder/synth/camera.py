"""The synthetic world's pinhole camera (OpenCV axes: x right, y down, z forward; 0-based px)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import look_at_rotation, project_intrinsics

@dataclass
class Camera:
    """A pinhole camera.

    Arguments:
        K: (3, 3) float64 intrinsics, pixels.
        R: (3, 3) float64 rotation world -> camera (OpenCV axes).
        t: (3,) float64 translation, metres: X_cam = R @ X_world + t.
        width, height: image size, pixels.
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int

    @property
    def centre(self) -> np.ndarray:
        """(3,) camera centre in world coordinates, metres."""
        return -self.R.T @ self.t

    def to_camera(self, X_world: np.ndarray) -> np.ndarray:
        """(..., 3) world metres -> (..., 3) camera-frame metres."""
        return np.asarray(X_world, dtype=float) @ self.R.T + self.t

    def project(self, X_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points to pixels.

        Arguments:
            X_world: (..., 3) metres.

        Returns:
            uv (..., 2) float64 pixels (0-based); z (...) float64 depth in metres (camera z).
        """
        return project_camera(self.to_camera(X_world), self.K)

    def in_image(self, uv: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(...,) bool: in front of the camera and on a pixel, i.e. inside
        [-0.5, width - 0.5) x [-0.5, height - 0.5) (pixel centres are integers), so a rounded
        coordinate is always a valid pixel index."""
        return ((z > 1e-6) & (uv[..., 0] >= -0.5) & (uv[..., 0] < self.width - 0.5)
                & (uv[..., 1] >= -0.5) & (uv[..., 1] < self.height - 0.5))


def project_camera(X_cam: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) camera-frame metres -> uv (..., 2) pixels, z (...) metres."""
    return project_intrinsics(X_cam, K)


def look_at_camera(centre: np.ndarray, target: np.ndarray, roll: float, K: np.ndarray,
                   width: int, height: int) -> Camera:
    """A camera at ``centre`` (3,) looking at ``target`` (3,), rolled by ``roll`` radians."""
    R = look_at_rotation(centre, target, roll)  # rows: camera axes in world coordinates
    return Camera(K=K, R=R, t=-R @ centre, width=width, height=height)
