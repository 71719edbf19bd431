"""The audit: label precision against synthetic ground-truth depth, through the real files."""

from __future__ import annotations

import json

import numpy as np

from mcpc_builder.audit import audit, reliability, score, table_text, true_order


def test_true_order_counts_small_depth_gaps_as_equal():
    za = np.array([1.0, 2.0, 3.00])
    zb = np.array([2.0, 1.0, 3.04])
    assert true_order(za, zb, 0.05).tolist() == [1, -1, 0]


def test_score_counts_an_ordered_label_on_an_equal_pair_as_wrong():
    label = np.array([1, -1, 1, 0], np.int8)
    truth = np.array([1, -1, 0, 0], np.int8)
    s = score(label, truth, np.array([0, 0, 1, 1]), np.array([0, 0, 1, 2]), num_persons=4)
    assert s["ordered_precision"] == 2 / 3 and s["equal_precision"] == 1.0
    assert s["pairs_per_person"] == 1.0 and s["persons_labelled"] == 0.75


def test_reliability_bins_precision_by_confidence():
    c = reliability(np.array([0.05, 0.95, 0.95]), np.array([False, True, False]))
    assert c["count"][0] == 1 and c["precision"][0] == 0.0
    assert c["count"][9] == 2 and c["precision"][9] == 0.5


def test_audit_on_a_small_synthetic_set_is_precise_and_writes_its_figures(tmp_path):
    figures = audit(tmp_path / "audit", n_images=60, seed=3, progress=False)
    overall = figures["overall"]
    assert overall["labels"] > 200
    assert overall["ordered_precision"] >= 0.9
    for name, d in figures["per_prior"].items():
        if d["enabled"] and d["ordered"] >= 50:
            assert d["ordered_precision"] >= 0.85, name
    assert (tmp_path / "audit" / "reliability.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert saved["overall"]["labels"] == overall["labels"]
    text = table_text(figures)
    assert "scene mix" in text and "OVERALL" in text
