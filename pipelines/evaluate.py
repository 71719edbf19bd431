"""`make evaluate`: evaluate a fine-tuned checkpoint on a test split.

    python -m pipelines.evaluate --dataset h36m --checkpoint out/finetune-h36m/checkpoint.pt
        [--data-root DIR] [--out DIR]

Writes results.json, results.txt (the printed table) and skeletons.png (prediction vs ground
truth) to ``--out`` (default: ``<checkpoint dir>/eval-<dataset>``). A synthetic test root (the
embedded default) is reported as a "synthetic stand-in", and a checkpoint trained on synthetic data
says so, in the table and in results.json. An unreadable or unsafe checkpoint is one error line
(exit 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mcpc_builder.errors import cli_entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=("h36m", "3dhp"), default=None,
                        help="test split to use (default: the checkpoint's dataset)")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data-root", default=None,
                        help="dataset root (default $H36M_ROOT / $MPI3DHP_ROOT, else the "
                             "embedded synthetic default)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--figures", type=int, default=4, help="skeletons drawn in the PNG")


def run(args: argparse.Namespace) -> int:
    from mcpc_builder.errors import DataError, check_number
    from wsp_model.evaluate import evaluate

    check_number("--batch-size", args.batch_size, low=1)
    check_number("--figures", args.figures, low=0)

    ckpt = Path(args.checkpoint)
    if not ckpt.exists():
        print(f"evaluate: error: {ckpt}: checkpoint not found (run `make finetune` first)",
              file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else ckpt.parent / f"eval-{args.dataset or 'default'}"
    try:
        report = evaluate(ckpt, out, args.dataset, args.data_root, args.batch_size, args.figures)
    except (DataError, ValueError, FileNotFoundError) as err:  # CheckpointError is a DataError
        print(f"evaluate: error: {err}", file=sys.stderr)
        return 2
    print(report["table"])
    print(f"results: {out / 'results.json'}  skeletons: {out / 'skeletons.png'}")
    return 0


@cli_entry("pipelines.evaluate")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
