"""Simple RGB images of synthetic scenes: a ground/sky or floor/wall background and shaded people.

People are ray-cast with the same capsules and ellipsoids (and the same ray-entry functions) that
decide joint visibility in ``world``, through a z-buffer, so a joint flagged visible is drawn
visible. Rendering works on the pixels of each part's bounding box only, so a 640x480 image takes
a few milliseconds. Images are BGR uint8 (OpenCV order, ready for ``cv2.imwrite``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .body import Capsule
from .ground import FLAT, ray_entry
from .scene import Scene
from .visibility import body_in_camera, primitive_entry

SKIN_TONES = ((200, 220, 245), (150, 180, 225), (110, 145, 200), (75, 105, 160), (45, 70, 115))
HAIR = ((25, 25, 30), (30, 45, 70), (60, 90, 140), (140, 170, 200), (200, 200, 200))


@dataclass
class Rendering:
    """An image and which person each pixel shows.

    Arguments:
        image: (H, W, 3) uint8 BGR.
        person_index: (H, W) int16, index into ``scene.people`` of the front-most body surface,
            -1 for background (and furniture).
        depth: (H, W) float32 metres along the camera ray to that surface (inf for background).
    """

    image: np.ndarray
    person_index: np.ndarray
    depth: np.ndarray


def _pixel_rays(K: np.ndarray, x0: int, y0: int, x1: int, y1: int, step: float = 1.0
                ) -> np.ndarray:
    """(h*w, 3) unit camera-frame rays through pixels x0, x0+step, ... < x1 (same for y)."""
    Kinv = np.linalg.inv(K)
    xs = np.arange(x0, x1, step)
    ys = np.arange(y0, y1, step)
    dx = Kinv[0, 0] * xs + Kinv[0, 2]          # K is upper triangular with zero skew
    dy = Kinv[1, 1] * ys + Kinv[1, 2]
    d = np.empty((len(ys), len(xs), 3))
    d[..., 0] = dx[None, :]
    d[..., 1] = dy[:, None]
    d[..., 2] = 1.0
    d /= np.sqrt(dx[None, :] ** 2 + dy[:, None] ** 2 + 1.0)[..., None]
    return d.reshape(-1, 3)


def _noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """(h, w) float32 smooth noise in about [-1, 1] (random grid upsampled)."""
    small = rng.uniform(-1, 1, (max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def render_background(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float32 BGR in [0, 255]: sky over a textured ground (outdoor) or a wall over a
    floor (indoor), with the horizon where the camera sees it."""
    cam = scene.camera
    # The background is smooth: compute it at half resolution (float32) and upsample.
    W, H = (cam.width + 1) // 2, (cam.height + 1) // 2
    Kinv = np.linalg.inv(cam.K)
    xs = (Kinv[0, 0] * (np.arange(W) * 2 + 0.5) + Kinv[0, 2]).astype(np.float32)[None, :]
    ys = (Kinv[1, 1] * (np.arange(H) * 2 + 0.5) + Kinv[1, 2]).astype(np.float32)[:, None]
    Rt = cam.R.T.astype(np.float32)  # camera -> world directions (unnormalised rays suffice)
    dx = Rt[0, 0] * xs + Rt[0, 1] * ys + Rt[0, 2]
    dy = Rt[1, 0] * xs + Rt[1, 1] * ys + Rt[1, 2]
    dz = Rt[2, 0] * xs + Rt[2, 1] * ys + Rt[2, 2]
    C = cam.centre.astype(np.float32)
    down = dz < -1e-6
    ground_s = np.where(down, -C[2] / np.minimum(dz, -1e-6), np.float32(np.inf))
    riser = None
    if scene.ground is not FLAT:  # steps and slopes (the default world's ground is z = 0)
        ground_s, riser = ray_entry(scene.ground, C, dx, dy, dz)
        ground_s = ground_s.astype(np.float32)
        down = np.isfinite(ground_s)
    gs = np.where(down, ground_s, 0)
    gx, gy = C[0] + gs * dx, C[1] + gs * dy
    if scene.indoor:
        far = max([p.joints_world[:, 1].max() for p in scene.people], default=5.0)
        wall_y = np.float32(far + rng.uniform(1.0, 4.0))
        wall_s = np.where(dy > 1e-6, (wall_y - C[1]) / np.maximum(dy, 1e-6), np.float32(np.inf))
        on_wall = wall_s < ground_s
        wall_col = rng.uniform(120, 235, 3).astype(np.float32)
        wz = C[2] + np.where(on_wall, wall_s, 0) * dz
        shade = 0.8 + 0.2 * np.clip(wz / 3.0, 0, 1)
        shade = np.where(wz < 0.12, shade * 0.55, shade)  # skirting board
        floor_col = rng.uniform(60, 190, 3).astype(np.float32)
        tile = np.float32(rng.uniform(0.3, 0.8))
        checker = (np.floor(gx / tile) + np.floor(gy / tile)) % 2
        floor_shade = 0.85 + 0.15 * checker
        img = np.where(on_wall[..., None], wall_col * shade[..., None],
                       floor_col * floor_shade[..., None])
    else:
        norm = np.sqrt(dx * dx + dy * dy + dz * dz)
        t = np.sqrt(np.clip(dz / norm, 0, 1))[..., None]
        sky_top = np.array([rng.uniform(170, 230), rng.uniform(110, 160), rng.uniform(40, 90)],
                           np.float32)
        sky_low = (np.array([235, 225, 215]) * rng.uniform(0.85, 1.0)).astype(np.float32)
        sky = sky_low * (1 - t) + sky_top * t
        grass = rng.random() < 0.5
        ground_col = (np.array([rng.uniform(40, 80), rng.uniform(110, 160), rng.uniform(60, 100)])
                      if grass else np.full(3, rng.uniform(90, 170)) + rng.uniform(-15, 15, 3)
                      ).astype(np.float32)
        if grass:
            pattern = 0.9 + 0.1 * np.sin(gx * 3.1) * np.sin(gy * 2.3)
        else:
            slab = np.float32(rng.uniform(0.5, 1.5))
            ex = np.abs((gx / slab) % 1 - 0.5)
            ey = np.abs((gy / slab) % 1 - 0.5)
            pattern = np.where(np.maximum(ex, ey) > 0.47, 0.75, 1.0).astype(np.float32)
        # Fade the ground texture into haze with distance.
        haze = np.clip(gs * norm / 80.0, 0, 1)[..., None]
        ground = (ground_col * pattern[..., None]) * (1 - haze) + sky_low * haze
        img = np.where(down[..., None], ground, sky)
    if riser is not None:  # the step's vertical face, in shadow
        img = np.where(riser[..., None], img * np.float32(0.6), img)
    img = img.astype(np.float32)
    img += (_noise(rng, H, W, 4) * 5 + _noise(rng, H, W, 25) * 10)[:, :, None]
    return cv2.resize(img, (cam.width, cam.height), interpolation=cv2.INTER_LINEAR)


