"""`make ablation`: the paper's claim in miniature, measured on the synthetic world.

Same small 3D fine-tuning budget, two starting points for the same network:
  (a) the backbone pre-trained by WSP on the embedded synthetic MCPC (2D keypoints + pairwise
      relative-depth labels from perspective priors; no 3D ground truth), and
  (b) the same backbone from scratch (He initialisation).
Fine-tuning data imitates a capture studio: one person, standing / walking / reaching, cameras at
1.2-1.9 m, 3-7 m away. Both are evaluated on
  - "in-domain": held-out people and cameras drawn from the same studio distribution, and
  - "shifted": the whole synthetic world (all poses incl. sitting, lying, jumping, running; cameras
    0.5-3 m high, 2-12 m away, other focal lengths) -- other cameras, poses and scenes.
Reports MPJPE / PA-MPJPE (mm, root-relative, GT root depth) per start x test set, as a table
(results.md), JSON and a PNG (bars + the held-out curves during fine-tuning).

    python -m pipelines.ablation --out out/ablation [--init PRETRAINED.pt] [--steps 150]

Without ``--init`` it pre-trains first (pipelines/configs/pretrain_small.yaml on the default MCPC
build, resumable). Sized to finish within 30 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import replace as dc_replace
from pathlib import Path

import cv2
import numpy as np

from mcpc_builder import atomic, joints
from mcpc_builder.errors import cli_entry

BODY22 = joints.JointLayout(name="body22", joint_names=joints.BODY_POINTS,
                            body_points=joints.BODY_POINTS, edge_names=())


def studio_config():
    from mcpc_builder.synth.world import WorldConfig

    return WorldConfig(people_count_weights=(1.0,), child_fraction=0.0,
                       pose_weights=(("standing", 0.45), ("walking", 0.4), ("reaching", 0.15)),
                       camera_height=(1.2, 1.9), pitch_jitter=3.0, yaw_jitter=5.0,
                       focal_factor=(1.0, 1.4), distance=(3.0, 7.0), image_sizes=((480, 360),))


def shifted_config():
    from mcpc_builder.synth.world import WorldConfig

    return WorldConfig(people_count_weights=(1.0,), child_fraction=0.15,
                       camera_height=(0.5, 3.0), focal_factor=(0.6, 1.6), distance=(2.0, 12.0),
                       image_sizes=((480, 360), (360, 480)))


def synthetic_records(world_cfg, n: int, seed: int, out_dir: Path, desc: str = "render"):
    """``n`` rendered one-person scenes -> ``Pose3DRecords`` (H36M-17, camera mm) with images in
    ``out_dir`` (reused when complete). Scenes whose person is not wholly inside the image are
    redrawn."""
    from tqdm import tqdm

    from mcpc_builder.synth.render import render_scene
    from mcpc_builder.synth.world import sample_scene
    from wsp_model.pose3d_data import Pose3DRecords

    out_dir = Path(out_dir)
    index = out_dir / "records.npz"
    if index.exists():
        z = np.load(index, allow_pickle=False)
        if len(z["bbox"]) == n:
            return Pose3DRecords(np.array([str(out_dir / p) for p in z["image"]], dtype=object),
                                 z["bbox"], z["joints_cam"], z["f"], z["c"],
                                 z["pose"].astype(object), "h36m17")
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = {"image": [], "bbox": [], "joints_cam": [], "f": [], "c": [], "pose": []}
    bar = tqdm(total=n, desc=desc, leave=False)
    while len(rows["bbox"]) < n:
        scene = sample_scene(rng, world_cfg, n_people=1)
        if not scene.people:
            continue
        cam = scene.camera
        xc = scene.joints_camera()[0]                                      # (22, 3) m
        uv, z = scene.camera.project(scene.people[0].joints_world)
        if not cam.in_image(uv, z).all():
            continue
        j17, _, _ = joints.convert(xc * 1000.0, np.full(22, 2, np.uint8), BODY22, joints.H36M17,
                                   synthesise=False)
        uv17, _, _ = joints.convert(uv, np.full(22, 2, np.uint8), BODY22, joints.H36M17,
                                    synthesise=False)
        lo, hi = uv17.min(0), uv17.max(0)
        ctr, size = (lo + hi) / 2, (hi - lo) * 1.2
        if size.max() < 24:  # too small to say anything about 3D
            continue
        image = render_scene(scene, rng).image
        name = f"{len(rows['bbox']):06d}.jpg"
        cv2.imwrite(str(out_dir / name), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        rows["image"].append(name)
        rows["bbox"].append(np.concatenate([ctr - size / 2, size]))
        rows["joints_cam"].append(j17)
        rows["f"].append([cam.K[0, 0], cam.K[1, 1]])
        rows["c"].append([cam.K[0, 2], cam.K[1, 2]])
        rows["pose"].append(scene.people[0].pose)
        bar.update(1)
    bar.close()
    arrays = {"image": np.array(rows["image"]), "bbox": np.array(rows["bbox"], np.float32),
              "joints_cam": np.array(rows["joints_cam"], np.float32),
              "f": np.array(rows["f"], np.float32), "c": np.array(rows["c"], np.float32),
              "pose": np.array(rows["pose"])}
    tmp = out_dir / ".records.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, index)
    return synthetic_records(world_cfg, n, seed, out_dir, desc)


def ensure_pretrained(args) -> Path:
    """``--init`` if given; else pre-train the small config into ``<out>/pretrain`` (resumable)."""
    if args.init:
        return Path(args.init)
    from pipelines.pretrain import ensure_build
    from wsp_model.config import PretrainConfig, load_config, replace
    from wsp_model.pretrain import pretrain

    cfg = load_config(PretrainConfig, args.pretrain_config)
    overrides = {"train.num_workers": args.workers, "train.progress": not args.quiet}
    if args.pretrain_steps is not None:
        overrides["train.max_steps"] = args.pretrain_steps
    cfg = replace(cfg, **overrides)
    run_dir = Path(args.out) / "pretrain"
    ckpt = run_dir / "checkpoint.pt"
    build_dir = ensure_build(Path(args.mcpc))
    result = pretrain(build_dir, cfg, run_dir)
    print(f"pre-trained {result.step} steps: {result.checkpoint}  "
          + "  ".join(f"{k} {v:.3g}" for k, v in result.val_metrics.items()), flush=True)
    return ckpt


def _val_curve(run_dir: Path) -> list[tuple[int, float]]:
    path = run_dir / "val_log.csv"
    if not path.exists():
        return []
    with open(path) as fh:
        return [(int(r["step"]), float(r["mpjpe"])) for r in csv.DictReader(fh) if r.get("mpjpe")]


def plot_ablation(results: dict, curves: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    starts = list(results)
    tests = list(next(iter(results.values())))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    width = 0.8 / len(starts)
    for ax, metric, label in ((axes[0], "mpjpe", "MPJPE (mm)"), (axes[1], "pa_mpjpe", "PA-MPJPE (mm)")):
        for i, s in enumerate(starts):
            vals = [results[s][t][metric] for t in tests]
            bars = ax.bar(np.arange(len(tests)) + (i - (len(starts) - 1) / 2) * width, vals, width,
                          label=s)
            ax.bar_label(bars, fmt="%.0f", fontsize=8)
        top = max(results[s][t][metric] for s in starts for t in tests)
        ax.set_ylim(0, 1.35 * top)  # room for the legend above the bars
        ax.set_xticks(np.arange(len(tests)), tests)
        ax.set_ylabel(label)
        ax.set_title(label + " (lower is better)", fontsize=9)
        ax.legend(fontsize=8)
    for s, pts in curves.items():
        if pts:
            axes[2].plot(*zip(*pts), marker="o", label=s)
    axes[2].set_xlabel("fine-tuning step")
    axes[2].set_ylabel("in-domain held-out MPJPE (mm)")
    axes[2].legend(fontsize=8)
    axes[2].set_title("during fine-tuning", fontsize=9)
    fig.tight_layout()
    return atomic.save_figure(fig, path, dpi=90)


@cli_entry("pipelines.ablation")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/ablation")
    parser.add_argument("--init", default=None, help="pre-trained checkpoint (default: pre-train "
                                                     "the small config into OUT/pretrain)")
    parser.add_argument("--mcpc", default="out/mcpc-default", help="MCPC build for pre-training")
    parser.add_argument("--pretrain-config", default="pipelines/configs/pretrain_small.yaml")
    parser.add_argument("--pretrain-steps", type=int, default=None)
    parser.add_argument("--config", default="pipelines/configs/finetune_ablation.yaml")
    parser.add_argument("--steps", type=int, default=None, help="fine-tuning steps (both runs)")
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    import multiprocessing

    import torch

    # Loader workers start from a clean forkserver: this process has run renderers, a threaded
    # build and progress bars, and forking it could inherit a held lock (seen as a hung loader).
    multiprocessing.set_start_method("forkserver", force=True)
    from wsp_model.config import replace
    from wsp_model.evaluate import predict_records, write_json
    from wsp_model.finetune import backbone_from_init, finetune, load_finetune_config
    from wsp_model.head3d import load_finetuned
    from wsp_model import metrics

    t0 = time.time()
    out = Path(args.out)
    data = out / "data"
    train = synthetic_records(studio_config(), args.n_train, args.seed + 1, data / "train", "train set")
    tests = {"in-domain": synthetic_records(studio_config(), args.n_test, args.seed + 2,
                                            data / "test-in-domain", "in-domain test"),
             "shifted": synthetic_records(shifted_config(), args.n_test, args.seed + 3,
                                          data / "test-shifted", "shifted test")}
    print(f"data: {len(train)} train, " + ", ".join(f"{len(v)} {k}" for k, v in tests.items())
          + f" ({time.time() - t0:.0f} s)", flush=True)
    init = ensure_pretrained(args)
    _, info = backbone_from_init(str(init), load_finetune_config(args.config).head)

    cfg = load_finetune_config(args.config)
    overrides = {"head.backbone_depth": info["depth"], "head.backbone_width": info["width"],
                 "train.num_workers": args.workers, "train.progress": not args.quiet,
                 "train.seed": args.seed}
    if args.steps is not None:
        overrides["train.max_steps"] = args.steps
    cfg = replace(cfg, **overrides)

    results, curves, timing = {}, {}, {}
    for name, start in (("WSP pre-trained", str(init)), ("scratch", "scratch")):
        run_dir = out / ("finetune-pretrained" if start != "scratch" else "finetune-scratch")
        t1 = time.time()
        finetune(cfg, run_dir, start, train_records=train, val_records=tests["in-domain"])
        timing[name] = time.time() - t1
        model, meta = load_finetuned(str(run_dir / "checkpoint.pt"))
        results[name] = {}
        for test_name, recs in tests.items():
            pred, gt = predict_records(model, recs, dc_replace(cfg.data), batch_size=32)
            per_pose = metrics.grouped_mean(metrics.mpjpe_errors(pred, gt, 0).mean(1),
                                            recs.group.astype(str))
            results[name][test_name] = {"mpjpe": metrics.mpjpe(pred, gt, 0),
                                        "pa_mpjpe": metrics.pa_mpjpe(pred, gt),
                                        "n": int(len(pred)), "mpjpe_per_pose": per_pose}
        curves[name] = _val_curve(run_dir)
        del model
        torch.cuda.empty_cache() if torch.cuda.is_available() else None

    # Reference: the mean root-relative training pose predicted for every frame (no image used).
    mean_pose = (train.joints_cam - train.joints_cam[:, :1]).mean(axis=0).astype(np.float64)
    results["mean training pose (no image)"] = {}
    for test_name, recs in tests.items():
        gt = (recs.joints_cam - recs.joints_cam[:, :1]).astype(np.float64)
        pred = np.broadcast_to(mean_pose, gt.shape).copy()
        results["mean training pose (no image)"][test_name] = {
            "mpjpe": metrics.mpjpe(pred, gt, 0), "pa_mpjpe": metrics.pa_mpjpe(pred, gt),
            "n": int(len(gt)), "mpjpe_per_pose": metrics.grouped_mean(
                metrics.mpjpe_errors(pred, gt, 0).mean(1), recs.group.astype(str))}

    lines = ["| start | test set | MPJPE (mm) | PA-MPJPE (mm) | frames |", "|---|---|---|---|---|"]
    for s, per in results.items():
        for t, r in per.items():
            lines.append(f"| {s} | {t} | {r['mpjpe']:.1f} | {r['pa_mpjpe']:.1f} | {r['n']} |")
    table = "\n".join(lines)
    doc = {"results": results, "fine_tuning_seconds": timing, "total_seconds": time.time() - t0,
           "pretrained_checkpoint": str(init), "finetune_config": str(args.config),
           "max_steps": cfg.train.max_steps, "batch_size": cfg.train.batch_size,
           "n_train": len(train), "n_test": {k: len(v) for k, v in tests.items()},
           "curves": curves}
    write_json(doc, out / "results.json")
    (out / "results.md").write_text(table + "\n")
    plot_ablation(results, curves, out / "ablation.png")
    print(table)
    print(f"{out / 'results.json'}  {out / 'ablation.png'}  ({time.time() - t0:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
