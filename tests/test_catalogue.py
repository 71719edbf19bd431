"""docs/bad-inputs.md names a test for every bad input: each named test must exist."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REF = re.compile(r"`((?:tests/)?(test_[a-z0-9_]+\.py))?::([A-Za-z_0-9]+)")


def test_every_test_the_bad_input_catalogue_names_exists():
    text = (REPO / "docs" / "bad-inputs.md").read_text()
    missing, named = [], 0
    for line in text.splitlines():
        current = None   # "::name" after "tests/file.py::name" in one cell means the same file
        for match in REF.finditer(line):
            current = match.group(2) or current
            assert current, f"a test without its file: {line[:80]}"
            source = (REPO / "tests" / current).read_text()
            named += 1
            if not re.search(rf"^def {match.group(3)}\(", source, re.M):
                missing.append(f"{current}::{match.group(3)}")
    assert named > 80 and not missing, missing
