"""The MCPC data contract, declared once: schemas, prior names, folder layout, manifest,
ground-truth sidecar, the one verified reader of a build and the lock on a folder.

The builder (``build`` / ``writer``), ``preview``, ``audit`` and ``wsp_model`` all import this
module; none of them reads a build another way.

A build folder is two Parquet datasets and a manifest::

    <out>/manifest.json            written last: schema and builder versions, prior config,
                                   per source (root, synthetic or not, files read with bytes and
                                   sha256, persons read / kept / skipped by reason), per shard the
                                   persons and pairs files with rows, bytes and sha256
    <out>/persons/part-NNNNN.parquet   one row per kept person  (PERSONS_SCHEMA)
    <out>/pairs/part-NNNNN.parquet     one row per labelled pair (PAIRS_SCHEMA)

so ``pandas.read_parquet("<out>/persons")``, ``pyarrow.dataset.dataset("<out>/pairs")``, polars
or DuckDB (``'<out>/pairs/*.parquet'``) each see one table. Hidden files (``.lock``, the
``.build-partial.json`` record of an unfinished build, ``.*.tmp``) are ignored by those tools.

``read_build(dir, verify=...)`` checks the manifest's schema version, that ``persons/`` and
``pairs/`` hold exactly the manifest's shards (no file missing, none extra), their byte sizes
(``verify="sizes"``, the default) or their sha256 (``verify="checksums"``), and each shard's row
count; anything else is refused with a ``DataError`` naming the file.

Ids: ``person_id`` is unique in the build (0..N-1 in build order); ``image_id`` is the source's
own image id (COCO ``images[].id``; MPII: the numeric stem of the image file name), so it is
unique only within one ``(source, split)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from .errors import DataError
from .joints import MCPC21
from .priors.config import RULE_NAMES

SCHEMA_VERSION = 2  # 2: persons/ + pairs/ folders, source image ids, per-source "synthetic"
NUM_JOINTS = MCPC21.num_joints
PRIOR_NAMES: tuple[str, ...] = tuple(RULE_NAMES)

PERSONS_SCHEMA = pa.schema([
    pa.field("person_id", pa.int64(), nullable=False),        # global, unique in the build
    pa.field("source", pa.string(), nullable=False),          # "coco", "mpii", ...
    pa.field("split", pa.string(), nullable=False),           # "train2017", "valid", ...
    pa.field("image_id", pa.int64(), nullable=False),         # the source's own image id
    pa.field("image_path", pa.string(), nullable=False),      # relative to the source root
    pa.field("image_width", pa.int32(), nullable=False),
    pa.field("image_height", pa.int32(), nullable=False),
    pa.field("bbox", pa.list_(pa.float32(), 4), nullable=False),            # xywh, pixels
    pa.field("keypoints", pa.list_(pa.float32(), 2 * NUM_JOINTS), nullable=False),  # (21,2) flat, NaN unlabelled
    pa.field("visibility", pa.list_(pa.uint8(), NUM_JOINTS), nullable=False),        # 0/1/2
    pa.field("source_ann_id", pa.int64(), nullable=False),
    pa.field("scale", pa.float32(), nullable=False),          # person scale s, pixels (NaN if unknown)
    pa.field("grounded", pa.bool_(), nullable=False),         # P1 judged the person grounded
], metadata={"mcpc_schema_version": str(SCHEMA_VERSION), "layout": MCPC21.name})

PAIRS_SCHEMA = pa.schema([
    pa.field("person_a", pa.int64(), nullable=False),
    pa.field("joint_a", pa.int8(), nullable=False),           # MCPC-21 index
    pa.field("person_b", pa.int64(), nullable=False),         # == person_a for within-person pairs
    pa.field("joint_b", pa.int8(), nullable=False),
    pa.field("label", pa.int8(), nullable=False),             # +1 a closer, -1 a farther, 0 equal
    pa.field("confidence", pa.float32(), nullable=False),     # (0, 1]
    pa.field("prior", pa.string(), nullable=False),           # one of PRIOR_NAMES
    pa.field("margin", pa.float32(), nullable=False),         # |dz| / scale estimate, NaN if none
], metadata={"mcpc_schema_version": str(SCHEMA_VERSION), "layout": MCPC21.name})

# ------------------------------------------------------------------------------ folder layout
MANIFEST_NAME = "manifest.json"
PERSONS_DIR = "persons"
PAIRS_DIR = "pairs"
PERSONS_SHARD = PERSONS_DIR + "/part-{:05d}.parquet"   # relative to the build folder
PAIRS_SHARD = PAIRS_DIR + "/part-{:05d}.parquet"
PARTIAL_NAME = ".build-partial.json"  # identity + every file an unfinished build may have written
LOCK_NAME = ".lock"
VERIFY_MODES = ("sizes", "checksums")

# ------------------------------------------------------------------- ground-truth sidecar
# Synthetic datasets (``mcpc_builder.synth``) write, beside each annotation file, the true 3D
# joints of every annotated person: ``<root>/ground_truth/<name>.npz``. Only the synthetic
# writer makes this folder, so a root holding it is synthetic data.
GROUND_TRUTH_DIR = "ground_truth"
# Fields every sidecar holds: ``ann_id`` (N,) int64 = the build's ``source_ann_id``;
# ``joints_cam`` (N, 21, 3) float32 camera-frame metres, MCPC-21 order (NaN where none);
# ``visibility_true`` (N, 21) uint8 the world's flags (0 outside the image, 1 hidden, 2 visible);
# ``pose`` (N,) str; ``is_child`` (N,) bool; ``height`` (N,) float32 metres; per image
# ``camera_K`` (M, 3, 3), ``camera_R`` (M, 3, 3) world->camera, ``camera_t`` (M, 3) metres,
# ``image_width`` / ``image_height`` (M,). A format adds its own keys beside these (COCO:
# ``image_id``, ``camera_image_id``, ``visibility``, ``iscrowd``; MPII: ``imgidx``, ``ridx``,
# ``image_name``).
GROUND_TRUTH_FIELDS = ("ann_id", "joints_cam", "visibility_true", "pose", "is_child", "height",
                       "camera_K", "camera_R", "camera_t", "image_width", "image_height")


def ground_truth_path(root: str | Path, name: str) -> Path:
    """The sidecar of annotation file stem ``name`` (e.g. ``person_keypoints_val2017``)."""
    return Path(root) / GROUND_TRUTH_DIR / f"{name}.npz"


def write_ground_truth(path: str | Path, arrays: dict) -> Path:
    """Write one sidecar (atomically); refuses one lacking a ``GROUND_TRUTH_FIELDS`` field."""
    from . import atomic

    missing = [k for k in GROUND_TRUTH_FIELDS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: ground-truth sidecar lacks {', '.join(missing)}")
    return atomic.save_npz(path, **arrays)


def read_ground_truth(path: str | Path) -> dict:
    """A sidecar's arrays (no pickled objects), after checking its fields, naming the file."""
    import numpy as np

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(path, "ground-truth sidecar not found") from None
    except (OSError, ValueError) as err:
        raise DataError(path, f"unreadable ground-truth sidecar ({err})") from None
    missing = [k for k in GROUND_TRUTH_FIELDS if k not in arrays]
    if missing:
        raise DataError(path, f"ground-truth sidecar lacks {', '.join(missing)}")
    n = len(arrays["ann_id"])
    if arrays["joints_cam"].shape != (n, NUM_JOINTS, 3):
        raise DataError(path, f"joints_cam has shape {arrays['joints_cam'].shape}, expected "
                              f"({n}, {NUM_JOINTS}, 3)")
    return arrays


