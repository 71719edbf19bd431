"""`mcpc-build synth`: write a synthetic dataset in an official format (COCO, MPII, H36M, 3DHP).

    mcpc-build synth --format coco --out DIR [--n-images N] [--seed S] [--overwrite]
                     [--world NAME|FILE] [--poses FILE]

``--world`` picks the synthetic world: ``default`` (the world the embedded data comes from),
``dev`` (every realism feature on; thresholds may be tuned on it), ``held_out`` (never tune on it)
or a YAML file of ``WorldConfig`` fields (``--world-config`` is the older name of the same flag).
``--poses`` poses people from a pose library (``.npz``, see ``synth.pose_library``).

The dataset is written into a temporary sibling directory and renamed to DIR when complete, so an
interrupted run never leaves a half-written dataset. A non-empty DIR is refused unless
``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import FORMATS, write_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=FORMATS, help="dataset format")
    parser.add_argument("--out", required=True, type=Path, help="root directory to create")
    parser.add_argument("--n-images", type=int, default=None,
                        help="images (coco, mpii) or frames per sequence (h36m, 3dhp); "
                             "default: the embedded default's size")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    parser.add_argument("--world", "--world-config", dest="world", default=None,
                        help="synthetic world (coco, mpii): default | dev | held_out | a YAML "
                             "file of synth.worlds.WorldConfig fields, e.g. 'distance: [3, 8]'")
    parser.add_argument("--poses", type=Path, default=None,
                        help="pose library (.npz: joints (N, J, 3) m, Z up, joint_names) to pose "
                             "people from (coco, mpii); overrides the world's 'poses'")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if args.n_images is not None and args.n_images < 1:
        print(f"mcpc-build synth: error: --n-images must be >= 1, got {args.n_images}",
              file=sys.stderr)
        return 2
    if out.exists() and not out.is_dir():
        print(f"mcpc-build synth: error: {out} exists and is not a directory", file=sys.stderr)
        return 2
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        print(f"mcpc-build synth: error: {out} is not empty (use --overwrite to replace it)",
              file=sys.stderr)
        return 2
    config = None
    if args.world is not None or args.poses is not None:
        from dataclasses import replace

        from .pose_library import load_pose_library
        from .worlds import load_world

        try:
            config = load_world(args.world)
            if args.poses is not None:
                config = replace(config, poses=str(args.poses.resolve()))
            if config.poses is not None:
                load_pose_library(config.poses)  # a bad library fails here, not mid-dataset
        except (OSError, ValueError, TypeError) as err:
            print(f"mcpc-build synth: error: {args.world or args.poses}: {err}", file=sys.stderr)
            return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    start = time.perf_counter()
    try:
        write_dataset(args.format, tmp, seed=args.seed, n_images=args.n_images,
                      progress=not args.quiet, config=config)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    files = [p for p in out.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    print(f"wrote synthetic {args.format} dataset to {out}: {len(files)} files, "
          f"{size / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s (seed {args.seed}, "
          f"world {args.world or 'default'}"
          f"{', poses ' + config.poses if config is not None and config.poses else ''})")
    return 0
