"""The priors on real motion: project a mocap pose library through many sampled cameras.

A measurement harness, independent of the synthetic world: each 3D pose of a library in the format
of ``../shared/fixtures/mocap-dev/poses.npz`` (25 named joints, metres, Z up, floor at z = 0) is
seen by ``views`` sampled pinhole cameras (height 0.5-3 m, horizontal distance 2-15 m, random yaw
around the person, aimed at the pelvis with jitter, focal length 0.6-2.0 x image width). Each view
is one image with one person, so every label is within-person. Keypoints get 2D annotation noise
the size of COCO annotators' (per-keypoint OKS sigmas times the object scale sqrt(area)).

Two annotation formats:
- ``coco``: the 17 COCO joints; visibility flags from geometry (face points turned away from the
  camera are hidden by the head; a joint behind one of the person's own limbs, torso or head is
  hidden), with ``flag_error`` of the flags flipped at random (annotators' errors);
- ``mpii``: MPII's 16 joints (pelvis, thorax = neck base, upper neck, head top), every flag 2 (the
  converted MPII JSON carries no occlusion flags).

With ``--pose-library FILE`` the opt-in ``pose_library`` prior runs too. When FILE is the
``--poses`` file itself, each view is labelled by the library *without the view's own activity*
(leave-one-activity-out: the three stealthy-walk clips never vote for each other), so the figure
is never the library recognising its own poses.

Run: ``python -m pipelines.bench.mocap_priors [--poses FILE] [--views 20] [--seed 0] [--config FILE]
[--pose-library FILE]`` (``--config``: a prior config YAML, as ``mcpc-build audit --config``).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from mcpc_builder.audit import reliability
from mcpc_builder.errors import cli_entry
from mcpc_builder.joints import COCO17, MCPC21, MPII16, convert
from mcpc_builder.persons import PersonTable
from mcpc_builder.priors.pose_library import (IMAGE_SIZE, click_noise, project_views,
                                              sample_cameras)
from mcpc_builder.synth.annotator import COCO_OKS_SIGMAS

_REPO = Path(__file__).resolve().parents[2]
# ``../shared`` next to the checkout (or to its parent folder, for a worktree under wt/).
DEFAULT_POSES = next((c / "shared/fixtures/mocap-dev/poses.npz" for c in (_REPO.parent,
                      _REPO.parent.parent) if (c / "shared/fixtures/mocap-dev/poses.npz").exists()),
                     _REPO.parent / "shared/fixtures/mocap-dev/poses.npz")
J21 = MCPC21.index
# COCO's per-keypoint OKS sigmas (the synthetic annotator's); this harness's own choice for the
# MPII-only points (it predates the world's ``annotator.EXTRA_SIGMAS``; kept so its figures hold).
EXTRA_SIGMAS = {"pelvis": .107, "thorax": .079, "upper_neck": .035, "head_top": .035}


def _library_points(joints: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Body points (P, 3) of the library by ``joints.BODY_POINTS`` name."""
    ix = {n: i for i, n in enumerate(names)}
    out = {p: joints[:, ix[p]] for p in COCO17.body_points}
    out["pelvis"] = joints[:, ix["pelvis"]]
    out["thorax"] = joints[:, ix["neck"]]
    # MPII's upper neck sits at the top of the neck, below the head centre.
    out["upper_neck"] = joints[:, ix["neck"]] + 0.6 * (joints[:, ix["head_centre"]]
                                                       - joints[:, ix["neck"]])
    out["head_top"] = joints[:, ix["head_top"]]
    out["head_centre"] = joints[:, ix["head_centre"]]
    return out


