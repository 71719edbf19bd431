"""`make bench-train`: loader and training-step throughput of pre-training.

Measures, on the MCPC build (embedded default built if absent):
  1. bare decode + resize of the same images the loader reads, in the same order (full-size
     cv2.imread + cv2.resize, one thread) - what a naive loader pays per sample;
  2. the MCPC loader (crop, heatmaps, pairs, augmentation) through a DataLoader with 0 (main
     process) and N workers, as samples/s and samples/s per worker;
  3. the model alone: forward + backward + AdamW step on one fixed batch already on the device;
  4. the full pipeline: ``engine.train`` with the real task (loader, transfer, step, logging);
  all with the config's model and crop size; on CUDA additionally ResNet-50 at 256x256 in bf16
  with peak GPU memory (``--r50`` forces that on CPU too: slow).
Writes ``OUT/bench_train.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import torch
from torch.utils.data import DataLoader, default_collate

from mcpc_builder import atomic, contract
from mcpc_builder.errors import check_number, cli_entry
from wsp_model.config import PretrainConfig, load_config
from wsp_model.engine import to_device, train
from wsp_model.sampler import StreamBatchSampler
from wsp_model.mcpc_data import read_build
from wsp_model.pretrain import PretrainTask

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "pretrain_small.yaml"


def stream_rows(ds, batch: int, n_batches: int) -> list[int]:
    """Person rows of the first ``n_batches`` training batches (the loader's exact order)."""
    it = iter(StreamBatchSampler(len(ds), batch, 0, 1, seed=0))
    return [int(ds.rows[i]) for _ in range(n_batches + 1) for i, _ in next(it)]


def bench_decode(files: list[str], size: int) -> float:
    """samples/s of full-size cv2.imread + cv2.resize to ``size`` x ``size`` (one thread)."""
    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    for f in files:
        img = cv2.imread(f, cv2.IMREAD_COLOR)
        cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return len(files) / (time.perf_counter() - t0)


def bench_loader(task: PretrainTask, workers: int, batch: int, n_batches: int,
                 start: str) -> float:
    """samples/s of the training DataLoader (first batch excluded: worker start-up)."""
    ds = task.train_dataset()
    loader = DataLoader(ds, batch_sampler=StreamBatchSampler(len(ds), batch, 0, 1, seed=0),
                        num_workers=workers, prefetch_factor=4 if workers else None,
                        multiprocessing_context=start if workers else None)
    it = iter(loader)
    next(it)
    t0 = time.perf_counter()
    for _ in range(n_batches):
        next(it)
    rate = n_batches * batch / (time.perf_counter() - t0)
    del it
    return rate


def bench_model(task: PretrainTask, device: torch.device, batch: int, steps: int,
                amp: bool) -> tuple[float, float]:
    """(samples/s, peak GPU GiB or nan) of train steps on one fixed batch on the device."""
    torch.manual_seed(0)
    model = task.build_model().to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    ds = task.val_dataset() or task.train_dataset()
    samples = [ds[i % len(ds)] for i in range(batch)]
    data = to_device(default_collate(samples), device, channels_last=cuda)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda or None)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and amp else torch.autocast("cpu", enabled=False)

    def step():
        with ctx:
            loss, _ = task.loss(model, data)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    rate = steps * batch / (time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return rate, peak


def bench_pipeline(task: PretrainTask, cfg: PretrainConfig, steps: int) -> float:
    """Global samples/s of ``engine.train`` over its last ``steps // 2`` steps (warm)."""
    half = max(1, steps // 2)
    tcfg = replace(cfg.train, max_steps=2 * half, log_every=half, val_every=0,
                   checkpoint_every=10**9, progress=False, resume=False, warmup_steps=1)
    with tempfile.TemporaryDirectory() as run_dir:
        return train(task, tcfg, run_dir).samples_per_s


@cli_entry("pipelines.bench.bench_train")
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipelines.bench.bench_train", description=__doc__.split("\n\n")[0])
    p.add_argument("--mcpc", default="out/mcpc-default")
    p.add_argument("--config", default=str(CONFIG))
    p.add_argument("--out", default="out/bench-train")
    p.add_argument("--workers", type=int, default=2, help="loader workers of the multi-worker run")
    p.add_argument("--batches", type=int, default=12, help="loader batches timed")
    p.add_argument("--steps", type=int, default=10, help="model / pipeline steps timed")
    p.add_argument("--repeats", type=int, default=2, help="best-of repeats of each loader figure")
    p.add_argument("--r50", action="store_true", help="also ResNet-50 @256 on CPU (slow)")
    args = p.parse_args(argv)
    for option in ("--batches", "--steps", "--repeats"):
        check_number(option, getattr(args, option[2:]), low=1)
    check_number("--workers", args.workers, low=1)  # the multi-worker run

    from pipelines.pretrain import ensure_build

    build_dir = ensure_build(Path(args.mcpc))
    cfg = load_config(PretrainConfig, args.config)
    tables = read_build(build_dir)
    task = PretrainTask(build_dir, cfg, tables)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    batch = cfg.train.batch_size
    crop = cfg.data.crop_size
    res: dict = {"device": torch.cuda.get_device_name() if cuda else f"cpu ({os.cpu_count()} cores)",
                 "crop_size": crop, "batch_size": batch,
                 "model": f"resnet{cfg.model.depth} width {cfg.model.width}",
                 "synthetic_sources": contract.synthetic_sources(contract.read_manifest(build_dir))}

    threads = cfg.train.cpu_threads or max(1, (os.cpu_count() or 1) - cfg.train.num_workers)
    if not cuda:
        torch.set_num_threads(threads)   # the engine's CPU policy, for comparable figures
    res["torch_threads"] = torch.get_num_threads()
    # Best of --repeats: the figures are wall-clock rates on a possibly shared machine.
    files = [tables.image_file[r] for r in stream_rows(task.train_dataset(), batch, args.batches)]
    best = lambda f: max(f() for _ in range(args.repeats))  # noqa: E731
    res["decode_resize_per_s"] = best(lambda: bench_decode(files, crop))
    res["loader_0_workers_per_s"] = best(lambda: bench_loader(task, 0, batch, args.batches, "fork"))
    res[f"loader_{args.workers}_workers_per_s"] = best(
        lambda: bench_loader(task, args.workers, batch, args.batches, cfg.train.loader_start))
    res["loader_per_worker_per_s"] = res[f"loader_{args.workers}_workers_per_s"] / max(args.workers, 1)
    res["loader_vs_decode"] = res["loader_0_workers_per_s"] / res["decode_resize_per_s"]
    res["model_alone_per_s"], res["model_peak_gib"] = max(
        bench_model(task, device, batch, args.steps, cfg.train.amp) for _ in range(args.repeats))
    res["pipeline_per_s"] = bench_pipeline(task, cfg, args.steps)
    res["pipeline_vs_model"] = res["pipeline_per_s"] / res["model_alone_per_s"]
    if cuda or args.r50:
        big = replace(cfg, data=replace(cfg.data, crop_size=256),
                      model=replace(cfg.model, depth=50, width=64, deconv_filters=256),
                      train=replace(cfg.train, amp=True, batch_size=64 if cuda else 4))
        big_task = PretrainTask(build_dir, big, tables)
        steps = args.steps if cuda else 2
        r, peak = bench_model(big_task, device, big.train.batch_size, steps, True)
        res["r50_256_bf16_model_alone_per_s"] = r
        res["r50_256_bf16_peak_gib"] = peak
        res["r50_256_bf16_pipeline_per_s"] = bench_pipeline(big_task, big, max(steps, 4))
        res["r50_256_pipeline_vs_model"] = res["r50_256_bf16_pipeline_per_s"] / r
    out = Path(args.out)
    plain = {k: (None if isinstance(v, float) and v != v else v) for k, v in res.items()}
    atomic.write_json(out / "bench_train.json", plain, indent=1)  # NaN (not measured) as null
    width = max(len(k) for k in res)
    for k, v in res.items():
        print(f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    print(f"written {out / 'bench_train.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