def _blob_shadows(img: np.ndarray, scene: Scene) -> None:
    """Darken a soft disc on the ground under each person (in place); drawn at quarter size,
    since it is blurred anyway."""
    cam = scene.camera
    H, W = img.shape[:2]
    shade = np.zeros(((H + 3) // 4, (W + 3) // 4), np.float32)
    for person in scene.people:
        ctr = person.joints_world[:, :2].mean(axis=0)
        spread = max(0.25, float(np.ptp(person.joints_world[:, :2], axis=0).max()) * 0.6)
        ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        ring = np.stack([ctr[0] + spread * np.cos(ang), ctr[1] + spread * np.sin(ang),
                         np.zeros_like(ang)], axis=1)
        if scene.ground is not FLAT:
            ring[:, 2] = scene.ground.height(ctr)
        uv, z = cam.project(ring)
        if np.any(z <= 0.05):
            continue
        cv2.fillPoly(shade, [np.round(uv / 4.0).astype(np.int32)], 1.0)
    if shade.any():
        shade = cv2.resize(cv2.GaussianBlur(shade, (0, 0), 1.0), (W, H),
                           interpolation=cv2.INTER_LINEAR)
        img *= (1 - 0.35 * shade)[:, :, None]


def _part_colours(rng: np.random.Generator, n_people: int) -> list[dict]:
    """Per-person clothing, skin and hair colours (BGR)."""
    out = []
    for _ in range(n_people):
        skin = np.array(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], np.float32)
        skin = skin * rng.uniform(0.92, 1.08)
        shirt = rng.uniform(20, 240, 3).astype(np.float32)
        trousers = rng.uniform(20, 200, 3).astype(np.float32)
        shoes = np.full(3, rng.uniform(15, 90), np.float32)
        long_sleeves = rng.random() < 0.5
        shorts = rng.random() < 0.3
        out.append({
            "chest": shirt, "abdomen": shirt, "shoulders": shirt, "neck": skin, "head": skin,
            "hair": np.array(HAIR[int(rng.integers(len(HAIR)))], np.float32),
            "hips": trousers,
            "upper_arm": shirt, "forearm": shirt if long_sleeves else skin, "hand": skin,
            "thigh": trousers, "shank": skin if shorts else trousers, "foot": shoes,
            "seat": np.array([rng.uniform(40, 90), rng.uniform(60, 110), rng.uniform(90, 150)],
                             np.float32),
        })
    return out


def _normals(prim, P: np.ndarray) -> np.ndarray:
    """(N, 3) unit surface normals at points P (N, 3) of a camera-frame primitive."""
    if isinstance(prim, Capsule):
        ba = prim.b - prim.a
        h = np.clip(((P - prim.a) @ ba) / max(float(ba @ ba), 1e-12), 0, 1)
        n = P - prim.a - h[:, None] * ba
    else:
        q = ((P - prim.centre) @ prim.axes) / prim.semi ** 2
        n = q @ prim.axes.T
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)