def _segment_hides(p2, z, a2, b2, za, zb, radius_px, margin_m):
    """(V, J) bool: points p2 (V, J, 2) at depth z (V, J) lie within the image capsule a2-b2
    (V, 2) of radius radius_px (V,) and behind it by more than margin_m."""
    d = b2 - a2
    den = np.maximum((d * d).sum(-1), 1e-9)
    t = np.clip(((p2 - a2[:, None]) * d[:, None]).sum(-1) / den[:, None], 0, 1)
    near = a2[:, None] + t[..., None] * d[:, None]
    inside = np.linalg.norm(p2 - near, axis=-1) <= radius_px[:, None]
    zs = za[:, None] + t * (zb - za)[:, None]
    return inside & (z > zs + margin_m)


def views(poses: str | Path = DEFAULT_POSES, n_views: int = 20, seed: int = 0,
          fmt: str = "coco", noise: bool = True, flag_error: float = 0.05):
    """Project every library pose through ``n_views`` sampled cameras.

    Returns:
        table: a ``PersonTable`` (one person per image, MCPC-21), keypoints in pixels;
        depth: (N, 21) float64 true camera depth of each MCPC-21 joint, metres (NaN unlabelled);
        activity: (N,) str, the pose's activity;
        px_per_m: (N,) float, focal length / pelvis depth (the true scale: 1 m at the pelvis in
            pixels).
    """
    rng = np.random.default_rng(seed)
    with np.load(poses) as d:
        joints = d["joints"].astype(np.float64)
        names = [str(n) for n in d["joint_names"]]
        activity = np.array([str(a).rstrip("0123456789") for a in d["activity"]])
    pts = _library_points(joints, names)
    layout = COCO17 if fmt == "coco" else MPII16
    names_out = list(layout.body_points) + ["head_centre"]
    world = np.stack([pts[n] for n in names_out], axis=1)  # (P, J+1, 3)
    p = len(world)
    pose = np.repeat(np.arange(p), n_views)
    world = world[pose]
    R, centre, focal = sample_cameras(pts["pelvis"][pose], rng)
    uv, z = project_views(world, R, centre, focal)
    j = layout.num_joints
    lo, hi = uv[:, :j].min(1), uv[:, :j].max(1)
    sig = np.array([COCO_OKS_SIGMAS.get(n, EXTRA_SIGMAS.get(n, 0.05)) for n in layout.body_points])
    kp = click_noise(uv[:, :j], sig, rng) if noise else uv[:, :j].copy()
    vis = np.full((len(kp), j), 2, np.uint8)
    if fmt == "coco":
        ix = {n: i for i, n in enumerate(names_out)}
        head = world[:, ix["head_centre"]]
        to_cam = centre[:, None] - world[:, :j]
        # Face points on the far side of the head are hidden by it.
        for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"):
            k = ix[n]
            outward = world[:, k] - head
            facing_cam = (outward * to_cam[:, k]).sum(-1) / (
                np.linalg.norm(outward, axis=-1) * np.linalg.norm(to_cam[:, k], axis=-1))
            vis[facing_cam < -0.1, k] = 1
        # Joints behind the person's own limbs, torso or head.
        segs = [("left_shoulder", "left_elbow", .05), ("left_elbow", "left_wrist", .04),
                ("right_shoulder", "right_elbow", .05), ("right_elbow", "right_wrist", .04),
                ("left_hip", "left_knee", .07), ("left_knee", "left_ankle", .05),
                ("right_hip", "right_knee", .07), ("right_knee", "right_ankle", .05),
                ("left_shoulder", "left_hip", .10), ("right_shoulder", "right_hip", .10),
                ("head_centre", "head_centre", .10)]
        hidden = np.zeros(vis.shape, bool)
        for a, b, r in segs:
            ia, ib = ix[a], ix[b]
            rpx = r * focal / (0.5 * (z[:, ia] + z[:, ib]))
            h = _segment_hides(uv[:, :j], z[:, :j], uv[:, ia], uv[:, ib], z[:, ia], z[:, ib],
                               rpx, 0.05)
            for own in {ia, ib} & set(range(j)):
                h[:, own] = False
            if a == "head_centre":
                h[:, [ix[n] for n in ("nose", "left_eye", "right_eye", "left_ear",
                                      "right_ear")]] = False
            hidden |= h
        vis[hidden] = 1
        flip = rng.random(vis.shape) < flag_error
        vis = np.where(flip, 3 - vis, vis).astype(np.uint8)
    kp21, vis21, _ = convert(kp, vis, layout, MCPC21)
    depth_src = z[:, :j]
    d21, _, _ = convert(depth_src[..., None], np.full(vis.shape, 2, np.uint8), layout, MCPC21)
    n = len(kp21)
    table = PersonTable(fmt, "mocap", np.arange(n), np.array([f"{i}.jpg" for i in range(n)],
                                                             object),
                        np.full(n, IMAGE_SIZE, np.int32), np.full(n, IMAGE_SIZE, np.int32),
                        np.concatenate([lo, hi - lo], axis=1).astype(np.float32),
                        kp21.astype(np.float32), vis21, np.arange(n))
    px_per_m = focal / d21[:, J21["pelvis"], 0]
    return table, d21[..., 0].astype(np.float64), activity[pose], px_per_m


