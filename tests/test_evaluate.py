"""`make evaluate` names synthetic test data and synthetic-only checkpoints; reads checkpoints
safely."""

import json
import shutil

import pytest

from mcpc_builder.synth import h36m_format
from pipelines import evaluate as evaluate_cli
from wsp_model import evaluate, h36m, pose3d_data
from wsp_model.checkpoint import load_checkpoint, save_checkpoint
from wsp_model.config import TrainConfig
from wsp_model.finetune import FinetuneConfig, HeadConfig, finetune

TINY = FinetuneConfig(data=pose3d_data.CropConfig(crop_size=32),
                      head=HeadConfig(deconv_layers=2, deconv_filters=16, backbone_width=8),
                      train=TrainConfig(max_steps=1, batch_size=4, num_workers=0, progress=False,
                                        warmup_steps=0))


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    base = tmp_path_factory.mktemp("evaluate")
    root = h36m_format.write(base / "h36m", seed=1, n_frames=2, subjects=(9, 11))
    train = pose3d_data.from_h36m(h36m.read_mks0601(root, (9,), every=2), root)
    result = finetune(TINY, base / "run", "scratch", train_records=train, val_records=train)
    return {"base": base, "root": root, "checkpoint": result.checkpoint}


def test_a_synthetic_test_root_is_called_a_synthetic_stand_in(tuned, tmp_path, capsys):
    rc = evaluate_cli.main(["--checkpoint", str(tuned["checkpoint"]), "--dataset", "h36m",
                            "--data-root", str(tuned["root"]), "--out", str(tmp_path),
                            "--figures", "0"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed.startswith("synthetic stand-in for Human3.6M test (S9, S11)")
    assert "NOTE: the test frames are synthetic" in printed
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["test_data_synthetic"] is True
    assert saved["test_set"] == "synthetic stand-in for Human3.6M test (S9, S11)"
    assert (tmp_path / "results.txt").read_text().startswith("synthetic stand-in for Human3.6M")


def test_a_real_layout_root_keeps_the_plain_name(tuned, tmp_path):
    real = tmp_path / "h36m"       # the same files without the synthetic world's ground truth
    shutil.copytree(tuned["root"], real, ignore=shutil.ignore_patterns("ground_truth"))
    rep = evaluate.evaluate(tuned["checkpoint"], tmp_path / "out", "h36m", data_root=real,
                            n_figures=0)
    assert rep["test_data_synthetic"] is False and rep["table"].startswith("Human3.6M test (S9, S11)")
    assert "synthetic" not in rep["table"]


def test_a_checkpoint_trained_on_synthetic_data_only_says_so(tuned, tmp_path):
    ckpt = load_checkpoint(tuned["checkpoint"])
    ckpt["meta"]["synthetic_sources"] = ["coco", "mpii", "h36m"]
    save_checkpoint(ckpt, tmp_path / "synthetic.pt")
    rep = evaluate.evaluate(tmp_path / "synthetic.pt", tmp_path / "out", "h36m",
                            data_root=tuned["root"], n_figures=0)
    assert rep["checkpoint_trained_on_synthetic_only"] is True
    assert rep["checkpoint_synthetic_sources"] == ["coco", "mpii", "h36m"]
    assert "trained on synthetic data only (coco, mpii, h36m)" in rep["table"]
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert any("synthetic data only" in n for n in saved["notes"])


def test_evaluate_refuses_a_crafted_or_truncated_checkpoint_with_one_line(tuned, tmp_path, capsys):
    import os
    import torch

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"model": {}, "meta": Payload()}, tmp_path / "crafted.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tuned["checkpoint"].read_bytes()[:5000])
    for path in (tmp_path / "crafted.pt", truncated):
        rc = evaluate_cli.main(["--checkpoint", str(path), "--data-root", str(tuned["root"]),
                                "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith(f"evaluate: error: {path}: ") and err.count("\n") == 1
    assert not (tmp_path / "pwned").exists()
