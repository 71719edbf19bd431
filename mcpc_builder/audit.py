"""`mcpc-build audit`: how right are the labels? Precision against synthetic ground-truth depth.

The audit goes through the real files: it writes a synthetic COCO-format dataset with ground truth
(``synth.write_dataset``), builds it with ``build.build`` (real reader, real priors, real shards)
and compares every label with the true camera-frame depths (ground_truth/*.npz ``joints_cam``).

Truth: a pair is "equal" when its true |dz| < ``tolerance`` (default 0.05 m: about the depth of a
nose in front of the cheeks; finer orders are below what 2D keypoints can resolve), otherwise the
sign of dz orders it. An ordered label is right when its sign matches (an ordered label on an
"equal" pair is wrong); an equal label is right when the pair is "equal".

Per rule the figures are for the rule *on its own* (every rule is run, enabled or not, before
merging); "overall" is the merged labels the build wrote.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from . import atomic
from .priors import apply_priors
from .priors.config import RULE_NAMES, PriorConfig

DEFAULT_TOLERANCE_M = 0.05
CONFIDENCE_BINS = np.linspace(0.0, 1.0, 11)


def true_order(depth_a: np.ndarray, depth_b: np.ndarray, tolerance: float) -> np.ndarray:
    """(K,) int8 true label: +1 a closer by more than ``tolerance`` metres, -1 farther, 0 equal."""
    dz = depth_a - depth_b
    return np.where(dz < -tolerance, 1, np.where(dz > tolerance, -1, 0)).astype(np.int8)


def score(label: np.ndarray, truth: np.ndarray, persons_a: np.ndarray, persons_b: np.ndarray,
          num_persons: int) -> dict:
    """Precision and coverage figures of K labels.

    Arguments:
        label, truth: (K,) int8; persons_a, persons_b: (K,) int64 person rows.
        num_persons: persons the labels are spread over.
    """
    ordered = label != 0
    equal = ~ordered
    labelled = len(np.union1d(persons_a, persons_b)) if len(label) else 0
    return {
        "labels": int(len(label)),
        "ordered": int(ordered.sum()),
        "ordered_precision": float((label[ordered] == truth[ordered]).mean())
        if ordered.any() else None,
        "equal": int(equal.sum()),
        "equal_precision": float((truth[equal] == 0).mean()) if equal.any() else None,
        "precision": float((label == truth).mean()) if len(label) else None,
        "pairs_per_person": float(len(label) / max(num_persons, 1)),
        "persons_labelled": float(labelled / max(num_persons, 1)),
    }


def reliability(confidence: np.ndarray, correct: np.ndarray) -> dict:
    """Precision per confidence bin: {bin_low, bin_high, count, precision} lists."""
    idx = np.clip(np.digitize(confidence, CONFIDENCE_BINS) - 1, 0, len(CONFIDENCE_BINS) - 2)
    count = np.bincount(idx, minlength=len(CONFIDENCE_BINS) - 1)
    hits = np.bincount(idx, weights=correct.astype(float), minlength=len(CONFIDENCE_BINS) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = hits / count
    return {"bin_low": CONFIDENCE_BINS[:-1].tolist(), "bin_high": CONFIDENCE_BINS[1:].tolist(),
            "count": count.tolist(),
            "precision": [None if c == 0 else float(p) for c, p in zip(count, prec)]}


def load_ground_truth(root: Path) -> dict[str, dict]:
    """{split: {ann_id: (N,), joints_cam: (N, 21, 3), pose, is_child, image_id}} of a synthetic
    COCO root."""
    from .contract import GROUND_TRUTH_DIR, read_ground_truth

    out = {}
    for path in sorted((root / GROUND_TRUTH_DIR).glob("person_keypoints_*.npz")):
        split = path.stem[len("person_keypoints_"):]
        z = read_ground_truth(path)
        out[split] = {k: z[k] for k in ("ann_id", "image_id", "joints_cam", "pose", "is_child")}
    return out


def depth_lookup(gt: dict, ann_id: np.ndarray) -> np.ndarray:
    """(N, 21) float true depth (metres) of persons by annotation id."""
    order = np.argsort(gt["ann_id"])
    pos = order[np.searchsorted(gt["ann_id"], ann_id, sorter=order)]
    assert np.array_equal(gt["ann_id"][pos], ann_id), "annotation ids missing from ground truth"
    return gt["joints_cam"][pos, :, 2].astype(np.float64)


def audit(out, n_images: int = 600, seed: int = 7, config: PriorConfig | None = None,
          tolerance: float = DEFAULT_TOLERANCE_M, data_root=None, progress: bool = True) -> dict:
    """Write (or reuse ``data_root``) a synthetic COCO set, build it, score every label.

    Returns the figures (also written to ``<out>/audit.json``; the reliability curve to
    ``<out>/reliability.png``).
    """
    from . import build as build_mod
    from .readers.coco import read_coco
    from .synth import write_dataset
    from .synth.world import WorldConfig

    config = config or PriorConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = None
    if data_root is None:
        tmp = tempfile.TemporaryDirectory(prefix="mcpc-audit-")
        data_root = write_dataset("coco", Path(tmp.name) / "coco", seed=seed, n_images=n_images,
                                  progress=progress)
    data_root = Path(data_root)
    try:
        build_dir = build_mod.build(["coco"], out / "build", roots={"coco": data_root},
                                    config=config, overwrite=True, progress=False)
        gt = load_ground_truth(data_root)
        per_rule: dict[str, dict] = {}
        raw_label: dict[str, list] = {r: [] for r in RULE_NAMES}
        mix_pose, mix_people, persons_total = Counter(), Counter(), 0
        for split, ann_file, image_dir in _coco_files(data_root):
            table = read_coco(ann_file, split, image_dir, root=data_root)
            depth = depth_lookup(gt[split], table.source_ann_id)
            res = apply_priors(table, config, evaluate_disabled=True)
            for rule, pairs in res.raw.items():
                truth = true_order(depth[pairs.person_a, pairs.joint_a],
                                   depth[pairs.person_b, pairs.joint_b], tolerance)
                raw_label[rule].append((pairs, truth, persons_total))
            persons_total += len(table)
            pos = np.searchsorted(np.sort(gt[split]["ann_id"]), table.source_ann_id)
            order = np.argsort(gt[split]["ann_id"])
            mix_pose.update(np.char.add(gt[split]["pose"][order[pos]],
                                        np.where(gt[split]["is_child"][order[pos]],
                                                 " (child)", "")).tolist())
            mix_people.update(Counter(np.bincount(table.image_index).tolist()))
        for rule in RULE_NAMES:
            parts = raw_label[rule]
            lab = np.concatenate([p.label for p, _, _ in parts]) if parts else np.zeros(0, np.int8)
            tru = np.concatenate([t for _, t, _ in parts]) if parts else np.zeros(0, np.int8)
            pa = np.concatenate([p.person_a + o for p, _, o in parts]) if parts else np.zeros(0)
            pb = np.concatenate([p.person_b + o for p, _, o in parts]) if parts else np.zeros(0)
            per_rule[rule] = score(lab, tru, pa, pb, persons_total)
            per_rule[rule]["enabled"] = rule in config.enabled
        overall, curve = _score_build(build_dir, gt, tolerance)
    finally:
        if tmp is not None:
            tmp.cleanup()
    from .contract import read_manifest

    manifest = read_manifest(build_dir)
    world = WorldConfig()
    figures = {
        "tolerance_m": tolerance,
        "scene_mix": {
            "source": "synthetic COCO-format dataset (mcpc_builder.synth), seed "
                      f"{seed}, {n_images} images" if tmp is not None else str(data_root),
            "persons_kept": persons_total,
            "poses_of_kept_persons": dict(sorted(mix_pose.items())),
            "images_by_people_count": {str(k): v for k, v in sorted(mix_people.items())},
            "world": {"pose_weights": dict(world.pose_weights),
                      "child_fraction": world.child_fraction,
                      "camera_height_m": list(world.camera_height),
                      "distance_m": list(world.distance),
                      "focal_factor": list(world.focal_factor)},
        },
        "per_prior": per_rule,
        "overall": overall,
        "reliability": curve,
        "build": {"persons": manifest["totals"]["persons_kept"],
                  "pairs": manifest["totals"]["pairs"],
                  "contradictions_dropped": manifest["labels"]["contradictions_dropped"]},
        "prior_config": config.to_dict(),
    }
    (out / "audit.json").write_text(json.dumps(figures, indent=2) + "\n")
    plot_reliability(figures, out / "reliability.png")
    return figures


def _coco_files(root: Path):
    from .readers import discover

    return discover("coco", root)


def _score_build(build_dir: Path, gt: dict, tolerance: float) -> tuple[dict, dict]:
    """Score the merged labels the build wrote; returns (overall and per kept prior, curves)."""
    from .preview import load_build

    _, persons, pairs = load_build(build_dir)
    depth = np.zeros((len(persons), 21))
    row_of = np.zeros(int(persons.person_id.max()) + 1 if len(persons) else 0, np.int64)
    row_of[persons.person_id.to_numpy()] = np.arange(len(persons))
    for split in persons.split.unique():
        sel = (persons.split == split).to_numpy()
        depth[sel] = depth_lookup(gt[split], persons.source_ann_id.to_numpy()[sel])
    ra = row_of[pairs.person_a.to_numpy()]
    rb = row_of[pairs.person_b.to_numpy()]
    ja, jb = pairs.joint_a.to_numpy().astype(int), pairs.joint_b.to_numpy().astype(int)
    label = pairs.label.to_numpy().astype(np.int8)
    truth = true_order(depth[ra, ja], depth[rb, jb], tolerance)
    overall = score(label, truth, ra, rb, len(persons))
    prior = pairs.prior.to_numpy()
    overall["by_kept_prior"] = {r: score(label[prior == r], truth[prior == r], ra[prior == r],
                                         rb[prior == r], len(persons))
                                for r in RULE_NAMES if (prior == r).any()}
    conf = pairs.confidence.to_numpy()
    curve = {"overall": reliability(conf, label == truth)}
    for r in RULE_NAMES:
        m = prior == r
        if m.any():
            curve[r] = reliability(conf[m], label[m] == truth[m])
    return overall, curve


def plot_reliability(figures: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .preview import PRIOR_COLOURS

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for name, c in figures["reliability"].items():
        mid = 0.5 * (np.array(c["bin_low"]) + np.array(c["bin_high"]))
        prec = np.array([np.nan if p is None else p for p in c["precision"]])
        ok = np.isfinite(prec)
        ax.plot(mid[ok], prec[ok], "o-", color=PRIOR_COLOURS.get(name, "black"),
                lw=2.5 if name == "overall" else 1.2, label=f"{name} (n={sum(c['count'])})")
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1, label="calibrated")
    ax.set_xlabel("label confidence")
    ax.set_ylabel(f"precision (|dz| tolerance {figures['tolerance_m']} m)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("MCPC label reliability on synthetic ground truth")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    atomic.save_figure(fig, png)


def table_text(figures: dict) -> str:
    pct = lambda v: "    -" if v is None else f"{100 * v:5.1f}"  # noqa: E731
    mix = figures["scene_mix"]
    lines = [f"scene mix: {mix['source']}; {mix['persons_kept']} labelled persons; "
             f"people per image {mix['images_by_people_count']}",
             "  poses: " + ", ".join(f"{k} {v}" for k, v in mix["poses_of_kept_persons"].items()),
             f"truth: |dz| < {figures['tolerance_m']} m counts as equal",
             f"{'prior':16s} {'on':>3s} {'labels':>8s} {'ord.prec%':>9s} {'equal':>6s} "
             f"{'eq.prec%':>8s} {'pairs/pers':>10s} {'labelled%':>9s}"]
    rows = list(figures["per_prior"].items()) + [("OVERALL (merged)", figures["overall"])]
    for name, d in rows:
        on = "" if "enabled" not in d else ("yes" if d["enabled"] else "no")
        lines.append(f"{name:16s} {on:>3s} {d['labels']:8d} {pct(d['ordered_precision']):>9s} "
                     f"{d['equal']:6d} {pct(d['equal_precision']):>8s} "
                     f"{d['pairs_per_person']:10.1f} {pct(d['persons_labelled']):>9s}")
    if not figures["prior_config"]["foreshortening"]["emit_equal"]:
        lines.append("(foreshortening's equal labels are measured above but not emitted: "
                     "foreshortening.emit_equal is off by default)")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="out/audit", help="output folder (audit.json, PNG)")
    parser.add_argument("--n-images", type=int, default=600, help="synthetic images to write")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--config", help="prior config YAML (default: built-in defaults)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE_M,
                        help="true |dz| (metres) under which a pair counts as equal")
    parser.add_argument("--data-root", help="an existing synthetic COCO root (with "
                                            "ground_truth/) instead of writing one")


def run(args) -> int:
    config = PriorConfig.from_yaml(args.config) if args.config else PriorConfig()
    figures = audit(args.out, n_images=args.n_images, seed=args.seed, config=config,
                    tolerance=args.tolerance, data_root=args.data_root)
    print(table_text(figures))
    print(f"wrote {Path(args.out) / 'audit.json'} and {Path(args.out) / 'reliability.png'}")
    return 0



