"""`wsp-predict`: 3D joints of one person in one image, from a fine-tuned checkpoint.

    wsp-predict --checkpoint out/finetune-h36m/checkpoint.pt --image photo.jpg [--bbox x,y,w,h]
                [--focal PX] [--out PREFIX]

Writes ``PREFIX.json`` (root-relative 3D joints in the camera frame, mm, in the checkpoint's joint
layout, plus their 2D pixel positions) and ``PREFIX.png`` (the 2D skeleton on the image and the 3D
skeleton). Without ``--bbox`` the whole image is the person box. A single image carries no metric
depth: the root depth is set so the person crop spans the training set's median metric size
(``mean_crop_mm`` in the checkpoint), and the focal length defaults to the image's larger side;
the 3D shape then does not depend on the focal length (see ``head3d.lift_to_camera``).

The checkpoint is read with ``weights_only=True``. When it was trained on synthetic data, the
printed output and the JSON (``trained_on_synthetic_data_only``, ``synthetic_sources``, ``note``)
say so: a model trained on the synthetic world only returns near-mean poses on real photos.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from mcpc_builder import atomic, joints
from mcpc_builder.errors import UsageError, cli_entry


def parse_bbox(text: str, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """``x,y,w,h`` -> array; ``UsageError`` naming ``--bbox`` unless it is four finite numbers with
    w, h > 0 and (given ``image_size`` = (width, height)) the box overlaps the image."""
    try:
        box = np.array([float(v) for v in text.split(",")], dtype=np.float64)
    except ValueError:
        raise UsageError(f"--bbox: expected x,y,w,h numbers, got {text!r}") from None
    if box.shape != (4,):
        raise UsageError(f"--bbox: expected 4 numbers x,y,w,h, got {text!r}")
    if not np.isfinite(box).all():
        raise UsageError(f"--bbox: expected finite numbers, got {text!r}")
    if box[2] <= 0 or box[3] <= 0:
        raise UsageError(f"--bbox: width and height must be > 0, got {text!r}")
    if image_size is not None:
        w, h = image_size
        if box[0] >= w or box[1] >= h or box[0] + box[2] <= 0 or box[1] + box[3] <= 0:
            raise UsageError(f"--bbox: {text} lies outside the {w}x{h} image")
    return box


def check_focal(focal: float | None) -> None:
    """``UsageError`` naming ``--focal`` unless it is a finite number > 0 (or not given)."""
    if focal is not None and not (np.isfinite(focal) and focal > 0):
        raise UsageError(f"--focal: expected a finite focal length > 0 in pixels, got {focal}")


@torch.no_grad()
def predict_image(model, meta: dict, image_bgr: np.ndarray, bbox: np.ndarray | None = None,
                  focal: float | None = None) -> dict:
    """One person -> {"joints_3d_mm": (J, 3) root-relative camera frame, "joints_2d_px": (J, 2),
    "root_depth_mm": assumed root depth, "focal_px", "bbox"}."""
    from .head3d import lift_to_camera
    from .pose3d_data import CropConfig, crop_box, crop_image

    h, w = image_bgr.shape[:2]
    bbox = np.array([0.0, 0.0, w, h]) if bbox is None else np.asarray(bbox, dtype=np.float64)
    crop = CropConfig(**meta["crop"])
    box = crop_box(bbox, crop.padding)
    patch = cv2.cvtColor(crop_image(image_bgr, box, crop.crop_size), cv2.COLOR_BGR2RGB)
    image = torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1)))[None]
    out = model(image)
    f = float(focal or max(w, h))
    root_depth = float(meta["mean_crop_mm"]) * f / float(box[2])
    root = joints.LAYOUTS[meta["layout"]].joint("pelvis")
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))[None]  # noqa: E731
    p3 = lift_to_camera(out["uv"], out["z_rel"], t(box), t([f, f]), t([w / 2, h / 2]),
                        t(root_depth), root)[0].numpy()
    uv = (out["uv"][0].numpy() - 0.5) * box[2] + box[:2]
    return {"joints_3d_mm": p3, "joints_2d_px": uv, "root_depth_mm": root_depth,
            "focal_px": f, "bbox": bbox}


def draw_prediction(image_bgr: np.ndarray, result: dict, layout: joints.JointLayout, path: Path) -> Path:
    """PNG: the image with the 2D skeleton, and the 3D skeleton (y up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8, 4))
    ax = fig.add_subplot(1, 2, 1)
    ax.imshow(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    uv, p = result["joints_2d_px"], result["joints_3d_mm"]
    right = set(layout.right_joints)
    for a, b in layout.edges:
        colour = "tab:red" if b in right else ("tab:blue" if b in layout.left_joints else "tab:green")
        ax.plot([uv[a, 0], uv[b, 0]], [uv[a, 1], uv[b, 1]], color=colour, lw=2)
    x, y, bw, bh = result["bbox"]
    ax.add_patch(plt.Rectangle((x, y), bw, bh, fill=False, color="yellow", lw=1))
    ax.set_axis_off()
    ax3 = fig.add_subplot(1, 2, 2, projection="3d")
    for a, b in layout.edges:
        colour = "tab:red" if b in right else ("tab:blue" if b in layout.left_joints else "tab:green")
        ax3.plot([p[a, 0], p[b, 0]], [p[a, 2], p[b, 2]], [-p[a, 1], -p[b, 1]], color=colour, lw=2)
    lim = max(np.abs(p).max(), 1.0) * 1.1
    ax3.set_xlim(-lim, lim), ax3.set_ylim(-lim, lim), ax3.set_zlim(-lim, lim)
    ax3.set_xlabel("x (mm)"), ax3.set_ylabel("depth (mm)"), ax3.set_zlabel("up (mm)")
    ax3.view_init(elev=12, azim=-70)
    fig.suptitle("subject's right in red, left in blue", fontsize=9)
    fig.tight_layout()
    return atomic.save_figure(fig, path, dpi=90)


@cli_entry("wsp-predict")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wsp-predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="fine-tuned checkpoint (make finetune)")
    parser.add_argument("--image", required=True)
    parser.add_argument("--bbox", default=None,
                        help="person box x,y,w,h in pixels (w, h > 0, overlapping the image)")
    parser.add_argument("--focal", type=float, default=None, help="focal length, px (> 0)")
    parser.add_argument("--out", default=None, help="output prefix (default: next to the image, "
                                                    "<image stem>_3d)")
    args = parser.parse_args(argv)
    check_focal(args.focal)
    if args.bbox is not None:
        parse_bbox(args.bbox)  # before the checkpoint is read; the image bounds once it is
    from .checkpoint import CheckpointError
    from .head3d import load_finetuned
    from .provenance import checkpoint_training_data

    ckpt, img_path = Path(args.checkpoint), Path(args.image)
    if not ckpt.exists():
        print(f"wsp-predict: error: {ckpt}: checkpoint not found", file=sys.stderr)
        return 2
    image = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
    if image is None:
        print(f"wsp-predict: error: {img_path}: not a readable image", file=sys.stderr)
        return 2
    bbox = None if args.bbox is None else parse_bbox(args.bbox, (image.shape[1], image.shape[0]))
    try:
        model, meta = load_finetuned(ckpt)
    except (CheckpointError, ValueError) as err:
        print(f"wsp-predict: error: {err}", file=sys.stderr)
        return 2
    result = predict_image(model, meta, image, bbox, args.focal)
    trained = checkpoint_training_data(meta)
    layout = joints.LAYOUTS[meta["layout"]]
    prefix = Path(args.out) if args.out else img_path.with_name(img_path.stem + "_3d")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    doc = {"checkpoint": str(ckpt), "image": str(img_path), "layout": layout.name,
           "joint_names": list(layout.joint_names), "units": "mm, camera frame (x right, y down, "
           "z forward), relative to the root joint",
           "root_joint": layout.joint_names[layout.joint("pelvis")],
           "joints_3d_mm": np.round(result["joints_3d_mm"], 2).tolist(),
           "joints_2d_px": np.round(result["joints_2d_px"], 2).tolist(),
           "bbox_xywh": [float(v) for v in result["bbox"]],
           "assumed_focal_px": result["focal_px"], "assumed_root_depth_mm": result["root_depth_mm"],
           "trained_on_synthetic_data_only": trained["synthetic_only"],
           "synthetic_sources": trained["synthetic_sources"], "note": trained["note"]}
    json_path = prefix.with_name(prefix.name + ".json")
    atomic.write_json(json_path, doc, indent=2)
    png = draw_prediction(image, result, layout, prefix.with_name(prefix.name + ".png"))
    if trained["note"]:
        print(f"NOTE: {trained['note']}")
    print(f"{json_path}\n{png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