def is_synthetic_root(root: str | Path) -> bool:
    """True when ``root`` holds the synthetic writer's ground-truth folder."""
    return (Path(root) / GROUND_TRUTH_DIR).is_dir()


# ------------------------------------------------------------------------------- checksums
def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


# -------------------------------------------------------------------------------- manifest
def read_manifest(build_dir: str | os.PathLike) -> dict:
    """The build's manifest, after checking its format and schema version (``DataError``
    naming the file otherwise)."""
    build_dir = Path(build_dir)
    path = build_dir / MANIFEST_NAME
    if not build_dir.is_dir():
        raise DataError(build_dir, "MCPC build folder not found")
    if not path.is_file():
        raise DataError(path, "no manifest: not a complete MCPC build (build one with "
                              "`mcpc-build --out DIR`)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(path, f"invalid JSON ({err})") from None
    except OSError as err:
        raise DataError(path, f"cannot read ({err.strerror or err})") from None
    if not isinstance(manifest, dict):
        raise DataError(path, "expected a JSON object")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version != SCHEMA_VERSION:
        raise DataError(path, f"schema_version {version!r}, this reader needs {SCHEMA_VERSION}; "
                              "rebuild the MCPC folder with this version of mcpc_builder")
    if not isinstance(manifest.get("shards"), list) or not isinstance(manifest.get("sources"),
                                                                       dict):
        raise DataError(path, "manifest lacks its 'shards' list or 'sources' mapping")
    return manifest


def synthetic_sources(manifest: dict) -> list[str]:
    """Names of the build's sources that are synthetic data (sorted)."""
    return sorted(name for name, s in manifest.get("sources", {}).items()
                  if isinstance(s, dict) and s.get("synthetic"))


def source_roots(manifest: dict, manifest_path: str | Path = MANIFEST_NAME) -> dict[str, Path]:
    """Source name -> image root recorded in the manifest."""
    roots = {}
    for name, info in manifest.get("sources", {}).items():
        root = info.get("root") if isinstance(info, dict) else None
        if not isinstance(root, str):
            raise DataError(manifest_path, "no image root recorded", record=f"sources.{name}")
        roots[str(name)] = Path(root)
    return roots


def shard_files(manifest: dict, manifest_path: str | Path = MANIFEST_NAME) -> list[dict]:
    """Every shard file the manifest lists, as {file, rows, bytes, sha256, kind}."""
    files = []
    for i, shard in enumerate(manifest["shards"]):
        for kind in ("persons", "pairs"):
            entry = shard.get(kind) if isinstance(shard, dict) else None
            if not isinstance(entry, dict) or not all(k in entry for k in
                                                      ("file", "rows", "bytes", "sha256")):
                raise DataError(manifest_path, "shard entry lacks file / rows / bytes / sha256",
                                record=f"shards[{i}].{kind}")
            files.append({**entry, "kind": kind})
    return files


def verify_build(build_dir: str | os.PathLike, verify: str = "sizes") -> dict:
    """Check a build folder against its manifest; returns the manifest.

    Arguments:
        verify: ``"sizes"`` (every listed file present with its recorded byte size, no other
            file in ``persons/`` or ``pairs/``) or ``"checksums"`` (also its sha256).
    Raises DataError naming the first file that differs.
    """
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, not {verify!r}")
    build_dir = Path(build_dir)
    manifest = read_manifest(build_dir)
    listed = shard_files(manifest, build_dir / MANIFEST_NAME)
    names = {e["file"] for e in listed}
    for folder in (PERSONS_DIR, PAIRS_DIR):
        present = sorted(p for p in (build_dir / folder).glob("*")
                         if not p.name.startswith((".", "_")))
        for p in present:
            rel = f"{folder}/{p.name}"
            if rel not in names:
                raise DataError(p, "file not listed in the manifest (a build writes only the "
                                   "files its manifest lists; move it out of the build folder)")
    for entry in listed:
        rel = entry["file"]
        path = build_dir / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not path.is_file():
            raise DataError(path, "shard listed in the manifest is missing")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise DataError(path, f"size {size} bytes, the manifest records {entry['bytes']}: "
                                  "the file changed after the build")
        if verify == "checksums" and file_sha256(path) != entry["sha256"]:
            raise DataError(path, "sha256 differs from the manifest: the file changed after "
                                  "the build")
    return manifest


# ---------------------------------------------------------------------------- the reader
@dataclass
class Build:
    """A verified build: its folder, manifest and the persons / pairs rows (pyarrow Tables,
    shards concatenated in manifest order)."""

    path: Path
    manifest: dict
    persons: pa.Table
    pairs: pa.Table

    @property
    def synthetic_sources(self) -> list[str]:
        return synthetic_sources(self.manifest)

    @property
    def roots(self) -> dict[str, Path]:
        return source_roots(self.manifest, self.path / MANIFEST_NAME)


def read_build(build_dir: str | os.PathLike, verify: str = "sizes",
               persons_columns: list[str] | None = None,
               pairs_columns: list[str] | None = None) -> Build:
    """Read a build after ``verify_build``; only the manifest's shards, in its order.

    Each shard's row count must match the manifest and its columns the contract's schema.
    ``persons_columns`` / ``pairs_columns`` read only those columns (default all).
    """
    import pyarrow.parquet as pq

    build_dir = Path(build_dir)
    manifest = verify_build(build_dir, verify)
    tables = {"persons": [], "pairs": []}
    schemas = {"persons": PERSONS_SCHEMA, "pairs": PAIRS_SCHEMA}
    columns = {"persons": persons_columns, "pairs": pairs_columns}
    for entry in shard_files(manifest, build_dir / MANIFEST_NAME):
        kind, path = entry["kind"], build_dir / entry["file"]
        try:
            table = pq.read_table(path, columns=columns[kind])
        except (OSError, ValueError, pa.ArrowException) as err:
            first = (str(err).strip().splitlines() or ["unreadable"])[0]
            raise DataError(path, f"cannot read shard ({first})") from None
        if table.num_rows != entry["rows"]:
            raise DataError(path, f"{table.num_rows} rows, the manifest records {entry['rows']}")
        want = schemas[kind]
        names = columns[kind] or want.names
        expected = pa.schema([want.field(n) for n in names])
        if not table.schema.equals(expected, check_metadata=False):
            try:
                table = table.cast(expected)
            except (pa.ArrowException, ValueError):
                raise DataError(path, f"columns do not follow the {kind} schema "
                                      f"({table.schema.names})") from None
        tables[kind].append(table)
    out = {}
    for kind, parts in tables.items():
        names = columns[kind] or schemas[kind].names
        empty = pa.schema([schemas[kind].field(n) for n in names]).empty_table()
        out[kind] = pa.concat_tables(parts) if parts else empty
    return Build(build_dir, manifest, out["persons"], out["pairs"])


# ------------------------------------------------------------------------------------ lock
class FolderLocked(DataError):
    """Another live process holds the folder's lock."""


_HELD: dict[str, int] = {}  # lock files this process holds -> nesting depth


@contextmanager
def acquire_lock(folder: str | os.PathLike, what: str = "writer"):
    """Hold ``<folder>/.lock`` while writing ``folder``; a second writer is refused at once.

    ``fcntl.flock`` on the lock file: the kernel drops the lock when its process ends, even on
    ``kill -9``, so a stale lock never blocks. The file keeps the holder's pid and host, for the
    message a refused writer prints; it is left in place (removing it would let two processes
    lock two different files). Re-entrant within one process (a nested call is a no-op); another
    process, a child included, is refused.
    """
    import fcntl

    folder = Path(folder)
    path = folder / LOCK_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileExistsError:
        raise DataError(folder, "exists and is not a folder") from None
    except OSError as err:
        raise DataError(folder, f"cannot write here ({err.strerror or err})") from None
    key = str(path.resolve())
    if _HELD.get(key):
        os.close(fd)
        _HELD[key] += 1
        try:
            yield path
        finally:
            _HELD[key] -= 1
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
            except (ValueError, UnicodeDecodeError):
                holder = {}
            who = (f"process {holder.get('pid')} on {holder.get('host')} ({holder.get('what')})"
                   if holder else "another process")
            raise FolderLocked(folder, f"in use by {who}; wait for it to finish or choose "
                                       "another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "what": what}).encode(), 0)
        _HELD[key] = 1
        try:
            yield path
        finally:
            _HELD.pop(key, None)
    finally:
        os.close(fd)  # closing the descriptor releases the flock
