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

import torch

from mcpc_builder import atomic
from mcpc_builder.errors import DataError, cli_entry
from wsp_model.cli import add_arguments, config_from_args, relaunch_under_torchrun, under_launcher
from wsp_model.config import PretrainConfig
from wsp_model.depth_probe import depth_order_accuracy, ground_truth_depths
from wsp_model.mcpc_data import read_build, read_manifest, source_roots
from wsp_model.model import build_pose_net, load_model
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


def evaluate_unlabelled(build_dir: Path, cfg: PretrainConfig, run_dir: Path,
                        max_persons: int = 400) -> dict | None:
    """Trained vs initial network on synthetic pairs (``depth_probe``): unlabelled pairs are the
    generalisation test, labelled ones what training fitted. None without ground truth."""
    roots = source_roots(read_manifest(build_dir), build_dir / "manifest.json")
    if "coco" not in roots or not (roots["coco"] / "ground_truth").is_dir():
        return None
    truth = ground_truth_depths(roots["coco"])
    tables = read_build(build_dir)
    trained = load_model(run_dir / "checkpoint.pt")[0]
    torch.manual_seed(cfg.train.seed)   # the network at initialisation, as training began
    models = {"trained": trained, "initial": build_pose_net(cfg.model)}
    out = {split_name: depth_order_accuracy(tables, cfg.data, truth, splits, models,
                                            max_persons=max_persons, labelled_too=True)
           for split_name, splits in (("val", cfg.data.val_splits),
                                      ("train", cfg.data.train_splits))}
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
                print("depth order vs synthetic true depth (chance 0.5; pairs in brackets):")
                for split_name, m in ev.items():
                    for name in ("trained", "initial"):
                        print(f"  {name:<8} {split_name:<6}" + "  ".join(
                            f"{kind.replace('_', ' ')} {m[kind][name]:.3f} ({m['pairs'][kind]})"
                            for kind in m["pairs"] if m["pairs"][kind]))
    except DataError as err:
        print(f"pipelines.pretrain: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
