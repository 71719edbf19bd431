"""Pre-training on MCPC: the task the engine trains, its metrics, and ``pretrain(...)``.

``PretrainTask`` plugs the MCPC samples (``mcpc_data``), the ``PoseNet25D`` (``model``: per joint a
heatmap and a depth map) and the losses (``losses``) into ``engine.train``: heatmap KL on labelled
joints, ranking loss on the per-joint depths of each labelled pair (``loss.ranking_weight = 0``
gives 2D-only pre-training, the ablation's control). The checkpoint's meta carries
``model_args`` (``model.load_model`` rebuilds the network from it) and ``synthetic_sources`` (the
build's sources that came from the embedded synthetic default). Validation on held-out persons (``data.val_splits``)
reports pairwise ordinal accuracy on their MCPC pairs (ordered pairs only; equal pairs have no
order), overall and split into cross-person and within-person pairs, and 2D PCK@0.1 (a joint is correct within 0.1 x the person's bbox side).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch

from . import engine
from .config import PretrainConfig, to_dict
from .losses import heatmap_kl, pair_order_correct, ranking_loss, sample_joint_depth
from mcpc_builder import contract
from mcpc_builder.errors import ConfigError

from .mcpc_data import McpcDataset, McpcTables, read_build
from .model import build_pose_net, pose_net_args

PCK_THRESHOLD = 0.1


def heatmap_argmax(heatmaps: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, K, h, w) heatmaps -> (B, K, 2) float32 (x, y) of each maximum, input pixels."""
    b, k, h, w = heatmaps.shape
    idx = heatmaps.float().flatten(2).argmax(-1)
    xy = torch.stack([idx % w, idx // w], -1).float()
    return (xy + 0.5) * stride - 0.5


def pck_counts(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
               person_size: torch.Tensor, threshold: float = PCK_THRESHOLD) -> tuple[torch.Tensor, torch.Tensor]:
    """(correct, total) labelled joints within ``threshold * person_size`` pixels.

    Arguments:
        pred, target: (B, K, 2) float input pixels; weight: (B, K) float (1 labelled);
        person_size: (B,) float pixels.
    """
    dist = (pred.float() - target.float()).norm(dim=-1)
    ok = (dist <= threshold * person_size.float()[:, None]).float() * weight.float()
    return ok.sum(), weight.float().sum()


class PretrainTask:
    """The engine task of WSP pre-training (see ``wsp_model.engine`` for the protocol)."""

    def __init__(self, build_dir: str | Path, cfg: PretrainConfig, tables: McpcTables | None = None):
        self.build_dir, self.cfg = Path(build_dir), cfg
        self._tables = tables
        if not cfg.loss.depth_grad_ratio >= 0:
            raise ConfigError("config", f"must be >= 0 (0: no cap), got {cfg.loss.depth_grad_ratio}",
                              "loss.depth_grad_ratio")

    @property
    def tables(self) -> McpcTables:
        if self._tables is None:
            self._tables = read_build(self.build_dir)
        return self._tables

    def build_model(self) -> torch.nn.Module:
        return build_pose_net(self.cfg.model)

    def train_dataset(self) -> McpcDataset:
        return McpcDataset(self.tables, self.cfg.data, self.cfg.data.train_splits, augment=True,
                           seed=self.cfg.train.seed)

    def val_dataset(self) -> McpcDataset | None:
        ds = McpcDataset(self.tables, self.cfg.data, self.cfg.data.val_splits, augment=False,
                         max_persons=self.cfg.data.max_val_persons)
        return ds if len(ds) else None

    def forward(self, model, batch, train: bool = False) -> tuple[dict, torch.Tensor, torch.Tensor]:
        ratio = self.cfg.loss.depth_grad_ratio
        # the cap acts on gradients only: validation and diagnostics call the plain network
        out = model(batch["image"], depth_grad_ratio=ratio if train and ratio > 0 else None)
        size = (self.cfg.data.crop_size, self.cfg.data.crop_size)
        z_a = sample_joint_depth(out["depth"], batch["point_a"], batch["joint_a"], size)
        z_b = sample_joint_depth(out["depth"], batch["point_b"], batch["joint_b"], size)
        return out, z_a, z_b

    def loss_terms(self, model, batch, train: bool = False) -> tuple:
        """(out, z_a, z_b, heatmap loss, ranking loss), both losses unweighted."""
        out, z_a, z_b = self.forward(model, batch, train=train)
        hm = heatmap_kl(out["heatmaps"], batch["heatmaps"], batch["joint_weight"])
        rk = ranking_loss(z_a, z_b, batch["pair_label"], batch["pair_confidence"], batch["pair_mask"],
                          batch["pair_cross"], self.cfg.loss.within_person_weight)
        return out, z_a, z_b, hm, rk

    def loss(self, model, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out, z_a, z_b, hm, rk = self.loss_terms(model, batch, train=True)
        w = self.cfg.loss
        ordered = batch["pair_mask"] & (batch["pair_label"] != 0)
        correct = (pair_order_correct(z_a, z_b, batch["pair_label"]) & ordered).sum()
        metrics = {
            "heatmap_loss": hm.detach(), "ranking_loss": rk.detach(),
            "pair_acc": (correct / ordered.sum().clamp(min=1)).detach().float(),
            "n_pairs": batch["pair_mask"].sum().float(),
            "n_skipped_images": (1 - batch["image_ok"]).sum().float(),
        }
        return w.heatmap_weight * hm + w.ranking_weight * rk, metrics

    def validate(self, model, batches: Iterable[dict]) -> dict[str, float]:
        stride = self.cfg.data.heatmap_stride
        acc = torch.zeros(10, dtype=torch.float64)
        nb = 0
        for batch in batches:
            out, z_a, z_b, hm, rk = self.loss_terms(model, batch)
            ordered = batch["pair_mask"] & (batch["pair_label"] != 0)
            right = pair_order_correct(z_a, z_b, batch["pair_label"])
            cross = ordered & batch["pair_cross"]
            within = ordered & ~batch["pair_cross"]
            pred = heatmap_argmax(out["heatmaps"], stride)
            pck_ok, pck_n = pck_counts(pred, batch["keypoints"], batch["joint_weight"],
                                       batch["person_size"])
            acc += torch.stack([(right & ordered).sum().float(), ordered.sum().float(),
                                (right & cross).sum().float(), cross.sum().float(),
                                pck_ok.float(), pck_n.float(), hm.float(), rk.float(),
                                (right & within).sum().float(), within.sum().float()]).double().cpu()
            nb += 1
        nb = max(nb, 1)
        c = acc.tolist()
        return {"pair_acc": c[0] / max(c[1], 1), "cross_pair_acc": c[2] / max(c[3], 1),
                "within_pair_acc": c[8] / max(c[9], 1),
                "pck": c[4] / max(c[5], 1), "heatmap_loss": c[6] / nb, "ranking_loss": c[7] / nb,
                "n_pairs": c[1]}


def pretrain(build_dir: str | Path, cfg: PretrainConfig, run_dir: str | Path,
             stop_at_step: int | None = None) -> engine.TrainResult:
    """Pre-train on an MCPC build; writes config.yaml, checkpoint.pt, logs and curves to run_dir.

    The checkpoint's meta: ``kind`` "pretrain", ``config``, ``build_dir``, ``model_args`` and
    ``synthetic_sources`` (see the module docstring)."""
    run_dir = Path(run_dir)
    # config.yaml is written by engine.train once a resume has been checked
    task = PretrainTask(build_dir, cfg)
    meta = {"config": to_dict(cfg), "build_dir": str(Path(build_dir).resolve()), "kind": "pretrain",
            "model_args": pose_net_args(cfg.model),
            # which sources of the build were synthetic (data contract), for every later report
            "synthetic_sources": contract.synthetic_sources(contract.read_manifest(build_dir))}
    return engine.train(task, cfg.train, run_dir, meta=meta, stop_at_step=stop_at_step)
