"""`mcpc-build audit`: how right are the labels? Precision against synthetic ground-truth depth.

The audit goes through the real files: it writes synthetic datasets with ground truth in the COCO
and MPII formats (``synth.write_dataset``) from a named world (``--world dev``: tune here;
``held_out``: report only; optionally posed from a mocap pose library, ``--poses``), builds them
with ``build.build`` (real readers, real priors, real shards) and compares every label with the
true camera-frame depths (ground_truth/*.npz ``joints_cam``).

Figures are split into same-person (within one person: the 3D pose) and cross-person labels, per
prior, by source (COCO format with face points and visibility flags; MPII format without face
points) and by pose family; pairs per person are given as mean and median (also over people with
at least 10 labelled joints), with the people left without any same-person label.

Truth: a pair is "equal" when its true |dz| < ``tolerance`` (default 0.05 m: about the depth of a
nose in front of the cheeks; finer orders are below what 2D keypoints can resolve), otherwise the
sign of dz orders it. An ordered label is right when its sign matches (an ordered label on an
"equal" pair is wrong); an equal label is right when the pair is "equal".

Per rule the figures are for the rule *on its own* (every rule is run, enabled or not, before
merging); "overall" is the merged labels the build wrote.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from . import atomic
from .errors import UsageError
from .priors import apply_priors
from .priors.config import RULE_NAMES, PriorConfig

DEFAULT_TOLERANCE_M = 0.05
# Deciles, with the top one split: the priors' confidences all lie in [0.55, 1].
CONFIDENCE_BINS = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0])


def true_order(depth_a: np.ndarray, depth_b: np.ndarray, tolerance: float) -> np.ndarray:
    """(K,) int8 true label: +1 a closer by more than ``tolerance`` metres, -1 farther, 0 equal."""
    dz = depth_a - depth_b
    return np.where(dz < -tolerance, 1, np.where(dz > tolerance, -1, 0)).astype(np.int8)


def orderable_pairs(depth: np.ndarray, labelled: np.ndarray, tolerance: float) -> np.ndarray:
    """(N,) per person: pairs of its labelled joints whose true depths differ by at least
    ``tolerance`` metres, i.e. the same-person pairs a perfect prior could label (the ceiling of
    same-person coverage). depth: (N, J) metres; labelled: (N, J) bool."""
    iu = np.triu_indices(depth.shape[1], 1)
    gap = np.abs(depth[:, iu[0]] - depth[:, iu[1]])
    return ((gap >= tolerance) & labelled[:, iu[0]] & labelled[:, iu[1]]).sum(1)


def coverage(orderable: np.ndarray, labelled_joints: np.ndarray, label: np.ndarray,
             truth: np.ndarray, same_person: np.ndarray) -> dict:
    """Same-person coverage against its ceiling: the share of orderable pairs that carry a
    right label, and the median orderable pairs per person with >= 10 labelled joints."""
    ten = labelled_joints >= 10
    total = int(orderable.sum())
    right = int(((label == truth) & (truth != 0) & same_person).sum())
    return {"orderable_pairs": total, "right_labels": right,
            "recall": right / total if total else None,
            "orderable_per_person_median_10plus": float(np.median(orderable[ten])) if ten.any()
            else None}


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
    # Rounded first: a float32 0.9 is 0.89999998 and belongs in the bin that starts at 0.9.
    conf = np.round(np.asarray(confidence, np.float64), 6)
    idx = np.clip(np.digitize(conf, CONFIDENCE_BINS) - 1, 0, len(CONFIDENCE_BINS) - 2)
    count = np.bincount(idx, minlength=len(CONFIDENCE_BINS) - 1)
    hits = np.bincount(idx, weights=correct.astype(float), minlength=len(CONFIDENCE_BINS) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = hits / count
    return {"bin_low": CONFIDENCE_BINS[:-1].tolist(), "bin_high": CONFIDENCE_BINS[1:].tolist(),
            "count": count.tolist(),
            "precision": [None if c == 0 else float(p) for c, p in zip(count, prec)]}


def load_ground_truth(root: Path, source: str = "coco") -> dict[str, dict]:
    """{key: {ann_id: (N,), joints_cam: (N, 21, 3), pose, is_child}} of a synthetic root, read
    through the contract's one sidecar reader.

    COCO: one key per split (``ground_truth/person_keypoints_<split>.npz``); MPII: ``train``,
    ``valid`` (JSON lists) and ``mat`` (the ``.mat`` file), ``ground_truth/<key>.npz``.
    """
    from .contract import GROUND_TRUTH_DIR, read_ground_truth

    out = {}
    pattern = "person_keypoints_*.npz" if source == "coco" else "*.npz"
    for path in sorted((Path(root) / GROUND_TRUTH_DIR).glob(pattern)):
        key = path.stem[len("person_keypoints_"):] if source == "coco" else path.stem
        z = read_ground_truth(path)
        out[key] = {k: z[k] for k in ("ann_id", "joints_cam", "pose", "is_child")}
    return out


def ground_truth_key(source: str, split: str, ann_file: Path) -> str:
    """Which ``load_ground_truth`` key holds the persons of one annotation file."""
    return "mat" if source == "mpii" and Path(ann_file).suffix == ".mat" else split


def _lookup(gt: dict, ann_id: np.ndarray) -> np.ndarray:
    """(N,) rows of ``gt`` for annotation ids (all must be present)."""
    order = np.argsort(gt["ann_id"])
    pos = order[np.searchsorted(gt["ann_id"], ann_id, sorter=order)]
    assert np.array_equal(gt["ann_id"][pos], ann_id), "annotation ids missing from ground truth"
    return pos


def depth_lookup(gt: dict, ann_id: np.ndarray) -> np.ndarray:
    """(N, 21) float true depth (metres) of persons by annotation id."""
    return gt["joints_cam"][_lookup(gt, ann_id), :, 2].astype(np.float64)


def person_groups(gt: dict, ann_id: np.ndarray) -> np.ndarray:
    """(N,) str pose family of persons by annotation id (`` (child)`` appended for children)."""
    pos = _lookup(gt, ann_id)
    return np.char.add(gt["pose"][pos].astype(str),
                       np.where(gt["is_child"][pos], " (child)", "")).astype(object)


def group_scores(label: np.ndarray, truth: np.ndarray, person_a: np.ndarray,
                 person_b: np.ndarray, labelled_joints: np.ndarray) -> dict:
    """Same-person and cross-person figures of K labels over a set of persons.

    Arguments:
        label, truth: (K,) int8; person_a, person_b: (K,) int64 rows into ``labelled_joints``.
        labelled_joints: (N,) int, labelled joints of every person of the group (people without
            any label count too).
    Returns ``score`` of all labels plus ``same_person`` / ``cross_person`` blocks: labels,
    precision, pairs per person (mean, median, and median over people with >= 10 labelled
    joints), people without such a label (and those with >= 8 labelled joints).
    """
    n = len(labelled_joints)
    out = score(label, truth, person_a, person_b, n)
    out["people"] = int(n)
    same = person_a == person_b
    for name, sel in (("same_person", same), ("cross_person", ~same)):
        la, tr = label[sel], truth[sel]
        count = lambda p: np.bincount(p[p < n], minlength=n)  # noqa: E731  (rows >= n: outside)
        if name == "same_person":
            per = count(person_a[sel])
        else:  # a cross-person label counts for both its persons
            per = count(person_a[sel]) + count(person_b[sel])
        ten = labelled_joints >= 10
        eight = labelled_joints >= 8
        out[name] = {
            "labels": int(sel.sum()),
            "precision": float((la == tr).mean()) if len(la) else None,
            "pairs_per_person_mean": float(per.mean()) if n else 0.0,
            "pairs_per_person_median": float(np.median(per)) if n else 0.0,
            "pairs_per_person_median_10plus": float(np.median(per[ten])) if ten.any() else None,
            "people_without_label": int((per == 0).sum()),
            "people_8plus_without_label": int((eight & (per == 0)).sum()),
            "people_8plus": int(eight.sum()),
        }
    return out


def audit(out, n_images: int = 600, seed: int = 7, config: PriorConfig | None = None,
          tolerance: float = DEFAULT_TOLERANCE_M, data_root=None, progress: bool = True,
          world: str | Path | None = "dev", poses: str | Path | None = None,
          sources: tuple[str, ...] = ("coco", "mpii")) -> dict:
    """Write synthetic datasets of ``world`` (or reuse ``data_root``), build them, score every
    label against the true depths.

    Arguments:
        out: output folder (``audit.json``, ``audit.txt``, ``reliability.png``, ``build/``).
        n_images: images per source; seed: the first source's seed (the next ones +1, ...).
        world: ``dev`` | ``held_out`` | ``default`` | a world YAML (``synth.worlds.load_world``).
        poses: a pose library (``.npz``) the world poses its people from.
        sources: synthetic formats to write and build (``coco``: visibility flags and face
            points; ``mpii``: no face points, as MPII).
        data_root: an existing synthetic COCO root, or {source: root}, instead of writing.
    Returns the figures (also written to ``<out>/audit.json``).
    """
    from dataclasses import replace

    from . import build as build_mod
    from .readers import discover
    from .synth import write_dataset
    from .synth.worlds import load_world

    config = config or PriorConfig()
    out = Path(out)
    lib = config.pose_library.path if "pose_library" in config.enabled else ""
    if lib and poses is not None and Path(lib).resolve() == Path(poses).resolve():
        raise UsageError(f"{lib}: the pose library is also the world's --poses: the audit "
                         "would score the library on its own poses (measure it on real motion "
                         "with python -m pipelines.bench.mocap_priors --pose-library FILE, "
                         "which holds each activity out)")
    out.mkdir(parents=True, exist_ok=True)
    world_cfg = load_world(world)
    if poses is not None:
        world_cfg = replace(world_cfg, poses=str(Path(poses).resolve()))
    tmp = None
    if data_root is None:
        tmp = tempfile.TemporaryDirectory(prefix="mcpc-audit-")
        roots = {src: write_dataset(src, Path(tmp.name) / src, seed=seed + i, n_images=n_images,
                                    progress=progress, config=world_cfg)
                 for i, src in enumerate(sources)}
    else:
        roots = dict(data_root) if isinstance(data_root, dict) else {"coco": data_root}
    roots = {k: Path(v) for k, v in roots.items()}
    try:
        build_dir = build_mod.build(list(roots), out / "build", roots=roots, config=config,
                                    overwrite=True, progress=False)
        gts = {src: load_ground_truth(root, src) for src, root in roots.items()}
        keys = {(src, split): ground_truth_key(src, split, ann)
                for src, root in roots.items() for split, ann, _ in discover(src, root)}
        per_rule, mix = _score_rules(roots, gts, keys, config, tolerance)
        overall, groups, curve = _score_build(build_dir, gts, keys, tolerance)
    finally:
        if tmp is not None:
            tmp.cleanup()
    from .contract import read_manifest

    manifest = read_manifest(build_dir)
    figures = {
        "tolerance_m": tolerance,
        "scene_mix": {
            "source": (f"synthetic datasets ({', '.join(roots)}) of world "
                       f"{world if world is not None else 'default'}"
                       + (f" posed from {poses}" if poses else "")
                       + f", seed {seed}, {n_images} images each") if tmp is not None
            else ", ".join(f"{k}: {v}" for k, v in roots.items()),
            "world": str(world), "poses": None if poses is None else str(poses),
            "persons_kept": mix["persons"],
            "poses_of_kept_persons": dict(sorted(mix["poses"].items())),
            "images_by_people_count": {str(k): v for k, v in sorted(mix["people"].items())},
        },
        "per_prior": per_rule,
        "overall": overall,
        "groups": groups,
        "reliability": curve,
        "build": {"persons": manifest["totals"]["persons_kept"],
                  "pairs": manifest["totals"]["pairs"],
                  "labels": manifest["labels"]},
        "prior_config": config.to_dict(),
    }
    atomic.write_json(out / "audit.json", figures, indent=2)
    atomic.write_bytes(out / "audit.txt", (table_text(figures) + "\n").encode())
    plot_reliability(figures, out / "reliability.png")
    return figures


def _score_rules(roots, gts, keys, config, tolerance):
    """Every rule on its own (enabled or not), same-person and cross-person, over all sources;
    ``keys``: (source, split) -> its ``gts`` key."""
    from .readers import discover, read_source

    raw: dict[str, list] = {r: [] for r in RULE_NAMES}
    joints_all, mix_pose, mix_people, offset = [], Counter(), Counter(), 0
    for src, root in roots.items():
        for split, ann_file, image_dir in discover(src, root):
            table = read_source(src, split, ann_file, image_dir, root=root)
            gt = gts[src][keys[(src, split)]]
            depth = depth_lookup(gt, table.source_ann_id)
            res = apply_priors(table, config, evaluate_disabled=True)
            for rule, pairs in res.raw.items():
                truth = true_order(depth[pairs.person_a, pairs.joint_a],
                                   depth[pairs.person_b, pairs.joint_b], tolerance)
                raw[rule].append((pairs.label, truth, pairs.person_a + offset,
                                  pairs.person_b + offset, pairs.confidence))
            joints_all.append((table.visibility > 0).sum(1))
            offset += len(table)
            mix_pose.update(person_groups(gt, table.source_ann_id).tolist())
            mix_people.update(Counter(np.bincount(table.image_index).tolist()))
    labelled = np.concatenate(joints_all) if joints_all else np.zeros(0, np.int64)
    per_rule = {}
    for rule in RULE_NAMES:
        parts = raw[rule]
        cat = (lambda i, dt: np.concatenate([p[i] for p in parts]) if parts  # noqa: E731
               else np.zeros(0, dt))
        per_rule[rule] = group_scores(cat(0, np.int8), cat(1, np.int8), cat(2, np.int64),
                                      cat(3, np.int64), labelled)
        per_rule[rule]["enabled"] = rule in config.enabled
        per_rule[rule]["reliability"] = reliability(cat(4, np.float32),
                                                    cat(0, np.int8) == cat(1, np.int8))
    return per_rule, {"persons": int(len(labelled)), "poses": mix_pose, "people": mix_people}


def _score_build(build_dir: Path, gts: dict, keys: dict, tolerance: float
                 ) -> tuple[dict, dict, dict]:
    """Score the merged labels the build wrote: overall (and per kept prior), by source and by
    pose family (a cross-person label belongs to the group of its person_a), and the
    reliability curves (overall, same-person, cross-person, per kept prior)."""
    from .preview import load_build

    _, persons, pairs = load_build(build_dir)
    n = len(persons)
    depth = np.zeros((n, 21))
    family = np.empty(n, object)
    src_of = persons.source.to_numpy().astype(str)
    row_of = np.zeros(int(persons.person_id.max()) + 1 if n else 0, np.int64)
    row_of[persons.person_id.to_numpy()] = np.arange(n)
    for (src, split), key in keys.items():
        sel = ((persons.source == src) & (persons.split == split)).to_numpy()
        if sel.any():
            ann = persons.source_ann_id.to_numpy()[sel]
            depth[sel] = depth_lookup(gts[src][key], ann)
            family[sel] = person_groups(gts[src][key], ann)
    labelled_mask = (np.stack(persons.visibility.to_numpy()) > 0) if n else np.zeros(depth.shape,
                                                                                      bool)
    labelled = labelled_mask.sum(1)
    ra = row_of[pairs.person_a.to_numpy()]
    rb = row_of[pairs.person_b.to_numpy()]
    ja, jb = pairs.joint_a.to_numpy().astype(int), pairs.joint_b.to_numpy().astype(int)
    label = pairs.label.to_numpy().astype(np.int8)
    truth = true_order(depth[ra, ja], depth[rb, jb], tolerance)
    prior = pairs.prior.to_numpy().astype(str)

    def scores(mask_pairs, mask_people):
        rows = np.flatnonzero(mask_people)
        local = np.full(n, -1, np.int64)
        local[rows] = np.arange(len(rows))
        return group_scores(label[mask_pairs], truth[mask_pairs], local[ra[mask_pairs]],
                            np.where(local[rb[mask_pairs]] >= 0, local[rb[mask_pairs]],
                                     len(rows)), labelled[rows])

    everyone = np.ones(n, bool)
    every_pair = np.ones(len(label), bool)
    overall = scores(every_pair, everyone)
    overall["same_person_coverage"] = coverage(
        orderable_pairs(depth, labelled_mask, tolerance), labelled, label, truth, ra == rb)
    overall["by_kept_prior"] = {r: scores(prior == r, everyone)
                                for r in RULE_NAMES if (prior == r).any()}
    groups = {"source": {s: scores(src_of[ra] == s, src_of == s) for s in np.unique(src_of)},
              "pose_family": {f: scores(family[ra] == f, family == f)
                              for f in sorted(set(family.tolist()))}}
    conf = pairs.confidence.to_numpy()
    right = label == truth
    same = ra == rb
    curve = {"overall": reliability(conf, right),
             "same-person": reliability(conf[same], right[same]),
             "cross-person": reliability(conf[~same], right[~same])}
    for r in RULE_NAMES:
        m = prior == r
        if m.any():
            curve[r] = reliability(conf[m], right[m])
    return overall, groups, curve


def plot_reliability(figures: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .preview import PRIOR_COLOURS

    colours = {"overall": "black", "same-person": "#17becf", "cross-person": "#bcbd22",
               **PRIOR_COLOURS}
    fig, ax = plt.subplots(figsize=(6.5, 5), dpi=100)
    x_lo, y_lo = 1.0, 1.0
    for name, c in figures["reliability"].items():
        mid = 0.5 * (np.array(c["bin_low"]) + np.array(c["bin_high"]))
        prec = np.array([np.nan if p is None else p for p in c["precision"]])
        ok = np.isfinite(prec)
        if ok.any():
            x_lo = min(x_lo, float(np.array(c["bin_low"])[ok].min()))
            y_lo = min(y_lo, float(prec[ok].min()))
        ax.plot(mid[ok], prec[ok], "o-", color=colours.get(name, "grey"),
                lw=2.5 if name == "overall" else 1.2, label=f"{name} (n={sum(c['count'])})")
    # Zoomed to where the labels are (the priors' confidences lie in the top bins): the
    # calibrated diagonal stays visible across the whole range shown.
    lo = max(0.0, min(x_lo, y_lo) - 0.03)
    ax.plot([lo, 1], [lo, 1], ":", color="grey", lw=1, label="calibrated")
    ax.set_xlabel("label confidence (bins: deciles, the top one split at 0.95)")
    ax.set_ylabel(f"precision (|dz| tolerance {figures['tolerance_m']} m)")
    ax.set_xlim(lo, 1.0)
    ax.set_ylim(lo, 1.005)
    ax.set_title(f"MCPC label reliability, world {figures['scene_mix'].get('world')}")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    atomic.save_figure(fig, png)


def table_text(figures: dict) -> str:
    """The figures as readable tables: per prior (on its own) and merged, same- vs
    cross-person; then by source and by pose family (merged labels)."""
    pct = lambda v: "    -" if v is None else f"{100 * v:5.1f}"  # noqa: E731
    num = lambda v: "   -" if v is None else f"{v:4.0f}"  # noqa: E731
    mix = figures["scene_mix"]
    lines = [f"scene mix: {mix['source']}; {mix['persons_kept']} labelled persons; "
             f"people per image {mix['images_by_people_count']}",
             "  poses: " + ", ".join(f"{k} {v}" for k, v in mix["poses_of_kept_persons"].items()),
             f"truth: |dz| < {figures['tolerance_m']} m counts as equal (an ordered label on such "
             "a pair is wrong)",
             "same = within one person; cross = two people. pairs/person: mean, median, median "
             "over people with >= 10 labelled joints; 8+none: people with >= 8 labelled joints "
             "and no label of that kind",
             f"{'':24s} {'on':>3s} {'same':>7s} {'prec%':>6s} {'mean':>5s} {'med':>4s} "
             f"{'m10+':>4s} {'8+none':>7s} | {'cross':>8s} {'prec%':>6s} {'mean':>6s} | "
             f"{'all%':>6s}"]

    def row(name, d, on=""):
        sp, cp = d["same_person"], d["cross_person"]
        return (f"{name:24s} {on:>3s} {sp['labels']:7d} {pct(sp['precision']):>6s} "
                f"{sp['pairs_per_person_mean']:5.1f} {sp['pairs_per_person_median']:4.0f} "
                f"{num(sp['pairs_per_person_median_10plus'])} "
                f"{sp['people_8plus_without_label']:4d}/{sp['people_8plus']:<4d}| "
                f"{cp['labels']:8d} {pct(cp['precision']):>6s} "
                f"{cp['pairs_per_person_mean']:6.1f} | {pct(d['precision']):>6s}")

    lines.append("per prior, each on its own (before merging):")
    for name, d in figures["per_prior"].items():
        lines.append(row(f"  {name}", d, "yes" if d["enabled"] else "no"))
    lines.append("merged labels the build wrote:")
    lines.append(row("  OVERALL", figures["overall"]))
    for name, d in figures["overall"].get("by_kept_prior", {}).items():
        lines.append(row(f"    kept from {name}", d))
    for title, key in (("by source", "source"), ("by pose family", "pose_family")):
        lines.append(f"{title} (merged):")
        for name, d in figures.get("groups", {}).get(key, {}).items():
            lines.append(row(f"  {name}", d))
    lines.append("reliability of each prior on its own (confidence bin: precision% of count):")
    for name, d in figures["per_prior"].items():
        rel = d.get("reliability")
        if rel and any(rel["count"]):
            lines.append(f"  {name:22s} " + "  ".join(
                f"{lo:.2f}-{hi:.2f}: {pct(p).strip()} of {c}" for lo, hi, c, p in zip(
                    rel["bin_low"], rel["bin_high"], rel["count"], rel["precision"]) if c))
    cov = figures["overall"].get("same_person_coverage")
    if cov:
        lines.append(f"same-person coverage: {cov['right_labels']} right labels of "
                     f"{cov['orderable_pairs']} orderable pairs (|dz| >= {figures['tolerance_m']} "
                     f"m, both joints labelled) = {pct(cov['recall']).strip()}%; orderable pairs "
                     f"per person with >= 10 labelled joints, median "
                     f"{num(cov['orderable_per_person_median_10plus']).strip()}")
    lab = figures["build"]["labels"]
    if "merged_duplicates" in lab:
        lines.append(f"build: produced {lab['produced']} = kept {lab['kept']} + merged as "
                     f"duplicates {lab['merged_duplicates']} + dropped as contradictions "
                     f"{lab['contradictions_dropped']} + dropped by person-pair conflicts "
                     f"{lab['person_pair_conflicts_dropped']}")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="out/audit", help="output folder (audit.json, "
                                                           "audit.txt, reliability.png)")
    parser.add_argument("--n-images", type=int, default=600,
                        help="synthetic images to write per source")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--world", default="dev",
                        help="synthetic world: dev (tune here), held_out (report only, never "
                             "tune), default, or a world YAML file")
    parser.add_argument("--poses", help="pose library (.npz, e.g. ../shared/fixtures/mocap-dev/"
                                        "poses.npz) the world poses its people from")
    parser.add_argument("--pose-library", metavar="FILE",
                        help="also run the opt-in pose_library prior with this 3D pose library "
                             "(not the --poses file: the audit would score the library on its "
                             "own poses)")
    parser.add_argument("--sources", default="coco,mpii",
                        help="synthetic formats to write and build, comma-separated")
    parser.add_argument("--config", help="prior config YAML (default: built-in defaults)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE_M,
                        help="true |dz| (metres) under which a pair counts as equal")
    parser.add_argument("--data-root", help="an existing synthetic COCO root (with "
                                            "ground_truth/) instead of writing one")


def run(args) -> int:
    config = PriorConfig.from_yaml(args.config) if args.config else PriorConfig()
    if args.pose_library:
        config = config.with_pose_library(args.pose_library)
    figures = audit(args.out, n_images=args.n_images, seed=args.seed, config=config,
                    tolerance=args.tolerance, data_root=args.data_root, world=args.world,
                    poses=args.poses, sources=tuple(s for s in args.sources.split(",") if s))
    print(table_text(figures))
    print(f"wrote {Path(args.out) / 'audit.json'}, audit.txt and reliability.png")
    return 0
