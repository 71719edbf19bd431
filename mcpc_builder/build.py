"""`mcpc-build`: official COCO / MPII annotations -> perspective priors -> MCPC Parquet shards.

    build(sources, out)   read every split of every source, cut the persons into shards of whole
                          images, run the priors on each shard, write shards, write the manifest

The folder layout, schemas, manifest and reader are the data contract (``contract``).

Synthetic data is never silent: the embedded default is used only when no source was given a
root (or for the sources named in ``synthetic``); a root given for one source and not another
is an error saying what to add. The manifest marks every source ``synthetic`` (embedded default,
or a root holding the synthetic writer's ``ground_truth/``) and the summary names them.

Crash safety (clean restart): the build holds ``<out>/.lock`` (a second writer is refused),
reads its inputs (writing nothing), then writes ``.build-partial.json`` holding its identity (a
hash of the inputs' sha256, the prior config, shard size, limits, schema and builder versions)
and the list of every file it is about to write, then the shards under temporary names renamed
into place, then ``manifest.json`` last, then removes the record. A killed build leaves no
manifest, so nothing looks complete; running the same build again removes exactly the files the
record lists and builds from scratch (outputs are deterministic, so the result equals an
uninterrupted build). A failing build removes its own files before it reports the error. Files
nobody recorded are never removed: a folder holding a different build is refused unless
``overwrite`` (which removes only what that build's manifest or record lists), and unknown files
in ``persons/`` or ``pairs/`` are refused by name.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import __version__, atomic, contract, writer
from .contract import MANIFEST_NAME, PARTIAL_NAME, SCHEMA_VERSION
from .errors import DataError
from .persons import PersonTable
from .priors import apply_priors
from .priors.config import RULE_NAMES, PriorConfig

DEFAULT_SHARD_SIZE = 20000
# Shards whose priors run at once in a one-process build (threads; see ``run_jobs``).
PRIOR_THREADS = 2
# Persons of one image beyond this are skipped (every person of that image, counted as
# too_many_persons): cross-person priors are quadratic in the people of an image.
DEFAULT_MAX_PERSONS_PER_IMAGE = 100
SOURCE_ORDER = ("coco", "mpii")
ROOT_OPTION = {"coco": "--coco-root", "mpii": "--mpii-root"}


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
    synthetic: str = ""  # why the source is synthetic ("" when it is not)


@dataclass
class ShardJob:
    """Persons of one shard and their global numbering."""

    index: int
    table: PersonTable
    person_id: np.ndarray  # (N,) int64
    image_id: np.ndarray   # (N,) int64, the source's own image ids


# ------------------------------------------------------------------------------------ the build
def build(sources, out, roots: dict | None = None, workers: int = 1,
          config: PriorConfig | None = None, overwrite: bool = False, progress: bool = True,
          splits: dict | None = None, shard_size: int = DEFAULT_SHARD_SIZE,
          check_images: bool = True, synthetic=(),
          max_persons_per_image: int = DEFAULT_MAX_PERSONS_PER_IMAGE) -> Path:
    """Build an MCPC directory.

    Arguments:
        sources: source names, e.g. ``["coco", "mpii"]``.
        out: output folder (created).
        roots: {source: dataset root}. With no root at all every source uses the embedded
            synthetic default; otherwise each source needs a root or to be named in
            ``synthetic``.
        workers: processes for reading sources and building shards (output is identical).
            With 1, one process: the priors of ``PRIOR_THREADS`` shards at a time, the inputs'
            checksum and the Parquet writing run in threads (numpy, hashlib and Arrow release
            the GIL).
        config: prior thresholds (default ``PriorConfig()``).
        overwrite: replace a different build already in ``out``.
        progress: tqdm bars and the summary table on stdout.
        splits: {source: [split, ...]}; default every split ``readers.discover`` finds.
        shard_size: persons per shard (shards hold whole images, so a little more or less).
        check_images: skip persons whose image file is missing, empty, corrupt or of another
            size than the annotation says (False reads annotations alone, for annotation-only
            copies).
        synthetic: sources to take from the embedded synthetic default on purpose although
            other sources have roots.
        max_persons_per_image: images with more persons are skipped (and counted).
    Returns the output folder.
    """
    started = time.perf_counter()
    config = config or PriorConfig()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(out, "output exists and is not a folder")
    if max_persons_per_image < 1:
        raise DataError("--max-persons-per-image", f"must be at least 1, not "
                                                   f"{max_persons_per_image}")
    plan = source_plan(sources, roots or {}, synthetic)
    library = pose_library_record(config)  # before reading: a missing library fails at once
    with contract.acquire_lock(out, "mcpc-build"):
        found = discover_inputs(sources, plan, splits or {}, checksum=False)
        read_start = time.perf_counter()
        with ExitStack() as stack:
            # Worker processes start now, while this process reads (their start-up overlaps it).
            pool = stack.enter_context(started_pool(workers)) if workers > 1 else None
            # The inputs' sha256 (the build identity) is computed in a thread while they are
            # read (hashlib releases the GIL); nothing is written to ``out`` before the identity
            # is known.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcpc-sha256") as hasher:
                digests = [hasher.submit(contract.file_sha256, i.path) for i in found]
                tables = read_inputs(found, workers, progress, check_images, pool,
                                     max_persons_per_image)
                inputs = [replace(i, sha256=d.result()) for i, d in zip(found, digests)]
            jobs = plan_shards(tables, shard_size)
            identity = build_identity(inputs, config, shard_size, check_images,
                                      max_persons_per_image, library)
            prepare_out(out, identity, overwrite)
            planned = [name.format(j.index) for j in jobs
                       for name in (contract.PAIRS_SHARD, contract.PERSONS_SHARD)]
            writer.write_json(out / PARTIAL_NAME, {"identity": identity, "pid": os.getpid(),
                                                   "files": planned + [MANIFEST_NAME]})
            shards_start = time.perf_counter()
            try:
                results = run_jobs(out, jobs, config, workers, progress, pool)  # priors, write
                done = time.perf_counter()
                manifest = make_manifest(inputs, tables, results, config, identity, shard_size,
                                         done - started)
                manifest["pose_library"] = library
                manifest["limits"] = {"max_persons_per_image": max_persons_per_image,
                                      "check_images": bool(check_images)}
                manifest["timings_s"] = {"discover": round(read_start - started, 3),
                                         "read_and_checksum": round(shards_start - read_start, 3),
                                         "priors_and_write": round(done - shards_start, 3)}
                writer.write_json(out / MANIFEST_NAME, manifest)                         # last
            except BaseException:
                # Nothing half-written stays: this build's shards, temporaries and record go.
                remove_recorded(out, planned + [MANIFEST_NAME])
                (out / PARTIAL_NAME).unlink(missing_ok=True)
                raise
        (out / PARTIAL_NAME).unlink()
    if progress:
        print(summary_table(manifest))
    return out


# ------------------------------------------------------------------------------------ the steps
def source_plan(sources, roots: dict, synthetic) -> dict[str, tuple[Path, str]]:
    """{source: (root, why synthetic or "")} for the sources of a build.

    The embedded default serves every source when no root was given at all, else only the
    sources named in ``synthetic``; a source with neither is an error naming what to add.
    """
    from .readers import SOURCES

    unknown = [s for s in list(sources) + list(synthetic) if s not in SOURCES]
    if unknown:
        raise DataError(", ".join(unknown), f"unknown source; known: {', '.join(SOURCES)}")
    roots = {k: v for k, v in roots.items() if v is not None}
    both = sorted(set(roots) & set(synthetic))
    if both:
        raise DataError(", ".join(both), "given both a root and --synthetic; choose one")
    all_default = not roots
    plan = {}
    for source in [s for s in SOURCE_ORDER if s in sources]:
        if source in roots:
            root = Path(roots[source])
            if not root.is_dir():
                raise DataError(root, f"{source} root folder not found")
            root = root.resolve()
            why = "root holds ground_truth/ (written by mcpc-build synth)" \
                if contract.is_synthetic_root(root) else ""
            plan[source] = (root, why)
        elif all_default or source in synthetic:
            from .default_data import default_root

            plan[source] = (default_root(source).resolve(), "embedded synthetic default")
        else:
            given = ", ".join(f"{ROOT_OPTION.get(s, s)} {roots[s]}" for s in sorted(roots))
            option = ROOT_OPTION.get(source, source)
            raise DataError(option, f"no {source} data given ({given} was): add {option} DIR, "
                                    f"or --synthetic {source} to use the embedded synthetic "
                                    f"{source} on purpose, or drop {source} from --sources")
    return plan


def discover_inputs(sources, plan: dict, splits: dict, checksum: bool = True
                    ) -> list[InputFile]:
    """Every annotation file to read, in a fixed order (source order, then discover order).

    ``plan``: ``source_plan`` output. ``checksum=False`` leaves ``sha256`` empty (the caller
    computes it)."""
    from .readers import discover

    inputs = []
    for source, (root, why) in plan.items():
        for split, ann_file, image_dir in discover(source, root, splits.get(source)):
            ann_file = Path(ann_file)
            if not ann_file.is_file():
                raise DataError(ann_file, "annotation file not found")
            inputs.append(InputFile(source, split, ann_file.resolve(), Path(image_dir), root,
                                    ann_file.stat().st_size,
                                    contract.file_sha256(ann_file) if checksum else "", why))
    return inputs


def pose_library_record(config: PriorConfig) -> dict | None:
    """What the manifest says of the pose library the ``pose_library`` prior reads (None when
    that prior is off): its path, size, sha256, poses and views. Builds its index now, so a
    missing or malformed library is one error before anything is read or written."""
    if "pose_library" not in config.enabled:
        return None
    from .priors.pose_library import load_index

    cfg = config.pose_library
    index = load_index(cfg)
    path = Path(cfg.path)
    return {"path": str(path.resolve()), "bytes": path.stat().st_size,
            "sha256": contract.file_sha256(path), "poses": int(len(np.unique(index.pose))),
            "views": int(len(index)), "mirror": bool(cfg.mirror)}


def build_identity(inputs: list[InputFile], config: PriorConfig, shard_size: int,
                   check_images: bool = True,
                   max_persons_per_image: int = DEFAULT_MAX_PERSONS_PER_IMAGE,
                   pose_library: dict | None = None) -> str:
    """A hash of everything that decides the build's rows."""
    blob = json.dumps({
        "pose_library_sha256": pose_library["sha256"] if pose_library else None,
        "schema_version": SCHEMA_VERSION, "builder_version": __version__,
        "inputs": [[i.source, i.split, i.sha256] for i in inputs],
        "config": config.to_dict(), "shard_size": shard_size,
        "check_images": bool(check_images), "max_persons_per_image": max_persons_per_image,
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def recorded_files(out: Path) -> tuple[str | None, list[str]]:
    """(identity, files) of the build already in ``out``: from its unfinished-build record, else
    its manifest (shards, manifest); (None, []) when there is neither."""
    for name in (PARTIAL_NAME, MANIFEST_NAME):
        path = out / name
        if not path.is_file():
            continue
        try:
            doc = json.loads(path.read_text())
        except (ValueError, OSError):
            raise DataError(path, "unreadable build record; remove it by hand if the folder "
                                  "holds nothing you need") from None
        if not isinstance(doc, dict):
            raise DataError(path, "unreadable build record (not a JSON object)")
        if name == PARTIAL_NAME:
            files = [str(f) for f in doc.get("files", [])]
        else:
            files = [s[k]["file"] for s in doc.get("shards", []) if isinstance(s, dict)
                     for k in ("persons", "pairs") if isinstance(s.get(k), dict)]
            files.append(MANIFEST_NAME)
        safe = [f for f in files if not Path(f).is_absolute() and ".." not in Path(f).parts]
        return doc.get("identity"), safe
    return None, []


def remove_recorded(out: Path, files: list[str]) -> int:
    """Remove the listed files of ``out`` and their write-then-rename temporaries; returns how
    many were removed. Nothing else is touched."""
    removed = 0
    for rel in files:
        path = out / rel
        candidates = [path] + sorted(path.parent.glob(atomic.temp_glob(path)))
        for p in candidates:
            if p.is_file():
                p.unlink()
                removed += 1
    return removed


def prepare_out(out: Path, identity: str, overwrite: bool) -> None:
    """Make ``out`` ready: refuse a different build unless ``overwrite``, refuse files in
    ``persons/`` / ``pairs/`` that no build recorded, remove the previous build's own files."""
    out.mkdir(parents=True, exist_ok=True)
    previous, files = recorded_files(out)
    if (out / PARTIAL_NAME).exists() or (out / MANIFEST_NAME).exists():
        if previous != identity and not overwrite:
            raise DataError(out, "output folder holds a different build (other inputs or "
                                 "config); use --overwrite to replace it or choose another --out")
    known = set(files)
    for folder in (contract.PERSONS_DIR, contract.PAIRS_DIR):
        for p in sorted((out / folder).glob("*")) if (out / folder).is_dir() else []:
            rel = f"{folder}/{p.name}"
            ours = rel in known or any(atomic.is_temp_of(p.name, Path(f).name) for f in known)
            if not ours:
                raise DataError(p, "file in the build folder that no build recorded; move it "
                                   "away (mcpc-build never deletes files it did not write)")
    remove_recorded(out, files)
    (out / PARTIAL_NAME).unlink(missing_ok=True)


def cap_persons_per_image(table: PersonTable, cap: int) -> PersonTable:
    """Skip every person of images holding more than ``cap`` persons (counted as
    ``too_many_persons``)."""
    if len(table) == 0:
        return table
    counts = np.bincount(table.image_index, minlength=table.num_images)
    over = counts[table.image_index] > cap
    if not over.any():
        return table
    kept = table.take(np.flatnonzero(~over))
    kept.skipped["too_many_persons"] += int(over.sum())
    return kept


def _read_one(item: tuple[InputFile, bool, int]) -> PersonTable:
    from .readers import read_source
    from .readers.coco import read_coco

    inp, check_images, cap = item
    if inp.source == "coco":
        table = read_coco(inp.path, inp.split, inp.image_dir, root=inp.root,
                          check_images=check_images)
    else:
        table = read_source(inp.source, inp.split, inp.path, inp.image_dir, root=inp.root)
    return cap_persons_per_image(table, cap)


def read_inputs(inputs: list[InputFile], workers: int, progress: bool,
                check_images: bool, pool: ProcessPoolExecutor | None = None,
                max_persons_per_image: int = DEFAULT_MAX_PERSONS_PER_IMAGE
                ) -> list[PersonTable]:
    """Read every input (in parallel processes when workers > 1, in ``pool`` if given), in
    input order."""
    items = [(i, check_images, max_persons_per_image) for i in inputs]
    bar = _bar(len(items), "read", progress)
    if workers > 1 and len(items) > 1:
        with ExitStack() as stack:
            if pool is None:
                pool = stack.enter_context(process_pool(min(workers, len(items))))
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
                       Counter(table.skipped), table.persons_read, table.image_ids[lo:hi],
                       table.keypoint_layout)


def plan_shards(tables: list[PersonTable], shard_size: int) -> list[ShardJob]:
    """Cut every table into shards and number persons and images globally, in input order."""
    jobs, person_base = [], 0
    for table in tables:
        for start, end in shard_bounds(table.image_index, shard_size):
            rows = np.arange(start, end)
            jobs.append(ShardJob(len(jobs), shard_table(table, start, end), person_base + rows,
                                 table.image_ids[table.image_index[rows]]))
        person_base += len(table)
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
    # One counting pass per part (not one per rule and per label value).
    n_rules = len(RULE_NAMES)
    kept = np.zeros(n_rules, np.int64)
    kept_same = np.zeros(n_rules, np.int64)
    by_label = np.zeros(3, np.int64)                      # label -1, 0, +1
    for p in parts:
        rule = p.rule.astype(np.intp)
        kept += np.bincount(rule, minlength=n_rules)
        kept_same += np.bincount(rule[p.person_a == p.person_b], minlength=n_rules)
        by_label += np.bincount(p.label.astype(np.intp) + 1, minlength=3)
    kept, kept_same = kept.tolist(), kept_same.tolist()
    balance = by_label[::-1].tolist()                     # +1, 0, -1
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
                pool = stack.enter_context(process_pool(workers))
            for entry in pool.map(build_shard, items):
                results.append(entry)
                bar.update(1)
    else:
        # One process: the priors of PRIOR_THREADS shards run in threads at once (numpy releases
        # the GIL in its loops, and the priors are whole-array numpy), and each prepared shard
        # is encoded, compressed and written (Arrow / Parquet C++, GIL released) in a thread of
        # its own while the next ones are prepared. At most PRIOR_THREADS + 2 shards are in
        # memory; files and manifest are the same as written one after the other.
        with ThreadPoolExecutor(max_workers=PRIOR_THREADS, thread_name_prefix="mcpc-priors") \
                as priors, ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcpc-write") \
                as writes:
            preparing, writing = deque(), deque()

            def hand_on_oldest() -> None:
                writing.append(writes.submit(write_prepared, preparing.popleft().result()))
                while len(writing) > 1:
                    results.append(writing.popleft().result())
                    bar.update(1)

            for item in items:
                preparing.append(priors.submit(prepare_shard, item))
                if len(preparing) >= PRIOR_THREADS:
                    hand_on_oldest()
            while preparing:
                hand_on_oldest()
            while writing:
                results.append(writing.popleft().result())
                bar.update(1)
    bar.close()
    return results


def make_manifest(inputs: list[InputFile], tables: list[PersonTable], results: list[dict],
                  config: PriorConfig, identity: str, shard_size: int, wall: float) -> dict:
    sources: dict = {}
    for inp, table in zip(inputs, tables):
        src = sources.setdefault(inp.source, {"root": str(inp.root),
                                              "synthetic": bool(inp.synthetic),
                                              "synthetic_reason": inp.synthetic or None,
                                              "splits": {}})
        src["splits"][inp.split] = {
            "keypoint_layout": table.keypoint_layout,
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
        "layout": {"persons": contract.PERSONS_DIR, "pairs": contract.PAIRS_DIR},
        "synthetic_sources": sorted(k for k, v in sources.items() if v["synthetic"]),
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
    for source, s in m["sources"].items():
        if s.get("synthetic"):
            lines.append(f"SYNTHETIC DATA: {source} is {s['synthetic_reason']} ({s['root']})")
    if m.get("pose_library"):
        lib = m["pose_library"]
        lines.append(f"pose library: {lib['path']} ({lib['poses']} poses, {lib['views']} views, "
                     f"sha256 {lib['sha256'][:12]})")
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
    with process_pool(workers) as pool:
        for _ in range(workers):
            pool.submit(os.getpid)
        yield pool


# Seconds between a worker's checks that the build process still lives.
PARENT_POLL_S = 0.5


def _worker_init(parent_pid: int) -> None:
    """Runs in each worker process: the worker dies with the build process, even on
    ``kill -9`` of it (nothing else would end workers blocked on a queue). Linux: the kernel
    sends SIGKILL when the worker's parent (the fork server, which itself exits when the build
    process is gone) dies; everywhere: a thread polls the build process's pid."""
    import signal
    import threading

    if os.name == "posix":
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass  # not Linux: the thread below covers it

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="mcpc-parent-watch", daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes that die with this process."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(),
                               initializer=_worker_init, initargs=(os.getpid(),))


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
    parser.add_argument("--coco-root", help="COCO root (annotations/person_keypoints_*.json). "
                                            "With no root at all, every source is the embedded "
                                            "synthetic default (named in the summary and manifest)")
    parser.add_argument("--mpii-root", help="MPII root (mpii_human_pose_v1_u12_1.mat, "
                                            "annot/{train,valid}.json or "
                                            "annotations/mpii_{train,val}.json)")
    parser.add_argument("--synthetic", nargs="+", default=[], metavar="SOURCE",
                        help="take these sources from the embedded synthetic default on purpose "
                             "while others have roots (e.g. --coco-root DIR --synthetic mpii)")
    parser.add_argument("--max-persons-per-image", type=int,
                        default=DEFAULT_MAX_PERSONS_PER_IMAGE,
                        help="skip (and count) every person of images holding more")
    parser.add_argument("--splits", nargs="+", help="splits to read (default: all found)")
    parser.add_argument("--out", default="out/mcpc", help="output build folder")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    parser.add_argument("--config", help="prior config YAML (default: built-in defaults, as in "
                                         "pipelines/configs/priors_default.yaml)")
    parser.add_argument("--pose-library", metavar="FILE",
                        help="turn on the opt-in pose_library prior with this 3D pose library "
                             "(.npz as ../shared/fixtures/mocap-dev/poses.npz, or .bvh); the "
                             "manifest records its sha256")
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE,
                        help="persons per shard (whole images)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a different build already in --out")
    parser.add_argument("--no-image-check", action="store_true",
                        help="COCO: do not open the image files (annotation-only copies; "
                             "missing or corrupt images are then not detected)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summary")


def run(args) -> int:
    from .errors import check_number

    check_number("--workers", args.workers, low=1)
    check_number("--shard-size", args.shard_size, low=1)
    check_number("--max-persons-per-image", args.max_persons_per_image, low=1)
    roots = {"coco": args.coco_root, "mpii": args.mpii_root}
    roots = {k: v for k, v in roots.items() if v}
    config = PriorConfig.from_yaml(args.config) if args.config else PriorConfig()
    if args.pose_library:
        config = config.with_pose_library(args.pose_library)
    splits = {s: args.splits for s in args.sources} if args.splits else None
    out = build(args.sources, args.out, roots=roots, workers=args.workers, config=config,
                overwrite=args.overwrite, progress=not args.quiet, splits=splits,
                shard_size=args.shard_size, check_images=not args.no_image_check,
                synthetic=args.synthetic, max_persons_per_image=args.max_persons_per_image)
    synthetic = contract.synthetic_sources(contract.read_manifest(out))
    print(f"wrote {out}" + (f"  (SYNTHETIC data: {', '.join(synthetic)})" if synthetic else ""))
    return 0

