"""The pose-library feasibility diagnostic (pipelines.bench.library_lifting): its kNN vote and
its scoring, on people small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from mcpc_builder.joints import MCPC21
from pipelines.bench import library_lifting as ll

J = MCPC21.index


def person(lean: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(21, 2) keypoints and (21,) depths of a stick person whose left side is ``lean`` metres
    closer than its right (a turn about the vertical), with small 2D jitter."""
    kp = np.full((21, 2), np.nan)
    depth = np.full(21, 5.0)
    for name, (x, y) in {"nose": (0, -70), "left_eye": (5, -72), "right_eye": (-5, -72),
                         "left_ear": (9, -70), "right_ear": (-9, -70),
                         "left_shoulder": (20, -50), "right_shoulder": (-20, -50),
                         "left_elbow": (24, -25), "right_elbow": (-24, -25),
                         "left_wrist": (26, 0), "right_wrist": (-26, 0),
                         "left_hip": (10, 0), "right_hip": (-10, 0),
                         "left_knee": (11, 40), "right_knee": (-11, 40),
                         "left_ankle": (12, 80), "right_ankle": (-12, 80)}.items():
        side = 1 if name.startswith("left") else -1 if name.startswith("right") else 0
        # The turn shows in 2D: the nearer side spreads outwards (so the two leans differ).
        kp[J[name]] = (x + 30 * lean * side + rng.normal(0, 0.3), y + rng.normal(0, 0.3))
        depth[J[name]] = 5.0 - side * lean
    return kp, depth


def sets(leans, seed):
    rng = np.random.default_rng(seed)
    kp, depth = zip(*(person(l, rng) for l in leans))
    return ll.features(np.array(kp)), ll.true_orders(np.array(depth))


def test_features_are_translation_and_scale_free():
    rng = np.random.default_rng(0)
    kp, _ = person(0.2, rng)
    moved = 3.0 * kp + np.array([100.0, -40.0])
    assert np.allclose(ll.features(kp[None]), ll.features(moved[None]))


def test_true_orders_follow_the_tolerance():
    depth = np.full((1, 21), 5.0)
    depth[0, J["left_wrist"]] = 4.9   # 10 cm closer than everything else
    depth[0, J["right_wrist"]] = 4.97  # 3 cm: "equal" to the rest
    o = ll.true_orders(depth)[0]
    i = {(a, b): k for k, (a, b) in enumerate(zip(*ll.PAIRS))}
    lw, rw, nose = (ll.JOINTS.index(J[n]) for n in ("left_wrist", "right_wrist", "nose"))
    assert o[i[(min(nose, lw), max(nose, lw))]] == (1 if lw < nose else -1)
    assert o[i[(min(nose, rw), max(nose, rw))]] == 0


def test_knn_vote_recovers_the_library_order_and_abstains_on_split_votes():
    lib_f, lib_o = sets([0.3] * 30 + [-0.3] * 30, seed=1)
    q_f, q_o = sets([0.3, -0.3], seed=2)
    # Near neighbours all share the query's lean: every ordered pair is labelled, all right.
    lab = ll.knn_labels(q_f, lib_f, lib_o, k=10, agreement=1.0)
    s = ll.score(lab, q_o)
    assert s["precision"] == 1.0 and s["labels"] == int((q_o != 0).sum())
    # With the whole library as neighbours the votes split 50/50: nothing is labelled.
    lab = ll.knn_labels(q_f, lib_f, lib_o, k=60, agreement=0.95)
    assert not lab.any()
    assert ll.score(lab, q_o)["people_without_label"] == 2


def test_bad_options_are_one_line(capsys):
    from mcpc_fixture import one_error_line
    assert ll.main(["--library", "nowhere"]) == 2
    assert "--library: expected mocap or world:NAME" in one_error_line(capsys, "pipelines.bench.library_lifting")
    assert ll.main(["--agreement", "0.3"]) == 2
    assert "--agreement" in one_error_line(capsys, "pipelines.bench.library_lifting")


@pytest.mark.slow
def test_mocap_leave_one_activity_out_runs_and_scores(tmp_path):
    """On the real mocap dev set (when it is next to the checkout), a small library."""
    from pipelines.bench.mocap_priors import DEFAULT_POSES
    if not DEFAULT_POSES.exists():
        pytest.skip("../shared/fixtures/mocap-dev is not next to this checkout")
    out = tmp_path / "r.json"
    assert ll.main(["--library-views", "5", "--k", "10", "--agreement", "1.0", "--json",
                    str(out)]) == 0
    import json
    row = json.loads(out.read_text())["rows"][0]
    assert row["people"] == 123 * 20 and 0.8 < row["precision"] <= 1.0
