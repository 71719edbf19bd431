"""How the pose-library prior moves with the library's size: the audit with random subsets of a
pose library (a diagnostic; nothing is chosen from it).

    python -m pipelines.bench.library_size --library ../shared/fixtures/mocap-dev/poses.npz \
        --fractions 0.25 0.5 1 --worlds dev held_out --out out/library-size

Each fraction f keeps the first round(f x N) poses of ``numpy.random.default_rng(seed)
.permutation(N)`` (in library order), written as ``OUT/poses_<f>.npz`` in the library's own
format; each world is audited (``mcpc-build audit --world W --pose-library <subset>``, 600 images
per source, seed 7, as ``make audit``) and the table is printed and written to
``OUT/library_size.json``. The worlds are SYNTHETIC.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mcpc_builder import atomic
from mcpc_builder.errors import UsageError, cli_entry


def library_subset(library: Path, fraction: float, seed: int, out: Path) -> tuple[Path, int, int]:
    """Write the subset of ``library`` (.npz) for ``fraction``; returns its path, poses and
    activities."""
    with np.load(library, allow_pickle=False) as d:
        doc = {k: d[k] for k in d.files}
    n = len(doc["joints"])
    keep = np.sort(np.random.default_rng(seed).permutation(n)[:max(1, round(fraction * n))])
    # Per-pose arrays (first axis = poses) are cut; the rest (joint names, calibration) kept.
    sub = {k: v[keep] if v.ndim and len(v) == n and k != "joint_names" else v
           for k, v in doc.items()}
    path = out / f"poses_{fraction:g}.npz"
    np.savez(path, **sub)
    return path, len(keep), len(set(sub["activity"].tolist())) if "activity" in sub else 0


def row(figures: dict) -> dict:
    """The table's figures from an audit's ``figures``."""
    alone = figures["per_prior"]["pose_library"]["same_person"]
    merged = figures["overall"]["same_person"]
    return {"pose_library_precision": alone["precision"],
            "merged_precision": merged["precision"],
            "median": merged["pairs_per_person_median"],
            "median_10plus": merged["pairs_per_person_median_10plus"],
            "people_8plus_without_label": merged["people_8plus_without_label"],
            "people_8plus": merged["people_8plus"]}


@cli_entry("pipelines.bench.library_size")
def main(argv: list[str] | None = None) -> int:
    from mcpc_builder.audit import audit
    from mcpc_builder.priors import PriorConfig

    parser = argparse.ArgumentParser(prog="python -m pipelines.bench.library_size",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", required=True, help="pose library (.npz, mocap-dev format)")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--worlds", nargs="+", default=["dev", "held_out"])
    parser.add_argument("--seed", type=int, default=0, help="seed of the pose subsets")
    parser.add_argument("--images", type=int, default=600, help="images per source per audit")
    parser.add_argument("--out", default="out/library-size")
    args = parser.parse_args(argv)
    library = Path(args.library)
    if not library.is_file() or library.suffix != ".npz":
        raise UsageError(f"{library}: --library must be an .npz pose library that exists")
    if any(not 0 < f <= 1 for f in args.fractions):
        raise UsageError("--fractions: each in (0, 1]")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for fraction in args.fractions:
        path, poses, activities = library_subset(library, fraction, args.seed, out)
        for world in args.worlds:
            figures = audit(out / f"audit-{world}-{fraction:g}", n_images=args.images,
                            config=PriorConfig().with_pose_library(str(path)), world=world,
                            progress=False)
            results.append({"fraction": fraction, "poses": poses, "activities": activities,
                            "world": world, **row(figures)})
            r = results[-1]
            print(f"{poses:4d} poses ({activities} activities), world {world} (SYNTHETIC): "
                  f"pose_library {100 * r['pose_library_precision']:.1f}%, merged "
                  f"{100 * r['merged_precision']:.1f}%, median {r['median']:g} "
                  f"({r['median_10plus']:g} with >= 10 joints), >= 8 joints without a label "
                  f"{r['people_8plus_without_label']}/{r['people_8plus']}", flush=True)
    atomic.write_json(out / "library_size.json", {"library": str(library), "seed": args.seed,
                                                   "images": args.images, "rows": results},
                      indent=2)
    print(f"wrote {out / 'library_size.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
