"""`mcpc-build preview` draws labelled images as PNG."""

from __future__ import annotations

import cv2

from mcpc_builder.build import build
from mcpc_builder.preview import preview


def test_preview_writes_pngs_of_labelled_images(tmp_path):
    from mcpc_builder.synth import write_dataset

    root = write_dataset("coco", tmp_path / "coco", seed=4, n_images=12)
    out = build(["coco"], tmp_path / "b", roots={"coco": root}, progress=False)
    pngs = preview(out, tmp_path / "png", n=3)
    assert 1 <= len(pngs) <= 3
    for png in pngs:
        img = cv2.imread(str(png))
        assert img is not None and img.shape[0] > 100 and img.shape[1] > 100
