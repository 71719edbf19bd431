"""`make bench-build`: the builder at COCO train2017 scale against loading the JSON and against a
plain per-person Python implementation of the same rules.

    python -m pipelines.bench.bench_build --out out/bench-build [--scale 1.0]

1. Writes a COCO-format ``person_keypoints_train2017.json`` at train2017 scale (at --scale 1:
   118k images, ~57k of them with ~150k keypoint-labelled people, ~112k further person
   annotations without keypoints, polygon segmentations of realistic size; no image files). The
   people are synthetic-world people (``mcpc_builder.synth``) projected once into a pool and
   placed into images by random similarity transforms, with numpy.
2. Measures in this one run, each step in a fresh subprocess (peak memory = its max RSS):
   (a) loading the JSON alone: ``json.load`` and ``msgspec.json.decode`` (garbage collector
       paused, as the reader does);
   (b) the full build (``mcpc_builder.build.build``: read, priors, Parquet shards, manifest),
       with --workers 1 (one process; the priors of two shards at a time, the checksum and the
       Parquet writing run in threads; wall time, and CPU time of all its threads) and
       --workers 2 (processes);
   (c) the baseline: ``json.load`` then the per-person Python rules of
       ``pipelines.bench.reference_priors`` on a subset of the images, extrapolated linearly to
       all images (the rules work image by image, so their cost is linear in images). The
       baseline gives the same labels from the same persons but writes no files.
3. Prints a table and writes ``bench_build.json``. Targets: (b) <= 2 x (a); (b) >= 20 x faster
   than (c); peak memory of (b) <= 4 x the JSON file size.

With ``--pose-library FILE`` it also times (b') the workers=1 build with the opt-in pose-library
prior reading FILE (its index built inside the timed build), against (b) and (a).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mcpc_builder.errors import UsageError, check_number, cli_entry

TRAIN2017 = {"images": 118287, "images_with_people": 56599, "people_labelled": 149813,
             "people_unlabelled": 112652}
SEED = 2017


# ---------------------------------------------------------------------------- data generation
def person_pool(n_scenes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic people as COCO keypoints normalised to their bbox.

    Returns:
        kp: (P, 17, 2) float, (keypoint - bbox centre) / bbox height; vis: (P, 17) uint8.
    """
    from mcpc_builder.joints import BODY_POINTS, COCO17
    from mcpc_builder.synth.world import sample_scene

    rng = np.random.default_rng(seed)
    idx = [BODY_POINTS.index(p) for p in COCO17.body_points]
    kps, viss = [], []
    for _ in range(n_scenes):
        scene = sample_scene(rng)
        if not scene.people:
            continue
        uv, _, vis = scene.keypoints()
        uv, vis = uv[:, idx], vis[:, idx]
        for k, v in zip(uv, vis):
            ok = v > 0
            if ok.sum() < 5:
                continue
            lo, hi = k[ok].min(axis=0), k[ok].max(axis=0)
            h = max(hi[1] - lo[1], 1.0)
            kps.append((k - 0.5 * (lo + hi)) / h)
            viss.append(np.where(ok, v, 0))
    return np.array(kps), np.array(viss, np.uint8)


