"""`make finetune DATASET=h36m|3dhp`: fine-tune a WSP pre-trained backbone for 3D pose.

    python -m pipelines.finetune --dataset h36m --init out/pretrain/checkpoint.pt [--gpus N]
        [--config pipelines/configs/finetune_h36m.yaml] [--data-root DIR] [--out DIR]

The data root is ``--data-root``, else ``$H36M_ROOT`` / ``$MPI3DHP_ROOT``, else the embedded
synthetic default (generated on first use). Human3.6M roots that work: the mks0601 set
(``annotations/`` + ``images/``), or VideoPose3D's npz files (``data_3d_h36m.npz``,
``data_2d_h36m_gt.npz``, ``h36m_cameras.json``) *with* the official videos
``S<n>/Videos/<sequence>.<camera id>.mp4`` (frames decoded once into ``vp3d_frames/``); an npz root
without videos is refused with what to add (it has no images). ``--init scratch`` trains the same network from He
initialisation. ``--gpus N`` (N >= 1) relaunches itself under torchrun; the engine resumes from
``<out>/checkpoint.pt`` when it exists.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mcpc_builder.errors import check_number, cli_entry

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=("h36m", "3dhp"), default="h36m")
    parser.add_argument("--init", default="out/pretrain/checkpoint.pt",
                        help="pre-training checkpoint, or 'scratch'")
    parser.add_argument("--config", default=None,
                        help="YAML (default pipelines/configs/finetune_<dataset>.yaml)")
    parser.add_argument("--data-root", default=None,
                        help="dataset root (default $H36M_ROOT / $MPI3DHP_ROOT, else the "
                             "embedded synthetic default)")
    parser.add_argument("--out", default=None, help="run directory (default out/finetune-<dataset>)")
    parser.add_argument("--gpus", type=int, default=0,
                        help="N >= 1: relaunch under torchrun with N processes (0: this process)")
    parser.add_argument("--max-steps", type=int, default=None, help="override train.max_steps")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--backbone-weights", default=None, metavar="FILE",
                        help="with --init scratch: torchvision ResNet checkpoint to start the "
                             "backbone from (nothing is downloaded)")


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    from wsp_model.cli import relaunch_under_torchrun, under_launcher
    from wsp_model.pose3d_data import resolve_root

    check_number("--gpus", args.gpus, low=0)
    if args.gpus >= 1 and not under_launcher():
        resolve_root(args.dataset, args.data_root)  # make the default data once, before N ranks
        return relaunch_under_torchrun("pipelines.finetune",
                                       list(sys.argv[1:] if argv is None else argv), args.gpus)
    from wsp_model.config import replace
    from wsp_model.finetune import finetune, load_finetune_config

    config = args.config or CONFIG_DIR / f"finetune_{args.dataset}.yaml"
    cfg = load_finetune_config(config)
    cfg = replace(cfg, dataset=args.dataset)
    if args.max_steps is not None:
        cfg = replace(cfg, **{"train.max_steps": args.max_steps})
    if args.fresh:
        cfg = replace(cfg, **{"train.resume": False})
    if args.backbone_weights:
        if str(args.init) != "scratch":
            raise SystemExit("--backbone-weights starts a scratch network: pass --init scratch "
                             "(a pre-trained checkpoint brings its own backbone)")
        cfg = replace(cfg, **{"head.backbone_weights": str(args.backbone_weights)})
    out = Path(args.out or f"out/finetune-{args.dataset}")
    result = finetune(cfg, out, args.init, data_root=args.data_root)
    if int(os.environ.get("RANK", "0")) == 0:
        vm = result.val_metrics
        print(f"fine-tuned {args.dataset} for {result.step} steps -> {result.checkpoint}")
        if vm:
            print(f"held-out MPJPE {vm.get('mpjpe', float('nan')):.1f} mm   "
                  f"PA-MPJPE {vm.get('pa_mpjpe', float('nan')):.1f} mm")
        print(f"logs: {out / 'train_log.csv'}  curves: {out / 'curves.png'}")
    return 0


@cli_entry("pipelines.finetune")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.finetune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv), argv)


if __name__ == "__main__":
    sys.exit(main())
