"""`make ablation`: does relative-depth pre-training make a better 3D model? Three arms, >= 3 seeds.

Arms (same network: ResNet + the per-joint 2.5D head of ``wsp_model.model``):
  scratch      He initialisation, fine-tuned directly;
  pretrain_2d  pre-trained on the MCPC build with the ranking loss OFF (2D heatmaps only);
  wsp          pre-trained on the same build, same steps, batch and compute, heatmaps + ranking
               loss on the per-joint depths of the relative-depth pairs.
Each seed pre-trains its own pretrain_2d and wsp networks (seed = init + data order) and
fine-tunes all three arms with the same budget on the same data. Fine-tuning keeps the whole
pre-trained network (backbone + heatmaps + depth maps) and learns the metric scale on top.

Data (all synthetic, from the embedded world of ``mcpc_builder.synth``):
  pre-training  the ablation's own MCPC build (``pretraining_build``): 2000 (--pretrain-images)
                scenes of the default synthetic world written as a COCO root ("in the wild":
                crowds, any pose, cameras 0.5-3 m high), labelled by the current priors;
  fine-tuning   a studio-like world (one person, standing / walking / reaching, cameras at
                1.2-1.9 m, 3-7 m away), as Human3.6M is to MCPC;
  tests         "in_domain": held-out studio frames; "shifted": the whole world (sitting,
                lying, jumping, running; other heights, distances, focal lengths).
Reports MPJPE / PA-MPJPE (mm, root-relative, ground-truth root depth) per arm x test x seed, its
split into image-plane (x-y) and depth error (``metrics.error_split``: which one an arm moved), the
within-person depth order of the fine-tuned 3D predictions (``metrics.depth_order``: joint pairs
>= 5 cm apart in truth ordered right; it separates depth from the 2D error MPJPE mixes in), and
the depth-order probe (``wsp_model.depth_probe``): the pre-trained networks' accuracy on
*unlabelled* same-person and cross-person pairs of held-out persons against true depth, next to
an untrained network and the "higher in the image is closer" / "lower feet are closer" rules.

With ``--dense-control`` a fourth arm, ``wsp_dense``, pre-trains exactly like ``wsp`` on a copy
of the build whose training people carry DENSE ground-truth same-person labels
(``pipelines.dense_control``): the upper bound of what better priors could give, to tell whether
a missing gain is the labels' or the method's. With ``--library-control`` an arm ``wsp_library``
pre-trains like ``wsp`` on the same images built with the opt-in pose-library prior as well
(``pipelines.library_control``: ``mcpc-build --pose-library`` with the real motion capture of
``../shared/fixtures/mocap-dev``, or ``--pose-library FILE``; no ground truth). ``--arms`` runs a
subset (e.g. ``--arms wsp wsp_library --library-control``).

Writes ``OUT/ablation.json`` (schema of issue 11 plus extra keys), ``OUT/results.md`` and
``OUT/ablation.png``.

    python -m pipelines.ablation --out out/ablation [--seeds 0 1 2] [--pretrain-steps N] [--steps N]

Every run directory is resumable (a killed ablation continues where it stopped; the control and
library builds are kept when made from the same build and library, ``OUT/mcpc-*.inputs.json``);
``--fresh`` starts over. Sized for <= 45 minutes on 2 idle CPU cores (3 seeds with the control).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from mcpc_builder import atomic, contract, joints
from mcpc_builder.errors import UsageError, cli_entry

BODY22 = joints.JointLayout(name="body22", joint_names=joints.BODY_POINTS,
                            body_points=joints.BODY_POINTS, edge_names=())
ARMS = ("scratch", "pretrain_2d", "wsp")
TESTS = ("in_domain", "shifted")
SYNTHETIC_FINETUNE_SOURCE = "synthetic-studio"


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


def synthetic_records(world_cfg, n: int, seed: int, out_dir: Path, desc: str = "render",
                      progress: bool = True):
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
    bar = tqdm(total=n, desc=desc, leave=False, disable=not progress)
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
    return synthetic_records(world_cfg, n, seed, out_dir, desc, progress)


PRETRAIN_SEED = 11


def pretraining_build(out: Path, n_images: int, workers: int = 1, progress: bool = True) -> Path:
    """The ablation's pre-training data: ``n_images`` in-the-wild scenes of the default synthetic
    world written as a COCO root (``OUT/pretrain-source/coco``, with its ground-truth sidecar for
    the depth-order probe) and built with the current priors into ``OUT/mcpc``. Both are reused
    when they match ``n_images``; the root is written under a temporary name and renamed."""
    from mcpc_builder.build import build
    from mcpc_builder.synth import write_dataset

    root = out / "pretrain-source" / "coco"
    marker = root / ".complete"
    wanted = f"coco {n_images} images seed {PRETRAIN_SEED}\n"
    build_dir = out / "mcpc"
    if not (marker.exists() and marker.read_text() == wanted):
        for stale in (root, build_dir, root.with_name(".coco-partial")):
            atomic.remove_tree(stale)
        tmp = root.with_name(".coco-partial")
        print(f"pre-training data: rendering {n_images} SYNTHETIC in-the-wild images into {root}",
              flush=True)
        write_dataset("coco", tmp, seed=PRETRAIN_SEED, n_images=n_images, progress=progress)
        (tmp / ".complete").write_text(wanted)
        os.replace(tmp, root)
    if not (build_dir / "manifest.json").exists():
        build(["coco"], build_dir, roots={"coco": root}, workers=workers, progress=progress)
    return build_dir


def inputs_record(build_dir: Path) -> Path:
    """Where a derived build (``mcpc-library``, ``mcpc-dense``) records what it was made from."""
    return build_dir.with_name(build_dir.name + ".inputs.json")


def same_inputs(build_dir: Path, inputs: dict) -> bool:
    """True when ``build_dir`` is complete and was made from ``inputs``: a resumed ablation keeps
    it (making it again would give a new manifest, and its arms' runs would refuse to resume);
    otherwise its record is removed before it is made again."""
    record = inputs_record(build_dir)
    try:
        if (build_dir / "manifest.json").is_file() and json.loads(record.read_text()) == inputs:
            return True
    except (OSError, ValueError):
        pass
    record.unlink(missing_ok=True)
    return False


def record_inputs(build_dir: Path, inputs: dict) -> None:
    atomic.write_json(inputs_record(build_dir), inputs)


def git_commit() -> dict:
    """The commit this code runs on, and whether the work tree had local changes."""
    here = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=here, capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": sha, "dirty": dirty}


def pretrain_arm(arm: str, seed: int, build_dir: Path, args, out: Path):
    """Pre-train one arm ("pretrain_2d": ranking loss off; "wsp": on) for one seed; resumable."""
    from wsp_model.config import PretrainConfig, load_config, replace
    from wsp_model.pretrain import pretrain

    cfg = load_config(PretrainConfig, args.pretrain_config)
    overrides = {"train.num_workers": args.workers, "train.progress": not args.quiet,
                 "train.seed": seed}
    if arm == "pretrain_2d":
        overrides["loss.ranking_weight"] = 0.0
    if args.pretrain_steps is not None:
        overrides["train.max_steps"] = args.pretrain_steps
    cfg = replace(cfg, **overrides)
    run_dir = out / f"pretrain-{arm}-seed{seed}"
    result = pretrain(build_dir, cfg, run_dir)
    return cfg, run_dir / "checkpoint.pt", result


def _val_curve(run_dir: Path) -> list[tuple[int, float]]:
    path = run_dir / "val_log.csv"
    if not path.exists():
        return []
    with open(path) as fh:
        return [(int(r["step"]), float(r["mpjpe"])) for r in csv.DictReader(fh) if r.get("mpjpe")]


def plot_ablation(doc: dict, path: Path) -> Path:
    """MPJPE (top) and PA-MPJPE (bottom) per test set: each arm's seeds (dots) and mean (bar),
    the mean-training-pose line; right: the depth-order probe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(doc["arms"])
    fig = plt.figure(figsize=(13, 6.4))
    grid = fig.add_gridspec(2, 3)
    colours = {"scratch": "tab:grey", "pretrain_2d": "tab:blue", "wsp": "tab:orange",
               "wsp_dense": "tab:green", "wsp_library": "tab:purple"}
    for row, (metric, label) in enumerate((("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"))):
        for col, test in enumerate(TESTS):
            ax = fig.add_subplot(grid[row, col])
            every = []
            for i, arm in enumerate(arms):
                vals = np.array(doc["arms"][arm][test][metric], dtype=float)
                every.extend(vals.tolist())
                ax.bar(i, vals.mean(), 0.6, color=colours.get(arm), alpha=0.45)
                ax.scatter(np.full(len(vals), i) + np.linspace(-0.15, 0.15, len(vals)), vals,
                           color=colours.get(arm), edgecolor="k", zorder=3, s=22)
                ax.text(i, vals.max(), f"{vals.mean():.1f}", ha="center", va="bottom", fontsize=8)
            ref = doc.get("mean_pose", {}).get(test, {}).get(metric)
            if ref:
                every.append(ref)
                ax.axhline(ref, color="k", ls="--", lw=1, label="mean training pose (no image)")
                ax.legend(fontsize=7, loc="upper right")
            lo, hi = min(every), max(every)
            pad = max(hi - lo, 1.0)
            ax.set_ylim(lo - 0.6 * pad, hi + 0.6 * pad)     # zoomed: bars do not start at 0
            ax.set_xticks(range(len(arms)), arms, rotation=20 if len(arms) > 4 else 0, fontsize=9)
            ax.set_ylabel(f"{label} (mm, lower is better)", fontsize=8)
            ax.set_title(f"{test}: {len(doc['seeds'])} seeds (dots), mean (bar); axis zoomed",
                         fontsize=9)
    ax = fig.add_subplot(grid[:, 2])
    probe = doc["depth_order"]
    names = list(probe["same_person"])
    x = np.arange(len(names))
    for j, kind in enumerate(("same_person", "cross_person")):
        vals = [probe[kind][n] for n in names]
        bars = ax.bar(x + (j - 0.5) * 0.4, vals, 0.4, label=kind.replace("_", "-"))
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.axhline(0.5, color="k", lw=0.8, ls=":")
    ax.set_xticks(x, names, rotation=25, fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("depth-order accuracy (chance 0.5)")
    ax.set_title("unlabelled pairs vs true depth (held-out persons)", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return atomic.save_figure(fig, path, dpi=90)


def results_table(doc: dict) -> str:
    def mean(r, key, fmt):   # keys absent in older JSON print "-"
        v = r.get(key)
        return "-" if v is None or (isinstance(v, list) and not v) else format(np.mean(v), fmt)

    lines = ["| arm | test | MPJPE (mm) per seed | mean | PA-MPJPE (mm) mean | "
             "x-y error (mm) mean | depth error (mm) mean | 3D depth order mean |",
             "|---|---|---|---|---|---|---|---|"]
    rows = [(arm, test, r) for arm, per in doc["arms"].items() for test, r in per.items()]
    rows += [("mean training pose (no image)", test, r) for test, r in doc.get("mean_pose", {}).items()]
    for arm, test, r in rows:
        seeds = ", ".join(f"{v:.1f}" for v in np.atleast_1d(r["mpjpe"])) if arm in doc["arms"] \
            else "-"
        lines.append(f"| {arm} | {test} | {seeds} | {mean(r, 'mpjpe', '.1f')} | "
                     f"{mean(r, 'pa_mpjpe', '.1f')} | {mean(r, 'xy_mm', '.1f')} | "
                     f"{mean(r, 'depth_mm', '.1f')} | {mean(r, 'depth_order', '.3f')} |")
    lines += ["", "| depth order (unlabelled pairs) | " + " | ".join(doc["depth_order"]["same_person"])
              + " |", "|---|" + "---|" * len(doc["depth_order"]["same_person"])]
    for kind in ("same_person", "cross_person"):
        lines.append(f"| {kind} | " + " | ".join(f"{v:.3f}" for v in doc["depth_order"][kind].values())
                     + " |")
    return "\n".join(lines)


def targets(doc: dict) -> dict:
    """The issue's targets, checked: relative MPJPE gains and seed separation per test set."""
    out = {}
    for test in TESTS:
        m = {arm: np.array(doc["arms"][arm][test]["mpjpe"]) for arm in doc["arms"]}
        for better, worse in (("wsp", "pretrain_2d"), ("pretrain_2d", "scratch"),
                              ("wsp_library", "pretrain_2d")):
            if better not in m or worse not in m:   # a run of some arms only (--arms)
                continue
            gain = 1.0 - m[better].mean() / m[worse].mean()
            out[f"{test}:{better}_vs_{worse}"] = {
                "gain": float(gain), "every_seed_better": bool(m[better].max() < m[worse].min()),
                "met": bool(gain >= 0.10 and m[better].max() < m[worse].min())}
    probe = doc["depth_order"]
    if "wsp" in probe["same_person"]:
        out["probe_same_person_wsp>=0.80"] = bool(probe["same_person"]["wsp"] >= 0.80)
        out["probe_cross_person_wsp>=0.90"] = bool(probe["cross_person"]["wsp"] >= 0.90)
    return out


@cli_entry("pipelines.ablation")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/ablation")
    parser.add_argument("--mcpc", default=None,
                        help="MCPC build for pre-training (default OUT/mcpc, built from the "
                             "embedded default with the current priors when absent)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pretrain-config", default="pipelines/configs/pretrain_ablation.yaml")
    parser.add_argument("--pretrain-steps", type=int, default=None)
    parser.add_argument("--config", default="pipelines/configs/finetune_ablation.yaml")
    parser.add_argument("--steps", type=int, default=None, help="fine-tuning steps (every arm)")
    parser.add_argument("--pretrain-images", type=int, default=2000,
                        help="synthetic in-the-wild images rendered for pre-training (without "
                             "--mcpc)")
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--probe-persons", type=int, default=0,
                        help="held-out persons the depth-order probe scores (0: all)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--fresh", action="store_true", help="delete OUT's runs first")
    parser.add_argument("--library-control", action="store_true",
                        help="add the wsp_library arm: WSP on the same images built with the "
                             "pose-library prior too (see pipelines/library_control.py)")
    parser.add_argument("--pose-library", metavar="FILE", default=None,
                        help="the library of the wsp_library arm (default: "
                             "../shared/fixtures/mocap-dev/poses.npz)")
    parser.add_argument("--arms", nargs="+", default=None,
                        help="run only these arms (default: all the flags ask for)")
    parser.add_argument("--dense-control", action="store_true",
                        help="add the wsp_dense arm: WSP on dense ground-truth same-person "
                             "labels (a control, see pipelines/dense_control.py)")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--replot", metavar="JSON", default=None,
                        help="only redraw OUT/ablation.png from an ablation.json")
    args = parser.parse_args(argv)
    if args.pose_library and not args.library_control:
        raise UsageError("--pose-library: the library of the wsp_library arm; add "
                         "--library-control")
    if args.replot:
        import json

        print(plot_ablation(json.loads(Path(args.replot).read_text()), Path(args.out) / "ablation.png"))
        return 0

    import multiprocessing

    import torch

    # Loader workers start from a clean forkserver: this process has run renderers, a threaded
    # build and progress bars, and forking it could inherit a held lock (seen as a hung loader).
    multiprocessing.set_start_method("forkserver", force=True)
    from pipelines.pretrain import ensure_build
    from wsp_model import metrics
    from wsp_model.config import replace, to_dict
    from wsp_model.depth_probe import depth_order_accuracy, ground_truth_depths
    from wsp_model.evaluate import predict_records
    from wsp_model.finetune import finetune, load_finetune_config
    from wsp_model.head3d import load_finetuned
    from wsp_model.mcpc_data import read_build, read_manifest, source_roots
    from wsp_model.model import build_pose_net, load_model

    t0 = time.time()
    out = Path(args.out)
    if args.fresh and out.exists():
        for d in [*out.glob("pretrain-*"), *out.glob("finetune-*"), out / "mcpc",
                  out / "mcpc-dense", out / "mcpc-library"]:
            atomic.remove_tree(d)
    data = out / "data"
    show = not args.quiet
    train = synthetic_records(studio_config(), args.n_train, 1, data / "train", "train set", show)
    tests = {"in_domain": synthetic_records(studio_config(), args.n_test, 2,
                                            data / "test-in-domain", "in-domain test", show),
             "shifted": synthetic_records(shifted_config(), args.n_test, 3,
                                          data / "test-shifted", "shifted test", show)}
    print(f"data: {len(train)} fine-tuning frames, "
          + ", ".join(f"{len(v)} {k}" for k, v in tests.items()) + f" ({time.time() - t0:.0f} s)",
          flush=True)
    # The ablation's own build (OUT/mcpc) is made from the embedded synthetic default; an --mcpc
    # the user typed must already hold a build (the data contract: a typo never generates data).
    build_dir = ensure_build(Path(args.mcpc), make_default=False) if args.mcpc \
        else ensure_build(pretraining_build(out, args.pretrain_images, max(args.workers, 1), show))
    roots = source_roots(read_manifest(build_dir), build_dir / "manifest.json")
    truth = ground_truth_depths(roots["coco"]) if "coco" in roots else {}
    if not truth:
        raise SystemExit(f"{build_dir}: its COCO source has no synthetic ground truth; the "
                         "depth-order probe needs the embedded default build")
    tables = read_build(build_dir)

    arm_names = ARMS + (("wsp_dense",) if args.dense_control else ()) \
        + (("wsp_library",) if args.library_control else ())
    if args.arms:
        unknown = sorted(set(args.arms) - set(arm_names))
        if unknown:
            raise UsageError(f"--arms: {', '.join(unknown)} not among {', '.join(arm_names)} "
                             "(wsp_dense needs --dense-control, wsp_library --library-control)")
        arm_names = tuple(a for a in arm_names if a in args.arms)
        if arm_names == ("scratch",):
            raise UsageError("--arms: name at least one pre-trained arm (the probe needs one)")
    from wsp_model.config import PretrainConfig, load_config

    splits = load_config(PretrainConfig, args.pretrain_config).data.train_splits
    library_dir, library_info = None, None
    # what the derived builds (library arm, control) are made from: kept while it is the same
    source_sha = contract.file_sha256(build_dir / "manifest.json")
    if args.library_control and "wsp_library" in arm_names:
        from pipelines.library_control import add_library_labels, default_library

        library_file = Path(args.pose_library) if args.pose_library else default_library()
        inputs = {"source_manifest_sha256": source_sha,
                  "pose_library_sha256": contract.file_sha256(library_file)
                  if library_file.is_file() else None}
        reuse = same_inputs(out / "mcpc-library", inputs)
        library_dir, library_info = add_library_labels(
            build_dir, out / "mcpc-library", splits, truth, library=args.pose_library,
            workers=max(args.workers, 1), progress=show, reuse=reuse)
        record_inputs(library_dir, inputs)
        plain, lib = library_info["plain"], library_info["with_library"]
        print(f"library arm: {library_dir} = {build_dir}'s SYNTHETIC images built with the "
              f"pose-library prior ({library_info['library']['path']}): same-person labels of "
              f"the training people {plain['labels']} -> {lib['labels']} (precision against the synthetic "
              f"truth {plain['precision']:.3f} -> {lib['precision']:.3f})", flush=True)
    dense_dir = None
    if args.dense_control and "wsp_dense" in arm_names:
        from pipelines.dense_control import densify

        dense_dir = out / "mcpc-dense"
        inputs = {"source_manifest_sha256": source_sha, "splits": list(splits)}
        if not same_inputs(dense_dir, inputs):
            densify(build_dir, dense_dir, truth, splits)
            record_inputs(dense_dir, inputs)
        print(f"control: {dense_dir} = {build_dir} with dense ground-truth same-person labels "
              f"for the {', '.join(splits)} people", flush=True)

    ft_cfg = load_finetune_config(args.config)
    timing: dict[str, float] = {}
    probes: list[dict] = []
    inits: dict[tuple[str, int], str] = {}
    pre_cfg = None
    for seed in args.seeds:
        models = {}
        for arm in [a for a in arm_names if a != "scratch"]:
            t1 = time.time()
            arm_build = {"wsp_dense": dense_dir, "wsp_library": library_dir}.get(arm, build_dir)
            pre_cfg, ckpt, result = pretrain_arm(arm, seed, arm_build, args, out)
            timing[f"pretrain-{arm}-seed{seed}"] = time.time() - t1
            print(f"seed {seed} {arm}: pre-trained {result.step} steps  "
                  + "  ".join(f"{k} {v:.3g}" for k, v in result.val_metrics.items()), flush=True)
            inits[(arm, seed)] = str(ckpt)
            models[arm] = load_model(ckpt)[0]
        torch.manual_seed(seed)
        models["untrained"] = build_pose_net(pre_cfg.model)
        t1 = time.time()
        probe = depth_order_accuracy(tables, pre_cfg.data, truth, pre_cfg.data.val_splits, models,
                                     max_persons=args.probe_persons)
        timing[f"probe-seed{seed}"] = time.time() - t1
        probes.append(probe)
        print(f"seed {seed} depth order (unlabelled): "
              + "  ".join(f"{k} " + " ".join(f"{n} {v:.3f}" for n, v in probe[k].items())
                          for k in ("same_person", "cross_person")), flush=True)
        del models

    arms: dict = {arm: {t: {"mpjpe": [], "pa_mpjpe": [], "depth_order": [], "xy_mm": [],
                            "depth_mm": []} for t in TESTS}
                  for arm in arm_names}
    curves: dict = {}
    calibration: dict = {}
    for seed in args.seeds:
        overrides = {"train.num_workers": args.workers, "train.progress": not args.quiet,
                     "train.seed": seed, "head.backbone_depth": pre_cfg.model.depth,
                     "head.backbone_width": pre_cfg.model.width,
                     "head.deconv_layers": pre_cfg.model.deconv_layers,
                     "head.deconv_filters": pre_cfg.model.deconv_filters,
                     "head.shared_depth": pre_cfg.model.shared_depth,
                     "head.separate_depth_head": pre_cfg.model.separate_depth_head}
        if args.steps is not None:
            overrides["train.max_steps"] = args.steps
        cfg = replace(ft_cfg, **overrides)
        for arm in arm_names:
            start = "scratch" if arm == "scratch" else inits[(arm, seed)]
            if start == "scratch":
                torch.manual_seed(seed)   # the scratch network's initialisation
            run_dir = out / f"finetune-{arm}-seed{seed}"
            t1 = time.time()
            finetune(cfg, run_dir, start, train_records=train, val_records=tests["in_domain"],
                     synthetic_data=SYNTHETIC_FINETUNE_SOURCE)
            timing[f"finetune-{arm}-seed{seed}"] = time.time() - t1
            model, meta = load_finetuned(str(run_dir / "checkpoint.pt"))
            calibration[f"{arm}-seed{seed}"] = meta.get("depth_calibration")
            for test, recs in tests.items():
                pred, gt = predict_records(model, recs, cfg.data, batch_size=32)
                arms[arm][test]["mpjpe"].append(metrics.mpjpe(pred, gt, 0))
                arms[arm][test]["pa_mpjpe"].append(metrics.pa_mpjpe(pred, gt))
                arms[arm][test]["depth_order"].append(metrics.depth_order(pred, gt))
                split = metrics.error_split(pred, gt, 0)
                arms[arm][test]["xy_mm"].append(split["xy"])
                arms[arm][test]["depth_mm"].append(split["depth"])
            curves[f"{arm}-seed{seed}"] = _val_curve(run_dir)
            print(f"seed {seed} {arm}: " + "  ".join(
                f"{t} MPJPE {arms[arm][t]['mpjpe'][-1]:.1f} PA {arms[arm][t]['pa_mpjpe'][-1]:.1f}"
                f" (x-y {arms[arm][t]['xy_mm'][-1]:.1f}, depth {arms[arm][t]['depth_mm'][-1]:.1f})"
                f" depth order {arms[arm][t]['depth_order'][-1]:.3f}" for t in TESTS), flush=True)
            del model

    # Reference: the mean root-relative training pose for every frame (no image used).
    mean_pose = (train.joints_cam - train.joints_cam[:, :1]).mean(axis=0).astype(np.float64)
    mean_ref = {}
    for test, recs in tests.items():
        gt = (recs.joints_cam - recs.joints_cam[:, :1]).astype(np.float64)
        pred = np.broadcast_to(mean_pose, gt.shape).copy()
        split = metrics.error_split(pred, gt, 0)
        mean_ref[test] = {"mpjpe": metrics.mpjpe(pred, gt, 0), "pa_mpjpe": metrics.pa_mpjpe(pred, gt),
                          "depth_order": metrics.depth_order(pred, gt), "xy_mm": split["xy"],
                          "depth_mm": split["depth"]}

    names = list(probes[0]["same_person"])
    depth_order = {kind: {n: float(np.mean([p[kind][n] for p in probes])) for n in names}
                   for kind in ("same_person", "cross_person")}
    doc = {
        "data": "SYNTHETIC: every world of this ablation is synthetic (pre-training, fine-tuning, tests)",
        "seeds": list(args.seeds),
        "arms": arms,
        "depth_order": depth_order,
        "depth_order_per_seed": probes,
        "mean_pose": mean_ref,
        "git": git_commit(),
        "command": "python -m pipelines.ablation " + " ".join(argv if argv is not None else sys.argv[1:]),
        "pretrain_config": to_dict(pre_cfg),
        "finetune_config": to_dict(cfg),
        "dense_control": None if dense_dir is None else {
            "build": str(dense_dir), "note": "wsp_dense: WSP pre-trained on this copy of the "
            "build with dense ground-truth same-person labels for the training people",
            "same_person_labels": {name: int((t.pair_a == t.pair_b).sum()) for name, t in
                                   (("build", tables), ("dense", read_build(dense_dir)))}},
        "library_control": None if library_dir is None else {
            "build": str(library_dir), **library_info},
        "n_finetune_frames": len(train), "n_test_frames": {k: len(v) for k, v in tests.items()},
        "pretrain_persons": {"train": int(np.isin(tables.split, pre_cfg.data.train_splits).sum()),
                             "held_out": int(np.isin(tables.split, pre_cfg.data.val_splits).sum())},
        "depth_calibration": calibration,
        "curves": curves,
        "seconds": timing,
        "total_seconds": time.time() - t0,
        "cpu_count": os.cpu_count(),
    }
    doc["targets"] = targets(doc)
    atomic.write_json(out / "ablation.json", doc, indent=1)
    table = results_table(doc)
    atomic.write_bytes(out / "results.md", (table + "\n").encode())
    plot_ablation(doc, out / "ablation.png")
    print(table)
    print("targets: " + "  ".join(f"{k} {v}" for k, v in doc["targets"].items()))
    print(f"{out / 'ablation.json'}  {out / 'ablation.png'}  ({time.time() - t0:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
