"""Would a pose library order a person's joints? A feasibility measurement, not a prior.

Issue 10's coverage target (a median of >= 20 right same-person labels per person) is out of
reach of `lifting`'s hard geometry (README, "Where the coverage goes"): most 2D poses admit lifts
that disagree on most pairs. A statistical pose prior could choose between them. This diagnostic
measures the simplest one: for each person, the ``k`` nearest poses of a *library* in normalised
2D keypoints, and a pair label wherever at least ``agreement`` of those neighbours order the pair
the same way by >= 5 cm in truth.

Library and test come from different material, so the figure is never the library's own:

- ``--library mocap --test mocap`` (default): the 123 real poses of ``../shared/fixtures/mocap-dev``
  (13 clips of 11 activities), held out by activity (``--hold-out activity``, the default: a
  test person's neighbours come only from clips of *other* activities, so the three stealthy-walk
  clips never vote for each other) or by clip (``--hold-out clip``),
  each pose seen through ``--library-views`` sampled cameras (seed 1); test views are the
  ``pipelines.bench.mocap_priors`` harness's (20 per pose, seed 0, COCO-sized click noise);
- ``--library world:dev --test mocap``: the library is synthetic-world people (COCO format, the
  world's annotator noise), the test is real motion;
- ``--library mocap --test world:dev``: the other way round.

Features: the 12 body joints (shoulders, elbows, wrists, hips, knees, ankles) relative to the
mid-hip point, divided by their RMS distance from it; test people need all 12 labelled. Pairs:
all pairs of the 17 COCO joints, scored against true depth as the audit does (|dz| < 5 cm =
equal; an ordered label on it is wrong).

Run: ``python -m pipelines.bench.library_lifting [--library mocap|world:NAME]
[--test mocap|world:NAME] [--k 50] [--agreement 1.0]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from mcpc_builder.errors import UsageError, check_number, cli_entry
from mcpc_builder.joints import COCO17, MCPC21

JOINTS = [MCPC21.index[p] for p in COCO17.body_points]  # the 17 COCO points, MCPC-21 rows
FEATURE = [JOINTS.index(MCPC21.index[p]) for p in (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")]
HIPS = [FEATURE[6], FEATURE[7]]
PAIRS = np.triu_indices(len(JOINTS), 1)
TOLERANCE_M = 0.05


def features(keypoints: np.ndarray) -> np.ndarray:
    """(N, 24) normalised 2D body pose from (N, 21, 2) MCPC-21 keypoints (NaN where missing)."""
    kp = keypoints[:, JOINTS][:, FEATURE]
    centre = 0.5 * (keypoints[:, JOINTS][:, HIPS[0]] + keypoints[:, JOINTS][:, HIPS[1]])
    x = kp - centre[:, None]
    scale = np.sqrt((x ** 2).sum(-1).mean(-1))
    return (x / scale[:, None, None]).reshape(len(x), -1)


def true_orders(depth: np.ndarray) -> np.ndarray:
    """(N, P) int8 +1 (first joint of the pair closer by > 5 cm) / -1 / 0 from (N, 21) depth."""
    z = depth[:, JOINTS]
    gap = z[:, PAIRS[0]] - z[:, PAIRS[1]]
    return np.where(gap < -TOLERANCE_M, 1, np.where(gap > TOLERANCE_M, -1, 0)).astype(np.int8)


def knn_labels(query: np.ndarray, library: np.ndarray, library_orders: np.ndarray, k: int,
               agreement: float, chunk: int = 256) -> np.ndarray:
    """(Q, P) int8 labels: the sign at least ``agreement`` of the ``k`` nearest library poses
    (Euclidean, normalised features) give the pair, else 0."""
    k = min(k, len(library))
    out = np.zeros((len(query), library_orders.shape[1]), np.int8)
    lib_sq = (library ** 2).sum(1)
    for s in range(0, len(query), chunk):
        q = query[s:s + chunk]
        dist = (q ** 2).sum(1)[:, None] - 2 * q @ library.T + lib_sq[None]
        nn = np.argpartition(dist, k - 1, axis=1)[:, :k]
        votes = library_orders[nn]  # (q, k, P)
        closer = (votes == 1).mean(1)
        farther = (votes == -1).mean(1)
        out[s:s + chunk] = np.where(closer >= agreement, 1, np.where(farther >= agreement, -1, 0))
    return out


def score(labels: np.ndarray, truth: np.ndarray) -> dict:
    """Precision and per-person coverage of (N, P) labels against (N, P) truth."""
    ordered = labels != 0
    per = ordered.sum(1)
    right = (labels == truth) & ordered
    return {"people": int(len(labels)), "labels": int(ordered.sum()),
            "precision": float(right.sum() / ordered.sum()) if ordered.any() else None,
            "right_per_person_median": float(np.median(right.sum(1))) if len(labels) else 0.0,
            "labels_per_person_median": float(np.median(per)) if len(labels) else 0.0,
            "labels_per_person_mean": float(per.mean()) if len(labels) else 0.0,
            "people_without_label": int((per == 0).sum())}


def mocap_samples(n_views: int, seed: int, hold_out: str = "activity"):
    """Features, true orders and group (clip file, or activity: the clip's activity without its
    take number) of every mocap-dev view."""
    from pipelines.bench.mocap_priors import DEFAULT_POSES, views

    if not Path(DEFAULT_POSES).exists():
        raise UsageError(f"{DEFAULT_POSES}: the mocap dev set is not there (../shared/fixtures/"
                         "mocap-dev/poses.npz next to the checkout)")
    table, depth, group, _ = views(DEFAULT_POSES, n_views, seed)  # group: each view's activity
    if hold_out == "clip":
        with np.load(DEFAULT_POSES) as d:
            group = np.repeat(np.array([str(s) for s in d["seq_file"]]), n_views)
    return features(np.asarray(table.keypoints, np.float64)), true_orders(depth), group


def world_samples(world: str, n_images: int, seed: int):
    """Features, true orders and group (``world:NAME`` for all) of the people of a synthetic
    COCO set with all 12 body joints labelled."""
    from mcpc_builder.audit import depth_lookup, load_ground_truth
    from mcpc_builder.readers.coco import read_coco
    from mcpc_builder.synth import write_dataset
    from mcpc_builder.synth.worlds import load_world

    feats, orders = [], []
    with tempfile.TemporaryDirectory(prefix="library-lifting-") as tmp:
        root = write_dataset("coco", Path(tmp) / "coco", seed=seed, n_images=n_images,
                             config=load_world(world))
        gt = load_ground_truth(root, "coco")
        for split in sorted(gt):
            table = read_coco(root / "annotations" / f"person_keypoints_{split}.json", split,
                              root=root)
            kp = np.asarray(table.keypoints, np.float64)
            vis = np.asarray(table.visibility)
            kp = np.where((vis > 0)[..., None], kp, np.nan)
            depth = depth_lookup(gt[split], np.asarray(table.source_ann_id))
            feats.append(features(kp))
            orders.append(true_orders(depth))
    f, o = np.concatenate(feats), np.concatenate(orders)
    ok = np.isfinite(f).all(1)
    return f[ok], o[ok], np.full(int(ok.sum()), f"world:{world}")


def samples(spec: str, role: str, args):
    if spec == "mocap":
        return mocap_samples(args.library_views if role == "library" else 20,
                             1 if role == "library" else 0, args.hold_out)
    if spec.startswith("world:"):
        return world_samples(spec[6:], args.world_images, 11 if role == "library" else 7)
    raise UsageError(f"--{role}: expected mocap or world:NAME, got {spec!r}")


@cli_entry("pipelines.bench.library_lifting")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipelines.bench.library_lifting",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--library", default="mocap", help="mocap | world:NAME (dev, held_out, ...)")
    p.add_argument("--test", default="mocap", help="mocap | world:NAME")
    p.add_argument("--k", type=int, nargs="+", default=[50])
    p.add_argument("--agreement", type=float, nargs="+", default=[0.95, 1.0])
    p.add_argument("--library-views", type=int, default=200,
                   help="cameras per mocap pose in a mocap library")
    p.add_argument("--world-images", type=int, default=1500,
                   help="images of a synthetic-world library or test set")
    p.add_argument("--hold-out", choices=("activity", "clip"), default="activity",
                   help="mocap -> mocap: what a test person's neighbours may not share with it")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    for k in args.k:
        check_number("--k", k, low=1)
    for a in args.agreement:
        check_number("--agreement", a, low=0.5, high=1.0)
    lib_f, lib_o, lib_g = samples(args.library, "library", args)
    test_f, test_o, test_g = samples(args.test, "test", args)
    loco = args.library == args.test == "mocap"
    rows = []
    for k in args.k:
        for a in args.agreement:
            labels = np.zeros_like(test_o)
            for g in np.unique(test_g):
                q = test_g == g
                # Leave one activity (or clip) out when both sides are the mocap set.
                pool = lib_g != g if loco else np.ones(len(lib_g), bool)
                labels[q] = knn_labels(test_f[q], lib_f[pool], lib_o[pool], k, a)
            rows.append({"k": k, "agreement": a, **score(labels, test_o)})
    def name(spec):   # a synthetic world says so; mocap is real motion capture
        return f"{spec} (SYNTHETIC)" if spec.startswith("world:") else f"{spec} (real mocap)"

    print(f"library {name(args.library)} ({len(lib_f)} samples) -> test {name(args.test)} "
          f"({len(test_f)} people){f', leave-one-{args.hold_out}-out' if loco else ''}")
    for r in rows:
        prec = "-" if r["precision"] is None else f"{100 * r['precision']:.1f}%"
        print(f"  k {r['k']:3d}  agreement {r['agreement']:.2f}: precision {prec:>6s}  labels per "
              f"person median {r['labels_per_person_median']:.0f} (right {r['right_per_person_median']:.0f})"
              f"  mean {r['labels_per_person_mean']:.1f}  without a label "
              f"{r['people_without_label']}/{r['people']}")
    if args.json:
        from mcpc_builder import atomic
        atomic.write_json(args.json, {"library": args.library, "test": args.test, "rows": rows},
                          indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
