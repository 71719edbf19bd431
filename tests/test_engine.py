"""The training engine: data stream division, LR schedule, exact resume, NaN guard, DDP, the run
folder's trust checks (lock, resume checks, no readable image), TensorBoard, worker lifetime."""

import fcntl
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from mcpc_fixture import write_tiny_build
from wsp_model import engine
from wsp_model.config import DataConfig, ModelConfig, PretrainConfig, TrainConfig
from wsp_model.engine import NonFiniteLossError, StreamBatchSampler, lr_lambda, train
from wsp_model.engine import NoReadableImagesError, ResumeMismatchError, RunLockedError
from wsp_model.pretrain import PretrainTask, pretrain

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
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert not set(r0["seen"]) & set(r1["seen"])
    assert sorted(r0["seen"] + r1["seen"]) == list(range(3 * 2 * 2))   # no draw lost
    for k, v in r0["params"].items():
        assert torch.equal(v, r1["params"][k]), k
    # Rank 0's checkpoint holds those weights and the global data position.
    ck = engine.load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ck["world_size"] == 2 and ck["data"]["samples_consumed"] == 12
    assert torch.equal(ck["model"]["head.final.weight"], r0["params"]["head.final.weight"])
    assert len(ck["rng_per_rank"]) == 2


def test_tensorboard_events_hold_the_same_scalars_as_the_csv(build, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = replace(TINY.train, max_steps=4, val_every=2)
    train(PretrainTask(build, TINY), cfg, tmp_path)
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    loss = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    rows = (tmp_path / "train_log.csv").read_text().splitlines()
    header = rows[0].split(",")
    csv_loss = [(int(r.split(",")[0]), float(r.split(",")[header.index("loss")])) for r in rows[1:]]
    assert [s for s, _ in loss] == [s for s, _ in csv_loss] == [2, 4]
    assert [v for _, v in loss] == pytest.approx([v for _, v in csv_loss], rel=1e-5)
    assert [e.step for e in acc.Scalars("val/pck")] == [2, 4]


def _pretrain_cfg(**train_changes):
    return replace(TINY, train=replace(TINY.train, **train_changes))


def test_a_resume_with_another_config_is_refused_before_anything_is_written(build, tmp_path):
    run = tmp_path / "run"
    pretrain(build, _pretrain_cfg(max_steps=4), run, stop_at_step=2)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    other = replace(_pretrain_cfg(max_steps=4), loss=replace(TINY.loss, ranking_weight=0.5))
    with pytest.raises(ResumeMismatchError, match=r"config\.loss\.ranking_weight: checkpoint 1\.0, now 0\.5") as err:
        pretrain(build, other, run)
    assert str(run / "checkpoint.pt") in str(err.value) and "--fresh" in str(err.value)
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert after == before                       # config.yaml, checkpoint and logs untouched
    with pytest.raises(ResumeMismatchError, match="train.lr"):
        pretrain(build, _pretrain_cfg(max_steps=4, lr=5e-4), run)
    # What a resume may change (how, not what): more workers, another log interval.
    done = pretrain(build, _pretrain_cfg(max_steps=4, log_every=1), run)
    assert done.step == 4


def test_a_resume_on_another_build_is_refused(build, tmp_path):
    copy = _copy_build(build, tmp_path / "copy")
    run = tmp_path / "run"
    pretrain(copy / "build", _pretrain_cfg(max_steps=4), run, stop_at_step=2)
    manifest = copy / "build" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"fixture"', '"rebuilt"'))
    with pytest.raises(ResumeMismatchError, match="build_manifest_sha256"):
        pretrain(copy / "build", _pretrain_cfg(max_steps=4), run)
    assert engine.load_checkpoint(run / "checkpoint.pt")["step"] == 2


def test_a_second_writer_on_a_run_folder_is_refused_and_a_killed_holders_lock_is_not_stale(
        build, tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from mcpc_builder.contract import acquire_lock\n"
         "with acquire_lock(sys.argv[1], 'training'):\n"
         "    print('held', flush=True); time.sleep(60)\n", str(run)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"in use by process {holder.pid} on "
                                                 f"{socket.gethostname()} \\(training\\)"):
            train(PretrainTask(build, TINY), TINY.train, run, meta={"config": {"x": 1}})
        assert sorted(p.name for p in run.iterdir()) == [".lock"]            # nothing written
    finally:
        holder.kill()                                                         # kill -9
        holder.wait()
    result = train(PretrainTask(build, TINY), replace(TINY.train, max_steps=2), run)
    assert result.step == 2                                                   # not stale
    with open(run / ".lock") as fh:                                           # released at the end
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _copy_build(build, dest):
    """A copy of the fixture (images and build) whose manifest points at the copied images."""
    shutil.copytree(build.parent, dest)
    manifest = dest / "build" / "manifest.json"
    manifest.write_text(manifest.read_text().replace(str((build.parent / "source").resolve()),
                                                     str((dest / "source").resolve())))
    return dest


def test_training_that_sees_no_readable_image_stops_without_a_checkpoint(build, tmp_path):
    copy = _copy_build(build, tmp_path / "copy")
    for image in (copy / "source" / "images").iterdir():
        image.unlink()
    cfg = replace(TINY.train, max_steps=6, checkpoint_every=2)
    with pytest.raises(NoReadableImagesError, match="none of the 4 training samples drawn in 2 steps"):
        train(PretrainTask(copy / "build", TINY), cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


class _SomeImagesMissing(PretrainTask):
    """Every other sample reports an unreadable image: training goes on."""

    def loss(self, model, batch):
        loss, metrics = super().loss(model, batch)
        metrics["n_skipped_images"] = torch.tensor(1.0)
        return loss, metrics


def test_training_with_some_unreadable_images_goes_on(build, tmp_path):
    result = train(_SomeImagesMissing(build, TINY), replace(TINY.train, max_steps=2), tmp_path)
    assert result.step == 2 and result.train_metrics["n_skipped_images"] == 2


_TRAINER = textwrap.dedent("""
    import sys, time
    from dataclasses import replace
    import numpy as np
    from wsp_model import engine
    from wsp_model.config import TrainConfig

    class SlowData:
        def __len__(self):
            return 64
        def __getitem__(self, key):
            time.sleep(0.05)
            return {"x": np.ones(4, np.float32)}

    class Task:
        def build_model(self):
            import torch
            return torch.nn.Linear(4, 1)
        def train_dataset(self):
            return SlowData()
        def val_dataset(self):
            return None
        def loss(self, model, batch):
            open(sys.argv[1] + "/loss_seen", "w").close()   # workers are up and delivering
            time.sleep(0.2)
            return model(batch["x"]).pow(2).mean(), {}
        def validate(self, model, batches):
            return {}

    if __name__ == "__main__":
        cfg = TrainConfig(max_steps=10000, batch_size=2, num_workers=2, log_every=1000,
                          checkpoint_every=100000, progress=False, loader_start=sys.argv[2])
        engine.train(Task(), cfg, sys.argv[1])
""")


def _descendants(pid):
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:80].decode()
    except OSError:
        return "?"


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
@pytest.mark.parametrize("start", ["forkserver", "fork"])
def test_loader_workers_die_when_the_trainer_is_killed(tmp_path, start):
    script = tmp_path / "trainer.py"
    script.write_text(_TRAINER)
    run = tmp_path / "run"
    workers = []
    proc = subprocess.Popen([sys.executable, str(script), str(run), start],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (run / "loss_seen").exists():
            time.sleep(0.2)
        workers = _descendants(proc.pid)
        assert len(workers) >= 2, "the trainer never started its loader workers"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 5
        while time.time() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        left = [p for p in workers if _alive(p)]
        assert not left, f"processes outlived the killed trainer: {[_cmdline(p) for p in left]}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in workers + _descendants(proc.pid):
            if _alive(p):
                os.kill(p, signal.SIGKILL)
