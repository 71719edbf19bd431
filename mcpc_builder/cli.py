"""`mcpc-build`: read COCO / MPII annotations, apply perspective priors, write MCPC shards.

    mcpc-build --sources coco mpii [--coco-root DIR] [--mpii-root DIR] [--out DIR] [--workers N]
    mcpc-build synth   --format coco|mpii|h36m|3dhp --out DIR ...   write a synthetic dataset
    mcpc-build render  --out scene.png                              draw one synthetic scene
    mcpc-build audit   --out DIR                                    label precision vs true depth
    mcpc-build preview --build DIR --n 8 --out DIR                  pair labels drawn on images
    mcpc-build library --out poses.npz MOCAP_DIR ...                one pose library from mocap files

Each verb's options and work live in its own module (``add_arguments`` + ``run``); this file only
wires them. With no dataset roots every verb uses the embedded synthetic default.
"""

from __future__ import annotations

import argparse
import sys

from .errors import cli_entry

# verb -> module path (imported lazily so `--help` stays fast).
VERBS = {
    "synth": ("mcpc_builder.synth.cli", "write a synthetic dataset in an official format"),
    "render": ("mcpc_builder.synth.render_cli", "render one synthetic scene with skeletons to PNG"),
    "audit": ("mcpc_builder.audit", "measure label precision against synthetic true depth"),
    "preview": ("mcpc_builder.preview", "draw the pair labels of a build on its images (PNG)"),
    "library": ("mcpc_builder.pose_collection",
                "merge motion-capture files (.bvh, .npz) into one pose library of distinct poses"),
}


def _module(path: str):
    import importlib

    return importlib.import_module(path)


def make_parser() -> argparse.ArgumentParser:
    from . import build

    parser = argparse.ArgumentParser(
        prog="mcpc-build",
        description="Build the MCPC relative-depth dataset from official COCO / MPII annotation "
                    "files. With no --coco-root / --mpii-root it builds the embedded synthetic "
                    "default (generated on first use).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="verbs: " + "; ".join(f"{v}: {h}" for v, (_, h) in VERBS.items())
               + ". `mcpc-build VERB --help` for each.",
    )
    build.add_arguments(parser)
    return parser


@cli_entry("mcpc-build")
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in VERBS:
        path, help_text = VERBS[argv[0]]
        mod = _module(path)
        parser = argparse.ArgumentParser(prog=f"mcpc-build {argv[0]}", description=help_text)
        mod.add_arguments(parser)
        return int(mod.run(parser.parse_args(argv[1:])) or 0)
    from . import build

    args = make_parser().parse_args(argv)
    return int(build.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
