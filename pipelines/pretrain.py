"""`make pretrain`: pre-train on an MCPC build; on a fresh machine, build the embedded default first.

    python -m pipelines.pretrain --mcpc DIR --config FILE --gpus N [--out RUN_DIR] [--set K=V]

``DIR`` must hold an MCPC build: a path that holds none is an error, never a place to generate
data. Without ``--mcpc`` (no data given at all), or with ``--default-data`` (what ``make
pretrain`` passes for its default path ``out/mcpc-default``), a missing build is made there from
the embedded synthetic COCO + MPII. The build's synthetic sources are printed and stored in the
checkpoint (``meta["synthetic_sources"]``). ``--gpus N >= 1`` relaunches this module
under torchrun. After training, when the build's COCO source carries synthetic ground truth
(``ground_truth/person_keypoints_*.npz``), rank 0 measures how well the depth map orders keypoint
pairs that carry *no* MCPC label (true depth known there), for the trained model and for the same
network at initialisation, and writes ``RUN_DIR/unlabelled_pairs.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

from mcpc_builder import atomic
from mcpc_builder.errors import DataError, cli_entry
from wsp_model.cli import add_arguments, config_from_args, relaunch_under_torchrun, under_launcher
from wsp_model.config import PretrainConfig
from wsp_model.engine import load_checkpoint
from wsp_model.losses import sample_joint_depth
from wsp_model.mcpc_data import McpcDataset, McpcTables, read_build, read_manifest, source_roots
from wsp_model.model import build_pose_net
from wsp_model.pretrain import pretrain

DEFAULT_MCPC = "out/mcpc-default"


def ensure_build(mcpc: Path, make_default: bool = False) -> Path:
    """``mcpc`` when it holds a complete build; with ``make_default``, build the embedded
    synthetic default into it first if it holds none. Anything else is a ``DataError``."""
    from mcpc_builder import contract

    if not (mcpc / contract.MANIFEST_NAME).exists() and make_default:
        from mcpc_builder.build import build

        print(f"{mcpc} holds no MCPC build: building the embedded SYNTHETIC default "
              "(COCO + MPII) there", flush=True)
        build(["coco", "mpii"], mcpc)
    if not mcpc.exists():
        raise DataError(mcpc, "MCPC build folder not found (build one with `mcpc-build --out "
                              f"{mcpc}`, or pass --default-data to build the embedded synthetic "
                              "default there)")
    manifest = contract.verify_build(mcpc, "sizes")
    synthetic = contract.synthetic_sources(manifest)
    if synthetic:
        print(f"note: training on SYNTHETIC data for: {', '.join(synthetic)}", flush=True)
    return mcpc


def ground_truth_depths(root: Path) -> dict[int, np.ndarray]:
    """COCO annotation id -> (21, 3) float32 camera-frame joints (metres), from synthetic GT."""
    table: dict[int, np.ndarray] = {}
    for f in sorted((root / "ground_truth").glob("person_keypoints_*.npz")):
        with np.load(f) as z:
            for ann, joints in zip(z["ann_id"].tolist(), z["joints_cam"]):
                table[int(ann)] = joints.astype(np.float32)
    return table


def unlabelled_pair_accuracy(model: torch.nn.Module, tables: McpcTables, cfg: PretrainConfig,
                             truth: dict[int, np.ndarray], splits, min_gap_m: float = 0.05,
                             batch_size: int = 16, max_persons: int = 0) -> dict[str, float]:
    """Depth-order accuracy on keypoint pairs that carry no MCPC label, against true depth.

    For each COCO person with ground truth (unaugmented crop): every pair of its labelled joints
    inside the crop (*within*), and every pair of one of its joints with a joint of another
    person of the image inside the crop (*cross*), whose true camera-frame depths differ by at
    least ``min_gap_m`` metres. A pair is correct when the depth map sampled at the two
    keypoints orders them like the truth. Pairs the build did label are scored separately
    (``labelled_*``), unlabelled ones are the generalisation test. ``max_persons``: score only
    the first this-many persons with ground truth (0: all).
    """
    ds = McpcDataset(tables, cfg.data, splits, augment=False)
    labelled = set()
    for a, ja, b, jb in zip(tables.pair_a, tables.joint_a, tables.pair_b, tables.joint_b):
        labelled.add(frozenset(((int(a), int(ja)), (int(b), int(jb)))))
    has_truth = np.array([s == "coco" and int(i) in truth
                          for s, i in zip(tables.source, tables.source_ann_id)])
    keep = [i for i, r in enumerate(ds.rows) if has_truth[r]]
    keep = keep[:max_persons] if max_persons else keep
    counts = {k: [0, 0] for k in ("within", "cross", "labelled_within", "labelled_cross")}
    size = (cfg.data.crop_size, cfg.data.crop_size)
    S = cfg.data.crop_size
    model.eval()
    for lo in range(0, len(keep), batch_size):
        samples = [ds[i] for i in keep[lo:lo + batch_size]]
        image = torch.from_numpy(np.stack([s["image"] for s in samples]))
        points, owners = [], []
        for s in samples:   # every labelled joint of every person with truth in the crop
            row = int(s["person_row"])
            rows = np.flatnonzero((tables.image_id == tables.image_id[row]) & has_truth)
            kp = tables.keypoints[rows] @ s["affine"][:, :2].T + s["affine"][:, 2]   # (n, 21, 2)
            ok = (tables.visibility[rows] > 0) & np.isfinite(kp).all(-1) & \
                (kp >= 0).all(-1) & (kp <= S - 1).all(-1)
            r_idx, j_idx = np.nonzero(ok)
            points.append(kp[r_idx, j_idx].astype(np.float32))
            owners.append((row, rows[r_idx], j_idx))
        n_max = max(len(p) for p in points)
        pts = np.zeros((len(samples), max(n_max, 1), 2), np.float32)
        jts = np.zeros((len(samples), max(n_max, 1)), np.int64)
        for b, (p, (_, _, pj)) in enumerate(zip(points, owners)):
            pts[b, :len(p)] = p
            jts[b, :len(p)] = pj
        with torch.no_grad():   # joint j's depth: map j at the joint (the per-joint head)
            depth = model(image)["depth"]
            z = sample_joint_depth(depth, torch.from_numpy(pts), torch.from_numpy(jts), size).numpy()
        for b, (row, prow, pjoint) in enumerate(owners):
            true_z = np.array([truth[int(tables.source_ann_id[r])][j, 2] for r, j in zip(prow, pjoint)])
            mine = np.flatnonzero(prow == row)
            for i in mine:
                for k in range(len(prow)):
                    if k == i or (prow[k] == row and k < i):
                        continue       # each within pair once; cross pairs from the centre person
                    gap = true_z[i] - true_z[k]
                    if not np.isfinite(gap) or abs(gap) < min_gap_m:
                        continue
                    kind = "within" if prow[k] == row else "cross"
                    key = frozenset(((int(row), int(pjoint[i])), (int(prow[k]), int(pjoint[k]))))
                    if key in labelled:
                        kind = "labelled_" + kind
                    counts[kind][0] += int(np.sign(z[b, i] - z[b, k]) == np.sign(gap))
                    counts[kind][1] += 1
    out = {}
    for kind, (right, total) in counts.items():
        out[f"{kind}_acc"] = right / max(total, 1)
        out[f"{kind}_pairs"] = total
    out.update(persons=len(keep), min_gap_m=min_gap_m)
    return out


def evaluate_unlabelled(build_dir: Path, cfg: PretrainConfig, run_dir: Path,
                        max_persons: int = 400) -> dict | None:
    """Trained vs initial network on unlabelled synthetic pairs; None without ground truth."""
    roots = source_roots(read_manifest(build_dir), build_dir / "manifest.json")
    if "coco" not in roots or not (roots["coco"] / "ground_truth").is_dir():
        return None
    truth = ground_truth_depths(roots["coco"])
    tables = read_build(build_dir)
    out = {}
    for name in ("trained", "initial"):
        torch.manual_seed(cfg.train.seed)
        model = build_pose_net(cfg.model)
        if name == "trained":
            model.load_state_dict(load_checkpoint(run_dir / "checkpoint.pt")["model"])
        for split_name, splits in (("val", cfg.data.val_splits), ("train", cfg.data.train_splits)):
            out[f"{name}_{split_name}"] = unlabelled_pair_accuracy(model, tables, cfg, truth, splits,
                                                                   max_persons=max_persons)
    atomic.write_json(run_dir / "unlabelled_pairs.json", out, indent=1)
    return out


@cli_entry("pipelines.pretrain")
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m pipelines.pretrain",
                                     description=__doc__.split("\n\n")[0])
    add_arguments(parser, mcpc_required=False)
    parser.add_argument("--skip-unlabelled-eval", action="store_true",
                        help="do not score unlabelled synthetic pairs after training")
    parser.add_argument("--default-data", action="store_true",
                        help="if --mcpc holds no build, build the embedded synthetic default "
                             "there (make pretrain passes this for out/mcpc-default only)")
    args = parser.parse_args(argv)
    make_default = args.default_data or args.mcpc is None   # no data given at all
    args.mcpc = Path(args.mcpc or DEFAULT_MCPC)
    cfg = config_from_args(args)
    try:
        if not under_launcher():
            ensure_build(args.mcpc, make_default)
            if args.gpus >= 1:
                return relaunch_under_torchrun("pipelines.pretrain", argv, args.gpus)
        result = pretrain(args.mcpc, cfg, args.out)
        if int(os.environ.get("RANK", "0")) != 0:
            return 0
        print(f"checkpoint: {result.checkpoint} (step {result.step})")
        print("held-out MCPC pairs: " + "  ".join(f"{k} {v:.4g}" for k, v in result.val_metrics.items()))
        if not args.skip_unlabelled_eval:
            ev = evaluate_unlabelled(Path(args.mcpc), cfg, Path(args.out))
            if ev:
                print("depth order vs synthetic true depth (chance 0.5):")
                for name, m in ev.items():
                    print(f"  {name:<14} unlabelled within-person {m['within_acc']:.3f} "
                          f"({m['within_pairs']})  unlabelled cross-person {m['cross_acc']:.3f} "
                          f"({m['cross_pairs']})  | labelled within {m['labelled_within_acc']:.3f} "
                          f"({m['labelled_within_pairs']})  labelled cross "
                          f"{m['labelled_cross_acc']:.3f} ({m['labelled_cross_pairs']})")
    except DataError as err:
        print(f"pipelines.pretrain: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
