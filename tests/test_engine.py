"""The training engine: data stream division, LR schedule, exact resume, NaN guard, DDP."""

import math
import os
import socket
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from mcpc_fixture import write_tiny_build
from wsp_model import engine
from wsp_model.config import DataConfig, ModelConfig, PretrainConfig, TrainConfig
from wsp_model.engine import NonFiniteLossError, StreamBatchSampler, lr_lambda, train
from wsp_model.pretrain import PretrainTask

TINY = PretrainConfig(
    data=DataConfig(crop_size=32, max_pairs=8, sigma=1.0),
    model=ModelConfig(depth=18, width=4, deconv_layers=3, deconv_filters=8),
    train=TrainConfig(max_steps=6, batch_size=2, lr=1e-3, reference_batch=2, warmup_steps=2,
                      num_workers=0, log_every=2, checkpoint_every=100, progress=False))


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return write_tiny_build(tmp_path_factory.mktemp("mcpc"))


def test_stream_divides_every_epoch_among_ranks_without_overlap_or_loss():
    n, batch, world = 7, 2, 3
    seen = []
    for rank in range(world):
        it = iter(StreamBatchSampler(n, batch, rank, world, seed=1))
        seen.append([next(it) for _ in range(7)])      # 7 steps x 2 x 3 ranks = 6 epochs of 7
    draws = sorted(d for r in seen for b in r for _, d in b)
    assert draws == list(range(7 * batch * world))
    by_draw = {d: i for r in seen for b in r for i, d in b}
    for epoch in range(6):
        assert sorted(by_draw[d] for d in range(epoch * n, (epoch + 1) * n)) == list(range(n))


def test_stream_resumes_at_a_saved_position_with_another_world_size():
    full = iter(StreamBatchSampler(10, 3, 0, 1, seed=5))
    straight = [x for _ in range(4) for x in next(full)]
    resumed = []
    for rank in range(2):                               # first 2 steps at W=1, then W=2 from 6
        resumed.append(next(iter(StreamBatchSampler(10, 3, rank, 2, seed=5, start=6))))
    assert straight[6:] == resumed[0] + resumed[1]


def test_lr_warms_up_linearly_then_decays_by_cosine_to_the_floor():
    f = lr_lambda(TrainConfig(max_steps=12, warmup_steps=4, min_lr_ratio=0.1))
    assert [f(s) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert f(8) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f(12) == pytest.approx(0.1)


def _params(path):
    return engine.load_checkpoint(path)["model"]


def test_resume_after_a_stop_gives_the_same_weights_as_a_straight_run(build, tmp_path):
    cfg = replace(TINY, train=replace(TINY.train, max_steps=6, num_workers=1))
    a = train(PretrainTask(build, cfg), cfg.train, tmp_path / "straight")
    stopped = train(PretrainTask(build, cfg), cfg.train, tmp_path / "resumed", stop_at_step=3)
    assert stopped.step == 3
    ck = engine.load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert ck["step"] == 3 and ck["data"]["samples_consumed"] == 6
    b = train(PretrainTask(build, cfg), cfg.train, tmp_path / "resumed")
    assert a.step == b.step == 6
    wa, wb = _params(a.checkpoint), _params(b.checkpoint)
    for k in wa:
        assert torch.allclose(wa[k].float(), wb[k].float(), atol=1e-6), k
    # A run of fewer steps really differs (the comparison above is not vacuous).
    c = train(PretrainTask(build, cfg), replace(cfg.train, max_steps=5), tmp_path / "short")
    assert any(not torch.allclose(wa[k].float(), v.float()) for k, v in _params(c.checkpoint).items())
    rows = (tmp_path / "resumed" / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "3", "4", "6"]
    assert (tmp_path / "resumed" / "curves.png").stat().st_size > 1000


class _NanAtStep(PretrainTask):
    """Pre-training whose loss turns NaN at the 4th call (step 3)."""

    calls = 0

    def loss(self, model, batch):
        loss, metrics = super().loss(model, batch)
        self.calls += 1
        return (loss * float("nan") if self.calls == 4 else loss), metrics


def test_nan_loss_stops_training_with_the_step_named(build, tmp_path):
    cfg = replace(TINY.train, checkpoint_every=2)
    with pytest.raises(NonFiniteLossError, match="at step 3") as err:
        train(_NanAtStep(build, TINY), cfg, tmp_path)
    assert err.value.step == 3
    assert "last good checkpoint is step 2" in str(err.value)
    ck = engine.load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["step"] == 2 and all(torch.isfinite(v.float()).all() for v in ck["model"].values())


class _Recording(PretrainTask):
    """Pre-training that remembers which stream draws it trained on and keeps the model."""

    def loss(self, model, batch):
        self.seen = getattr(self, "seen", []) + batch["draw"].tolist()
        self.model = model
        return super().loss(model, batch)


def _ddp_worker(rank, world, port, build, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    task = _Recording(build, TINY)
    cfg = replace(TINY.train, max_steps=3)
    train(task, cfg, out / "run")
    params = {k: v.detach().clone() for k, v in engine.unwrap(task.model).named_parameters()}
    torch.save({"seen": task.seen, "params": params}, out / f"rank{rank}.pt")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_see_disjoint_data_and_end_with_identical_weights(build, tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), build, tmp_path), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    assert not set(r0["seen"]) & set(r1["seen"])
    assert sorted(r0["seen"] + r1["seen"]) == list(range(3 * 2 * 2))   # no draw lost
    for k, v in r0["params"].items():
        assert torch.equal(v, r1["params"][k]), k
    # Rank 0's checkpoint holds those weights and the global data position.
    ck = engine.load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ck["world_size"] == 2 and ck["data"]["samples_consumed"] == 12
    assert torch.equal(ck["model"]["head.final.weight"], r0["params"]["head.final.weight"])
    assert len(ck["rng_per_rank"]) == 2
