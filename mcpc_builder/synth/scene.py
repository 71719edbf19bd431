"""A scene: a camera and the people it sees, drawn from one ``numpy.random.Generator``."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .body import J, NUM_POINTS, Person3D, _transform_body, footprint_radius
from .camera import Camera, look_at_camera, project_camera
from .ground import FLAT, Ground, sample_ground
from .person import build_library_person, build_person
from .pose_library import load_pose_library
from .pose_families import _u
from .visibility import visibility
from .worlds import WorldConfig

@dataclass
class Scene:
    """A camera and the people it sees.

    Arguments:
        camera: the camera.
        people: the people (mutually non-overlapping on the ground).
        indoor: the renderer draws a floor and a back wall instead of ground and sky.
        ground: the ground surface people stand on (flat z = 0 unless the world has steps or
            slopes).
    """

    camera: Camera
    people: list[Person3D]
    indoor: bool = False
    ground: Ground = FLAT

    def joints_camera(self) -> np.ndarray:
        """(P, 22, 3) float64 camera-frame metres."""
        if not self.people:
            return np.zeros((0, NUM_POINTS, 3))
        return self.camera.to_camera(np.stack([p.joints_world for p in self.people]))

    def keypoints(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """uv (P, 22, 2) pixels, depth (P, 22) metres, visibility (P, 22) uint8 0/1/2."""
        X = self.joints_camera()
        uv, z = project_camera(X, self.camera.K)
        return uv, z, visibility(self)


def _choice(rng, weights) -> int:
    w = np.asarray(weights, dtype=float)
    return int(rng.choice(len(w), p=w / w.sum()))


def sample_scene(rng: np.random.Generator, config: WorldConfig = WorldConfig(),
                 n_people: int | None = None) -> Scene:
    """One random scene: people on the ground seen by a perspective camera.

    Arguments:
        rng: the only source of randomness.
        config: ranges and weights.
        n_people: force a number of people (else drawn from ``config.people_count_weights``).
            The first person is always placed; a later one is dropped when 20 tries find no
            free ground for it.
    """
    width, height = config.image_sizes[int(rng.integers(len(config.image_sizes)))]
    f = _u(rng, *config.focal_factor) * width
    K = np.array([[f, 0.0, width / 2.0 + _u(rng, -0.01, 0.01) * width],
                  [0.0, f, height / 2.0 + _u(rng, -0.01, 0.01) * height],
                  [0.0, 0.0, 1.0]])
    cam_h = _u(rng, *config.camera_height)
    count = n_people if n_people is not None else 1 + _choice(rng, config.people_count_weights)
    half_fov = math.atan(0.5 * width / f)
    # People around a group centre in front of the camera (camera at the origin looking along +y).
    lo, hi = config.distance
    # Log-uniform, skewed towards near groups (photos mostly show people at a few metres).
    d0 = lo * (hi / lo) ** (float(rng.random()) ** 1.6) + 0.3
    a0 = _u(rng, -0.5, 0.5) * half_fov
    group = np.array([d0 * math.sin(a0), d0 * math.cos(a0)])
    pose_names = [p for p, _ in config.pose_weights]
    pose_w = [w for _, w in config.pose_weights]
    library = load_pose_library(config.poses) if config.poses is not None else None
    realism = config.realism
    default_person = realism == type(realism)()
    # Draws only for uneven worlds, so the default world's random stream is unchanged.
    ground = FLAT if config.ground.flat else sample_ground(rng, config.ground, group)
    people: list[Person3D] = []
    radii: list[float] = []
    for _ in range(count):
        is_child = bool(rng.random() < config.child_fraction)
        stature = _u(rng, *(config.child_height if is_child else config.adult_height))
        pose = pose_names[_choice(rng, pose_w)]
        # Draws only when a library is configured, so the default world's stream is unchanged.
        lib_index = None
        if library is not None and rng.random() < config.pose_library_fraction:
            lib_index = int(rng.integers(len(library)))

        def make(xy):
            if lib_index is not None:
                person = build_library_person(rng, library, lib_index, stature, is_child, yaw,
                                              xy, realism)
            else:
                person = build_person(rng, pose, stature, is_child, yaw, xy,
                                      None if default_person else realism)
            return person if ground is FLAT else _on_ground(person, ground)

        yaw = _u(rng, -math.pi, math.pi)
        for _attempt in range(20):
            xy = group + rng.normal(0.0, config.group_spread * (1 if people else 0.3), 2)
            dist = float(np.hypot(*xy))
            ang = math.atan2(xy[0], xy[1])
            if not (lo <= dist <= hi and abs(ang) < 0.9 * half_fov + 0.1):
                continue
            person = make(xy)
            r = footprint_radius(person)
            ok = all(np.linalg.norm(person.joints_world[J["pelvis"], :2]
                                    - q.joints_world[J["pelvis"], :2]) > r + rq + 0.05
                     for q, rq in zip(people, radii))
            if ok:
                people.append(person)
                radii.append(r)
                break
        else:
            if not people:  # nobody placed yet: put the first person at the group centre
                d = float(np.clip(np.hypot(*group), lo, hi))
                xy = group / np.hypot(*group) * d
                person = make(xy)
                people.append(person)
                radii.append(footprint_radius(person))
    # Aim at the group's mid-body height, with jitter so people are not always centred.
    if people:
        target = np.mean([p.joints_world[J["pelvis"]] for p in people], axis=0)
        target[2] = np.mean([0.5 * p.joints_world[:, 2].max() for p in people]) + 0.2
    else:
        target = np.array([group[0], group[1], 1.0])
    centre = np.array([0.0, 0.0, cam_h + (0.0 if ground is FLAT else float(ground.height(
        np.zeros(2))))])
    fwd = target - centre
    yaw_c = math.atan2(fwd[0], fwd[1]) + math.radians(_u(rng, -1, 1) * config.yaw_jitter)
    pitch = math.atan2(fwd[2], math.hypot(fwd[0], fwd[1])) + math.radians(
        _u(rng, -1, 1) * config.pitch_jitter)
    look = centre + np.array([math.sin(yaw_c) * math.cos(pitch),
                              math.cos(yaw_c) * math.cos(pitch), math.sin(pitch)])
    roll = math.radians(_u(rng, -1, 1) * config.camera_roll)
    camera = look_at_camera(centre, look, roll, K, width, height)
    return Scene(camera=camera, people=people, indoor=bool(rng.random() < 0.45), ground=ground)


def _on_ground(person: Person3D, ground: Ground) -> Person3D:
    """The person raised by the ground height under their pelvis."""
    dz = float(ground.height(person.joints_world[J["pelvis"], :2]))
    t = np.array([0.0, 0.0, dz])
    return replace(person, joints_world=person.joints_world + t,
                   body=_transform_body(person.body, np.eye(3), t))
