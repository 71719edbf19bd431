"""`make ablation` in miniature: three arms x two seeds on a tiny build, the issue's JSON schema."""

import json

import numpy as np
import pytest

from mcpc_fixture import write_tiny_build
from pipelines import ablation

TINY_PRETRAIN = """
data: {crop_size: 32, heatmap_stride: 4, sigma: 1.0, context: 3.0, max_pairs: 8,
       val_splits: [val]}
model: {depth: 18, width: 4, deconv_layers: 3, deconv_filters: 8, num_joints: 21}
train: {max_steps: 2, batch_size: 2, num_workers: 0, log_every: 1, warmup_steps: 1,
        checkpoint_every: 2, progress: false}
"""
TINY_FINETUNE = """
dataset: h36m
data: {crop_size: 32, padding: 1.4}
head: {calibration_samples: 4}
train: {max_steps: 2, batch_size: 2, num_workers: 0, log_every: 1, warmup_steps: 1, val_every: 0,
        checkpoint_every: 2, progress: false}
"""

# Ten tiny training runs (~1 min on 2 idle cores, most of it the engine's per-run curves.png):
# the tests that use them are marked slow.


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("ablation")
    build = write_tiny_build(base / "mcpc", ground_truth=True)
    (base / "pre.yaml").write_text(TINY_PRETRAIN)
    (base / "ft.yaml").write_text(TINY_FINETUNE)
    (base / "build.txt").write_text(str(build))
    out = base / "out"
    assert ablation.main(run_args(base)) == 0
    return out


def run_args(base):
    build = (base / "build.txt").read_text()
    return ["--out", str(base / "out"), "--mcpc", build, "--seeds", "0", "1",
            "--pretrain-config", str(base / "pre.yaml"), "--config", str(base / "ft.yaml"),
            "--n-train", "4", "--n-test", "2", "--workers", "0", "--quiet", "--dense-control"]


