"""Which joints a camera sees: ray casts into every body part (self- and mutual occlusion).

A joint is visible (v=2) when no body part other than its own lies between the camera and the body
surface over the joint, occluded (v=1) otherwise, unlabelled (v=0) outside the image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .body import NUM_POINTS, Capsule, Person3D, _transform_body, joint_surface_radius
from .camera import Camera, project_camera

if TYPE_CHECKING:
    from .scene import Scene

def _capsule_entry(u: np.ndarray, a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    """Distance along unit rays ``u`` (N,3) from the origin to where they enter a capsule (inf if
    they miss). ``a``, ``b`` (3,) capsule ends, ``r`` radius; all in the camera frame."""
    ba = b - a
    oa = -a
    baba = float(ba @ ba)
    bard = u @ ba
    baoa = float(ba @ oa)
    rdoa = u @ oa
    oaoa = float(oa @ oa)
    qa = baba - bard * bard
    qb = baba * rdoa - baoa * bard
    qc = baba * oaoa - baoa * baoa - r * r * baba
    h = qb * qb - qa * qc
    best = np.full(len(u), np.inf)
    if baba > 1e-12:  # the cylinder (a zero-length capsule is a sphere)
        ok = (h >= 0) & (qa > 1e-12)
        t = (-qb - np.sqrt(np.maximum(h, 0))) / np.where(ok, qa, 1.0)
        y = baoa + t * bard
        ok &= (y > 0) & (y < baba) & (t > 0)
        best = np.where(ok, t, best)
    for end in (a, b):  # the two end spheres
        oc = -end
        bb = u @ oc
        cc = float(oc @ oc) - r * r
        hh = bb * bb - cc
        ts = -bb - np.sqrt(np.maximum(hh, 0))
        best = np.where((hh >= 0) & (ts > 0), np.minimum(best, ts), best)
    return best


def _ellipsoid_entry(u: np.ndarray, centre: np.ndarray, axes: np.ndarray, semi: np.ndarray
                     ) -> np.ndarray:
    """Distance along unit rays ``u`` (N,3) from the origin into an ellipsoid (inf: miss)."""
    o = (axes.T @ (-centre)) / semi
    d = (u @ axes) / semi
    qa = np.sum(d * d, axis=1)
    qb = d @ o
    qc = float(o @ o) - 1.0
    h = qb * qb - qa * qc
    t = (-qb - np.sqrt(np.maximum(h, 0))) / qa
    return np.where((h >= 0) & (t > 0), t, np.inf)


def primitive_entry(prim, u: np.ndarray) -> np.ndarray:
    """(N,) distance along unit camera rays ``u`` (N,3) to a camera-frame primitive (inf: miss)."""
    if isinstance(prim, Capsule):
        return _capsule_entry(u, prim.a, prim.b, prim.radius)
    return _ellipsoid_entry(u, prim.centre, prim.axes, prim.semi)


def primitive_contains(prim, X: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """(N,) bool: points X (N,3) inside the primitive grown by ``margin`` metres."""
    if isinstance(prim, Capsule):
        ba = prim.b - prim.a
        h = np.clip(((X - prim.a) @ ba) / max(float(ba @ ba), 1e-12), 0.0, 1.0)
        dist = np.linalg.norm(X - prim.a - h[:, None] * ba, axis=1)
        return dist < prim.radius + margin
    q = ((X - prim.centre) @ prim.axes) / (prim.semi + margin)
    return np.sum(q * q, axis=1) < 1.0


def body_in_camera(person: Person3D, camera: Camera) -> tuple:
    """The person's body parts in the camera frame."""
    return _transform_body(person.body, camera.R, camera.t)


FURNITURE_PARTS = ("seat",)  # carried in a person's body but not part of it (chairs, stools)


def occlusion_causes(scene: Scene, tolerance: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(P, 22) bool twice: joints hidden by the person's own body, and by anything else (other
    people, furniture). See ``occlusion``; a joint can be both."""
    people = scene.people
    by_self = np.zeros((len(people), NUM_POINTS), dtype=bool)
    by_other = np.zeros((len(people), NUM_POINTS), dtype=bool)
    if not people:
        return by_self, by_other
    bodies = [body_in_camera(p, scene.camera) for p in people]
    X = scene.joints_camera()
    for pi, person in enumerate(people):
        Xp = X[pi]
        dist = np.linalg.norm(Xp, axis=1)
        u = Xp / np.maximum(dist, 1e-9)[:, None]
        surface = dist - joint_surface_radius(bodies[pi]) - tolerance
        for qi, body in enumerate(bodies):
            for prim in body:
                entry = primitive_entry(prim, u)
                hides = entry < surface
                if qi == pi:
                    own = np.zeros(NUM_POINTS, dtype=bool)
                    own[list(prim.points)] = True
                    own |= primitive_contains(prim, Xp)
                    hides &= ~own
                if qi == pi and prim.part not in FURNITURE_PARTS:
                    by_self[pi] |= hides
                else:
                    by_other[pi] |= hides
    return by_self, by_other


def occlusion(scene: Scene, tolerance: float = 0.01) -> np.ndarray:
    """(P, 22) bool: True where a joint is hidden by a body part (self- or mutual occlusion).

    A joint's own parts (those it is an end of, or lies inside) never hide it; any other part
    hides it when the camera ray through the joint enters that part before the body surface over
    the joint (the joint's depth minus its own radius, minus ``tolerance`` metres).
    """
    by_self, by_other = occlusion_causes(scene, tolerance)
    return by_self | by_other


def visibility(scene: Scene) -> np.ndarray:
    """(P, 22) uint8 COCO-style flags: 0 outside the image (or behind the camera), 1 hidden by a
    body part, 2 visible."""
    if not scene.people:
        return np.zeros((0, NUM_POINTS), dtype=np.uint8)
    uv, z = project_camera(scene.joints_camera(), scene.camera.K)
    inside = scene.camera.in_image(uv, z)
    occ = occlusion(scene)
    return np.where(inside, np.where(occ, 1, 2), 0).astype(np.uint8)


def visibility_with_causes(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """``visibility(scene)`` and (P, 22) bool: in the image and hidden by the person's own body
    and nothing else."""
    if not scene.people:
        empty = np.zeros((0, NUM_POINTS))
        return empty.astype(np.uint8), empty.astype(bool)
    uv, z = project_camera(scene.joints_camera(), scene.camera.K)
    inside = scene.camera.in_image(uv, z)
    by_self, by_other = occlusion_causes(scene)
    vis = np.where(inside, np.where(by_self | by_other, 1, 2), 0).astype(np.uint8)
    return vis, by_self & ~by_other & (vis == 1)
