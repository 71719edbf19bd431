"""The synthetic world in one import: a façade over the modules that each hold one noun.

``worlds`` (WorldConfig, named worlds), ``body`` (shape, forward kinematics, capsules/ellipsoids),
``joint_limits`` (angle limits, PoseAngles), ``pose_families`` (standing, walking, ...),
``person`` (a posed person on the ground), ``camera``, ``scene``, ``visibility`` (occlusion),
``motion`` (video sequences). Import from those modules in new code.

World frame: metres, Z up, ground plane z = 0. Camera frame: OpenCV (x right, y down, z forward).
Pixels: 0-based, x right, y down. Everything is drawn from one ``numpy.random.Generator`` so a seed
gives the same scene.
"""

from __future__ import annotations

from ..geometry import rot_x, rot_y, rot_z
from .body import (J, NUM_POINTS, BodyShape, Capsule, Ellipsoid, Person3D, _transform_body,
                   body_lowest_point, footprint_radius, forward_kinematics,
                   joint_surface_radius, sample_body)
from .camera import Camera, look_at_camera, project_camera
from .joint_limits import ANGLE_LIMITS, PoseAngles
from .motion import sample_motion
from .person import _seat, build_person
from .pose_families import GROUNDED_POSES, POSES, _u, sample_pose_angles
from .scene import Scene, _choice, sample_scene
from .visibility import (body_in_camera, occlusion, primitive_contains, primitive_entry,
                         visibility)
from .worlds import WorldConfig, load_world

__all__ = [
    "ANGLE_LIMITS", "GROUNDED_POSES", "J", "NUM_POINTS", "POSES", "BodyShape", "Camera",
    "Capsule", "Ellipsoid", "Person3D", "PoseAngles", "Scene", "WorldConfig", "_choice", "_seat",
    "_transform_body", "_u", "body_in_camera", "body_lowest_point", "build_person",
    "footprint_radius", "forward_kinematics", "joint_surface_radius", "load_world",
    "look_at_camera", "occlusion", "primitive_contains", "primitive_entry", "project_camera",
    "rot_x", "rot_y", "rot_z", "sample_body", "sample_motion", "sample_pose_angles",
    "sample_scene", "visibility",
]
