"""COCO person keypoints (``annotations/person_keypoints_<split>.json``) -> ``PersonTable``.

Facts (../shared/reference/dataset-formats.md §1): keypoints are 17 x (x, y, v) in COCO-17 order,
0-based pixels; v = 0 unlabelled (x = y = 0 then, never a point), 1 labelled but not visible,
2 labelled and visible; bbox is xywh; image size comes from ``images[]``. Crowd annotations and
``num_keypoints == 0`` people are skipped and counted, as COCOeval ignores them. COCO's visibility
codes are MCPC's (0/1/2) as they are. Pelvis and thorax are synthesised as mid-hips and
mid-shoulders where both ends are labelled (``joints.convert``); upper neck and head top stay
unlabelled.

The file is memory-mapped and decoded with msgspec into Structs declaring only the fields used,
then every check and conversion runs on numpy arrays; the only Python work per annotation is
gathering its fields. Keypoints and boxes are first kept as raw JSON text and decoded a thousand
annotations at a time straight into float64 arrays (``json_file.number_arrays``): as Python lists
of floats they would be most of the reader's memory (~0.5 GB on COCO-train). Should that chunked
decode find a fault, or the file need the lenient parse (NaN tokens, numbers beyond float
range), the file is decoded once more into lists the usual way, which reports the fault exactly
or reads the file leniently; results never depend on the path taken. The kept persons are
sorted, gathered and converted to MCPC-21 a block at a time (``assemble_table``), with no
whole-table copies.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import msgspec
import numpy as np

from ..errors import DataError
from ..joints import COCO17, JointLayout
from ..persons import PersonTable
from . import keypoint_layouts
from .assemble import assemble_table, relative_image_dir, report_skips, unsafe_image_names
from .jpeg_size import image_size
from .json_file import decode_json, gc_paused, mapped_file, number_arrays
from .screening import (KEEP, REASON_CODE, SKIP_REASONS, count_reasons, first_reason,
                        screen_bbox, screen_points)

log = logging.getLogger("mcpc_builder.readers")
SOURCE = "coco"
NUM_VALUES = 3 * COCO17.num_joints  # 51: x, y, v per joint (COCO-17; other layouts: 3 * J)
PERSON_CATEGORY = 1


class _Image(msgspec.Struct, gc=False):
    id: int | None = None
    file_name: str | None = None
    width: float | None = None
    height: float | None = None


class _Annotation(msgspec.Struct, gc=False):
    id: int | None = None
    image_id: int | None = None
    category_id: int = PERSON_CATEGORY
    iscrowd: int | bool = 0
    num_keypoints: int | None = None
    keypoints: list[float] | None = None
    bbox: list[float] | None = None


class _Category(msgspec.Struct, gc=False):
    id: int | None = None
    name: str | None = None
    keypoints: list[str] | None = None


class _CocoFile(msgspec.Struct):
    images: list[_Image]
    annotations: list[_Annotation]
    categories: list[_Category] = []


class _RawAnnotation(msgspec.Struct, gc=False):
    """``_Annotation`` with keypoints and bbox left as JSON text (None if absent)."""

    id: int | None = None
    image_id: int | None = None
    category_id: int = PERSON_CATEGORY
    iscrowd: int | bool = 0
    num_keypoints: int | None = None
    keypoints: msgspec.Raw = None
    bbox: msgspec.Raw = None


class _RawCocoFile(msgspec.Struct):
    images: list[_Image]
    annotations: list[_RawAnnotation]
    categories: list[_Category] = []


@dataclass
class _Fields:
    """The annotations' fields as arrays (N annotations); -1 marks a missing number.

    kp_rows / box_rows (K,) int64 are the annotations whose keypoints (K, 51) / bbox (K, 4)
    float64 values were decoded: at least every one still in play at the keypoint checks.
    """

    category: np.ndarray
    crowd: np.ndarray
    ids_missing: np.ndarray  # id or image_id absent
    ann_id: np.ndarray
    image_id: np.ndarray
    num_kp: np.ndarray
    kp_len: np.ndarray       # -1: keypoints absent or null
    box_len: np.ndarray      # -1: bbox absent or null
    kp_rows: np.ndarray
    kp: np.ndarray
    box_rows: np.ndarray
    bbox: np.ndarray


_EXPECTED = "a COCO keypoints JSON object with 'images' and 'annotations' lists"


def read_coco(ann_file: str | Path, split: str, image_dir: str | Path | None = None, *,
              root: str | Path | None = None, check_images: bool = True) -> PersonTable:
    """Read one COCO person-keypoints file.

    Arguments:
        ann_file: ``<root>/annotations/person_keypoints_<split>.json``.
        split: the split name recorded in the table (e.g. ``val2017``).
        image_dir: the split's image folder; default ``<root>/<split>``.
        root: the source root that image paths are relative to; default ``ann_file``'s grandparent.
        check_images: skip (and count as ``missing_image``) persons whose image file is absent.
            The image folder itself must exist then; pass False to read annotations alone.
    Returns the kept persons in MCPC-21, grouped by image (image id, then annotation id order);
    ``skipped`` counts the rest by reason and ``images_without_people`` the images with no
    person annotation. ``source_ann_id`` is the COCO annotation id.
    """
    ann_file = Path(ann_file)
    root = Path(root) if root is not None else ann_file.parent.parent
    image_dir = Path(image_dir) if image_dir is not None else root / split
    with mapped_file(ann_file) as data:
        fields = coco = layout = None
        try:
            with gc_paused():
                coco = msgspec.json.decode(data, type=_RawCocoFile)
                layout, person = file_layout(ann_file, coco.categories)
                fields = _raw_fields(coco.annotations, layout, person)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # handled below, once the partial results are released
        images = coco.images if fields is not None else None
        coco = None
        if fields is None:
            # A fault, or non-standard numbers: decode into lists, which reports the fault
            # exactly (file, byte or record) or reads the file leniently.
            coco = decode_json(ann_file, _CocoFile, _EXPECTED, data=data)
            layout, person = file_layout(ann_file, coco.categories)
            with gc_paused():
                fields = _list_fields(coco.annotations, layout, person)
            images, coco = coco.images, None
    with gc_paused():
        return _table(fields, images, ann_file, split, image_dir, root, check_images, layout,
                      person)


def file_layout(ann_file: Path, categories: list[_Category]
                ) -> tuple[keypoint_layouts.FileLayout, int]:
    """(keypoint layout, person category id) from the file's ``categories``.

    The person category is the one category naming keypoints (or, among several, the one named
    ``person``); its ``keypoints`` names decide the layout. A file naming no keypoints at all is
    read as COCO-17 (logged). Unknown names are refused with one line.
    """
    named = [(i, c) for i, c in enumerate(categories) if c.keypoints]
    if len(named) > 1:
        named = [(i, c) for i, c in named if (c.name or "").lower() == "person"]
        if len(named) != 1:
            raise DataError(ann_file, "several categories list keypoints and not exactly one "
                                      "is named 'person'", record="categories")
    if not named:
        log.warning("%s: categories name no keypoints; reading them as COCO-17 by position",
                    ann_file)
        return keypoint_layouts.DEFAULT, PERSON_CATEGORY
    i, cat = named[0]
    layout = keypoint_layouts.resolve(cat.keypoints)
    if layout is None:
        raise DataError(ann_file, f"unknown keypoint layout ({len(cat.keypoints)} names: "
                                  f"{', '.join(map(str, cat.keypoints))}); known layouts: "
                                  f"{keypoint_layouts.KNOWN}",
                        record=f"categories[{i}].keypoints")
    return layout, PERSON_CATEGORY if cat.id is None else int(cat.id)


def _scalar_fields(anns: list) -> dict[str, np.ndarray]:
    """The per-annotation scalar fields (one light pass each)."""
    ann_id, no_id = _int_column([a.id for a in anns])
    image_id, no_image_id = _int_column([a.image_id for a in anns])
    return {
        "category": np.array([a.category_id for a in anns], np.int64),
        "crowd": np.array([a.iscrowd for a in anns], np.int64),
        "ids_missing": no_id | no_image_id,
        "ann_id": ann_id,
        "image_id": image_id,
        "num_kp": _int_column([a.num_keypoints for a in anns])[0],
    }


def _int_column(values: list[int | None]) -> tuple[np.ndarray, np.ndarray]:
    """(N,) int64 with -1 for None, and (N,) bool marking the Nones."""
    if None not in values:
        return np.fromiter(values, np.int64, count=len(values)), np.zeros(len(values), bool)
    return (np.array([-1 if v is None else v for v in values], np.int64),
            np.array([v is None for v in values], bool))


def _wanted(scalars: dict[str, np.ndarray], person: int) -> np.ndarray:
    """(N,) bool: annotations that may reach the keypoint checks (the values are needed)."""
    return ((scalars["category"] == person) & (scalars["crowd"] == 0)
            & ~scalars["ids_missing"] & (scalars["num_kp"] != 0))


def _raw_fields(anns: list[_RawAnnotation], layout: keypoint_layouts.FileLayout,
                person: int) -> _Fields:
    """Fields of annotations whose keypoints and bbox are raw JSON (decoded here in chunks).
    Raises msgspec.ValidationError where those are not null nor arrays of numbers."""
    num_values = 3 * layout.num_joints
    scalars = _scalar_fields(anns)
    wanted = _wanted(scalars, person)
    kp_len, kp = number_arrays([a.keypoints for a in anns], num_values, wanted)
    box_len, bbox = number_arrays([a.bbox for a in anns], 4, wanted)
    return _Fields(**scalars, kp_len=kp_len, box_len=box_len,
                   kp_rows=np.flatnonzero(wanted & (kp_len == num_values)), kp=kp,
                   box_rows=np.flatnonzero(wanted & (box_len == 4)), bbox=bbox)


def _list_fields(anns: list[_Annotation], layout: keypoint_layouts.FileLayout,
                 person: int) -> _Fields:
    """Fields of annotations decoded with keypoints and bbox as lists (the fallback path)."""
    NUM_VALUES = 3 * layout.num_joints  # noqa: N806
    scalars = _scalar_fields(anns)
    wanted = _wanted(scalars, person)
    kp_len = np.array([-1 if a.keypoints is None else len(a.keypoints) for a in anns], np.int64)
    box_len = np.array([-1 if a.bbox is None else len(a.bbox) for a in anns], np.int64)
    kp_rows = np.flatnonzero(wanted & (kp_len == NUM_VALUES))
    box_rows = np.flatnonzero(wanted & (box_len == 4))
    kp = np.fromiter(chain.from_iterable(anns[i].keypoints for i in kp_rows), np.float64,
                     count=len(kp_rows) * NUM_VALUES).reshape(-1, NUM_VALUES)
    bbox = np.fromiter(chain.from_iterable(anns[i].bbox for i in box_rows), np.float64,
                       count=len(box_rows) * 4).reshape(-1, 4)
    return _Fields(**scalars, kp_len=kp_len, box_len=box_len, kp_rows=kp_rows, kp=kp,
                   box_rows=box_rows, bbox=bbox)


def _rows_of(rows: np.ndarray, values: np.ndarray, want: np.ndarray) -> np.ndarray:
    """``values`` of the annotations ``want`` (sorted, a subset of the sorted ``rows``)."""
    if len(want) == len(rows):
        return values
    return values[np.searchsorted(rows, want)]


def _table(f: _Fields, image_list: list[_Image], ann_file: Path, split: str, image_dir: Path,
           root: Path, check_images: bool, layout: keypoint_layouts.FileLayout,
           person: int) -> PersonTable:
    images = _image_arrays(ann_file, image_list)
    del image_list
    ann_id, image_id, num_kp, kp_len, box_len = f.ann_id, f.image_id, f.num_kp, f.kp_len, f.box_len
    n = len(ann_id)
    num_joints = layout.num_joints
    reason = np.zeros(n, np.uint8)
    missing = f.ids_missing | (kp_len < 0) | (box_len < 0)

    first_reason(reason, f.category != person, "not_person")
    first_reason(reason, f.crowd != 0, "crowd")
    first_reason(reason, missing, "missing_field")
    first_reason(reason, _repeated(ann_id, f.ids_missing), "duplicate_annotation_id")
    # Image lookup: position of each annotation's image in the images arrays.
    n_images = len(images["id"])
    img_pos = np.minimum(np.searchsorted(images["id"], image_id), max(n_images - 1, 0))
    known = images["id"][img_pos] == image_id if n_images else np.zeros(n, bool)
    first_reason(reason, ~known, "missing_image")
    first_reason(reason, known & images["incomplete"][img_pos], "missing_field")
    unsafe = unsafe_image_names(images["file_name"])
    first_reason(reason, known & unsafe[img_pos], "unsafe_image_path")
    if check_images:
        first_reason(reason, known & ~_image_present(image_dir, images["file_name"], unsafe)
                     [img_pos], "missing_image")
    first_reason(reason, num_kp == 0, "no_keypoints")
    first_reason(reason, kp_len != 3 * num_joints, "bad_keypoint_count")
    if check_images:
        _check_image_headers(reason, image_dir, images, img_pos)

    # Keypoints and boxes of the records still in play, as arrays.
    live = np.flatnonzero(reason == KEEP)
    kp = _rows_of(f.kp_rows, f.kp, live).reshape(-1, num_joints, 3)
    sub = reason[live]
    vis = kp[..., 2]
    first_reason(sub, ~((vis == 0) | (vis == 1) | (vis == 2)).all(axis=1), "bad_visibility")
    if layout.layout.flags == "labelled":  # v > 0 only says "labelled": never claim occluded
        vis = np.where(vis > 0, 2.0, 0.0)
    labelled = vis > 0
    width = images["width"][img_pos[live]]
    height = images["height"][img_pos[live]]
    screen_points(sub, kp[..., :2], labelled, width, height)
    bbox = np.full((len(live), 4), np.nan)
    box_ok = box_len[live] == 4
    bbox[box_ok] = _rows_of(f.box_rows, f.bbox, live[box_ok])
    first_reason(sub, ~box_ok, "bad_bbox")
    screen_bbox(sub, bbox)
    reason[live] = sub

    skipped = count_reasons(reason)
    with_people = np.zeros(len(images["id"]), bool)
    with_people[img_pos[known]] = True
    if (~with_people).any():
        skipped["images_without_people"] = int((~with_people).sum())
    examples = {}
    for name in skipped:
        if name != "images_without_people":
            i = int(np.flatnonzero(reason == REASON_CODE[name])[0])
            examples[name] = f"annotations[{i}] (id {ann_id[i]})"
    report_skips(ann_file, skipped, examples)

    prefix = relative_image_dir(image_dir, root)
    paths = np.array([f"{prefix}/{name}" if prefix else name for name in images["file_name"]],
                     dtype=object)
    # The live records' arrays go as they are, with the rows to keep: assemble_table gathers
    # and converts them a block at a time (no whole-table copies). Another layout keeps only the
    # columns MCPC names, each as the body point its name denotes.
    points = kp[..., :2]
    source_layout = COCO17
    if layout.body_points != COCO17.body_points:
        cols = list(layout.columns)
        points, vis = points[:, cols], vis[:, cols]
        source_layout = JointLayout(layout.layout.name, layout.body_points, layout.body_points,
                                    ())
    table = assemble_table(
        SOURCE, split, source_layout,
        image_key=img_pos[live], ann_id=ann_id[live], points=points, visibility=vis,
        bbox=bbox, image_paths=paths, image_width=images["width"],
        image_height=images["height"], skipped=skipped, persons_read=n,
        rows=np.flatnonzero(sub == KEEP), image_ids=images["id"])
    table.keypoint_layout = layout.layout.name
    return table


def _repeated(ann_id: np.ndarray, id_missing: np.ndarray) -> np.ndarray:
    """(N,) bool: annotations whose id an earlier annotation of the file already has."""
    order = np.argsort(ann_id, kind="stable")
    ids = ann_id[order]
    again = np.zeros(len(ann_id), bool)
    again[order[1:]] = ids[1:] == ids[:-1]
    return again & ~id_missing


# Threads reading image headers (file opens dominate; the GIL is released while waiting).
HEADER_THREADS = 8


def _check_image_headers(reason: np.ndarray, image_dir: Path, images: dict,
                         img_pos: np.ndarray) -> None:
    """Read the header of every image a live record uses; skip (in ``reason``) persons whose
    image is unreadable, empty or corrupt (``bad_image``) or of another size than ``images[]``
    says (``image_size_mismatch``)."""
    from concurrent.futures import ThreadPoolExecutor

    used = np.unique(img_pos[reason == KEEP])
    if len(used) == 0:
        return
    names = images["file_name"][used]

    def size_of(name: str):
        try:
            return image_size(image_dir / name)
        except DataError:
            return None

    if len(used) > 64:
        with ThreadPoolExecutor(HEADER_THREADS, thread_name_prefix="mcpc-header") as pool:
            sizes = list(pool.map(size_of, names, chunksize=256))
    else:
        sizes = [size_of(name) for name in names]
    bad = np.array([s is None for s in sizes], bool)
    wh = np.array([s if s is not None else (-1, -1) for s in sizes], np.float64).reshape(-1, 2)
    mismatch = ~bad & ((wh[:, 0] != images["width"][used]) | (wh[:, 1] != images["height"][used]))
    bad_image = np.zeros(len(images["id"]), bool)
    wrong_size = np.zeros(len(images["id"]), bool)
    bad_image[used] = bad
    wrong_size[used] = mismatch
    first_reason(reason, bad_image[img_pos], "bad_image")
    first_reason(reason, wrong_size[img_pos], "image_size_mismatch")


def _image_arrays(ann_file: Path, images: list[_Image]) -> dict[str, np.ndarray]:
    """Images sorted by id: id (M,) int64, file_name (M,) object, width/height (M,) float64
    (NaN if missing), incomplete (M,) bool (a field missing). Images without id are dropped."""
    with_id = [im for im in images if im.id is not None]
    ids = np.array([im.id for im in with_id], np.int64)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    if len(ids) > 1 and (np.diff(ids) == 0).any():
        dup = int(ids[np.flatnonzero(np.diff(ids) == 0)[0]])
        raise DataError(ann_file, "image id listed twice", record=f"images (id {dup})")
    with_id = [with_id[i] for i in order]
    width = np.array([np.nan if im.width is None else im.width for im in with_id], np.float64)
    height = np.array([np.nan if im.height is None else im.height for im in with_id], np.float64)
    names = np.array([im.file_name or "" for im in with_id], dtype=object)
    incomplete = np.isnan(width) | np.isnan(height) | (names == "")
    # A size of 0 or less cannot hold a point; treat it like a missing size.
    incomplete |= ~(np.nan_to_num(width) > 0) | ~(np.nan_to_num(height) > 0)
    return {"id": ids, "file_name": names, "width": width, "height": height,
            "incomplete": np.asarray(incomplete, bool)}


def _image_present(image_dir: Path, file_names: np.ndarray, unsafe: np.ndarray) -> np.ndarray:
    """(M,) bool: which file names exist in ``image_dir`` (one directory listing, not M stats);
    ``unsafe`` names (which could leave the folder) are never looked up."""
    try:
        present = set(os.listdir(image_dir))
    except FileNotFoundError:
        raise DataError(image_dir, "image folder not found (pass check_images=False to read the "
                                   "annotations without images)") from None
    except NotADirectoryError:
        raise DataError(image_dir, "expected an image folder, found a file") from None
    # file_name may hold a sub-path; check those one by one.
    return np.array([False if bad else name in present if "/" not in name
                     else (image_dir / name).is_file()
                     for name, bad in zip(file_names, unsafe)], bool)


__all__ = ["read_coco", "SKIP_REASONS"]
