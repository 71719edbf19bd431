"""`mcpc-build`: official COCO / MPII annotations -> perspective priors -> MCPC Parquet shards.

    build(sources, out)   read every split of every source, cut the persons into shards of whole
                          images, run the priors on each shard, write shards, write the manifest

Crash safety (clean restart): the build reads its inputs (writing nothing), then writes
``.build-in-progress.json`` holding its identity (a hash of the inputs' sha256, the prior config,
shard size, schema and builder versions), then shards under temporary names renamed into place, then ``manifest.json`` last,
then removes the marker. A killed build leaves no manifest, so nothing looks complete; running
the same build again finds its own marker, removes the partial files and builds from scratch
(outputs are deterministic, so the result equals an uninterrupted build). A folder holding a
different build, or other files named like a build's, is refused unless ``overwrite``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import __version__, writer
from .errors import DataError
from .persons import PersonTable
from .priors import apply_priors
from .priors.config import RULE_NAMES, PriorConfig
from .schema import MANIFEST_NAME, SCHEMA_VERSION

DEFAULT_SHARD_SIZE = 20000
SOURCE_ORDER = ("coco", "mpii")


@dataclass(frozen=True)
class InputFile:
    """One annotation file a build reads."""

    source: str
    split: str
    path: Path
    image_dir: Path
    root: Path
    bytes: int
    sha256: str


@dataclass
class ShardJob:
    """Persons of one shard and their global numbering."""

    index: int
    table: PersonTable
    person_id: np.ndarray  # (N,) int64
    image_id: np.ndarray   # (N,) int64


# ------------------------------------------------------------------------------------ the build
def build(sources, out, roots: dict | None = None, workers: int = 1,
          config: PriorConfig | None = None, overwrite: bool = False, progress: bool = True,
          splits: dict | None = None, shard_size: int = DEFAULT_SHARD_SIZE,
          check_images: bool = True) -> Path:
    """Build an MCPC directory.

    Arguments:
        sources: source names, e.g. ``["coco", "mpii"]``.
        out: output folder (created).
        roots: {source: dataset root}; a source without one uses the embedded default.
        workers: processes for reading sources and building shards (output is identical).
            With 1, one process: the inputs' checksum and the Parquet writing of the previous
            shard run in threads beside the reading and the priors.
        config: prior thresholds (default ``PriorConfig()``).
        overwrite: replace a different build already in ``out``.
        progress: tqdm bars and the summary table on stdout.
        splits: {source: [split, ...]}; default every split ``readers.discover`` finds.
        shard_size: persons per shard (shards hold whole images, so a little more or less).
        check_images: COCO: skip persons whose image file is missing (False reads annotations
            alone, for annotation-only copies).
    Returns the output folder.
    """
    started = time.perf_counter()
    config = config or PriorConfig()
    out = Path(out)
    found = discover_inputs(sources, roots or {}, splits or {}, checksum=False)
    read_start = time.perf_counter()
    with ExitStack() as stack:
        # Worker processes start now, while this process reads (their start-up overlaps it).
        pool = stack.enter_context(started_pool(workers)) if workers > 1 else None
        # The inputs' sha256 (the build identity) is computed in a thread while they are read
        # (hashlib releases the GIL); nothing is written to ``out`` before the identity is known.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcpc-sha256") as hasher:
            digests = [hasher.submit(writer.file_sha256, i.path) for i in found]
            tables = read_inputs(found, workers, progress, check_images, pool)       # read
            inputs = [replace(i, sha256=d.result()) for i, d in zip(found, digests)]
        jobs = plan_shards(tables, shard_size)
        identity = build_identity(inputs, config, shard_size)
        prepare_out(out, identity, overwrite)
        writer.write_json(out / writer.IN_PROGRESS, {"identity": identity, "pid": os.getpid()})
        shards_start = time.perf_counter()
        results = run_jobs(out, jobs, config, workers, progress, pool)        # priors, write
    done = time.perf_counter()
    manifest = make_manifest(inputs, tables, results, config, identity, shard_size,
                             done - started)
    manifest["timings_s"] = {"discover": round(read_start - started, 3),
                             "read_and_checksum": round(shards_start - read_start, 3),
                             "priors_and_write": round(done - shards_start, 3)}
    writer.write_json(out / MANIFEST_NAME, manifest)                                  # last
    (out / writer.IN_PROGRESS).unlink()
    if progress:
        print(summary_table(manifest))
    return out


# ------------------------------------------------------------------------------------ the steps
def resolve_root(source: str, roots: dict) -> Path:
    root = roots.get(source)
    if root is None:
        from .default_data import default_root

        return default_root(source).resolve()
    return Path(root).resolve()


def discover_inputs(sources, roots: dict, splits: dict, checksum: bool = True
                    ) -> list[InputFile]:
    """Every annotation file to read, in a fixed order (source order, then discover order).

    ``checksum=False`` leaves ``sha256`` empty (the caller computes it)."""
    from .readers import SOURCES, discover

    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise DataError(", ".join(unknown), f"unknown source; known: {', '.join(SOURCES)}")
    ordered = [s for s in SOURCE_ORDER if s in sources]
    inputs = []
    for source in ordered:
        root = resolve_root(source, roots)
        for split, ann_file, image_dir in discover(source, root, splits.get(source)):
            ann_file = Path(ann_file)
            if not ann_file.is_file():
                raise DataError(ann_file, "annotation file not found")
            inputs.append(InputFile(source, split, ann_file.resolve(), Path(image_dir), root,
                                    ann_file.stat().st_size,
                                    writer.file_sha256(ann_file) if checksum else ""))
    return inputs


def build_identity(inputs: list[InputFile], config: PriorConfig, shard_size: int) -> str:
    """A hash of everything that decides the build's rows."""
    blob = json.dumps({
        "schema_version": SCHEMA_VERSION, "builder_version": __version__,
        "inputs": [[i.source, i.split, i.sha256] for i in inputs],
        "config": config.to_dict(), "shard_size": shard_size,
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def prepare_out(out: Path, identity: str, overwrite: bool) -> None:
    """Make ``out`` ready: refuse a different build unless ``overwrite``, clear our own files."""
    out.mkdir(parents=True, exist_ok=True)
    existing = writer.build_files(out)
    if existing and not overwrite:
        previous = None
        for name in (MANIFEST_NAME, writer.IN_PROGRESS):
            path = out / name
            if path.is_file():
                try:
                    previous = json.loads(path.read_text()).get("identity")
                except (ValueError, OSError):
                    previous = None
                break
        if previous != identity:
            what = "a different build" if previous else "files of an unknown build"
            raise DataError(out, f"output folder holds {what} (other inputs or config); "
                                 "use --overwrite to replace it or choose another --out")
    writer.clear_build(out)


def _read_one(item: tuple[InputFile, bool]) -> PersonTable:
    from .readers import read_source
    from .readers.coco import read_coco

    inp, check_images = item
    if inp.source == "coco":
        return read_coco(inp.path, inp.split, inp.image_dir, root=inp.root,
                         check_images=check_images)
    return read_source(inp.source, inp.split, inp.path, inp.image_dir, root=inp.root)


def read_inputs(inputs: list[InputFile], workers: int, progress: bool,
                check_images: bool, pool: ProcessPoolExecutor | None = None
                ) -> list[PersonTable]:
    """Read every input (in parallel processes when workers > 1, in ``pool`` if given), in
    input order."""
    items = [(i, check_images) for i in inputs]
    bar = _bar(len(items), "read", progress)
    if workers > 1 and len(items) > 1:
        with ExitStack() as stack:
            if pool is None:
                pool = stack.enter_context(ProcessPoolExecutor(
                    max_workers=min(workers, len(items)), mp_context=_pool_context()))
            tables = []
            for table in pool.map(_read_one, items):
                tables.append(table)
                bar.update(1)
    else:
        tables = []
        for item in items:
            tables.append(_read_one(item))
            bar.update(1)
    bar.close()
    return tables


def shard_bounds(image_index: np.ndarray, shard_size: int) -> list[tuple[int, int]]:
    """Row ranges [start, end) of about ``shard_size`` persons each, cut between images.

    Arguments:
        image_index: (N,) int64, non-decreasing.
    """
    n = len(image_index)
    if n == 0:
        return []
    cuts = np.flatnonzero(np.diff(image_index)) + 1  # first row of each new image
    bounds, start = [], 0
    while start < n:
        k = np.searchsorted(cuts, start + max(shard_size, 1), side="left")
        end = int(cuts[k]) if k < len(cuts) else n
        bounds.append((start, end))
        start = end
    return bounds


def shard_table(table: PersonTable, start: int, end: int) -> PersonTable:
    """Persons ``start:end`` of ``table`` with only the image range they use (views, no copy of
    the source's per-image arrays: a shard encodes and ships its own image paths only)."""
    img = table.image_index[start:end]
    lo, hi = (int(img[0]), int(img[-1]) + 1) if len(img) else (0, 0)
    return PersonTable(table.source, table.split, img - lo, table.image_paths[lo:hi],
                       table.image_width[lo:hi], table.image_height[lo:hi],
                       table.bbox[start:end], table.keypoints[start:end],
                       table.visibility[start:end], table.source_ann_id[start:end],
                       Counter(table.skipped), table.persons_read)


def plan_shards(tables: list[PersonTable], shard_size: int) -> list[ShardJob]:
    """Cut every table into shards and number persons and images globally, in input order."""
    jobs, person_base, image_base = [], 0, 0
    for table in tables:
        for start, end in shard_bounds(table.image_index, shard_size):
            rows = np.arange(start, end)
            jobs.append(ShardJob(len(jobs), shard_table(table, start, end), person_base + rows,
                                 image_base + table.image_index[rows]))
        person_base += len(table)
        image_base += table.num_images
    return jobs


@dataclass
class PreparedShard:
    """A shard's rows as Arrow tables, ready to be written, and its manifest counts."""

    out: Path
    index: int
    persons: object  # pa.Table
    pairs: object    # pa.Table
    entry: dict


def prepare_shard(item: tuple[Path, ShardJob, PriorConfig]) -> PreparedShard:
    """Priors of one shard, its counts, and its rows as Arrow tables."""
    out, job, config = item
    result = apply_priors(job.table, config, keep_raw=False)
    parts = result.parts
    kept = [sum(int(np.count_nonzero(p.rule == r)) for p in parts) for r in range(len(RULE_NAMES))]
    kept_same = [sum(int(np.count_nonzero((p.rule == r) & (p.person_a == p.person_b)))
                     for p in parts) for r in range(len(RULE_NAMES))]
    balance = [sum(int(np.count_nonzero(p.label == v)) for p in parts) for v in (1, 0, -1)]
    labelled = _count_labelled(len(job.table), [p.person_a for p in parts] +
                               [p.person_b for p in parts])
    persons = writer.persons_arrow(job.table, job.person_id, job.image_id, result.scale,
                                   result.grounded)
    pairs = writer.pairs_arrow(parts, job.person_id, in_place=True)
    entry = {
        "source": job.table.source, "split": job.table.split,
        "produced": result.produced.tolist(), "dropped": result.dropped.tolist(),
        "conflicts": result.conflicts.tolist(), "kept": kept, "kept_same": kept_same,
        "balance": balance,
        "persons_labelled": labelled,
        "grounded": int(result.grounded.sum()),
    }
    return PreparedShard(out, job.index, persons, pairs, entry)


def write_prepared(shard: PreparedShard) -> dict:
    """Write a prepared shard's files; returns its manifest entry and counts."""
    entry = writer.write_shard(shard.out, shard.index, shard.persons, shard.pairs)
    entry.update(shard.entry)
    return entry


def build_shard(item: tuple[Path, ShardJob, PriorConfig]) -> dict:
    """Priors and files of one shard; returns its manifest entry and counts."""
    return write_prepared(prepare_shard(item))


def _count_labelled(n: int, person_rows: list[np.ndarray]) -> int:
    """Persons (of n rows) that appear in at least one pair (``person_rows``: (K,) int64 each)."""
    seen = np.zeros(n, bool)
    for rows in person_rows:
        seen[rows] = True
    return int(seen.sum())


def run_jobs(out: Path, jobs: list[ShardJob], config: PriorConfig, workers: int,
             progress: bool, pool: ProcessPoolExecutor | None = None) -> list[dict]:
    """Build every shard (in worker processes when workers > 1, in ``pool`` if given)."""
    items = [(out, job, config) for job in jobs]
    bar = _bar(len(items), "shards", progress)
    results = []
    if workers > 1 and len(items) > 1:
        with ExitStack() as stack:
            if pool is None:
                pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers,
                                                               mp_context=_pool_context()))
            for entry in pool.map(build_shard, items):
                results.append(entry)
                bar.update(1)
    else:
        # One process: shard k is encoded, compressed and written (Arrow / Parquet C++, GIL
        # released) in a thread while the priors of shard k + 1 run; two shards at most are in
        # memory. Files and manifest are the same as written one after the other.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcpc-write") as pool:
            pending = None
            for item in items:
                shard = prepare_shard(item)
                if pending is not None:
                    results.append(pending.result())
                    bar.update(1)
                pending = pool.submit(write_prepared, shard)
                del shard
            if pending is not None:
                results.append(pending.result())
                bar.update(1)
    bar.close()
    return results


