"""Pre-training end to end: configs, `python -m pipelines.pretrain` (in-process and torchrun)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from mcpc_fixture import write_tiny_build
from pipelines.pretrain import main
from wsp_model.depth_probe import depth_order_accuracy, ground_truth_depths
from wsp_model.config import DataConfig, PretrainConfig, load_config, save_config
from wsp_model.engine import load_checkpoint
from wsp_model.mcpc_data import read_build

REPO = Path(__file__).resolve().parent.parent
TINY_SETS = ["--set", "data.crop_size=32", "--set", "data.max_pairs=8", "--set", "model.width=4",
             "--set", "model.deconv_filters=8", "--set", "train.max_steps=4", "--set",
             "train.batch_size=2", "--set", "train.num_workers=0", "--set", "train.log_every=2",
             "--set", "train.progress=false"]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return write_tiny_build(tmp_path_factory.mktemp("mcpc"), ground_truth=True)


@pytest.mark.parametrize("name", ["pretrain_small.yaml", "pretrain_r50.yaml", "pretrain_ablation.yaml"])
def test_shipped_configs_load_into_frozen_dataclasses(name):
    cfg = load_config(PretrainConfig, REPO / "pipelines" / "configs" / name)
    assert cfg.model.depth in (18, 50) and cfg.data.crop_size in (64, 128, 256)
    with pytest.raises(Exception):
        cfg.train.lr = 1.0  # frozen


def test_config_with_a_misspelt_key_is_refused(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  max_step: 3\n")
    with pytest.raises(ValueError, match="max_step"):
        load_config(PretrainConfig, tmp_path / "c.yaml")


def test_config_round_trips_through_yaml(tmp_path):
    cfg = PretrainConfig(data=DataConfig(crop_size=96, val_splits=("val",)))
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(PretrainConfig, tmp_path / "c.yaml") == cfg


class _DepthIsX(nn.Module):
    """Depth grows with image x: orders exactly the fixture's left (near) / right (far) pairs."""

    def __init__(self, sign=1.0):
        super().__init__()
        self.sign = sign

    def forward(self, image):
        b, _, h, w = image.shape
        ramp = torch.arange(w, dtype=torch.float32).expand(b, 1, h, w)
        return {"depth": self.sign * ramp, "heatmaps": torch.zeros(b, 21, h, w)}


def test_unlabelled_pairs_exclude_labelled_ones_and_score_against_true_depth(build):
    tables = read_build(build)
    truth = ground_truth_depths(build.parent / "source")
    data = DataConfig(crop_size=64)

    def probe(model, cfg=data):
        return depth_order_accuracy(tables, cfg, truth, ("val",), {"m": model}, labelled_too=True)

    m = probe(_DepthIsX())
    # Val: 3 persons; per full person 140 joint pairs with a true-depth gap, 4 of them labelled
    # (left/right shoulders, hips, knees, ankles); the person without ears has 116, 4 labelled.
    assert m["persons"] == 3
    assert m["pairs"]["labelled_same_person"] == 12
    assert m["pairs"]["same_person"] == 136 + 136 + 112
    assert m["labelled_same_person"]["m"] == 1.0     # left joints are nearer and further left
    assert probe(_DepthIsX(-1.0))["labelled_same_person"]["m"] == 0.0
    # A wide region holds the neighbour: cross-person pairs are scored too.
    wide = DataConfig(crop_size=64, context=3.0)
    assert probe(_DepthIsX(), wide)["pairs"]["cross_person"] > 0
    # without labelled_too only the unlabelled kinds are reported, with the same counts
    plain = depth_order_accuracy(tables, data, truth, ("val",), {"m": _DepthIsX()})
    assert set(plain["pairs"]) == {"same_person", "cross_person"}
    assert plain["pairs"]["same_person"] == m["pairs"]["same_person"]


def test_pipeline_trains_and_writes_checkpoint_logs_curves_and_evidence(build, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["--mcpc", str(build), "--out", str(run), *TINY_SETS]) == 0
    for name in ("checkpoint.pt", "config.yaml", "train_log.csv", "val_log.csv", "curves.png",
                 "unlabelled_pairs.json"):
        assert (run / name).exists(), name
    assert load_config(PretrainConfig, run / "config.yaml").train.max_steps == 4
    # The fixture's source is synthetic: the checkpoint says so (data contract).
    assert load_checkpoint(run / "checkpoint.pt")["meta"]["synthetic_sources"] == ["coco"]
    ck = load_checkpoint(run / "checkpoint.pt")
    assert ck["step"] == 4 and ck["meta"]["config"]["model"]["width"] == 4
    ev = json.loads((run / "unlabelled_pairs.json").read_text())
    assert set(ev) == {"val", "train"}
    assert set(ev["val"]["same_person"]) >= {"trained", "initial"}
    assert "labelled_same_person" in ev["val"]["pairs"]
    assert "held-out MCPC pairs: pair_acc" in capsys.readouterr().out