def write_coco_file(path: Path, scale: float, seed: int = SEED) -> dict:
    """Write the benchmark annotation file; returns its counts."""
    rng = np.random.default_rng(seed)
    pool_kp, pool_vis = person_pool(max(40, int(600 * min(scale, 1.0))), seed)
    n_img = max(10, int(TRAIN2017["images"] * scale))
    n_with = max(5, int(TRAIN2017["images_with_people"] * scale))
    n_lab = max(10, int(TRAIN2017["people_labelled"] * scale))
    n_unl = int(TRAIN2017["people_unlabelled"] * scale)
    image_ids = np.sort(rng.choice(581929, n_img, replace=False) + 1)
    wh = np.array([(640, 480), (480, 640), (640, 427), (427, 640), (500, 375)])[
        rng.integers(0, 5, n_img)]
    with_people = np.sort(rng.choice(n_img, n_with, replace=False))
    # Labelled people: every image with people gets one, the rest spread at random.
    owner = np.sort(np.concatenate([with_people, rng.choice(with_people, n_lab - n_with)]))
    pick = rng.integers(0, len(pool_kp), n_lab)
    w, h = wh[owner, 0].astype(float), wh[owner, 1].astype(float)
    height = h * rng.uniform(0.15, 0.9, n_lab)
    cx = rng.uniform(0.1, 0.9, n_lab) * w
    cy = rng.uniform(0.3, 0.7, n_lab) * h
    kp = pool_kp[pick] * height[:, None, None] + np.stack([cx, cy], 1)[:, None, :]
    vis = pool_vis[pick].copy()
    inside = (kp[..., 0] >= 0) & (kp[..., 0] < w[:, None]) & (kp[..., 1] >= 0) \
        & (kp[..., 1] < h[:, None])
    vis[~inside] = 0
    kp = np.where(vis[..., None] > 0, np.round(kp), 0).astype(int)
    unl_owner = rng.choice(n_img, n_unl)
    images = [{"license": 1, "file_name": "%012d.jpg" % i, "coco_url": "", "height": int(b),
               "width": int(a), "date_captured": "2013-11-14 17:02:52", "flickr_url": "",
               "id": int(i)} for i, (a, b) in zip(image_ids, wh)]
    anns = []
    ann_id = 1
    # A 40-vertex polygon per annotation gives the file COCO's bytes per annotation.
    ang = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    for j in range(n_lab):
        v = vis[j] > 0
        if v.any():
            lo, hi = kp[j][v].min(axis=0), kp[j][v].max(axis=0)
        else:
            lo = hi = np.array([cx[j], cy[j]])
        bw, bh = max(float(hi[0] - lo[0]), 2.0), max(float(hi[1] - lo[1]), 2.0)
        poly = np.round(np.stack([lo[0] + bw * (0.5 + 0.5 * np.cos(ang)),
                                  lo[1] + bh * (0.5 + 0.5 * np.sin(ang))], 1).ravel(), 2)
        trip = np.concatenate([kp[j], vis[j][:, None]], axis=1).ravel().tolist()
        anns.append({"segmentation": [poly.tolist()], "num_keypoints": int(v.sum()),
                     "area": round(0.7 * bw * bh, 3), "iscrowd": 0, "keypoints": trip,
                     "image_id": int(image_ids[owner[j]]),
                     "bbox": [float(lo[0]), float(lo[1]), bw, bh], "category_id": 1,
                     "id": ann_id})
        ann_id += 1
    for j in range(n_unl):
        i = unl_owner[j]
        x0, y0 = float(rng.uniform(0, wh[i, 0] - 20)), float(rng.uniform(0, wh[i, 1] - 20))
        poly = np.round(np.stack([x0 + 8 * (1 + np.cos(ang)), y0 + 8 * (1 + np.sin(ang))],
                                 1).ravel(), 2)
        anns.append({"segmentation": [poly.tolist()], "num_keypoints": 0, "area": 150.0,
                     "iscrowd": 0, "keypoints": [0] * 51, "image_id": int(image_ids[i]),
                     "bbox": [x0, y0, 16.0, 16.0], "category_id": 1, "id": ann_id})
        ann_id += 1
    from mcpc_builder.synth.coco_format import coco_category

    doc = {"info": {"description": "bench-build synthetic train2017-scale file"},
           "licenses": [{"url": "", "id": 1, "name": "synthetic"}], "images": images,
           "annotations": anns, "categories": [coco_category()]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(doc, fh, separators=(",", ":"))
    os.replace(tmp, path)
    return {"images": n_img, "images_with_people": n_with, "people_labelled": n_lab,
            "people_unlabelled": n_unl}


# ------------------------------------------------------------------------------- measurements
def _child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints a JSON dict as its last line (with its own
    peak resident memory, ``peak_rss_bytes``, see ``_RSS``)."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Peak RSS of the step's own process: VmHWM resets at exec, whereas Linux keeps getrusage's
# ru_maxrss across fork+exec, so a child of a parent that just generated the 238 MB file would
# report the parent's peak (seen: 6x instead of 2.3x on a first run). getrusage elsewhere.
_RSS = ("import os,resource;"
        "rss=(int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])*1024 "
        "if os.path.exists('/proc/self/status') "
        "else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss*1024)")


def measure_json(path: Path) -> dict:
    code = f"""
import json,time,msgspec,gc
{_RSS.split(';')[0]}
gc.disable()  # as the reader does while decoding
t=time.perf_counter(); d=json.load(open({str(path)!r})); a=time.perf_counter()-t
del d
t=time.perf_counter(); d=msgspec.json.decode(open({str(path)!r},'rb').read())
b=time.perf_counter()-t
gc.enable()
del d
{_RSS.split(';')[1]}
print(json.dumps({{'json_load_s':a,'msgspec_s':b,'peak_rss_bytes':rss}}))
"""
    return _child(code)


def measure_build(path: Path, out: Path, workers: int, pose_library: str | None = None) -> dict:
    root = path.parent.parent
    code = f"""
import json,time
{_RSS.split(';')[0]}
from mcpc_builder.build import build
from mcpc_builder.priors.config import PriorConfig
lib={pose_library!r}
config=PriorConfig().with_pose_library(lib) if lib else PriorConfig()
t=time.perf_counter();c=time.process_time()
build(['coco'],{str(out)!r},roots={{'coco':{str(root)!r}}},workers={workers},overwrite=True,
      progress=False,check_images=False,config=config)
s=time.perf_counter()-t;cpu=time.process_time()-c  # CPU of this process's threads
{_RSS.split(';')[1]}
m=json.load(open({str(out / 'manifest.json')!r}))
print(json.dumps({{'build_s':s,'cpu_s':cpu,'peak_rss_bytes':rss,'persons':m['totals']['persons_kept'],
                  'phases_s':m['timings_s'],
                  'pairs':m['totals']['pairs'],'shards':len(m['shards'])}}))
"""
    return _child(code)


def measure_baseline(path: Path, fraction: float) -> dict:
    root = path.parent.parent
    code = f"""
import json,time
import numpy as np
from mcpc_builder.readers.coco import read_coco
from pipelines.bench.reference_priors import reference_priors
t=time.perf_counter(); d=json.load(open({str(path)!r})); load=time.perf_counter()-t
del d
# The per-person Python rules on the first images (persons as the reader gives them).
table=read_coco({str(path)!r},'train2017',root={str(root)!r},check_images=False)
n_img=table.num_images
k=max(1,int(n_img*{fraction}))
rows=np.flatnonzero(table.image_index<k)
sub=table.take(rows)
from mcpc_builder.priors import apply_priors
t=time.perf_counter(); ref=reference_priors(sub); rules=time.perf_counter()-t
pairs=len(ref['merged'])
apply_priors(sub, keep_raw=False)  # warm-up (first-touch of memory)
t=time.perf_counter(); vec=apply_priors(sub, keep_raw=False); vec_s=time.perf_counter()-t
assert len(vec.pairs)==pairs
print(json.dumps({{'json_load_s':load,'rules_subset_s':rules,'subset_images':k,'images':n_img,
                  'subset_persons':len(rows),'persons':len(table),'subset_pairs':pairs,
                  'vectorised_subset_s':vec_s,'rules_speedup':rules/vec_s,
                  'rules_extrapolated_s':rules*n_img/k}}))
"""
    return _child(code)


@cli_entry("pipelines.bench.bench_build")
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out/bench-build")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of COCO train2017 size (1.0 = full scale)")
    parser.add_argument("--baseline-fraction", type=float, default=0.005,
                        help="share of the images the per-person baseline runs on")
    parser.add_argument("--pose-library", metavar="FILE",
                        help="also time the build with the opt-in pose-library prior")
    args = parser.parse_args(argv)
    if args.pose_library and not Path(args.pose_library).is_file():
        raise UsageError(f"--pose-library: {args.pose_library}: no such file")
    for option, value in (("--scale", args.scale), ("--baseline-fraction", args.baseline_fraction)):
        if not (np.isfinite(value) and value > 0):
            raise UsageError(f"{option}: expected a finite number > 0, got {value}")
    check_number("--baseline-fraction", args.baseline_fraction, high=1)
    out = Path(args.out)
    ann = out / "coco" / "annotations" / "person_keypoints_train2017.json"
    spec_file = out / "coco" / "spec.json"
    spec = {"scale": args.scale, "seed": SEED}
    t = time.perf_counter()
    if not (ann.is_file() and spec_file.is_file() and json.loads(spec_file.read_text())
            .get("spec") == spec):
        counts = write_coco_file(ann, args.scale)
        spec_file.write_text(json.dumps({"spec": spec, "counts": counts}))
    counts = json.loads(spec_file.read_text())["counts"]
    gen_s = time.perf_counter() - t
    size = ann.stat().st_size
    print(f"annotation file {ann}: {size / 1e6:.1f} MB, {counts} (ready in {gen_s:.1f} s); "
          "SYNTHETIC: synthetic-world people written by this benchmark in COCO format, not COCO")

    a = measure_json(ann)
    b1 = measure_build(ann, out / "mcpc-w1", workers=1)
    b2 = measure_build(ann, out / "mcpc-w2", workers=2)
    c = measure_baseline(ann, args.baseline_fraction)
    lib = measure_build(ann, out / "mcpc-pose-library", workers=1,
                        pose_library=str(Path(args.pose_library).resolve())) \
        if args.pose_library else None
    c_total = c["json_load_s"] + c["rules_extrapolated_s"]
    fig = {
        "file_bytes": size, "counts": counts,
        "data": "synthetic: synthetic-world people at COCO train2017 scale, written by the benchmark",
        "a_json_load_s": a["json_load_s"], "a_msgspec_decode_s": a["msgspec_s"],
        "b_build_workers1_s": b1["build_s"], "b_build_workers2_s": b2["build_s"],
        "b_phases_workers1_s": b1["phases_s"],
        "b_cpu_workers1_s": b1["cpu_s"],
        "c_baseline_s": c_total, "c_baseline": c,
        "ratio_b_over_a_json": b1["build_s"] / a["json_load_s"],
        "ratio_b_over_a_msgspec": b1["build_s"] / a["msgspec_s"],
        "speedup_b_vs_c": c_total / b1["build_s"],
        "speedup_b_cpu_vs_c": c_total / b1["cpu_s"],
        "speedup_rules_only": c["rules_speedup"],
        "speedup_workers2_vs_1": b1["build_s"] / b2["build_s"],
        "peak_rss_json_load_bytes": a["peak_rss_bytes"],
        "peak_rss_build_w1_bytes": b1["peak_rss_bytes"],
        "peak_rss_build_w2_parent_bytes": b2["peak_rss_bytes"],
        "peak_rss_over_file_size": b1["peak_rss_bytes"] / size,
        "persons": b1["persons"], "pairs": b1["pairs"], "shards": b1["shards"],
        "cpu_count": os.cpu_count(),
        "pose_library": None if lib is None else {
            "file": args.pose_library, "build_workers1_s": lib["build_s"],
            "peak_rss_bytes": lib["peak_rss_bytes"], "pairs": lib["pairs"],
            "ratio_over_b": lib["build_s"] / b1["build_s"],
            "ratio_over_a_msgspec": lib["build_s"] / a["msgspec_s"]},
        # issue 10: the build within 2x the *typed* decode (msgspec), not json.load
        "targets": {"b_le_2x_typed_decode": b1["build_s"] <= 2 * a["msgspec_s"],
                    "b_le_2x_json_load": b1["build_s"] <= 2 * a["json_load_s"],
                    "b_ge_20x_faster_than_c": c_total >= 20 * b1["build_s"],
                    "rules_ge_20x_faster": c["rules_speedup"] >= 20,
                    "peak_le_4x_file": b1["peak_rss_bytes"] <= 4 * size},
    }
    rows = [
        ("(a) json.load", a["json_load_s"], ""),
        ("(a) msgspec.json.decode", a["msgspec_s"], ""),
        ("(b) build, workers=1", b1["build_s"],
         f"{fig['ratio_b_over_a_json']:.2f} x json.load; CPU {b1['cpu_s']:.2f} s (one process; "
         "priors of two shards, checksum and Parquet writing in threads)"),
        ("(b) build, workers=2", b2["build_s"],
         f"{fig['speedup_workers2_vs_1']:.2f} x faster than workers=1"),
        ("(c) per-person Python", c_total,
         f"{fig['speedup_b_vs_c']:.1f} x slower than (b); rules on "
         f"{c['subset_images']}/{c['images']} images, extrapolated"),
        ("(c) rules only, Python", c["rules_subset_s"],
         f"vectorised priors {c['vectorised_subset_s']:.3f} s on the same "
         f"{c['subset_persons']} persons: {c['rules_speedup']:.1f} x faster"),
    ]
    if lib is not None:
        rows.append(("(b') build + pose library", lib["build_s"],
                     f"{lib['build_s'] / b1['build_s']:.2f} x (b); "
                     f"{lib['build_s'] / a['msgspec_s']:.2f} x msgspec; {lib['pairs']} pairs"))
    print(f"\n{'step':28s} {'seconds':>9s}  note")
    for name, s, note in rows:
        print(f"{name:28s} {s:9.2f}  {note}")
    print(f"peak RSS: build {b1['peak_rss_bytes'] / 1e6:.0f} MB = "
          f"{fig['peak_rss_over_file_size']:.2f} x file ({size / 1e6:.0f} MB); json.load "
          f"{a['peak_rss_bytes'] / 1e6:.0f} MB")
    print(f"build phases (workers=1): {b1['phases_s']}")
    print("(b) and (c) apply the same rules to the same persons and give the same labels; (b) "
          "also writes the Parquet shards and manifest, (c) writes nothing.")
    print(f"(b) vs (c): {fig['speedup_b_vs_c']:.1f} x (wall, workers=1); "
          f"{c_total / b1['cpu_s']:.1f} x counting (b)'s CPU time of all its threads "
          f"(machine: {os.cpu_count()} cores, shared)")
    print(f"build: {b1['persons']} persons, {b1['pairs']} pairs, {b1['shards']} shards; "
          f"targets {fig['targets']}")
    (out / "bench_build.json").write_text(json.dumps(fig, indent=2) + "\n")
    print(f"wrote {out / 'bench_build.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