def make_manifest(inputs: list[InputFile], tables: list[PersonTable], results: list[dict],
                  config: PriorConfig, identity: str, shard_size: int, wall: float) -> dict:
    sources: dict = {}
    for inp, table in zip(inputs, tables):
        src = sources.setdefault(inp.source, {"root": str(inp.root), "splits": {}})
        src["splits"][inp.split] = {
            "file": {"path": str(inp.path.relative_to(inp.root)) if inp.path.is_relative_to(
                inp.root) else str(inp.path), "bytes": inp.bytes, "sha256": inp.sha256},
            "persons_read": int(table.persons_read),
            "persons_kept": len(table),
            "persons_skipped": {k: int(v) for k, v in sorted(table.skipped.items())},
            "images": int(table.num_images),
        }
    r = len(RULE_NAMES)
    produced, dropped, kept, conflicts, same = (np.zeros(r, np.int64) for _ in range(5))
    balance = np.zeros(3, np.int64)
    for e in results:
        produced += e["produced"]
        dropped += e["dropped"]
        kept += e["kept"]
        conflicts += e["conflicts"]
        same += e["kept_same"]
        balance += e["balance"]
    contradictions = dropped - conflicts
    duplicates = produced - dropped - kept  # merged into an identical label of another row
    persons = sum(len(t) for t in tables)
    pairs = int(sum(e["pairs"]["rows"] for e in results))
    labelled = sum(e["persons_labelled"] for e in results)
    return {
        "format": "mcpc", "schema_version": SCHEMA_VERSION, "builder_version": __version__,
        "identity": identity,
        "prior_config": config.to_dict(),
        "priors_enabled": list(config.enabled),
        "priors_off_by_default": {
            "foreshortening.emit_equal": "equal (label 0) limb labels reach ~60% precision "
                                         "with a 0.05 m tolerance on the synthetic audit"},
        "shard_size": shard_size,
        "sources": sources,
        "shards": [{k: e[k] for k in ("index", "source", "split", "persons", "pairs")}
                   for e in results],
        "totals": {"persons_read": int(sum(t.persons_read for t in tables)),
                   "persons_kept": persons, "images": int(sum(t.num_images for t in tables)),
                   "pairs": pairs, "persons_labelled": labelled,
                   "grounded": int(sum(e["grounded"] for e in results))},
        "labels": {
            # produced = kept + merged_duplicates + dropped_contradictions
            #            + dropped_person_pair_conflicts, per prior and in total.
            "per_prior": {name: {"enabled": name in config.enabled,
                                 "produced": int(produced[i]),
                                 "merged_duplicates": int(duplicates[i]),
                                 "dropped_contradictions": int(contradictions[i]),
                                 "dropped_person_pair_conflicts": int(conflicts[i]),
                                 "kept": int(kept[i]),
                                 "kept_same_person": int(same[i]),
                                 "kept_cross_person": int(kept[i] - same[i])}
                          for i, name in enumerate(RULE_NAMES)},
            "produced": int(produced.sum()), "kept": int(kept.sum()),
            "kept_same_person": int(same.sum()), "kept_cross_person": int((kept - same).sum()),
            "merged_duplicates": int(duplicates.sum()),
            "contradictions_dropped": int(contradictions.sum()),
            "person_pair_conflicts_dropped": int(conflicts.sum()),
            "balance": {"+1": int(balance[0]), "0": int(balance[1]), "-1": int(balance[2])},
        },
        "wall_time_s": round(wall, 3),
    }