def test_missing_build_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.json").write_text("{not json")
    assert main(["--mcpc", str(tmp_path / "b"), "--out", str(tmp_path / "r"), *TINY_SETS]) == 2
    assert "manifest.json" in capsys.readouterr().err


@pytest.mark.slow
def test_gpus_2_relaunches_under_torchrun_with_two_ranks(build, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "pipelines.pretrain", "--mcpc", str(build),
                           "--out", str(tmp_path / "run"), "--gpus", "2",
                           "--skip-unlabelled-eval", *TINY_SETS],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ck["world_size"] == 2 and ck["data"]["samples_consumed"] == 4 * 2 * 2


def test_checkpoint_carries_model_args_and_synthetic_sources_and_loads_weights_only(build, tmp_path):
    from wsp_model.model import PoseNet25D, load_model

    run = tmp_path / "run"
    assert main(["--mcpc", str(build), "--out", str(run), "--skip-unlabelled-eval", *TINY_SETS]) == 0
    model, meta = load_model(run / "checkpoint.pt")     # torch.load(weights_only=True) inside
    assert isinstance(model, PoseNet25D) and model.backbone.width == 4
    assert meta["model_args"]["num_joints"] == 21
    # the fixture's source root holds the synthetic world's ground_truth folder
    assert meta["synthetic_sources"] == ["coco"]


def test_2d_only_pretraining_sends_no_gradient_to_the_depth_maps(build):
    from wsp_model.config import replace
    from wsp_model.pretrain import PretrainTask

    cfg = replace(PretrainConfig(), **{"data.crop_size": 32, "model.width": 4,
                                       "model.deconv_filters": 8})
    for weight, expect_depth_grad in ((0.0, False), (1.0, True)):
        task = PretrainTask(build, replace(cfg, **{"loss.ranking_weight": weight}))
        torch.manual_seed(0)
        model = task.build_model()
        ds = task.train_dataset()
        batch = torch.utils.data.default_collate([ds[(i, i)] for i in range(len(ds))])
        assert batch["pair_mask"].any()
        loss, _ = task.loss(model, batch)
        loss.backward()
        k = model.num_joints
        depth_grad = model.head.final.weight.grad[k:].abs().sum().item()
        assert (depth_grad > 0) == expect_depth_grad
        assert model.head.final.weight.grad[:k].abs().sum().item() > 0


def test_depth_order_probe_scores_models_and_image_rules_on_unlabelled_pairs(build):

    tables = read_build(build)
    truth = ground_truth_depths(build.parent / "source")
    wide = PretrainConfig(data=DataConfig(crop_size=64, context=3.0))
    res = depth_order_accuracy(tables, wide.data, truth, ("val",),
                               {"x_far": _DepthIsX(), "x_near": _DepthIsX(-1.0)})
    assert res["pairs"]["same_person"] > 0 and res["pairs"]["cross_person"] > 0
    for kind in ("same_person", "cross_person"):
        # opposite predictors score 1 - each other (no ties on these pairs)
        assert res[kind]["x_far"] + res[kind]["x_near"] == pytest.approx(1.0)
        assert set(res[kind]) == {"x_far", "x_near", "higher_is_closer", "lower_feet_closer"}
    # "lower feet are closer" cannot order two joints of one person: all ties
    assert res["same_person"]["lower_feet_closer"] == 0.5


def test_depth_grad_ratio_reaches_the_model_in_training_only(build):
    """loss.depth_grad_ratio caps the ranking loss's share of the shared weights' gradient: at a
    tiny ratio the backbone learns (almost) what 2D-only pre-training teaches it, while the depth
    maps' own weights still get the whole ranking gradient."""
    from wsp_model.config import replace
    from wsp_model.pretrain import PretrainTask

    cfg = replace(PretrainConfig(), **{"data.crop_size": 32, "model.width": 4,
                                       "model.deconv_filters": 8, "loss.ranking_weight": 5.0})
    grads = {}
    for name, changes in (("plain", {}), ("capped", {"loss.depth_grad_ratio": 1e-6}),
                          ("2d", {"loss.ranking_weight": 0.0})):
        task = PretrainTask(build, replace(cfg, **changes))
        torch.manual_seed(0)
        model = task.build_model()
        ds = task.train_dataset()
        batch = torch.utils.data.default_collate([ds[(i, i)] for i in range(len(ds))])
        loss, _ = task.loss(model, batch)
        loss.backward()
        grads[name] = {n: p.grad.clone() for n, p in model.named_parameters()}
    stem, final = "backbone.conv1.weight", "head.final.weight"
    far = (grads["plain"][stem] - grads["2d"][stem]).norm()
    near = (grads["capped"][stem] - grads["2d"][stem]).norm()
    assert far > 0 and near < 1e-3 * far
    assert torch.allclose(grads["capped"][final], grads["plain"][final], atol=1e-7)
