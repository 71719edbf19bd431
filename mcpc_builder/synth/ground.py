"""Uneven ground: a slope and a step (a kerb, a stair, a stage edge) under a scene's people.

The default world's ground is the plane z = 0. Here the ground height is

    z(x, y) = g . ((x, y) - o)  +  h * [n . ((x, y) - o) > d]

a plane of gradient ``g`` (|g| = tan(slope)) through the group centre ``o``, plus a step of
height ``h`` on one side of a straight edge (unit normal ``n``, offset ``d`` from ``o``). Each
person stands on the ground height under their pelvis, so people in one picture stand at
different heights; the camera stands on the ground under it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroundConfig:
    """How uneven a scene's ground is (defaults: flat).

    Arguments:
        step_probability: probability that a scene has a step.
        step_height: (low, high) metres; the step goes up or down with equal probability.
        step_offset: (low, high) metres from the group centre to the step edge.
        slope_probability: probability that a scene's ground is sloped.
        max_slope: the largest slope, degrees (uniform in [0, max]).
    """

    step_probability: float = 0.0
    step_height: tuple[float, float] = (0.12, 0.45)
    step_offset: tuple[float, float] = (-1.5, 1.5)
    slope_probability: float = 0.0
    max_slope: float = 8.0

    def __post_init__(self) -> None:
        for name in ("step_probability", "slope_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"GroundConfig: {name} must be in [0, 1]")

    @property
    def flat(self) -> bool:
        return self.step_probability == 0 and self.slope_probability == 0


@dataclass(frozen=True)
class Ground:
    """One scene's ground surface (see the module docstring); all metres."""

    origin: np.ndarray                       # (2,) o
    gradient: np.ndarray                     # (2,) g
    step_normal: np.ndarray                  # (2,) n (unit)
    step_offset: float = 0.0                 # d
    step_height: float = 0.0                 # h (0: no step)

    def height(self, xy: np.ndarray) -> np.ndarray:
        """Ground height (metres) at (..., 2) points."""
        rel = np.asarray(xy, dtype=float) - self.origin
        z = rel @ self.gradient
        if self.step_height != 0.0:
            z = z + self.step_height * ((rel @ self.step_normal) > self.step_offset)
        return z


FLAT = Ground(np.zeros(2), np.zeros(2), np.array([1.0, 0.0]))


def sample_ground(rng: np.random.Generator, config: GroundConfig, origin: np.ndarray) -> Ground:
    """A scene's ground around ``origin`` (2,) (the group centre)."""
    gradient = np.zeros(2)
    if rng.random() < config.slope_probability:
        a = float(rng.uniform(-math.pi, math.pi))
        gradient = math.tan(math.radians(float(rng.uniform(0.0, config.max_slope)))) * np.array(
            [math.cos(a), math.sin(a)])
    normal, offset, h = np.array([1.0, 0.0]), 0.0, 0.0
    if rng.random() < config.step_probability:
        a = float(rng.uniform(-math.pi, math.pi))
        normal = np.array([math.cos(a), math.sin(a)])
        offset = float(rng.uniform(*config.step_offset))
        h = float(rng.uniform(*config.step_height)) * (1.0 if rng.random() < 0.5 else -1.0)
    return Ground(np.asarray(origin, dtype=float), gradient, normal, offset, h)
