"""Ablation arm ``wsp_library``: the same pre-training images built with the pose-library prior.

The opt-in ``pose_library`` prior (``mcpc_builder/priors/pose_library.py``, ``mcpc-build
--pose-library FILE``) labels a person's joint pairs by the nearest views of a 3D pose library.
Would its labels make pre-training transfer? This builds the ablation's pre-training source again,
with the build's own prior config plus the pose-library prior reading the mocap dev set
(``../shared/fixtures/mocap-dev``; its settings as chosen on that set and the dev world, never on
the ablation), into ``OUT/mcpc-library``: the product's own path, not a relabelled copy. No ground
truth is read to make the labels; ``truth`` only scores them.

The arm pre-trains on the training splits only, like every arm; the depth-order probe reads the
plain build, so it still scores pairs that no prior of the plain build labelled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcpc_builder.audit import true_order
from mcpc_builder.contract import read_manifest


def default_library() -> Path:
    """The mocap dev set next to the checkout (``../shared/fixtures/mocap-dev/poses.npz``)."""
    from pipelines.bench.mocap_priors import DEFAULT_POSES

    return Path(DEFAULT_POSES)


def same_person_scores(build_dir: Path, splits, truth: dict[int, np.ndarray],
                       tolerance: float = 0.05) -> dict:
    """Same-person labels of the ``splits`` people of a build: count, labels per person and
    precision against ``truth`` (annotation id -> (21, 3) joints, camera frame, metres)."""
    from wsp_model.mcpc_data import read_build

    t = read_build(build_dir)
    people = np.flatnonzero(np.isin(t.split, list(splits)))
    # True depth per person row, looked up once per person (NaN: no ground truth).
    depth = np.full((len(t.person_id), 21), np.nan)
    has = np.zeros(len(t.person_id), bool)
    for row in people:
        joints = truth.get(int(t.source_ann_id[row]))
        if joints is not None:
            depth[row], has[row] = joints[:, 2], True
    same = (t.pair_a == t.pair_b) & np.isin(t.pair_a, people)
    a, ja, jb, lab = t.pair_a[same], t.joint_a[same], t.joint_b[same], t.label[same]
    known = has[a]
    truth_order = true_order(depth[a, ja][known], depth[a, jb][known], tolerance)
    return {"labels": int(same.sum()), "people": int(len(people)),
            "labels_per_person": float(same.sum() / max(len(people), 1)),
            "scored": int(known.sum()),
            "precision": float((truth_order == lab[known]).mean()) if known.any() else None}


def add_library_labels(build_dir: str | Path, out_dir: str | Path, splits,
                       truth: dict[int, np.ndarray] | None = None,
                       library: str | Path | None = None, workers: int = 1,
                       progress: bool = False, reuse: bool = False) -> tuple[Path, dict]:
    """Build ``build_dir``'s sources again into ``out_dir`` (replaced) with its prior config plus
    the pose-library prior reading ``library`` (default: the mocap dev set); return the folder
    and the same-person labels of the ``splits`` people in both builds (scored against ``truth``
    where given). ``reuse``: keep an ``out_dir`` the caller knows was built from the same inputs
    (a resumed ablation; a rebuild would change its manifest and so stop its runs resuming)."""
    from mcpc_builder.build import build
    from mcpc_builder.priors.config import PriorConfig
    from wsp_model.mcpc_data import source_roots

    build_dir, out_dir = Path(build_dir), Path(out_dir)
    library = Path(library) if library is not None else default_library()
    manifest = read_manifest(build_dir)
    roots = source_roots(manifest, build_dir / "manifest.json")
    config = PriorConfig.from_dict(manifest.get("prior_config")).with_pose_library(library)
    limits = manifest.get("limits", {})
    extra = {"max_persons_per_image": limits["max_persons_per_image"]} \
        if "max_persons_per_image" in limits else {}
    if not reuse:
        build(list(roots), out_dir, roots=roots, config=config, overwrite=True, progress=progress,
              workers=workers, check_images=limits.get("check_images", True), **extra)
    info = {"library": read_manifest(out_dir)["pose_library"]}
    if truth:
        info["plain"] = same_person_scores(build_dir, splits, truth)
        info["with_library"] = same_person_scores(out_dir, splits, truth)
    return out_dir, info
