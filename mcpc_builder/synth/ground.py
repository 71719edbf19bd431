"""Uneven ground: a slope and a step (a kerb, a stair, a stage edge) under a scene's people.

The default world's ground is the plane z = 0. Here the ground height is

    z(x, y) = clip(g . ((x, y) - o), -r, r)  +  h * [n . ((x, y) - o) > d]

a slope of gradient ``g`` (|g| = tan(slope)) through the group centre ``o`` that rises or falls
at most ``r`` (a hillside between two level areas, so the horizon stays level), plus a step of
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
        slope_rise: how far (metres) the slope rises and falls from the group centre before the
            ground levels off.
    """

    step_probability: float = 0.0
    step_height: tuple[float, float] = (0.12, 0.45)
    step_offset: tuple[float, float] = (-1.5, 1.5)
    slope_probability: float = 0.0
    max_slope: float = 8.0
    slope_rise: float = 0.6

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
    slope_rise: float = 0.0                  # r

    def height(self, xy: np.ndarray) -> np.ndarray:
        """Ground height (metres) at (..., 2) points."""
        rel = np.asarray(xy, dtype=float) - self.origin
        z = np.clip(rel @ self.gradient, -self.slope_rise, self.slope_rise)
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
    return Ground(np.asarray(origin, dtype=float), gradient, normal, offset, h,
                  config.slope_rise if gradient.any() else 0.0)


def ray_entry(ground: Ground, centre: np.ndarray, dx: np.ndarray, dy: np.ndarray,
              dz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where rays from ``centre`` (3,) along (dx, dy, dz) (arrays of one shape, unnormalised)
    meet the ground: ray parameter ``s`` (inf: no hit) and a bool mask of hits on the step's
    vertical face (the riser). The ground is cut into planar pieces (level below, slope, level
    above; each on either side of the step) and the nearest hit inside its own piece wins."""
    C = np.asarray(centre, dtype=np.float64)
    g, o, n, r = ground.gradient, ground.origin, ground.step_normal, ground.slope_rise
    rel0 = C[:2] - o
    gd = g[0] * dx + g[1] * dy
    nd = n[0] * dx + n[1] * dy
    # (gradient along the ray, constant height, slope-coordinate range) of each planar piece.
    pieces = [(gd, 0.0, (-r, r))] if g.any() else [(np.zeros_like(dx), 0.0, (-np.inf, np.inf))]
    if g.any():
        pieces += [(np.zeros_like(dx), -r, (-np.inf, -r)), (np.zeros_like(dx), r, (r, np.inf))]
    sides = (False, True) if ground.step_height != 0.0 else (None,)
    best = np.full(np.shape(dx), np.inf)
    for grad_d, const, (lo, hi) in pieces:
        for raised in sides:
            h = const + (ground.step_height if raised else 0.0)
            slope0 = (rel0 @ g) if grad_d is gd else 0.0
            denom = dz - grad_d
            with np.errstate(divide="ignore", invalid="ignore"):
                s = (slope0 + h - C[2]) / np.where(np.abs(denom) < 1e-12, np.nan, denom)
            ok = np.isfinite(s) & (s > 0)
            sc = np.where(ok, s, 0.0)
            u = rel0 @ g + sc * gd                       # slope coordinate at the hit
            ok &= (u >= lo) & (u <= hi)
            if raised is not None:
                up = (rel0 @ n + sc * nd) > ground.step_offset
                ok &= up if raised else ~up
            best = np.where(ok, np.minimum(best, s), best)
    riser = np.zeros(np.shape(dx), dtype=bool)
    if ground.step_height != 0.0:
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (ground.step_offset - rel0 @ n) / np.where(np.abs(nd) < 1e-12, np.nan, nd)
        sc = np.where(np.isfinite(s), s, 0.0)
        base = np.clip(rel0 @ g + sc * gd, -r, r)
        z = C[2] + sc * dz
        wall = (np.isfinite(s) & (s > 0) & (z >= base + min(0.0, ground.step_height))
                & (z <= base + max(0.0, ground.step_height)) & (s < best))
        best = np.where(wall, s, best)
        riser = wall
    return best, riser
