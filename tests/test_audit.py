"""The audit: label precision against synthetic ground-truth depth, through the real files."""

from __future__ import annotations

import json

import numpy as np

import pytest

from mcpc_builder.audit import (audit, coverage, group_scores, orderable_pairs, reliability, score,
                                table_text, true_order)


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
    c = reliability(np.array([0.05, 0.95, 0.97, 0.92]), np.array([False, True, False, True]))
    assert c["count"][0] == 1 and c["precision"][0] == 0.0
    assert c["count"][-1] == 2 and c["precision"][-1] == 0.5  # [0.95, 1]
    assert c["count"][-2] == 1 and c["precision"][-2] == 1.0  # [0.9, 0.95)
    # A float32 confidence of 0.9 is in the bin that starts at 0.9.
    assert reliability(np.float32([0.9]), np.array([True]))["count"][-2] == 1


def test_orderable_pairs_count_labelled_pairs_apart_by_the_tolerance():
    depth = np.array([[1.0, 1.02, 1.5, 2.0], [3.0, 3.0, 3.0, 3.0]])
    labelled = np.array([[True, True, True, False], [True, True, True, True]])
    # person 0: (0,2) and (1,2) apart; (0,1) equal; joint 3 unlabelled. person 1: all equal.
    assert orderable_pairs(depth, labelled, 0.05).tolist() == [2, 0]
    cov = coverage(np.array([2, 0]), np.array([10, 4]), np.array([1, 1, -1], np.int8),
                   np.array([1, 0, 1], np.int8), np.array([True, True, False]))
    # one right same-person label (the ordered-right one; a label on an equal pair and a
    # cross-person label do not count) of 2 orderable pairs
    assert cov["right_labels"] == 1 and cov["recall"] == 0.5
    assert cov["orderable_per_person_median_10plus"] == 2.0


@pytest.fixture(scope="module")
def small_audit(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit") / "audit"
    return out, audit(out, n_images=40, seed=3, progress=False, world="dev")


def test_audit_on_a_small_synthetic_set_is_precise_and_writes_its_figures(small_audit):
    out, figures = small_audit
    overall = figures["overall"]
    assert overall["labels"] > 200
    assert overall["ordered_precision"] >= 0.9
    for name, d in figures["per_prior"].items():
        if d["enabled"] and d["ordered"] >= 50:
            assert d["ordered_precision"] >= 0.85, name
    assert (out / "reliability.png").stat().st_size > 1000
    saved = json.loads((out / "audit.json").read_text())
    assert saved["overall"]["labels"] == overall["labels"]
    text = (out / "audit.txt").read_text()
    assert "scene mix" in text and "OVERALL" in text and text.strip() == table_text(figures)
    cov = overall["same_person_coverage"]
    assert cov["orderable_pairs"] > 0 and cov["right_labels"] <= overall["same_person"]["labels"]
    assert 0.0 <= cov["recall"] <= 1.0 and "same-person coverage" in text


def test_audit_splits_same_and_cross_person_by_source_and_pose_family(small_audit):
    _, figures = small_audit
    overall = figures["overall"]
    same, cross = overall["same_person"], overall["cross_person"]
    assert same["labels"] + cross["labels"] == overall["labels"]
    assert same["labels"] > 0 and cross["labels"] > 0
    assert same["pairs_per_person_median"] <= max(same["pairs_per_person_mean"] * 10, 1)
    assert 0 <= same["people_8plus_without_label"] <= same["people_8plus"] <= overall["people"]
    sources = figures["groups"]["source"]
    assert set(sources) == {"coco", "mpii"}
    assert sum(d["people"] for d in sources.values()) == overall["people"]
    assert sum(d["labels"] for d in sources.values()) == overall["labels"]
    families = figures["groups"]["pose_family"]
    assert sum(d["people"] for d in families.values()) == overall["people"]
    assert "standing" in families or "walking" in families
    assert {"overall", "same-person", "cross-person"} <= set(figures["reliability"])
    assert figures["scene_mix"]["world"] == "dev"


def test_group_scores_count_people_without_labels_and_medians():
    label = np.array([1, 1, -1, 1], np.int8)
    truth = np.array([1, -1, -1, 1], np.int8)
    a = np.array([0, 0, 1, 2])
    b = np.array([0, 0, 1, 3])  # the last pair is cross-person
    g = group_scores(label, truth, a, b, labelled_joints=np.array([12, 9, 17, 5]))
    sp, cp = g["same_person"], g["cross_person"]
    assert sp["labels"] == 3 and sp["precision"] == 2 / 3
    assert sp["pairs_per_person_median"] == 0.5  # counts 2, 1, 0, 0
    assert sp["pairs_per_person_median_10plus"] == 1.0  # people 0 and 2: counts 2 and 0
    assert sp["people_without_label"] == 2 and sp["people_8plus_without_label"] == 1  # person 2
    assert cp["labels"] == 1 and cp["pairs_per_person_mean"] == 0.5
