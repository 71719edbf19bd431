"""MPII Human Pose -> ``PersonTable``: the official ``.mat`` and the HRNet / mmpose JSON.

Facts (../shared/reference/dataset-formats.md §2): 16 joints in MPII order (right side first),
MATLAB 1-based pixels (we subtract 1 from joints and head boxes), no image size in either file
(read from each image's header), no person bounding box.

Visibility in MCPC terms (0 unlabelled / 1 labelled-occluded / 2 visible):
- ``.mat``: a point present in ``annopoints.point`` is labelled; ``is_visible`` 1 -> 2, 0 -> 1,
  empty / missing / unparsable -> 2 (the common reading: an unmarked labelled point is visible).
- JSON: ``joints_vis`` means *labelled*, not visible (HRNet maintainer, human-pose-estimation.
  pytorch#7), and the JSON keeps no occlusion flag, so every labelled joint becomes 2. A joint at
  ``[-1, -1]`` is unlabelled whatever ``joints_vis`` says.

Bounding box (MPII has none): the extent of the labelled joints, united with the head rectangle
where the ``.mat`` gives one, enlarged on every side by ``BBOX_MARGIN`` x its longer side (at
least ``MIN_BBOX_MARGIN_PX``; joints are centres, the body reaches past wrists, ankles and head
top), then clipped to the image.

``source_ann_id``: JSON: the record's index in the file's list; ``.mat``: imgidx * 100 + ridx
(both 0-based). Persons are grouped by image, images in file-name order, and within an image
by ``source_ann_id`` (list index, or annorect order).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import msgspec
import numpy as np

from ..errors import DataError
from ..joints import MPII16
from ..persons import PersonTable
from .assemble import (assemble_table, numeric_image_ids, relative_image_dir, report_skips,
                       unsafe_image_names)
from .jpeg_size import ImageNotFound, image_size
from .json_file import decode_json, gc_paused
from .screening import KEEP, REASON_CODE, count_reasons, screen_bbox, screen_points

SOURCE = "mpii"
NUM_JOINTS = MPII16.num_joints  # 16
BBOX_MARGIN = 0.1
MIN_BBOX_MARGIN_PX = 4.0
MAT_FILE = "mpii_human_pose_v1_u12_1.mat"
ANN_ID_STRIDE = 100  # .mat ann id = imgidx * 100 + ridx; no MPII image has 100 people


# ----------------------------------------------------------------------------- shared tail


def _finish(path: Path, split: str, *, reason: np.ndarray, image_name: list, ann_id: np.ndarray,
            points: np.ndarray, labelled: np.ndarray, visible: np.ndarray, head: np.ndarray,
            image_dir: Path, root: Path, examples_of, persons_read: int,
            images_without_people: int = 0) -> PersonTable:
    """Screen, size, box and assemble MPII person records of one split.

    Arguments:
        reason: (N,) uint8 codes already set for structural faults (updated here).
        image_name: N image file names (None where missing; then reason is set).
        ann_id: (N,) int64; points: (N, 16, 2) float64, 0-based pixels; labelled: (N, 16) bool;
        visible: (N, 16) uint8 MCPC code for labelled joints (1 or 2); head: (N, 4) float64
        x1, y1, x2, y2 0-based pixels, NaN where absent.
        examples_of: callable(i) -> str naming record i, for the skip log.
    """
    n = len(ann_id)
    width = np.full(n, np.nan)
    height = np.full(n, np.nan)
    live = np.flatnonzero(reason == KEEP)
    live_names = [image_name[i] for i in live]
    distinct = sorted(set(live_names))      # each image's name is checked once, not per person
    unsafe = dict(zip(distinct, unsafe_image_names(distinct).tolist()))
    reason[live[np.array([unsafe[name] for name in live_names], bool)]] = \
        REASON_CODE["unsafe_image_path"]
    names = [name for name in distinct if not unsafe[name]]
    if names and not image_dir.is_dir():
        raise DataError(image_dir, "image folder not found: MPII files hold no image sizes, so "
                                   "the reader takes them from the images")
    sizes: dict[str, tuple[float, float] | str] = {}
    for name in names:
        try:
            sizes[name] = image_size(image_dir / name)
        except ImageNotFound:
            sizes[name] = "missing_image"
        except DataError:
            sizes[name] = "bad_image"
    for i in np.flatnonzero(reason == KEEP):
        size = sizes[image_name[i]]
        if isinstance(size, str):
            reason[i] = REASON_CODE[size]
        else:
            width[i], height[i] = size

    live = reason == KEEP
    sub = reason[live]
    screen_points(sub, points[live], labelled[live], width[live], height[live])
    reason[live] = sub
    bbox = derive_bbox(points, labelled, head, width, height)
    live = reason == KEEP
    sub = reason[live]
    screen_bbox(sub, bbox[live])
    reason[live] = sub

    skipped = count_reasons(reason)
    if images_without_people:
        skipped["images_without_people"] = images_without_people
    examples = {name: examples_of(int(np.flatnonzero(reason == REASON_CODE[name])[0]))
                for name in skipped if name != "images_without_people"}
    report_skips(path, skipped, examples)

    keep = np.flatnonzero(reason == KEEP)
    if len(keep) == 0:
        table = PersonTable.empty(SOURCE, split)
        table.skipped, table.persons_read = skipped, persons_read
        return table
    kept_names = [image_name[i] for i in keep]
    unique_names, image_key = np.unique(np.array(kept_names, dtype=object), return_inverse=True)
    first = np.zeros(len(unique_names), np.int64)
    first[image_key[::-1]] = keep[::-1]  # any person of the image gives its size
    prefix = relative_image_dir(image_dir, root)
    paths = [f"{prefix}/{name}" if prefix else name for name in unique_names]
    vis = np.where(labelled, visible, 0).astype(np.uint8)
    return assemble_table(
        SOURCE, split, MPII16,
        image_key=image_key.astype(np.int64).reshape(-1), ann_id=ann_id[keep],
        points=points[keep], visibility=vis[keep], bbox=bbox[keep],
        image_paths=np.array(paths, dtype=object), image_width=width[first],
        image_height=height[first], skipped=skipped, persons_read=persons_read,
        image_ids=numeric_image_ids(unique_names))


def derive_bbox(points: np.ndarray, labelled: np.ndarray, head: np.ndarray, width: np.ndarray,
                height: np.ndarray) -> np.ndarray:
    """(N, 4) float64 xywh boxes from labelled joints and head boxes (see module docstring).

    Arguments:
        points: (N, J, 2) float64, 0-based pixels; labelled: (N, J) bool;
        head: (N, 4) float64 x1, y1, x2, y2 (NaN where absent); width, height: (N,) pixels.
    Rows with neither a labelled joint nor a head box come out NaN.
    """
    pts = np.where(labelled[..., None], points, np.nan)
    head_pts = head.reshape(-1, 2, 2)  # (x1, y1), (x2, y2)
    allp = np.concatenate([pts, head_pts], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
        lo = np.nanmin(allp, axis=1)
        hi = np.nanmax(allp, axis=1)
    size = hi - lo
    margin = np.maximum(BBOX_MARGIN * size.max(axis=1), MIN_BBOX_MARGIN_PX)[:, None]
    lo = np.maximum(lo - margin, 0.0)
    hi = np.minimum(hi + margin, np.stack([width, height], axis=1))
    return np.concatenate([lo, hi - lo], axis=1)


def _root_and_images(path: Path, image_dir, root, default_root: Path) -> tuple[Path, Path]:
    root = Path(root) if root is not None else default_root
    return root, Path(image_dir) if image_dir is not None else root / "images"


# ----------------------------------------------------------------------------- JSON


class _Record(msgspec.Struct, gc=False):
    image: str | None = None
    center: list[float] | None = None
    scale: float | None = None
    joints: list[list[float]] | None = None
    joints_vis: list[float] | None = None


_JSON_EXPECTED = "a JSON list of MPII person records (image, center, scale, joints, joints_vis)"


def read_mpii_json(path: str | Path, split: str, image_dir: str | Path | None = None, *,
                   root: str | Path | None = None) -> PersonTable:
    """Read an HRNet / mmpose converted MPII JSON (``annot/<split>.json``).

    Arguments:
        path: the JSON list file; split: the split name recorded (train, valid, ...; a split
            named ``test*`` has no joints, its records are counted as test_split_unlabelled).
        image_dir: folder of the images; default ``<root>/images``.
        root: source root for image paths; default the JSON's grandparent (``annot/..``).
    """
    path = Path(path)
    root, image_dir = _root_and_images(path, image_dir, root, path.parent.parent)
    records = decode_json(path, list[_Record], _JSON_EXPECTED)
    with gc_paused():
        return _json_table(path, split, records, image_dir, root)


def _json_table(path: Path, split: str, records: list[_Record], image_dir: Path,
                root: Path) -> PersonTable:
    n = len(records)
    reason = np.zeros(n, np.uint8)
    points = np.full((n, NUM_JOINTS, 2), np.nan)
    labelled = np.zeros((n, NUM_JOINTS), bool)
    unlabelled_split = split.lower().startswith("test")
    for i, rec in enumerate(records):
        if rec.image is None or (rec.joints is None and not unlabelled_split):
            reason[i] = REASON_CODE["missing_field"]
        elif rec.joints is None:
            reason[i] = REASON_CODE["test_split_unlabelled"]
        elif (len(rec.joints) != NUM_JOINTS or any(len(j) != 2 for j in rec.joints)
              or (rec.joints_vis is not None and len(rec.joints_vis) != NUM_JOINTS)):
            reason[i] = REASON_CODE["bad_keypoint_count"]
        else:
            points[i] = rec.joints
            vis = np.asarray(rec.joints_vis if rec.joints_vis is not None else [1] * NUM_JOINTS,
                             np.float64)
            if not np.isin(vis, (0, 1, 2)).all():
                reason[i] = REASON_CODE["bad_visibility"]
            labelled[i] = vis > 0
    missing = (points[..., 0] == -1) & (points[..., 1] == -1)
    labelled &= ~missing
    points -= 1.0  # MATLAB 1-based -> 0-based
    visible = np.full((n, NUM_JOINTS), 2, np.uint8)  # the JSON keeps no occlusion flag
    head = np.full((n, 4), np.nan)
    names = [rec.image for rec in records]
    # Group by image name, then list index: a stable sort of the records by name.
    order = np.argsort(np.array([name or "" for name in names], dtype=object), kind="stable")
    table = _finish(
        path, split, reason=reason[order], image_name=[names[i] for i in order],
        ann_id=order.astype(np.int64), points=points[order], labelled=labelled[order],
        visible=visible[order], head=head[order], image_dir=image_dir, root=root,
        examples_of=lambda i: f"[{int(order[i])}] (image {names[order[i]]!r})",
        persons_read=n)
    return table


# ----------------------------------------------------------------------------- .mat


def read_mpii_mat(path: str | Path, image_dir: str | Path | None = None, *,
                  root: str | Path | None = None) -> dict[str, PersonTable]:
    """Read the official ``mpii_human_pose_v1_u12_1.mat`` (struct ``RELEASE``).

    Arguments:
        path: the .mat file; image_dir: folder of the images, default ``<root>/images``;
        root: source root for image paths, default the .mat's folder.
    Returns {"train": table, "test": table} for the splits ``img_train`` holds. Test images carry
    no joints: their persons are counted as ``test_split_unlabelled``.
    """
    path = Path(path)
    root, image_dir = _root_and_images(path, image_dir, root, path.parent)
    release = _load_release(path)
    annolist = _as_list(_field(release, "annolist"))
    img_train = np.atleast_1d(np.asarray(_field(release, "img_train"))).ravel()
    if len(img_train) != len(annolist):
        raise DataError(path, f"RELEASE.img_train has {len(img_train)} entries but "
                              f"RELEASE.annolist has {len(annolist)}")
    per_split: dict[str, dict] = {}
    for imgidx, entry in enumerate(annolist):
        split = "train" if _number(img_train[imgidx]) == 1 else "test"
        acc = per_split.setdefault(split, {"rows": [], "empty_images": 0})
        rects = _as_list(getattr(entry, "annorect", None))
        if not rects:
            acc["empty_images"] += 1
        name = _image_name(entry)
        for ridx, rect in enumerate(rects):
            acc["rows"].append(_parse_rect(imgidx, ridx, name, rect, split))
    tables = {}
    for split, acc in per_split.items():
        rows = acc["rows"]
        n = len(rows)
        reason = np.array([r[0] for r in rows], np.uint8).reshape(n)
        points = np.array([r[3] for r in rows], np.float64).reshape(n, NUM_JOINTS, 2)
        labelled = np.array([r[4] for r in rows], bool).reshape(n, NUM_JOINTS)
        visible = np.array([r[5] for r in rows], np.uint8).reshape(n, NUM_JOINTS)
        head = np.array([r[6] for r in rows], np.float64).reshape(n, 4)
        ann_id = np.array([r[1] for r in rows], np.int64).reshape(n)
        image_name = [r[2] for r in rows]
        tables[split] = _finish(
            path, split, reason=reason, image_name=image_name, ann_id=ann_id,
            points=points - 1.0, labelled=labelled, visible=visible, head=head - 1.0,
            image_dir=image_dir, root=root,
            examples_of=lambda i, rows=rows: (f"annolist({rows[i][1] // ANN_ID_STRIDE + 1})"
                                              f".annorect({rows[i][1] % ANN_ID_STRIDE + 1})"),
            persons_read=n, images_without_people=acc["empty_images"])
    return tables


def _load_release(path: Path):
    import scipy.io

    if not path.exists():
        raise DataError(path, "annotation file not found")
    try:
        mat = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except NotImplementedError:
        raise DataError(path, "MATLAB v7.3 (HDF5) file; the official MPII file is MATLAB v5") \
            from None
    except Exception as err:  # scipy raises ValueError, TypeError, MatReadError, EOFError...
        raise DataError(path, f"not a readable MATLAB .mat file ({type(err).__name__}: {err})") \
            from None
    if "RELEASE" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(path, f"no struct RELEASE (found {found}); expected the official "
                              f"{MAT_FILE}")
    release = mat["RELEASE"]
    for name in ("annolist", "img_train"):
        if _field(release, name) is None:
            raise DataError(path, f"RELEASE has no field {name!r}", record="RELEASE")
    return release


def _field(struct, name: str):
    """A struct field, or None if the value is not a struct or lacks the field."""
    return getattr(struct, name, None) if hasattr(struct, "_fieldnames") else None


def _as_list(value) -> list:
    """A MATLAB struct (array) under squeeze_me as a Python list: one struct -> [struct]."""
    if value is None:
        return []
    if hasattr(value, "_fieldnames"):
        return [value]
    if isinstance(value, np.ndarray):
        if value.size == 0 or value.dtype != object:
            return []
        return [v for v in value.ravel() if hasattr(v, "_fieldnames")]
    return []


def _number(value) -> float | None:
    """A MATLAB scalar as float: None if empty / missing / unparsable ('1' and '0' accepted)."""
    if isinstance(value, (int, float, np.integer, np.floating)):  # the common case
        return float(value)
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.size != 1:
            return None
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        value = value.strip()
        try:
            return float(value) if value else None
        except ValueError:
            return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _image_name(entry) -> str | None:
    image = getattr(entry, "image", None)
    if isinstance(image, np.ndarray) and image.size == 1 and image.dtype == object:
        image = image.item()
    name = getattr(image, "name", None)
    if isinstance(name, np.ndarray):
        name = name.item() if name.size == 1 else None
    return name if isinstance(name, str) and name.strip() else None


def _parse_rect(imgidx: int, ridx: int, name: str | None, rect, split: str) -> tuple:
    """One annorect -> (reason code, ann_id, image name, points (16,2) 1-based, labelled (16,),
    visible (16,) MCPC code, head (4,) 1-based)."""
    points = np.full((NUM_JOINTS, 2), np.nan)
    labelled = np.zeros(NUM_JOINTS, bool)
    visible = np.full(NUM_JOINTS, 2, np.uint8)
    corners = [_number(getattr(rect, k, None)) for k in ("x1", "y1", "x2", "y2")]
    head = np.array([np.nan if v is None else v for v in corners], np.float64)
    ann_id = imgidx * ANN_ID_STRIDE + ridx
    row = lambda code: (code, ann_id, name, points, labelled, visible, head)  # noqa: E731
    annopoints = getattr(rect, "annopoints", None)
    point_list = _as_list(getattr(annopoints, "point", None)) if hasattr(
        annopoints, "_fieldnames") else []
    if not point_list:
        if split == "test":
            return row(REASON_CODE["test_split_unlabelled"])
        return row(REASON_CODE["no_keypoints"])
    if name is None:
        return row(REASON_CODE["missing_field"])
    for p in point_list:
        jid, x, y = (_number(getattr(p, k, None)) for k in ("id", "x", "y"))
        if jid is None or x is None or y is None:
            return row(REASON_CODE["missing_field"])
        if jid != int(jid) or not 0 <= jid < NUM_JOINTS or labelled[int(jid)]:
            return row(REASON_CODE["bad_keypoint_count"])
        j = int(jid)
        points[j] = (x, y)
        labelled[j] = True
        vis = _number(getattr(p, "is_visible", None))
        visible[j] = 1 if vis == 0 else 2
    return row(KEEP)
