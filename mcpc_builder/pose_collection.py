"""`mcpc-build library`: one pose library from many motion-capture files, distinct poses only.

    mcpc-build library --out out/poses.npz ~/mocap/cmu-bvh/ clip.bvh other.npz [--min-distance 0.05]

The pose-library prior (``--pose-library``) and the synthetic world (``--poses``) each take one
library file; a motion-capture collection is hundreds of clips, each thousands of frames, most of
them nearly the same pose. This verb turns such a collection into one library in the mocap-dev
format (``synth.pose_library``):

* inputs: ``.bvh`` clips (read with ``pybvh``) and ``.npz`` libraries, or folders searched
  recursively for them (files in sorted path order); each is read and mapped by joint name
  exactly as ``--pose-library`` reads it, so a file it refuses is refused here, by name;
* one body: every file's poses are scaled to ``--stature`` metres (the prior's 5 cm tie threshold
  and its margins are in the library's metres; files come in centimetres, inches or metres);
* distinct poses: each pose is centred on its pelvis and turned about the vertical so its hip line
  lies along +x (the prior sees every pose from cameras all around, so where a pose faces does
  not matter), and it is kept only when its RMS joint distance from every pose kept before it is
  at least ``--min-distance`` metres (greedy, in input order). Near-duplicate frames would
  otherwise fill a pose's 50 voting neighbours with one pose seen from nearby cameras
  (``pipelines.bench.library_size``: fewer distinct poses, lower precision).

Output arrays: ``joints`` (N, J, 3) float32 metres (Z up, floor z = 0, pelvis above the origin,
hip line along +x), ``joint_names`` (the 22 body points, then the extras every input has),
``activity`` (N,) as each file gives it (a BVH clip: its file name), ``source`` (N,) int64 row of
``sources``, ``frame`` (N,) int64 the pose's index in its file (after the BVH reader's stride),
``sources`` (F,) the files, ``sources_sha256`` (F,), ``poses_read`` () all poses read,
``skipped`` (S,) "file: why" for each file ``--skip-bad`` left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import atomic, contract
from .errors import DataError, UsageError
from .joints import BODY_POINTS

SUFFIXES = (".bvh", ".npz")
B = {n: i for i, n in enumerate(BODY_POINTS)}


def find_inputs(inputs: list[str | Path]) -> list[Path]:
    """Files to read: the files named, and every ``.bvh`` / ``.npz`` under the folders named
    (sorted), without repeats. A missing path or a folder without any is a ``DataError``."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.suffix.lower() in SUFFIXES
                           and p.is_file())
            if not files:
                raise DataError(item, f"no {' or '.join(SUFFIXES)} files in this folder")
            found += files
        elif item.is_file():
            if item.suffix.lower() not in SUFFIXES:
                raise DataError(item, "a pose library input is a .bvh or .npz file, or a folder")
            found.append(item)
        else:
            raise DataError(item, "not found")
    seen, out = set(), []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def read_input(path: Path):
    """``load_pose_library(path)``, its errors as one ``DataError`` naming the file."""
    from .synth.pose_library import READ_ERRORS, as_data_error, load_pose_library

    try:
        return load_pose_library(str(path))
    except READ_ERRORS as err:
        raise as_data_error(path, err) from None


