"""How large the ranking loss's gradient is next to the heatmap loss's, per part of the network
(a diagnostic; the README's reason for ``loss.depth_grad_ratio``).

    python -m pipelines.bench.gradient_share --ablation out/ablation --seed 0

For an untrained network and each arm's pre-trained checkpoint (``OUT/pretrain-<arm>-seed<k>``
of ``make ablation``), on training batches of the arm's own build (``OUT/mcpc``, ``mcpc-library``,
``mcpc-dense``; the untrained network on the WSP arm's) with the WSP arm's loss weights (the
2D-only arm is measured as if its ranking loss were on), it takes the gradients of the two losses apart,
``|d heatmap / d theta|`` and ``|d (ranking_weight x ranking) / d theta|`` with the cap OFF (the
raw gradients the two losses send), per parameter group (backbone stem and stages, the
deconvolutions, the final 1x1 conv) with their cosine, and the share at the fork itself (the
deconvolutions' output): the ratio of the ranking gradient's norm to the heatmaps' there, i.e.
by how much ``depth_grad_ratio = 1`` scales the ranking gradient down. Prints a markdown table and
writes ``OUT/gradient_share.json``. The data is the ablation's (SYNTHETIC).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.data import default_collate

from mcpc_builder import atomic
from mcpc_builder.errors import UsageError, check_number, cli_entry
from wsp_model.config import PretrainConfig, load_config
from wsp_model.model import build_pose_net
from wsp_model.pretrain import PretrainTask

GROUPS = ("backbone.stem", "backbone.layer1", "backbone.layer2", "backbone.layer3",
          "backbone.layer4", "head.deconv", "head.final")


def group_of(name: str) -> str:
    parts = name.split(".")
    if parts[0] == "backbone":
        return "backbone." + (parts[1] if parts[1].startswith("layer") else "stem")
    return "head.final" if ".final." in name else "head.deconv"


def gradient_share(model: torch.nn.Module, task: PretrainTask, batches: list[dict]) -> dict:
    """Mean over ``batches`` of the per-group gradient norms of both losses, their cosine, and the
    ranking-to-heatmap norm ratio at the deconvolutions' output (single-head networks)."""
    model.train()
    w = task.cfg.loss
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    sums = {g: torch.zeros(3, dtype=torch.float64) for g in GROUPS}
    fork_ratio = 0.0
    members = {g: [i for i, n in enumerate(names) if group_of(n) == g] for g in GROUPS}
    captured = []   # the deconvolutions' output: the features both kinds of map share
    hook = model.head.deconv.register_forward_hook(lambda _m, _i, output: captured.append(output))
    try:
        for batch in batches:
            captured.clear()
            _, _, _, hm, rk = task.loss_terms(model, batch)     # no cap: the raw gradients
            hm, rk = w.heatmap_weight * hm, w.ranking_weight * rk
            shared = captured[0]
            g_hm = torch.autograd.grad(hm, params + [shared], retain_graph=True, allow_unused=True)
            g_rk = torch.autograd.grad(rk, params + [shared], allow_unused=True)
            zero = [torch.zeros_like(p) for p in params + [shared]]
            g_hm = [g if g is not None else z for g, z in zip(g_hm, zero)]
            g_rk = [g if g is not None else z for g, z in zip(g_rk, zero)]
            for group, idx in members.items():
                a = torch.cat([g_hm[i].flatten() for i in idx]).double()
                r = torch.cat([g_rk[i].flatten() for i in idx]).double()
                cos = (a @ r / (a.norm() * r.norm())).item() if a.norm() > 0 and r.norm() > 0 else 0.0
                sums[group] += torch.tensor([a.norm().item(), r.norm().item(), cos], dtype=torch.float64)
            fork_ratio += (g_rk[-1].norm() / g_hm[-1].norm().clamp_min(1e-30)).item()
    finally:
        hook.remove()
    n = len(batches)
    return {"groups": {g: {"heatmap": v[0].item() / n, "ranking": v[1].item() / n,
                           "cosine": v[2].item() / n} for g, v in sums.items()},
            "ranking_to_heatmap_at_fork": fork_ratio / n}