def _bbox(prim, K: np.ndarray, W: int, H: int) -> tuple[int, int, int, int] | None:
    """Pixel box [x0,x1) x [y0,y1) holding a camera-frame primitive's projection, or None."""
    if isinstance(prim, Capsule):
        centres, radius = np.stack([prim.a, prim.b]), prim.radius
    else:
        centres, radius = prim.centre[None], float(np.max(prim.semi))
    if np.any(centres[:, 2] - radius < 0.05):
        return None  # touching the camera plane: skip rather than smear across the image
    uv = centres @ K.T
    uv = uv[:, :2] / uv[:, 2:]
    rpx = K[0, 0] * radius / (centres[:, 2] - radius) + 2
    x0 = int(max(0, math.floor(np.min(uv[:, 0] - rpx))))
    x1 = int(min(W, math.ceil(np.max(uv[:, 0] + rpx))))
    y0 = int(max(0, math.floor(np.min(uv[:, 1] - rpx))))
    y1 = int(min(H, math.ceil(np.max(uv[:, 1] + rpx))))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def render_scene(scene: Scene, rng: np.random.Generator) -> Rendering:
    """Draw a scene.

    Arguments:
        scene: camera and people.
        rng: randomness for background and colours (the scene itself is not changed).

    Returns:
        ``Rendering`` with the BGR image, per-pixel person index and depth.
    """
    cam = scene.camera
    W, H = cam.width, cam.height
    img = render_background(scene, rng)
    _blob_shadows(img, scene)
    colours = _part_colours(rng, len(scene.people))
    # Light from above and a little from the camera side, expressed in the camera frame.
    light_world = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.8, -0.2), 1.0])
    light = cam.R @ (light_world / np.linalg.norm(light_world))
    depth = np.full((H, W), np.inf, np.float32)
    person_index = np.full((H, W), -1, np.int16)
    for pi, person in enumerate(scene.people):
        for prim in body_in_camera(person, cam):
            box = _bbox(prim, cam.K, W, H)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            rays = _pixel_rays(cam.K, x0, y0, x1, y1)
            s = primitive_entry(prim, rays).reshape(y1 - y0, x1 - x0)
            zb = depth[y0:y1, x0:x1]
            front = s < zb
            if not front.any():
                continue
            P = rays.reshape(y1 - y0, x1 - x0, 3)[front] * s[front][:, None]
            n = _normals(prim, P)
            lambert = np.clip(n @ light, 0, 1)
            rim = np.clip(-(n * P).sum(1) / np.linalg.norm(P, axis=1), 0, 1)  # facing camera
            key = prim.part.split("_", 1)[1] if prim.part.startswith(("left_", "right_")) \
                else prim.part
            base = np.broadcast_to(colours[pi][key], (len(P), 3)).copy()
            if prim.part == "head":
                # Hair on the top and back of the head (head frame: x forward, z up).
                q = ((P - prim.centre) @ prim.axes) / prim.semi
                hair = (q[:, 2] > 0.45) | (q[:, 0] < -0.25)
                base[hair] = colours[pi]["hair"]
            shade = 0.35 + 0.5 * lambert + 0.2 * rim
            tile = img[y0:y1, x0:x1]
            tile[front] = base * shade[:, None]
            zb[front] = s[front]
            # Furniture is drawn and hides things, but is nobody's silhouette.
            person_index[y0:y1, x0:x1][front] = -1 if prim.part == "seat" else pi
    out = np.clip(img, 0, 255).astype(np.uint8)
    return Rendering(image=out, person_index=person_index, depth=depth)
