"""Fine-tuning a WSP pre-trained backbone for 3D pose: the task the shared engine trains.

``Finetune3DTask`` plugs ``Pose3DCrops`` (``pose3d_data``) and ``IntegralPose3D`` (``head3d``)
into ``engine.train``: the same loop as pre-training (CPU / GPU / torchrun DDP, bf16 autocast,
exact resume, CSV logs, curves), with another head and another dataset. The backbone starts from
a pre-training checkpoint (``backbone.*`` weights; depth/width read from its meta) or from scratch
(He initialisation). Loss: L1 between predicted and ground-truth root-relative 3D joints (mm),
divided by 100 so it starts near 1. Validation: MPJPE and PA-MPJPE (mm) on the held-out split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from mcpc_builder import joints

from . import engine, metrics
from .config import TrainConfig, from_dict, load_config, to_dict
from .head3d import IntegralPose3D, lift_to_camera, predict_batches
from .model import ResNetBackbone, backbone_state_dict
from .pose3d_data import CropConfig, Pose3DCrops, Pose3DRecords, load_records, resolve_root

L1_SCALE_MM = 100.0


@dataclass(frozen=True)
class HeadConfig:
    """The 3D head, and the backbone used when starting from scratch.

    Arguments:
        deconv_layers, deconv_filters: head transposed convolutions (3 -> stride-4 maps).
        depth_range_mm: unit of the depth maps (a raw 1 = this many mm).
        backbone_depth, backbone_width: ResNet for ``init=scratch`` (a pre-trained checkpoint
            brings its own, read from its meta).
    """

    deconv_layers: int = 3
    deconv_filters: int = 128
    depth_range_mm: float = 1000.0
    backbone_depth: int = 18
    backbone_width: int = 64


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning settings (``pipelines/configs/finetune_*.yaml``).

    Arguments:
        dataset: "h36m" or "3dhp".
        train_every, val_every_frame: keep every n-th frame of the train / held-out split.
    """

    dataset: str = "h36m"
    train_every: int = 1
    val_every_frame: int = 1
    data: CropConfig = field(default_factory=CropConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def load_finetune_config(path: str | os.PathLike | None) -> FinetuneConfig:
    return load_config(FinetuneConfig, path)


def backbone_from_init(init: str | os.PathLike | None, head: HeadConfig) -> tuple[ResNetBackbone, dict]:
    """(backbone, description): loaded from a pre-training checkpoint, or fresh for "scratch"."""
    if init is None or str(init) == "scratch":
        return ResNetBackbone(head.backbone_depth, head.backbone_width), {
            "depth": head.backbone_depth, "width": head.backbone_width, "init": "scratch"}
    path = Path(init)
    if not path.exists():
        raise FileNotFoundError(f"{path}: pre-trained checkpoint not found (run `make pretrain` "
                                "first, or pass INIT=scratch)")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model_cfg = (ckpt.get("meta", {}).get("config", {}) or {}).get("model", {})
    depth, width = int(model_cfg.get("depth", 18)), int(model_cfg.get("width", 64))
    if ckpt.get("meta", {}).get("kind") == "finetune":  # continue from a 3D model's backbone
        depth, width = ckpt["meta"]["backbone"]["depth"], ckpt["meta"]["backbone"]["width"]
    backbone = ResNetBackbone(depth, width)
    state = backbone_state_dict(ckpt)
    if not state:
        raise ValueError(f"{path}: no backbone.* weights in this checkpoint")
    backbone.load_state_dict(state)
    return backbone, {"depth": depth, "width": width, "init": str(path.resolve())}


class Finetune3DTask:
    """The engine task of 3D fine-tuning (see ``wsp_model.engine`` for the protocol)."""

    def __init__(self, cfg: FinetuneConfig, train_records: Pose3DRecords,
                 val_records: Pose3DRecords | None, init: str | None):
        self.cfg = cfg
        self.train_records, self.val_records = train_records, val_records
        self.layout = joints.LAYOUTS[train_records.layout]
        self.root = self.layout.joint("pelvis")
        self.init = init
        _, self.backbone_info = backbone_from_init(init, cfg.head)

    def build_model(self) -> torch.nn.Module:
        backbone, _ = backbone_from_init(self.init, self.cfg.head)
        h = self.cfg.head
        return IntegralPose3D(backbone, self.layout.num_joints, h.deconv_layers, h.deconv_filters,
                              h.depth_range_mm)

    def train_dataset(self) -> Pose3DCrops:
        return Pose3DCrops(self.train_records, self.cfg.data, augment=True, seed=self.cfg.train.seed)

    def val_dataset(self) -> Pose3DCrops | None:
        if self.val_records is None or not len(self.val_records):
            return None
        return Pose3DCrops(self.val_records, self.cfg.data, augment=False)

    def predict(self, model, batch) -> torch.Tensor:
        out = model(batch["image"])
        return lift_to_camera(out["uv"], out["z_rel"], batch["box"], batch["f"], batch["c"],
                              batch["root_depth"], self.root)

    def loss(self, model, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pred = self.predict(model, batch)
        gt = batch["joints_rel"].float()
        ok = batch["image_ok"].float()[:, None, None]
        err = (pred.float() - gt).abs() * ok
        loss = err.sum() / (ok.sum().clamp(min=1) * err.shape[1] * 3) / L1_SCALE_MM
        with torch.no_grad():
            mpjpe = ((pred.float() - gt).norm(dim=-1) * ok[..., 0]).sum() / (ok.sum().clamp(min=1) * err.shape[1])
        return loss, {"mpjpe_mm": mpjpe.detach(), "n_skipped_images": (1 - batch["image_ok"]).sum().float()}

    def validate(self, model, batches: Iterable[dict]) -> dict[str, float]:
        pred, gt = predict_batches(model, batches, self.root)
        if not len(pred):
            return {}
        p, g = pred.numpy().astype(np.float64), gt.numpy().astype(np.float64)
        return {"mpjpe": metrics.mpjpe(p, g, self.root), "pa_mpjpe": metrics.pa_mpjpe(p, g)}


def finetune(cfg: FinetuneConfig, run_dir: str | Path, init: str | None,
             data_root: str | Path | None = None, train_records: Pose3DRecords | None = None,
             val_records: Pose3DRecords | None = None,
             stop_at_step: int | None = None) -> engine.TrainResult:
    """Fine-tune on ``cfg.dataset`` (records from ``data_root`` / env / embedded default unless
    given) starting from ``init`` (a pre-training checkpoint path, or "scratch"). Writes
    config.yaml, checkpoint.pt (meta: everything ``head3d.load_finetuned`` needs), logs, curves."""
    run_dir = Path(run_dir)
    root = None
    if train_records is None or val_records is None:
        root = resolve_root(cfg.dataset, data_root)
    if train_records is None:
        train_records = load_records(cfg.dataset, root, "train", cfg.train_every)
    if val_records is None:
        val_records = load_records(cfg.dataset, root, "test", cfg.val_every_frame)
    if not len(train_records):
        raise ValueError(f"no training samples for {cfg.dataset} under {root}")
    # config.yaml is written by engine.train once a resume has been checked
    task = Finetune3DTask(cfg, train_records, val_records, init)
    mean_crop_mm = float(np.median(train_records.crop_size_mm(cfg.data.padding)))
    meta = {"kind": "finetune", "config": to_dict(cfg), "dataset": cfg.dataset,
            "data_root": str(root) if root else None, "layout": train_records.layout,
            "num_joints": joints.LAYOUTS[train_records.layout].num_joints,
            "backbone": task.backbone_info, "head": to_dict(cfg.head), "crop": to_dict(cfg.data),
            "mean_crop_mm": mean_crop_mm}
    return engine.train(task, cfg.train, run_dir, meta=meta, stop_at_step=stop_at_step)


__all__ = ["FinetuneConfig", "HeadConfig", "Finetune3DTask", "finetune", "load_finetune_config",
           "backbone_from_init", "from_dict"]
