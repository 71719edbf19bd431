"""data_manifests/coco.yaml and mpii.yaml agree with the code that reads the datasets."""

from pathlib import Path

import pytest
import yaml

from mcpc_builder.joints import COCO17, MPII16
from mcpc_builder.readers import SKIP_REASONS

MANIFESTS = Path(__file__).parent.parent / "data_manifests"


@pytest.mark.parametrize("name,layout", [("coco", COCO17), ("mpii", MPII16)])
def test_manifest_joint_layout_and_skip_reasons_match_the_readers(name, layout):
    manifest = yaml.safe_load((MANIFESTS / f"{name}.yaml").read_text())
    assert manifest["name"] == name
    assert tuple(manifest["joint_layout"]) == layout.joint_names
    assert set(manifest["skipped_and_counted"]) <= set(SKIP_REASONS)
    for key in ("homepage", "obtain", "license", "visibility", "bbox", "pitfalls"):
        assert manifest[key], key


@pytest.mark.parametrize("name", ["coco", "mpii"])
def test_manifest_fixes_no_checksum_it_cannot_know(name):
    manifest = yaml.safe_load((MANIFESTS / f"{name}.yaml").read_text())
    files = [entry for entry in manifest["layout"] if not entry["path"].endswith("/")]
    assert files and all(entry["sha256"] is None for entry in files)