def summary_table(m: dict) -> str:
    lines = ["", f"MCPC build  ({m['totals']['persons_kept']} persons, {m['totals']['pairs']} "
                 f"pairs, {len(m['shards'])} shards, {m['wall_time_s']:.1f} s)",
             f"{'source/split':24s} {'read':>8s} {'kept':>8s}  skipped by reason"]
    for source, s in m["sources"].items():
        for split, d in s["splits"].items():
            skipped = ", ".join(f"{k}={v}" for k, v in d["persons_skipped"].items()) or "-"
            lines.append(f"{source + '/' + split:24s} {d['persons_read']:8d} "
                         f"{d['persons_kept']:8d}  {skipped}")
    lines.append(f"{'prior':16s} {'on':>3s} {'produced':>10s} {'merged dup':>10s} "
                 f"{'contradict':>10s} {'pp-confl':>9s} {'kept':>10s} {'same-pers':>10s} "
                 f"{'cross-pers':>10s}")
    lab = m["labels"]
    rows = list(lab["per_prior"].items()) + [("total", {
        "enabled": True, "produced": lab["produced"], "merged_duplicates": lab["merged_duplicates"],
        "dropped_contradictions": lab["contradictions_dropped"],
        "dropped_person_pair_conflicts": lab["person_pair_conflicts_dropped"],
        "kept": lab["kept"], "kept_same_person": lab["kept_same_person"],
        "kept_cross_person": lab["kept_cross_person"]})]
    for name, d in rows:
        lines.append(f"{name:16s} {'yes' if d['enabled'] else 'no':>3s} {d['produced']:10d} "
                     f"{d['merged_duplicates']:10d} {d['dropped_contradictions']:10d} "
                     f"{d['dropped_person_pair_conflicts']:9d} {d['kept']:10d} "
                     f"{d['kept_same_person']:10d} {d['kept_cross_person']:10d}")
    lines.append("(produced = merged as duplicates + dropped as contradictions + dropped by "
                 "person-pair conflicts + kept)")
    b = m["labels"]["balance"]
    kept = max(m["totals"]["persons_kept"], 1)
    lines.append(f"labels +1/0/-1: {b['+1']}/{b['0']}/{b['-1']}   pairs per person: "
                 f"{m['totals']['pairs'] / kept:.1f}   persons labelled: "
                 f"{100.0 * m['totals']['persons_labelled'] / kept:.1f}%")
    return "\n".join(lines)


