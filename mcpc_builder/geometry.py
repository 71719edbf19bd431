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
