"""Readers: official 2D annotation files -> ``persons.PersonTable`` (MCPC-21, original pixels).

    discover(source, root, splits) -> [(split, ann_file, image_dir)]   what a source root holds
    read_source(source, split, ann_file, image_dir, root) -> PersonTable one of those, read

One module per format: ``coco`` (person_keypoints JSON), ``mpii`` (official .mat and the
HRNet / mmpose JSON). ``screening`` holds the skip rules and their stable reason names;
``jpeg_size`` reads image sizes from file headers (MPII files carry none).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..persons import PersonTable
from .coco import read_coco
from .mpii import MAT_FILE, read_mpii_json, read_mpii_mat
from .screening import PERSON_REASONS, SKIP_REASONS

SOURCES = ("coco", "mpii")
# MPII JSON splits read when none are asked: trainval duplicates train + valid and test has no
# joints, so they are read only when asked for (or trainval when neither train nor valid exist).
_MPII_DEFAULT_JSON = ("train", "valid")


def discover(source: str, root: str | Path, splits: list[str] | None = None
             ) -> list[tuple[str, Path, Path]]:
    """The annotation files of a source root, as ``[(split, ann_file, image_dir)]``.

    COCO: ``<root>/annotations/person_keypoints_<split>.json``, images ``<root>/<split>/``;
    default: every such file. A split asked as ``train`` matches ``train2017`` when that is the
    only ``train*`` file.
    MPII: ``<root>/mpii_human_pose_v1_u12_1.mat`` if present and only train / test are asked
    (default train, as test has no joints), else ``<root>/annot/<split>.json`` (HRNet) or
    ``mpii_<split>.json`` in ``annotations/`` (mmpose), ``annot/`` or the root, for every split
    (default train and valid / val); images in ``<root>/images``.
    Raises DataError naming what was expected when nothing (or a split asked for) is found.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, f"{source} root folder not found")
    if source == "coco":
        return _discover_coco(root, splits)
    if source == "mpii":
        return _discover_mpii(root, splits)
    raise DataError(root, f"unknown source {source!r}; known: {', '.join(SOURCES)}")


def _discover_coco(root: Path, splits: list[str] | None) -> list[tuple[str, Path, Path]]:
    ann_dir = root / "annotations"
    found = {p.name[len("person_keypoints_"):-len(".json")]: p
             for p in sorted(ann_dir.glob("person_keypoints_*.json"))}
    if splits is None:
        if not found:
            raise DataError(ann_dir, "no COCO person keypoints file; expected "
                                     "annotations/person_keypoints_<split>.json, e.g. "
                                     "person_keypoints_train2017.json, person_keypoints_val2017.json")
        chosen = list(found)
    else:
        chosen = [_match_split(ann_dir, split, found, "person_keypoints_{}.json") for split in splits]
    return [(split, found[split], root / split) for split in chosen]


def _match_split(where: Path, split: str, found: dict, pattern: str) -> str:
    if split in found:
        return split
    prefixed = [name for name in found if name.startswith(split)]
    if len(prefixed) == 1:
        return prefixed[0]
    have = ", ".join(pattern.format(s) for s in found) or "none"
    raise DataError(where, f"no annotation file for split {split!r}: expected "
                           f"{pattern.format(split)} (found: {have})")


# Where converted MPII JSON splits live: HRNet ``annot/<split>.json``; mmpose
# ``annotations/mpii_<split>.json`` (train, val, trainval, test); the same ``mpii_<split>.json``
# files also beside the images or in ``annot/``. First place wins for a split.
_MPII_JSON_PLACES = (("annot", ""), ("annot", "mpii_"), ("annotations", "mpii_"), (".", "mpii_"))
_MPII_VALID = ("valid", "val")  # HRNet names it valid, mmpose val


def _discover_mpii(root: Path, splits: list[str] | None) -> list[tuple[str, Path, Path]]:
    images = root / "images"
    mat = root / MAT_FILE
    found: dict[str, Path] = {}
    for folder, prefix in _MPII_JSON_PLACES:
        for p in sorted((root / folder).glob(f"{prefix}*.json")):
            split = p.stem[len(prefix):]
            if not prefix and split.startswith("mpii_"):
                continue  # read under its own name by the mpii_ pattern
            found.setdefault(split, p)
    # The .mat defines train / test only; a split such as valid comes from the converted JSON,
    # and then every split does, so no person is read twice (valid is part of the .mat's train).
    if mat.is_file() and (splits is None or set(splits) <= {"train", "test"}):
        return [(split, mat, images) for split in (splits or ["train"])]
    if splits is None:
        chosen = [s for s in ("train",) if s in found]
        chosen += [s for s in _MPII_VALID if s in found][:1]
        if not chosen and "trainval" in found:
            chosen = ["trainval"]
        if not chosen:
            have = ", ".join(str(p.relative_to(root)) for p in found.values()) or "none"
            raise DataError(root, f"no MPII annotations; expected {MAT_FILE} or "
                                  "annot/{train,valid}.json (HRNet) or "
                                  "annotations/mpii_{train,val}.json (mmpose); found JSON: "
                                  f"{have}")
    else:
        chosen = [_match_split(root / "annot", split, found, "{}.json") for split in splits]
    return [(split, found[split], images) for split in chosen]


def read_source(source: str, split: str, ann_file: str | Path, image_dir: str | Path,
                root: str | Path | None = None) -> PersonTable:
    """Read one ``discover`` entry. For the MPII .mat, the table of ``split``."""
    ann_file = Path(ann_file)
    if source == "coco":
        return read_coco(ann_file, split, image_dir, root=root)
    if source == "mpii":
        if ann_file.suffix == ".mat":
            tables = read_mpii_mat(ann_file, image_dir, root=root)
            if split not in tables:
                raise DataError(ann_file, f"no {split!r} images (img_train holds "
                                          f"{', '.join(sorted(tables)) or 'none'})")
            return tables[split]
        return read_mpii_json(ann_file, split, image_dir, root=root)
    raise DataError(ann_file, f"unknown source {source!r}; known: {', '.join(SOURCES)}")


__all__ = ["discover", "read_source", "read_coco", "read_mpii_json", "read_mpii_mat",
           "SKIP_REASONS", "PERSON_REASONS", "SOURCES"]