def load_batches(task: PretrainTask, n_batches: int, batch_size: int) -> list[dict]:
    ds = task.train_dataset()
    if len(ds) < n_batches * batch_size:
        raise UsageError(f"{task.build_dir}: {len(ds)} training people, fewer than "
                         f"--batches x batch size = {n_batches * batch_size}")
    return [default_collate([ds[(i, i)] for i in range(b * batch_size, (b + 1) * batch_size)])
            for b in range(n_batches)]


def arm_build(ckpt: dict, ablation: Path) -> Path:
    """The build an arm pre-trained on: where its checkpoint says, or (the ablation folder moved)
    the folder of that name inside the ablation folder."""
    build = Path(ckpt["meta"]["build_dir"])
    return build if build.is_dir() else ablation / build.name


def table(results: dict) -> str:
    lines = ["| network | " + " | ".join(GROUPS) + " | at the fork |",
             "|---" * (len(GROUPS) + 2) + "|"]
    for label, res in results.items():
        cells = [f"{g['ranking'] / max(g['heatmap'], 1e-30):.2f} ({g['cosine']:+.2f})"
                 for g in (res["groups"][k] for k in GROUPS)]
        lines.append(f"| {label} | " + " | ".join(cells)
                     + f" | {res['ranking_to_heatmap_at_fork']:.2f} |")
    return "\n".join(lines)


@cli_entry("gradient_share")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.bench.gradient_share",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--ablation", type=Path, required=True, help="a `make ablation` output folder")
    parser.add_argument("--seed", type=int, default=0, help="which seed's checkpoints")
    parser.add_argument("--arms", nargs="+", default=["pretrain_2d", "wsp", "wsp_library", "wsp_dense"])
    parser.add_argument("--batches", type=int, default=6)
    args = parser.parse_args(argv)
    check_number("--batches", args.batches, low=1)
    runs = {arm: args.ablation / f"pretrain-{arm}-seed{args.seed}" for arm in args.arms}
    runs = {arm: run for arm, run in runs.items() if (run / "checkpoint.pt").is_file()}
    if not runs:
        raise UsageError(f"{args.ablation}: no pretrain-<arm>-seed{args.seed}/checkpoint.pt")
    wsp_run = runs.get("wsp", next(iter(runs.values())))
    cfg = load_config(PretrainConfig, wsp_run / "config.yaml")
    if cfg.loss.ranking_weight <= 0:
        raise UsageError(f"{wsp_run}: ranking loss off; give an arm that pre-trained with it")
    if cfg.model.separate_depth_head or cfg.model.shared_depth:
        raise UsageError(f"{wsp_run}: measures the one-head network of the shipped configs only")
    results = {}
    torch.manual_seed(args.seed)
    untrained = build_pose_net(cfg.model)
    for arm, run in {"untrained": wsp_run, **runs}.items():
        ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
        if arm == "untrained":
            model = untrained
        else:
            model = build_pose_net(cfg.model)
            model.load_state_dict(ckpt["model"])
        build = arm_build(ckpt, args.ablation)
        task = PretrainTask(build, cfg)
        torch.manual_seed(0)
        results[arm] = gradient_share(model, task, load_batches(task, args.batches,
                                                                 cfg.train.batch_size))
    print("ranking-to-heatmap gradient norm (cosine), per parameter group; SYNTHETIC data")
    print(table(results))
    atomic.write_json(args.ablation / "gradient_share.json",
                      {"data": "SYNTHETIC: the ablation's own synthetic builds",
                       "seed": args.seed, "batches": args.batches,
                       "ranking_weight": cfg.loss.ranking_weight, "results": results}, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
