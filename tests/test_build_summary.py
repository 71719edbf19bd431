"""The build's label accounting: every produced label is kept, merged as a duplicate, or dropped
for a named reason, and the summary splits kept labels into same-person and cross-person."""

from __future__ import annotations

import json

import pytest

from mcpc_builder.build import build, summary_table
from mcpc_builder.synth import write_dataset


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = write_dataset("coco", tmp_path_factory.mktemp("coco"), seed=5, n_images=40)
    out = build(["coco"], tmp_path_factory.mktemp("b") / "b", roots={"coco": root},
                progress=False)
    return json.loads((out / "manifest.json").read_text())


def test_produced_labels_add_up_to_kept_merged_and_dropped(built):
    lab = built["labels"]
    for name, d in lab["per_prior"].items():
        assert d["merged_duplicates"] >= 0, name
        assert d["produced"] == (d["kept"] + d["merged_duplicates"] + d["dropped_contradictions"]
                                 + d["dropped_person_pair_conflicts"]), name
        assert d["kept"] == d["kept_same_person"] + d["kept_cross_person"], name
    assert lab["kept"] == built["totals"]["pairs"]
    assert lab["produced"] == (lab["kept"] + lab["merged_duplicates"]
                               + lab["contradictions_dropped"]
                               + lab["person_pair_conflicts_dropped"])
    # Several rules give the same cross-person labels: some really are merged.
    assert lab["merged_duplicates"] > 0
    assert lab["kept_same_person"] > 0 and lab["kept_cross_person"] > 0


def test_summary_table_shows_the_split_and_the_accounting(built):
    text = summary_table(built)
    assert "same-pers" in text and "cross-pers" in text and "merged dup" in text
    assert "total" in text
