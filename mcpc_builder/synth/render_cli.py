"""`mcpc-build render`: one synthetic scene, rendered, with its 2D skeletons and a map of depth.

    mcpc-build render --out scene.png [--seed S] [--people N]

Left panel: the rendered image with each person's skeleton (left side blue, right side orange,
centre green; filled dots visible, hollow dots occluded, joints outside the image not drawn).
Middle: the scene from above (camera, field of view, people; distances in metres). Right: the
scene from the side along the camera's depth axis (camera height and pitch, people's depth).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .. import atomic
from ..joints import BODY_POINTS, MCPC21
from .render import render_scene
from .scene import sample_scene
from .visibility import visibility

EDGES = [(BODY_POINTS.index(a), BODY_POINTS.index(b)) for a, b in MCPC21.edge_names]
SIDE_COLOURS = {"left": "#1f77ff", "right": "#ff7f0e", "centre": "#2ca02c"}
PERSON_COLOURS = ("#d62728", "#9467bd", "#17becf", "#bcbd22", "#e377c2", "#8c564b", "#7f7f7f")


def _side(point: str) -> str:
    return "left" if point.startswith("left_") else "right" if point.startswith("right_") \
        else "centre"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("scene.png"), help="PNG to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the scene")
    parser.add_argument("--people", type=int, default=None,
                        help="number of people (default: drawn like the datasets)")
    parser.add_argument("--world", default=None,
                        help="synthetic world: default | dev | held_out | a WorldConfig YAML")
    parser.add_argument("--poses", type=Path, default=None, help="pose library (.npz)")


def draw_scene_figure(scene, image_bgr: np.ndarray, out: Path) -> Path:
    """Write the three-panel PNG (image with skeletons, top view, side view) to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cam = scene.camera
    vis = visibility(scene)
    uv, _ = cam.project(np.stack([p.joints_world for p in scene.people])) if scene.people \
        else (np.zeros((0, 22, 2)), None)
    aspect = cam.height / cam.width
    fig, axes = plt.subplots(2, 2, figsize=(14, 7 * max(aspect, 0.75) + 5.5),
                             gridspec_kw={"height_ratios": [max(aspect, 0.75), 0.8]})
    axes = axes.ravel()
    axes[0].imshow(image_bgr[:, :, ::-1])
    axes[0].set_title("rendered image")
    axes[0].axis("off")
    ax = axes[1]
    ax.imshow(image_bgr[:, :, ::-1], alpha=0.55)
    for pi in range(len(scene.people)):
        for a, b in EDGES:
            if vis[pi, a] and vis[pi, b]:
                colour = SIDE_COLOURS[_side(BODY_POINTS[b])]
                ax.plot(uv[pi, [a, b], 0], uv[pi, [a, b], 1], "-", color=colour, lw=1.3)
        for j, point in enumerate(BODY_POINTS):
            if vis[pi, j] == 0:
                continue
            colour = SIDE_COLOURS[_side(point)]
            ax.plot(uv[pi, j, 0], uv[pi, j, 1], "o", ms=4, mec=colour, mew=1.2,
                    mfc=colour if vis[pi, j] == 2 else "none")
        top = uv[pi, BODY_POINTS.index("head_top")]
        if vis[pi, BODY_POINTS.index("head_top")]:
            ax.text(top[0], top[1] - 8, str(pi), color="white", fontsize=10, ha="center",
                    bbox={"fc": PERSON_COLOURS[pi % len(PERSON_COLOURS)], "ec": "none",
                          "pad": 1.5})
    ax.set_xlim(0, cam.width)
    ax.set_ylim(cam.height, 0)
    ax.set_title(f"{cam.width}x{cam.height}, f = {cam.K[0, 0]:.0f} px; blue left, orange right;"
                 " filled visible, hollow occluded", fontsize=10)
    ax.axis("off")

    # Top view (world x, y) with the camera's field of view.
    ax = axes[2]
    C = cam.centre
    fwd = cam.R[2]
    half = np.arctan(0.5 * cam.width / cam.K[0, 0])
    heading = np.arctan2(fwd[1], fwd[0])
    reach = 16.0
    for s in (-1, 1):
        ax.plot([C[0], C[0] + reach * np.cos(heading + s * half)],
                [C[1], C[1] + reach * np.sin(heading + s * half)], "k--", lw=0.8)
    ax.plot(C[0], C[1], "ks", ms=9)
    ax.annotate("camera", (C[0], C[1]), textcoords="offset points", xytext=(6, -12))
    Xc = scene.joints_camera()
    for pi, person in enumerate(scene.people):
        colour = PERSON_COLOURS[pi % len(PERSON_COLOURS)]
        P = person.joints_world
        for a, b in EDGES:
            ax.plot(P[[a, b], 0], P[[a, b], 1], "-", color=colour, lw=1.2)
        depth = float(Xc[pi, BODY_POINTS.index("pelvis"), 2])
        ax.annotate(f"{pi}: {person.pose}{' (child)' if person.is_child else ''}\n"
                    f"depth {depth:.1f} m", (P[0, 0], P[0, 1]), textcoords="offset points",
                    xytext=(8, 4), fontsize=8, color=colour)
    pts = np.concatenate([p.joints_world[:, :2] for p in scene.people] + [C[None, :2]])
    lo, hi = pts.min(0) - 1.5, pts.max(0) + 1.5
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("world x (m)")
    ax.set_ylabel("world y (m)")
    ax.set_title("top view")
    ax.grid(alpha=0.3)

    # Side view: horizontal distance along the camera's heading vs height above the ground.
    ax = axes[3]
    flat = np.array([np.cos(heading), np.sin(heading)])
    pitch = np.degrees(np.arcsin(np.clip(fwd[2], -1, 1)))
    ax.axhline(float(scene.ground.height(C[:2])), color="saddlebrown", lw=2)
    ax.plot(0, C[2], "ks", ms=9)
    vfov = np.arctan(0.5 * cam.height / cam.K[1, 1])
    pitch_r = np.radians(pitch)
    for s in (-1, 1):
        ang = pitch_r + s * vfov
        ax.plot([0, reach * np.cos(ang)], [C[2], C[2] + reach * np.sin(ang)], "k--", lw=0.8)
    for pi, person in enumerate(scene.people):
        colour = PERSON_COLOURS[pi % len(PERSON_COLOURS)]
        P = person.joints_world
        along = (P[:, :2] - C[:2]) @ flat
        for a, b in EDGES:
            ax.plot(along[[a, b]], P[[a, b], 2], "-", color=colour, lw=1.2)
        ax.text(along.mean(), P[:, 2].max() + 0.15, str(pi), color=colour, ha="center")
    far = max([float(((p.joints_world[:, :2] - C[:2]) @ flat).max()) for p in scene.people],
              default=8.0)
    ax.set_xlim(-0.5, far + 1.5)
    ax.set_ylim(-0.3, max(2.5, C[2] + 0.5))
    ax.set_xlabel("distance along the camera heading (m)")
    ax.set_ylabel("height (m)")
    ax.set_title(f"side view: camera {C[2]:.2f} m high, pitch {pitch:+.1f} deg")
    ax.set_aspect("equal", adjustable="box")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return atomic.save_figure(fig, out, dpi=100)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .worlds import load_world

    try:
        config = load_world(getattr(args, "world", None))
        if getattr(args, "poses", None) is not None:
            config = replace(config, poses=str(args.poses.resolve()))
    except (OSError, ValueError, TypeError) as err:
        print(f"mcpc-build render: error: {err}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    scene = sample_scene(rng, config, n_people=args.people)
    rendering = render_scene(scene, rng)
    out = draw_scene_figure(scene, rendering.image, args.out)
    vis = visibility(scene)
    print(f"wrote {out}: {len(scene.people)} people, "
          f"{int((vis == 2).sum())} visible / {int((vis == 1).sum())} occluded / "
          f"{int((vis == 0).sum())} out-of-image joints (seed {args.seed})")
    return 0
