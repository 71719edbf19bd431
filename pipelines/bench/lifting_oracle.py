"""Where `lifting`'s same-person coverage goes: the labels it gives vs an oracle torso.

`lifting` labels a pair only when every surviving torso hypothesis (signs of the hip line, the
shoulder line and the spine: 8) agrees. This diagnostic writes a synthetic COCO set with ground
truth, runs the prior's own bounds per hypothesis (``pair_bounds(per_hypothesis=True)``) on the
people with >= 10 labelled joints, and labels each pair twice with the prior's margin:

- ``actual``: bounds over every surviving hypothesis (what the build writes);
- ``oracle_torso``: bounds of the TRUE torso hypothesis only (from the true depths), i.e. what a
  perfect torso-orientation cue would give, with the limbs and the head still ambiguous.

It also counts the surviving hypotheses per person and the pairs a perfect prior could label
(both joints labelled, true |dz| >= ``--tolerance``). Synthetic world only; it tunes nothing.

Run: ``python -m pipelines.bench.lifting_oracle [--world dev] [--images 300] [--seed 7]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import tempfile
from pathlib import Path

import numpy as np

from mcpc_builder.audit import depth_lookup, load_ground_truth
from mcpc_builder.errors import check_number, cli_entry
from mcpc_builder.priors.config import PriorConfig
from mcpc_builder.priors.person_scale import person_scale
from mcpc_builder.readers.coco import read_coco
from mcpc_builder.synth import write_dataset
from mcpc_builder.synth.worlds import load_world

# The module, not the function of the same name that ``mcpc_builder.priors`` exports.
lifting = importlib.import_module("mcpc_builder.priors.lifting")
MIN_JOINTS = 10


def labels_from_bounds(lo: np.ndarray, hi: np.ndarray, both_labelled: np.ndarray,
                       margin: np.ndarray) -> np.ndarray:
    """(N, P) int8 +1 (a closer) / -1 / 0 from pair bounds of z_a - z_b, as ``lifting`` does."""
    return np.where(both_labelled & (hi < -margin), 1,
                    np.where(both_labelled & (lo > margin), -1, 0)).astype(np.int8)


def diagnose(keypoints, visibility, depth, config: PriorConfig, tolerance: float) -> dict:
    """The actual and oracle-torso labels of the people with >= ``MIN_JOINTS`` labelled joints.

    Arguments:
        keypoints: (N, 21, 2) pixels, NaN unlabelled; visibility: (N, 21) uint8;
        depth: (N, 21) true camera-frame depth, metres.
    """
    labelled = (visibility > 0) & np.isfinite(keypoints).all(-1)
    kp = np.where(labelled[..., None], keypoints, np.nan)
    scale, _ = person_scale(kp, labelled, config)
    keep = np.isfinite(scale) & (scale > 0) & (labelled.sum(1) >= MIN_JOINTS)
    kp, labelled, vis, h, z = kp[keep], labelled[keep], visibility[keep], scale[keep], depth[keep]
    lo, hi, alive = lifting.pair_bounds(kp, h, config, per_hypothesis=True, visibility=vis)
    both = labelled[:, lifting.PAIR_A] & labelled[:, lifting.PAIR_B]
    margin = config.lifting.min_margin * h[:, None]
    gap = z[:, lifting.PAIR_A] - z[:, lifting.PAIR_B]
    truth = np.where(gap < -tolerance, 1, np.where(gap > tolerance, -1, 0))
    true_t = lifting.torso_hypothesis(z)
    rows = np.arange(len(kp))
    bounds = {
        "actual": (np.where(alive[..., None], lo, np.inf).min(1),
                   np.where(alive[..., None], hi, -np.inf).max(1)),
        "oracle_torso": (lo[rows, true_t], hi[rows, true_t]),
    }
    out = {"persons": int(len(kp)),
           "orderable_per_person_median": float(np.median((both & (truth != 0)).sum(1)))
           if len(kp) else 0.0,
           "surviving_torso_hypotheses": np.bincount(alive.sum(1), minlength=9).tolist(),
           "true_hypothesis_survives": float(alive[rows, true_t].mean()) if len(kp) else 0.0}
    for name, (b_lo, b_hi) in bounds.items():
        label = labels_from_bounds(b_lo, b_hi, both, margin)
        per = (label != 0).sum(1)
        n = int(per.sum())
        out[name] = {"labels": n,
                     "precision": float(((label == truth) & (label != 0)).sum() / n) if n else None,
                     "per_person_median": float(np.median(per)) if len(per) else 0.0,
                     "per_person_mean": float(per.mean()) if len(per) else 0.0}
    return out


@cli_entry("pipelines.bench.lifting_oracle")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipelines.bench.lifting_oracle",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--world", default="dev", help="dev | held_out | a world YAML")
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--tolerance", type=float, default=0.05, help="metres: closer than this = equal")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    check_number("--images", args.images, low=1)
    check_number("--tolerance", args.tolerance, low=0.0)
    config = PriorConfig()
    with tempfile.TemporaryDirectory(prefix="lifting-oracle-") as tmp:
        root = write_dataset("coco", Path(tmp) / "coco", seed=args.seed, n_images=args.images,
                             config=load_world(args.world))
        gt = load_ground_truth(root, "coco")
        parts = []
        for split in sorted(gt):
            table = read_coco(root / "annotations" / f"person_keypoints_{split}.json", split,
                              root=root)
            parts.append((np.asarray(table.keypoints, np.float64),
                          np.asarray(table.visibility, np.uint8),
                          depth_lookup(gt[split], np.asarray(table.source_ann_id))))
    kp, vis, depth = (np.concatenate(x) for x in zip(*parts))
    res = diagnose(kp, vis, depth, config, args.tolerance)
    res.update(world=args.world, images=args.images, seed=args.seed, tolerance_m=args.tolerance)
    print(f"synthetic COCO, world {args.world}, {args.images} images, seed {args.seed}: "
          f"{res['persons']} people with >= {MIN_JOINTS} labelled joints; orderable same-person "
          f"pairs per person (true |dz| >= {args.tolerance} m), median "
          f"{res['orderable_per_person_median']:.0f}")
    for name in ("actual", "oracle_torso"):
        r = res[name]
        prec = "-" if r["precision"] is None else f"{100 * r['precision']:.1f}%"
        print(f"  {name:<13} labels {r['labels']:6d}  precision {prec:>6s}  per person median "
              f"{r['per_person_median']:.0f}  mean {r['per_person_mean']:.1f}")
    print(f"  surviving torso hypotheses per person (0..8): {res['surviving_torso_hypotheses']}; "
          f"the true one survives for {100 * res['true_hypothesis_survives']:.1f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