def canonical(joints: np.ndarray, extras: dict[str, np.ndarray], scale: float
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Poses (N, 22, 3) (pelvis above the origin, floor z = 0) and their extras scaled by
    ``scale`` and turned about Z so each pose's hip line (right -> left hip) lies along +x."""
    hip = joints[:, B["left_hip"], :2] - joints[:, B["right_hip"], :2]
    angle = np.arctan2(hip[:, 1], hip[:, 0])
    c, s = np.cos(-angle), np.sin(-angle)
    rot = np.zeros((len(joints), 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c, -s, s, c, 1.0

    def turn(x: np.ndarray) -> np.ndarray:  # (N, K, 3), rotated about the origin (pelvis x, y)
        return np.einsum("nij,nkj->nki", rot, x) * scale

    return turn(joints), {k: turn(v[:, None])[:, 0] for k, v in extras.items()}


def distinct(poses: np.ndarray, min_distance: float, block: int = 1024) -> np.ndarray:
    """Indices (ascending) of the poses kept greedily in order: each at least ``min_distance``
    (RMS distance over joints, metres) from every pose kept before it.

    Arguments:
        poses: (N, J, 3) float; compared after centring each on its pelvis (``BODY_POINTS``
            order) or, for other layouts, on its mean joint.
    """
    n, j = poses.shape[:2]
    centre = poses[:, B["pelvis"]] if j == len(BODY_POINTS) else poses.mean(1)
    x = ((poses - centre[:, None]) / np.sqrt(j)).reshape(n, -1)  # |a - b| = RMS joint distance
    limit = float(min_distance) ** 2
    kept: list[np.ndarray] = []
    kept_x = np.zeros((0, x.shape[1]))
    for start in range(0, n, block):
        b = x[start:start + block]
        b_sq = (b ** 2).sum(1)
        if len(kept_x):
            d2 = b_sq[:, None] - 2 * b @ kept_x.T + (kept_x ** 2).sum(1)[None]
            alive = np.flatnonzero((d2 >= limit).all(1))
        else:
            alive = np.arange(len(b))
        cand = b[alive]
        within = (b_sq[alive][:, None] - 2 * cand @ cand.T + b_sq[alive][None]) < limit
        blocked = np.zeros(len(alive), bool)
        take = []
        for i in range(len(alive)):  # greedy within the block (its own earlier keeps)
            if not blocked[i]:
                take.append(i)
                blocked |= within[i]
        kept.append(start + alive[take])
        kept_x = np.concatenate([kept_x, cand[take]])
    return np.concatenate(kept) if kept else np.zeros(0, np.int64)


def collect(inputs: list[str | Path], stature: float = 1.70, min_distance: float = 0.05,
            progress: bool = True, skip_bad: bool = False) -> dict[str, np.ndarray]:
    """The merged library's arrays (``np.savez`` them; see the module docstring). With
    ``skip_bad`` a file the reader refuses is skipped and listed (``skipped``: "file: why")
    instead of stopping the merge."""
    from tqdm import tqdm

    from .synth.pose_library import library_stature

    files = find_inputs(inputs)
    parts, skipped = [], []
    for path in tqdm(files, desc="read", unit="file", disable=not progress):
        try:
            lib = read_input(path)
        except DataError as err:
            if not skip_bad:
                raise
            skipped.append(str(err))
            continue
        joints, extras = canonical(lib.joints, lib.extras, stature / library_stature(lib.joints))
        parts.append((path, joints, extras, lib.activity))
    if not parts:
        raise DataError(files[0].parent if len(files) > 1 else files[0],
                        f"none of the {len(files)} input files could be read: {skipped[0]}")
    extra_names = [e for e in parts[0][2] if all(e in p[2] for p in parts)]
    joints = np.concatenate([np.concatenate([p[1]] + [p[2][e][:, None] for e in extra_names],
                                            axis=1) for p in parts])
    keep = distinct(joints[:, :len(BODY_POINTS)], min_distance) if min_distance > 0 \
        else np.arange(len(joints))
    source = np.concatenate([np.full(len(p[1]), i) for i, p in enumerate(parts)])
    frame = np.concatenate([np.arange(len(p[1])) for p in parts])
    activity = np.concatenate([p[3] for p in parts])
    return {"joints": joints[keep].astype(np.float32),
            "joint_names": np.array(list(BODY_POINTS) + extra_names),
            "activity": activity[keep], "source": source[keep].astype(np.int64),
            "frame": frame[keep].astype(np.int64),
            "sources": np.array([str(p[0]) for p in parts]),
            "sources_sha256": np.array([contract.file_sha256(p[0]) for p in parts]),
            "poses_read": np.array(len(joints)),
            "skipped": np.array(skipped, dtype=str)}


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help=".bvh clips, .npz pose libraries, or folders holding them")
    parser.add_argument("--out", required=True, help="the library to write (.npz)")
    parser.add_argument("--stature", type=float, default=1.70,
                        help="metres every input's body is scaled to (default 1.70)")
    parser.add_argument("--min-distance", type=float, default=0.05,
                        help="keep a pose only if its RMS joint distance (metres, pelvis-centred, "
                             "hip line along +x) from every pose kept before it is at least this "
                             "(default 0.05; 0 keeps every pose)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip (and list) files the reader refuses instead of stopping")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    out = Path(args.out)
    if out.suffix != ".npz":
        raise UsageError(f"--out {out}: a pose library is written as .npz")
    if not args.stature > 0 or not args.min_distance >= 0:
        raise UsageError("--stature must be > 0 and --min-distance >= 0")
    arrays = collect(args.inputs, args.stature, args.min_distance, progress=not args.quiet,
                     skip_bad=args.skip_bad)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.save_npz(out, **arrays)
    print(f"read {len(arrays['sources'])} files, {int(arrays['poses_read'])} poses; kept "
          f"{len(arrays['frame'])} distinct poses (RMS joint distance "
          f">= {args.min_distance:g} m at stature {args.stature:g} m) of "
          f"{len(set(arrays['activity'].tolist()))} activities; wrote {out} "
          f"(use it with --pose-library or --poses)")
    if len(arrays["skipped"]):
        print(f"skipped {len(arrays['skipped'])} unreadable files (listed in the library's "
              f"'skipped' array):")
        for line in arrays["skipped"][:10]:
            print(f"  {line}")
    return 0