def within_scores(person, ja, jb, label, depth, labelled, tolerance=0.05, confidence=None
                  ) -> dict:
    """Same-person precision and coverage of K labels (person rows, MCPC-21 joints); with
    ``confidence`` (K,), also precision per confidence bin (``audit.reliability``)."""
    n = len(depth)
    dz = depth[person, ja] - depth[person, jb]
    truth = np.where(dz < -tolerance, 1, np.where(dz > tolerance, -1, 0))
    right = label == truth
    per = np.bincount(person, minlength=n)
    big = labelled.sum(1) >= 10
    eight = labelled.sum(1) >= 8
    out = {} if confidence is None else {
        "reliability": reliability(np.asarray(confidence), right)}
    return out | {"labels": int(len(label)),
            "precision": float(right.mean()) if len(label) else None,
            "pairs_per_person_median": float(np.median(per)) if n else 0.0,
            "pairs_per_person_median_10plus": float(np.median(per[big])) if big.any() else 0.0,
            "pairs_per_person_mean": float(per.mean()) if n else 0.0,
            "people_8plus_without_label": int((eight & (per == 0)).sum()),
            "people": int(n)}


def _priors_holding_out(table: PersonTable, activity: np.ndarray, config, poses):
    """``apply_priors`` with the pose library; when the library is the ``poses`` file, the views
    of each activity are labelled by the library without that activity."""
    from mcpc_builder.priors import apply_priors
    from mcpc_builder.priors.pose_library import load_index

    lib = config.pose_library.path if config is not None else ""
    if not lib or Path(lib).resolve() != Path(poses).resolve():
        return apply_priors(table, config, evaluate_disabled=True)
    index = load_index(config.pose_library)
    results = []
    for act in np.unique(activity):
        rows = np.flatnonzero(activity == act)
        results.append((rows, apply_priors(table.take(rows), config, evaluate_disabled=True,
                                           library_index=index.subset(index.group != act))))
    return _joined(results, len(table))


def _joined(results, n: int):
    """One ``PriorResult`` from results over row subsets (persons renumbered back)."""
    from mcpc_builder.priors import Pairs, PriorResult

    def back(pairs, rows):
        return dataclasses.replace(pairs, person_a=rows[pairs.person_a],
                                   person_b=rows[pairs.person_b])

    raw = {}
    for rule in results[0][1].raw:
        raw[rule] = Pairs.concat([back(r.raw[rule], rows) for rows, r in results])
    merged = Pairs.concat([back(r.pairs, rows) for rows, r in results])
    scale = np.full(n, np.nan)
    grounded = np.zeros(n, bool)
    for rows, r in results:
        scale[rows] = r.scale
        grounded[rows] = r.grounded
    return PriorResult([merged], scale, grounded, sum(r.produced for _, r in results),
                       sum(r.dropped for _, r in results), raw)


