"""The synthetic world: scenes of people seen by cameras, written as datasets in official formats.

``scene`` draws scenes from a ``worlds.WorldConfig`` (``body``, ``person``, ``pose_families``,
``pose_library``, ``gait``, ``chair``, ``ground``, ``camera``, ``visibility``; ``world`` re-exports
them), ``annotator`` turns exact keypoints into an annotator's clicks and flags, ``render`` draws
the images, and ``coco_format`` / ``mpii_format`` / ``h36m_format`` / ``mpi3dhp_format`` write
datasets. Named worlds: ``worlds.load_world("dev" | "held_out" | path)``.
``write_dataset`` is the one entry point; the embedded default data (``default_data``), the test
fixtures and the ground truth of the label audit come from it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

FORMATS = ("coco", "mpii", "h36m", "3dhp")
DEFAULT_IMAGES = {"coco": 240, "mpii": 160}
# Video formats are written by their own modules: ``write(out_dir, seed, n_frames=None)``.
_VIDEO_WRITERS = {"h36m": "mcpc_builder.synth.h36m_format",
                  "3dhp": "mcpc_builder.synth.mpi3dhp_format"}


def write_dataset(fmt: str, out_dir, seed: int, n_images: int | None = None,
                  progress: bool = False, config=None) -> Path:
    """Write a synthetic dataset in an official format into ``out_dir``; return the root.

    Arguments:
        fmt: ``coco`` | ``mpii`` | ``h36m`` | ``3dhp``.
        out_dir: root directory (created; existing files of the same names are replaced).
        seed: random seed; the same seed gives byte-identical JSON and identical arrays.
        n_images: images (COCO, MPII) or frames (h36m, 3dhp); None for the format's default.
        progress: show a progress bar.
        config: a ``world.WorldConfig`` for the image formats (None: the default world); the
            video formats draw their own single-person motions.
    """
    out_dir = Path(out_dir)
    if config is None:
        from .worlds import WorldConfig

        config = WorldConfig()
    if fmt == "coco":
        from . import coco_format

        return coco_format.write(out_dir, seed, n_images or DEFAULT_IMAGES["coco"],
                                 config=config, progress=progress)
    if fmt == "mpii":
        from . import mpii_format

        return mpii_format.write(out_dir, seed, n_images or DEFAULT_IMAGES["mpii"],
                                 config=config, progress=progress)
    if fmt in _VIDEO_WRITERS:
        module = importlib.import_module(_VIDEO_WRITERS[fmt])
        return Path(module.write(out_dir, seed, n_frames=n_images))
    raise ValueError(f"unknown synthetic format {fmt!r}; choose one of {', '.join(FORMATS)}")
