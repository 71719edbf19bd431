"""`make pretrain`: pre-train on an MCPC build; on a fresh machine, build the embedded default first.

    python -m pipelines.pretrain --mcpc DIR --config FILE --gpus N [--out RUN_DIR] [--set K=V]

If ``DIR`` holds no ``manifest.json`` it is built from the embedded synthetic COCO + MPII
(``mcpc_builder.build.build(["coco", "mpii"], DIR)``). ``--gpus N >= 1`` relaunches this module
under torchrun. After training, when the build's COCO source carries synthetic ground truth
(``ground_truth/person_keypoints_*.npz``), rank 0 measures how well the depth map orders keypoint
pairs that carry *no* MCPC label (true depth known there), for the trained model and for the same
network at initialisation, and writes ``RUN_DIR/unlabelled_pairs.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from mcpc_builder.errors import DataError
from wsp_model.cli import add_arguments, config_from_args, relaunch_under_torchrun, under_launcher
from wsp_model.config import PretrainConfig
from wsp_model.engine import load_checkpoint
from wsp_model.losses import sample_depth
from wsp_model.mcpc_data import McpcDataset, McpcTables, read_build, read_manifest, source_roots
from wsp_model.model import build_pose_depth_net, normalise_image
from wsp_model.pretrain import pretrain

DEFAULT_MCPC = "out/mcpc-default"


def ensure_build(mcpc: Path) -> Path:
    """``mcpc`` itself when it holds a manifest; else build the embedded default into it."""
    if (mcpc / "manifest.json").exists():
        return mcpc
    from mcpc_builder.build import build

    print(f"{mcpc} holds no MCPC build: building the embedded default (synthetic COCO + MPII)",
          flush=True)
    return Path(build(["coco", "mpii"], mcpc))


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
                             batch_size: int = 16) -> dict[str, float]:
    """Depth-order accuracy on within-person keypoint pairs that have no MCPC label.

    Every pair of a COCO person's labelled joints (inside the crop) that the build gave no
    label, with true depths differing by at least ``min_gap_m`` metres, is scored: correct when
    the depth map (sampled at the two keypoints, unaugmented crop) orders them like the truth.
    Also reports the same on the *labelled* within-person pairs against true depth.
    """
    ds = McpcDataset(tables, cfg.data, splits, augment=False)
    labelled: dict[int, set] = {}
    same = tables.pair_a == tables.pair_b
    for r, a, b in zip(tables.pair_a[same], tables.joint_a[same], tables.joint_b[same]):
        labelled.setdefault(int(r), set()).add(frozenset((int(a), int(b))))
    keep = [i for i, r in enumerate(ds.rows)
            if tables.source[r] == "coco" and int(tables.source_ann_id[r]) in truth]
    counts = {"unlabelled": [0, 0], "labelled": [0, 0]}
    size = (cfg.data.crop_size, cfg.data.crop_size)
    model.eval()
    for lo in range(0, len(keep), batch_size):
        samples = [ds[i] for i in keep[lo:lo + batch_size]]
        image = torch.from_numpy(np.stack([s["image"] for s in samples]))
        kp = torch.from_numpy(np.stack([s["keypoints"] for s in samples]))
        with torch.no_grad():
            depth = model(normalise_image(image))["depth"]
            z = sample_depth(depth, kp, size).numpy()        # (B, 21)
        for s, zp in zip(samples, z):
            row = int(s["person_row"])
            true_z = truth[int(tables.source_ann_id[row])][:, 2]
            joints = np.flatnonzero(s["joint_weight"] > 0)
            have = labelled.get(row, set())
            for ii, a in enumerate(joints):
                for b in joints[ii + 1:]:
                    gap = true_z[a] - true_z[b]
                    if not np.isfinite(gap) or abs(gap) < min_gap_m:
                        continue
                    kind = "labelled" if frozenset((int(a), int(b))) in have else "unlabelled"
                    counts[kind][0] += int(np.sign(zp[a] - zp[b]) == np.sign(gap))
                    counts[kind][1] += 1
    return {"unlabelled_pair_acc": counts["unlabelled"][0] / max(counts["unlabelled"][1], 1),
            "unlabelled_pairs": counts["unlabelled"][1],
            "labelled_pair_acc_vs_truth": counts["labelled"][0] / max(counts["labelled"][1], 1),
            "labelled_pairs": counts["labelled"][1], "persons": len(keep), "min_gap_m": min_gap_m}


def evaluate_unlabelled(build_dir: Path, cfg: PretrainConfig, run_dir: Path) -> dict | None:
    """Trained vs initial network on unlabelled synthetic pairs; None without ground truth."""
    roots = source_roots(read_manifest(build_dir), build_dir / "manifest.json")
    if "coco" not in roots or not (roots["coco"] / "ground_truth").is_dir():
        return None
    truth = ground_truth_depths(roots["coco"])
    tables = read_build(build_dir)
    out = {}
    for name in ("trained", "initial"):
        torch.manual_seed(cfg.train.seed)
        model = build_pose_depth_net(cfg.model)
        if name == "trained":
            model.load_state_dict(load_checkpoint(run_dir / "checkpoint.pt")["model"])
        for split_name, splits in (("val", cfg.data.val_splits), ("train", cfg.data.train_splits)):
            out[f"{name}_{split_name}"] = unlabelled_pair_accuracy(model, tables, cfg, truth, splits)
    tmp = run_dir / ".unlabelled_pairs.json.tmp"
    tmp.write_text(json.dumps(out, indent=1))
    os.replace(tmp, run_dir / "unlabelled_pairs.json")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m pipelines.pretrain",
                                     description=__doc__.split("\n\n")[0])
    add_arguments(parser, mcpc_required=False)
    parser.add_argument("--skip-unlabelled-eval", action="store_true",
                        help="do not score unlabelled synthetic pairs after training")
    args = parser.parse_args(argv)
    args.mcpc = Path(args.mcpc or DEFAULT_MCPC)
    cfg = config_from_args(args)
    try:
        if not under_launcher():
            ensure_build(args.mcpc)
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
                for name, m in ev.items():
                    print(f"unlabelled synthetic pairs ({name}): acc {m['unlabelled_pair_acc']:.3f} "
                          f"on {m['unlabelled_pairs']} pairs; labelled pairs vs true depth "
                          f"{m['labelled_pair_acc_vs_truth']:.3f} on {m['labelled_pairs']}")
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
