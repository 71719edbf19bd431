"""`wsp-train`: pre-train the WSP model on an MCPC build (CPU, one GPU, or torchrun DDP).

    wsp-train --mcpc DIR [--config FILE.yaml] [--out RUN_DIR] [--gpus N] [--set KEY=VALUE ...]
              [--fresh]

``--gpus 0`` trains in this process (on the GPU if one is visible, else on CPU); ``--gpus N``
(N >= 1) relaunches the same command under ``torchrun --standalone --nproc_per_node N``. A run
resumes from ``RUN_DIR/checkpoint.pt`` unless ``--fresh``. ``--set train.max_steps=50`` overrides
one config field (the value is checked and converted for the field's type). ``make pretrain``
calls ``pipelines.pretrain``, which adds building the embedded default MCPC when the build
directory is absent.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mcpc_builder import config_io
from mcpc_builder.errors import check_number, cli_entry, run_torchrun

from .config import PretrainConfig, load_config, replace

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "pipelines" / "configs" / "pretrain_small.yaml"


def add_arguments(parser: argparse.ArgumentParser, mcpc_required: bool = True) -> None:
    parser.add_argument("--mcpc", required=mcpc_required, help="MCPC build directory")
    parser.add_argument("--config", default=None,
                        help="YAML config (PretrainConfig sections data/model/loss/train); "
                             f"default {DEFAULT_CONFIG.name} when it exists, else built-in defaults")
    parser.add_argument("--out", default="out/pretrain", help="run directory (checkpoint, logs)")
    parser.add_argument("--gpus", type=int, default=0,
                        help="0: this process; N >= 1: torchrun with N processes")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set train.max_steps=50")
    parser.add_argument("--fresh", action="store_true",
                        help="start from scratch even if RUN_DIR/checkpoint.pt exists")
    parser.add_argument("--backbone-weights", default=None, metavar="FILE",
                        help="torchvision ResNet checkpoint to start the backbone from (e.g. "
                             "ImageNet weights you have; nothing is downloaded)")


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    check_number("--gpus", args.gpus, low=0)  # before the config or any data is read
    path = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    cfg = load_config(PretrainConfig, path)
    overrides = list(args.set)
    if getattr(args, "backbone_weights", None):
        overrides.append(f"model.backbone_weights={args.backbone_weights}")
    cfg = config_io.apply_overrides(cfg, overrides)  # each value typed for its field
    return replace(cfg, **{"train.resume": False}) if args.fresh else cfg


def under_launcher() -> bool:
    return "LOCAL_RANK" in os.environ


def relaunch_under_torchrun(module: str, argv: list[str], nproc: int) -> int:
    """Run ``python -m torch.distributed.run ... -m module argv`` and return its exit code."""
    import torch

    if torch.cuda.is_available() and nproc > torch.cuda.device_count():
        raise SystemExit(f"--gpus {nproc} but only {torch.cuda.device_count()} CUDA devices")
    if not torch.cuda.is_available():
        print(f"no CUDA device: running {nproc} CPU processes (gloo) under torchrun", flush=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", module, *argv]
    print("+ " + " ".join(cmd), flush=True)
    return run_torchrun(module, cmd)  # the ranks' one-line errors, not torchrun's traceback


@cli_entry("wsp-train")
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="wsp-train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    if args.gpus >= 1 and not under_launcher():
        return relaunch_under_torchrun("wsp_model.cli", argv, args.gpus)
    from .pretrain import pretrain

    result = pretrain(args.mcpc, cfg, args.out)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"checkpoint: {result.checkpoint}  step {result.step}  "
              + "  ".join(f"val {k} {v:.4g}" for k, v in result.val_metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