@contextmanager
def started_pool(workers: int):
    """A process pool whose ``workers`` processes are started at once (not on first use), so
    their start-up (a fork server importing the builder, then the forks) runs beside the
    caller's next step."""
    with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
        for _ in range(workers):
            pool.submit(os.getpid)
        yield pool


def _pool_context():
    """Worker processes from a fork server: a plain fork after pyarrow / numpy threads have run
    in this process can deadlock the child; the server is a fresh process that forks cleanly."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["mcpc_builder.build", "mcpc_builder.readers"])
    return ctx


def _bar(total: int, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, unit="file" if desc == "read"
                else "shard", leave=False)


# ------------------------------------------------------------------------------------------ CLI
def add_arguments(parser) -> None:
    parser.add_argument("--sources", nargs="+", default=["coco", "mpii"],
                        help="sources to read (coco, mpii)")
    parser.add_argument("--coco-root", help="COCO root (annotations/person_keypoints_*.json); "
                                            "default: the embedded synthetic default")
    parser.add_argument("--mpii-root", help="MPII root (mpii_human_pose_v1_u12_1.mat or "
                                            "annot/*.json); default: the embedded default")
    parser.add_argument("--splits", nargs="+", help="splits to read (default: all found)")
    parser.add_argument("--out", default="out/mcpc", help="output build folder")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    parser.add_argument("--config", help="prior config YAML (default: built-in defaults, as in "
                                         "pipelines/configs/priors_default.yaml)")
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE,
                        help="persons per shard (whole images)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a different build already in --out")
    parser.add_argument("--no-image-check", action="store_true",
                        help="COCO: do not require image files (annotation-only copies)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summary")


def run(args) -> int:
    roots = {"coco": args.coco_root, "mpii": args.mpii_root}
    roots = {k: v for k, v in roots.items() if v}
    config = PriorConfig.from_yaml(args.config) if args.config else PriorConfig()
    splits = {s: args.splits for s in args.sources} if args.splits else None
    out = build(args.sources, args.out, roots=roots, workers=args.workers, config=config,
                overwrite=args.overwrite, progress=not args.quiet, splits=splits,
                shard_size=args.shard_size, check_images=not args.no_image_check)
    print(f"wrote {out}")
    return 0

