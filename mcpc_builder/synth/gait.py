"""Walking and running through a real gait cycle: sagittal hip, knee and ankle angles against the
phase of the cycle, so a snapshot shows heel strike, loading, mid-stance, heel rise, toe-off and a
swing foot lifted by its knee.

Phase 0 is the leg's own heel strike; the other leg is half a cycle later. The keyframes are
typical adult curves read off published normative data (degrees; hip and knee flexion positive,
ankle dorsiflexion positive):

* **Walking** -- Winter, *Biomechanics and Motor Control of Human Movement*, normal cadence:
  the hip is ~30 deg flexed at heel strike and extends to ~-10 deg at 50%; the knee flexes ~18 deg
  in loading response, extends to ~5 deg in mid-stance and reaches ~40 deg at toe-off (62%) and
  ~62 deg in mid-swing (73%); the ankle plantarflexes ~6 deg after heel strike, dorsiflexes to
  ~10 deg in terminal stance (heel rise begins) and plantarflexes ~18 deg at toe-off.
* **Running** -- Novacheck, "The biomechanics of running", Gait & Posture 7 (1998): stance ends at
  ~40% of the cycle, so there are two flight phases (40-50% and 90-100%) with both feet off the
  ground; knee ~40 deg mid-stance and ~95 deg in swing, hip ~-10 deg at toe-off, ~45 deg late
  swing, ankle ~20 deg dorsiflexion mid-stance and ~-20 deg at toe-off.

The body is put on the ground by its lowest point (the stance foot, or both feet in double
support); in the flight phases of running it is lifted by up to ``RUN_FLIGHT_LIFT`` times stature.
"""

from __future__ import annotations

import math

import numpy as np

from .joint_limits import PoseAngles

# Cycle fractions and angles (degrees).
WALK = {
    "t": np.array([0.0, 0.07, 0.15, 0.30, 0.45, 0.50, 0.55, 0.62, 0.73, 0.85, 0.95, 1.0]),
    "hip": np.array([30.0, 27.0, 20.0, 8.0, -5.0, -10.0, -8.0, 5.0, 22.0, 30.0, 31.0, 30.0]),
    "knee": np.array([3.0, 12.0, 18.0, 7.0, 5.0, 9.0, 20.0, 40.0, 62.0, 40.0, 8.0, 3.0]),
    "ankle": np.array([0.0, -6.0, 2.0, 6.0, 10.0, 5.0, -4.0, -18.0, -6.0, 2.0, 1.0, 0.0]),
}
# Published hip angles are thigh-to-pelvis; the pelvis is tilted forward by about this much
# (Winter; Novacheck), while the skeleton's pelvis is upright: the thigh's angle from vertical is
# the hip angle minus the tilt.
WALK_PELVIC_TILT = 10.0
RUN_PELVIC_TILT = 12.0
WALK_STANCE = 0.62
RUN = {
    "t": np.array([0.0, 0.15, 0.40, 0.50, 0.60, 0.70, 0.85, 0.95, 1.0]),
    "hip": np.array([35.0, 20.0, -10.0, -2.0, 20.0, 40.0, 45.0, 38.0, 35.0]),
    "knee": np.array([20.0, 40.0, 20.0, 45.0, 80.0, 95.0, 60.0, 25.0, 20.0]),
    "ankle": np.array([5.0, 20.0, -20.0, -15.0, -5.0, 5.0, 5.0, 5.0, 5.0]),
}
RUN_STANCE = 0.40
RUN_FLIGHT_LIFT = 0.045  # of stature at mid-flight (centre-of-mass rise ~7-8 cm at 1.75 m)


def curve(table: dict, joint: str, phase: float) -> float:
    """The joint's angle (degrees) at ``phase`` in [0, 1) of its cycle (periodic, linear)."""
    return float(np.interp(phase % 1.0, table["t"], table[joint]))


def flight_lift(phase_left: float) -> float:
    """Running: lift (fraction of stature) of the whole body at this phase of the left leg, > 0
    only when neither foot is in stance."""
    lift = 0.0
    for start in (RUN_STANCE, RUN_STANCE + 0.5):
        span = 0.5 - RUN_STANCE
        u = ((phase_left - start) % 1.0) / span
        if 0.0 < u < 1.0:
            lift = max(lift, math.sin(math.pi * u))
    return RUN_FLIGHT_LIFT * lift


def gait_angles(rng: np.random.Generator, running: bool, phase: float | None = None
                ) -> tuple[PoseAngles, float, float]:
    """Joint angles of a walker or runner at a random (or given) phase of the left leg.

    Returns:
        angles (not yet clamped), the phase of the left leg in [0, 1), and the flight lift as a
        fraction of stature (0 for walking and for running stance).
    """
    n, u = rng.normal, rng.uniform
    table = RUN if running else WALK
    ph = float(u(0.0, 1.0)) if phase is None else float(phase) % 1.0
    amp = float(u(0.85, 1.15))                 # stride length / speed
    phases = (ph, (ph + 0.5) % 1.0)
    tilt = RUN_PELVIC_TILT if running else WALK_PELVIC_TILT
    hip = tuple(amp * curve(table, "hip", p) - tilt + float(n(0, 2)) for p in phases)
    knee = tuple(max(0.0, amp * curve(table, "knee", p) + float(n(0, 3))) for p in phases)
    ankle = tuple(curve(table, "ankle", p) + float(n(0, 2)) for p in phases)
    # Arms swing against the legs: each shoulder follows the opposite hip.
    arm = 0.45 if running else 0.35
    shoulder = (arm * hip[1], arm * hip[0])
    elbow = ((float(u(75, 100)), float(u(75, 100))) if running
             else (float(u(10, 35)), float(u(10, 35))))
    angles = PoseAngles(
        hip_flex=hip, hip_abd=(float(u(0, 5)), float(u(0, 5))), hip_rot=(float(n(5, 4)),
                                                                         float(n(5, 4))),
        knee=knee, ankle_flex=ankle,
        shoulder_flex=shoulder, shoulder_abd=(float(u(5, 15)), float(u(5, 15))),
        shoulder_rot=(float(n(10, 8)), float(n(10, 8))), elbow=elbow,
        torso_lean=float(u(8, 16)) if running else float(u(1, 6)),
        torso_twist=-0.15 * (hip[0] - hip[1]),
        head_nod=float(n(5, 8)), head_yaw=float(n(0, 18)), head_tilt=float(n(0, 4)))
    lift = flight_lift(ph) if running else 0.0
    return angles, ph, lift