@pytest.mark.slow
def test_ablation_json_has_the_issue_schema_per_arm_test_and_seed(run):
    doc = json.loads((run / "ablation.json").read_text())
    assert doc["seeds"] == [0, 1]
    assert set(doc["arms"]) == {"scratch", "pretrain_2d", "wsp", "wsp_dense"}
    dense = doc["dense_control"]["same_person_labels"]
    assert dense["dense"] > dense["build"]
    for arm in doc["arms"].values():
        assert set(arm) == {"in_domain", "shifted"}
        for test in arm.values():
            assert len(test["mpjpe"]) == 2 and len(test["pa_mpjpe"]) == 2
            assert all(np.isfinite(v) and v > 0 for v in test["mpjpe"] + test["pa_mpjpe"])
            assert len(test["depth_order"]) == 2
            assert all(0.0 <= v <= 1.0 for v in test["depth_order"])
    for kind in ("same_person", "cross_person"):
        probe = doc["depth_order"][kind]
        assert {"wsp", "wsp_dense", "pretrain_2d", "untrained", "higher_is_closer"} <= set(probe)
        assert all(0.0 <= v <= 1.0 for v in probe.values())
    assert doc["git"]["commit"] is None or len(doc["git"]["commit"]) == 40
    assert (run / "ablation.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_each_seed_pretrains_its_own_networks_and_only_wsp_ranks(run):
    import torch

    ckpts = {(arm, s): torch.load(run / f"pretrain-{arm}-seed{s}" / "checkpoint.pt",
                                  map_location="cpu", weights_only=True)
             for arm in ("pretrain_2d", "wsp") for s in (0, 1)}
    w0 = ckpts[("wsp", 0)]["model"]["backbone.conv1.weight"]
    assert not torch.equal(w0, ckpts[("wsp", 1)]["model"]["backbone.conv1.weight"])
    for (arm, s), ck in ckpts.items():
        assert ck["step"] == 2 and ck["train_config"]["seed"] == s
        assert ck["meta"]["config"]["loss"]["ranking_weight"] == (0.0 if arm == "pretrain_2d" else 1.0)
    # fine-tuning checkpoints say their data was synthetic, and which
    ft = torch.load(run / "finetune-wsp-seed0" / "checkpoint.pt", map_location="cpu",
                    weights_only=True)
    assert ft["meta"]["synthetic_sources"][-1] == ablation.SYNTHETIC_FINETUNE_SOURCE


def test_targets_check_gain_and_seed_separation():
    doc = {"arms": {"scratch": {t: {"mpjpe": [200.0, 210.0]} for t in ablation.TESTS},
                    "pretrain_2d": {t: {"mpjpe": [150.0, 160.0]} for t in ablation.TESTS},
                    "wsp": {t: {"mpjpe": [140.0, 161.0]} for t in ablation.TESTS}},
           "depth_order": {"same_person": {"wsp": 0.85}, "cross_person": {"wsp": 0.5}}}
    t = ablation.targets(doc)
    assert t["in_domain:pretrain_2d_vs_scratch"]["met"]
    # 3% gain and one WSP seed worse than a 2D-only seed: not met on either count
    assert not t["in_domain:wsp_vs_pretrain_2d"]["met"]
    assert not t["in_domain:wsp_vs_pretrain_2d"]["every_seed_better"]
    assert t["probe_same_person_wsp>=0.80"] and not t["probe_cross_person_wsp>=0.90"]


def test_replot_redraws_the_png_from_a_json(tmp_path):
    doc = {"seeds": [0, 1], "arms": {arm: {t: {"mpjpe": [150.0 + i, 152.0 + i],
                                               "pa_mpjpe": [120.0 + i, 121.0 + i]}
                                           for t in ablation.TESTS}
                                     for i, arm in enumerate(ablation.ARMS)},
           "mean_pose": {t: {"mpjpe": 170.0, "pa_mpjpe": 140.0} for t in ablation.TESTS},
           "depth_order": {k: {"wsp": 0.6, "higher_is_closer": 0.55} for k in
                           ("same_person", "cross_person")}}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    assert ablation.main(["--replot", str(tmp_path / "a.json"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "ablation.png").read_bytes()[:4] == b"\x89PNG"


def test_a_typed_mcpc_that_holds_no_build_is_an_error_and_generates_nothing(tmp_path, capsys):
    # Without --mcpc the ablation builds the embedded default into OUT/mcpc; a path the user
    # typed is never a place to generate data (the contract), so a typo stops before training.
    typo = tmp_path / "no-such-build"
    rc = ablation.main(["--out", str(tmp_path / "out"), "--mcpc", str(typo), "--n-train", "2",
                        "--n-test", "1", "--workers", "0", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "MCPC build folder not found" in err[0] and str(typo) in err[0]
    assert not typo.exists()
    assert not list((tmp_path / "out").glob("pretrain-*"))


def test_dense_control_relabels_only_training_people_within_person_from_true_depth(tmp_path):
    from mcpc_builder.contract import read_manifest
    from pipelines.dense_control import densify
    from wsp_model.depth_probe import ground_truth_depths
    from wsp_model.mcpc_data import read_build

    build = write_tiny_build(tmp_path / "mcpc", ground_truth=True)
    truth = ground_truth_depths(build.parent / "source")
    dense = densify(build, tmp_path / "dense", truth, ("train",))
    before, after = read_build(build), read_build(dense)   # both verify (checksums)
    assert "control" in read_manifest(dense) and "control" not in read_manifest(build)

    def rows(t, same, split):
        keep = ((t.pair_a == t.pair_b) == same) & np.isin(t.split[t.pair_a], split)
        return sorted(zip(t.pair_a[keep], t.joint_a[keep], t.pair_b[keep], t.joint_b[keep],
                          t.label[keep]))

    # cross-person labels and the held-out people's labels are untouched
    assert rows(after, False, ["train", "val"]) == rows(before, False, ["train", "val"])
    assert rows(after, True, ["val"]) == rows(before, True, ["val"])
    # training people: every labelled joint pair 5 cm apart in truth, ordered by the truth
    dense_rows = rows(after, True, ["train"])
    assert len(dense_rows) > len(rows(before, True, ["train"]))
    for a, ja, b, jb, label in dense_rows:
        z = truth[int(after.source_ann_id[a])][:, 2]
        assert abs(z[ja] - z[jb]) >= 0.05 and label == (1 if z[ja] < z[jb] else -1)
        assert after.visibility[a, ja] > 0 and after.visibility[a, jb] > 0


def test_pretraining_build_renders_its_synthetic_coco_once_and_again_for_another_size(tmp_path):
    build = ablation.pretraining_build(tmp_path, 3, progress=False)
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["synthetic_sources"] == ["coco"]
    root = tmp_path / "pretrain-source" / "coco"
    assert (root / "ground_truth").is_dir()        # the depth-order probe's truth

    def images():
        return sum(len(json.loads(p.read_text())["images"])
                   for p in (root / "annotations").glob("person_keypoints_*.json"))

    assert images() == 3
    stamp = (build / "manifest.json").stat().st_mtime_ns
    assert ablation.pretraining_build(tmp_path, 3, progress=False) == build
    assert (build / "manifest.json").stat().st_mtime_ns == stamp   # reused, not rebuilt
    ablation.pretraining_build(tmp_path, 4, progress=False)
    assert images() == 4
    assert not (tmp_path / "pretrain-source" / ".coco-partial").exists()


def test_library_arm_builds_the_same_images_with_the_pose_library_prior(tmp_path):
    from mcpc_builder.contract import read_manifest
    from pipelines.library_control import add_library_labels
    from test_synth_worlds import write_library
    from wsp_model.depth_probe import ground_truth_depths
    from wsp_model.mcpc_data import read_build

    build = ablation.pretraining_build(tmp_path, 8, progress=False)
    truth = ground_truth_depths(tmp_path / "pretrain-source" / "coco")
    stamp = (build / "manifest.json").read_bytes()
    library = write_library(tmp_path / "lib.npz", n=6, seed=0)
    splits = sorted(set(read_build(build).split))
    out, info = add_library_labels(build, tmp_path / "lib", splits, truth, library=library)
    before, after = read_build(build), read_build(out)   # both verified (checksums)
    assert (build / "manifest.json").read_bytes() == stamp   # the plain build is untouched
    m = read_manifest(out)
    assert m["pose_library"]["path"] == str(library.resolve()) and "pose_library" in \
        m["priors_enabled"]
    from mcpc_builder.priors.config import PriorConfig
    plain = read_manifest(build).get("prior_config") or PriorConfig().to_dict()
    assert {k: v for k, v in m["prior_config"].items() if k not in ("enabled", "pose_library")} \
        == {k: v for k, v in plain.items() if k not in ("enabled", "pose_library")}
    # The same people (same images, same ids); more same-person labels, scored against truth.
    assert np.array_equal(before.person_id, after.person_id)
    assert info["with_library"]["labels"] > info["plain"]["labels"]
    assert info["with_library"]["people"] == info["plain"]["people"] > 0
    assert 0.0 <= info["with_library"]["precision"] <= 1.0


@pytest.mark.slow
def test_gradient_share_takes_both_losses_gradients_apart_per_group(run):
    from pipelines.bench import gradient_share

    assert gradient_share.main(["--ablation", str(run), "--seed", "0", "--batches", "1"]) == 0
    doc = json.loads((run / "gradient_share.json").read_text())
    results = doc["results"]
    assert set(results) == {"untrained", "pretrain_2d", "wsp", "wsp_dense"}
    for res in results.values():
        assert set(res["groups"]) == set(gradient_share.GROUPS)
        for g in res["groups"].values():
            assert g["heatmap"] > 0 and g["ranking"] > 0 and -1 <= g["cosine"] <= 1
        assert res["ranking_to_heatmap_at_fork"] > 0
    # the final 1x1 conv's heatmap and depth rows are separate weights: orthogonal gradients
    assert abs(results["wsp"]["groups"]["head.final"]["cosine"]) < 1e-6
    with pytest.raises(Exception, match="no pretrain-"):
        gradient_share.main.__wrapped_main__(["--ablation", str(run), "--seed", "7"])


@pytest.mark.slow
def test_a_second_invocation_resumes_every_arm_including_the_control(run):
    """The control's build is kept when it was made from the same build (made again, its new
    manifest would stop the control's runs from resuming)."""
    dense_manifest = run / "mcpc-dense" / "manifest.json"
    made = dense_manifest.stat().st_mtime_ns
    ckpt = run / "pretrain-wsp_dense-seed0" / "checkpoint.pt"
    before = ckpt.stat().st_mtime_ns
    assert ablation.main(run_args(run.parent)) == 0
    assert dense_manifest.stat().st_mtime_ns == made        # kept, not made again
    assert ckpt.stat().st_mtime_ns == before            # resumed at its last step, not retrained
    record = ablation.inputs_record(run / "mcpc-dense")
    doc = json.loads(record.read_text())
    assert ablation.same_inputs(run / "mcpc-dense", doc)
    assert not ablation.same_inputs(run / "mcpc-dense", {**doc, "splits": ["other"]})
    assert not record.exists()      # other inputs: the record goes before the build is made again
    ablation.record_inputs(run / "mcpc-dense", doc)