def measure(poses=DEFAULT_POSES, n_views: int = 20, seed: int = 0, config=None,
            tolerance: float = 0.05) -> dict:
    out = {}
    for fmt in ("coco", "mpii"):
        table, depth, activity, _ = views(poses, n_views, seed, fmt)
        res = _priors_holding_out(table, activity, config, poses)
        labelled = table.visibility > 0
        rep = {}
        for rule, pr in res.raw.items():
            same = pr.person_a == pr.person_b
            rep[rule] = within_scores(pr.person_a[same], pr.joint_a[same].astype(int),
                                      pr.joint_b[same].astype(int), pr.label[same], depth,
                                      labelled, tolerance, pr.confidence[same])
        m = res.pairs
        same = m.person_a == m.person_b
        rep["MERGED"] = within_scores(m.person_a[same], m.joint_a[same].astype(int),
                                      m.joint_b[same].astype(int), m.label[same], depth,
                                      labelled, tolerance)
        by_act = {}
        for act in np.unique(activity):
            rows = np.flatnonzero(activity == act)
            keep = np.isin(m.person_a, rows) & same
            sub = within_scores(np.searchsorted(rows, m.person_a[keep]),
                                m.joint_a[keep].astype(int), m.joint_b[keep].astype(int),
                                m.label[keep], depth[rows], labelled[rows], tolerance)
            by_act[str(act)] = sub
        rep["by_activity"] = by_act
        out[fmt] = rep
    return out


def table_text(rep: dict) -> str:
    pct = lambda v: "    -" if v is None else f"{100 * v:5.1f}"  # noqa: E731
    lines = []
    for fmt, r in rep.items():
        lines.append(f"[{fmt}] {'rule':16s} {'labels':>7s} {'prec%':>6s} {'med':>5s} "
                     f"{'med10+':>6s} {'mean':>6s} {'8+none':>6s}")
        for k, d in r.items():
            if k == "by_activity":
                continue
            lines.append(f"       {k:16s} {d['labels']:7d} {pct(d['precision']):>6s} "
                         f"{d['pairs_per_person_median']:5.0f} "
                         f"{d['pairs_per_person_median_10plus']:6.0f} "
                         f"{d['pairs_per_person_mean']:6.1f} {d['people_8plus_without_label']:6d}")
        for k, d in r.items():
            rel = d.get("reliability")
            if k != "by_activity" and rel and any(rel["count"]):
                lines.append(f"       {k:16s} by confidence: " + "  ".join(
                    f"{lo:.2f}-{hi:.2f} {pct(p).strip()}% of {c}" for lo, hi, c, p in zip(
                        rel["bin_low"], rel["bin_high"], rel["count"], rel["precision"]) if c))
        for act, d in r["by_activity"].items():
            lines.append(f"         {act:14s} {d['labels']:7d} {pct(d['precision']):>6s} "
                         f"{d['pairs_per_person_median']:5.0f} "
                         f"{d['pairs_per_person_median_10plus']:6.0f} "
                         f"{d['pairs_per_person_mean']:6.1f} {d['people_8plus_without_label']:6d}")
    return "\n".join(lines)


@cli_entry("pipelines.bench.mocap_priors")
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.bench.mocap_priors",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--poses", default=str(DEFAULT_POSES))
    ap.add_argument("--views", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--config", help="prior config YAML (default: built-in defaults)")
    ap.add_argument("--pose-library", metavar="FILE",
                    help="also run the opt-in pose_library prior with this library (the --poses "
                         "file itself: each activity held out of the library it is labelled by)")
    args = ap.parse_args(argv)
    from mcpc_builder.priors.config import PriorConfig
    config = PriorConfig.from_yaml(args.config) if args.config else None
    if args.pose_library:
        config = (config or PriorConfig()).with_pose_library(args.pose_library)
    rep = measure(args.poses, args.views, args.seed, config=config, tolerance=args.tolerance)
    print(table_text(rep))
    if args.json:
        from mcpc_builder import atomic
        atomic.write_json(args.json, rep, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
