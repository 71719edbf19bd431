"""Fine-tuning a WSP pre-trained network for 3D pose: the task the shared engine trains.

``Finetune3DTask`` plugs ``Pose3DCrops`` (``pose3d_data``) and ``IntegralPose3D`` (``model``) into
``engine.train``: the same loop as pre-training (CPU / GPU / torchrun DDP, bf16 autocast, exact
resume, CSV logs, curves), with another dataset. The WHOLE pre-trained network (backbone and the
2.5D head: per joint a heatmap and a depth map) is kept; what 3D needs on top is a metric depth
scale (fitted by least squares on the first training crops when the pre-trained depth explains
them, then learned) and the fixed linear map from the canonical MCPC-21 joints to the dataset's
layout. ``init="scratch"`` builds the same network with He initialisation (or a torchvision ResNet
from ``head.backbone_weights``). Loss: L1 between predicted and ground-truth root-relative 3D
joints (mm), divided by 100 so it starts near 1. Validation: MPJPE and PA-MPJPE (mm).
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
from .config import ModelConfig, TrainConfig, from_dict, load_config, to_dict
from .head3d import lift_to_camera, predict_batches
from .model import IntegralPose3D, PoseNet25D, ResNetBackbone, build_pose_net, load_model
from .pose3d_data import CropConfig, Pose3DCrops, Pose3DRecords, load_records, resolve_root

L1_SCALE_MM = 100.0


@dataclass(frozen=True)
class HeadConfig:
    """The network of an ``init=scratch`` run, and the metric depth scale.

    Arguments:
        deconv_layers, deconv_filters: head transposed convolutions (3 -> stride-4 maps); a
            pre-trained checkpoint brings its own.
        depth_range_mm: initial metric depth scale (a raw depth difference of 1 = this many mm)
            when the least-squares fit is off or does not explain the data.
        calibrate_depth: fit the initial scale on ``calibration_samples`` training crops (kept
            only when positive and explaining at least ``min_calibration_r2`` of the variance
            of the true root-relative depths).
        backbone_depth, backbone_width: ResNet for ``init=scratch``.
        backbone_weights: torchvision ResNet checkpoint for ``init=scratch`` ("" = He init).
        shared_depth: ``init=scratch`` network's depth maps share a scene map
            (``ModelConfig.shared_depth``).
        separate_depth_head: ``init=scratch`` network's depth maps come from their own head
            (``ModelConfig.separate_depth_head``).
    """

    deconv_layers: int = 3
    deconv_filters: int = 128
    depth_range_mm: float = 1000.0
    calibrate_depth: bool = True
    calibration_samples: int = 64
    min_calibration_r2: float = 0.1
    backbone_depth: int = 18
    backbone_width: int = 64
    backbone_weights: str = ""
    shared_depth: bool = False
    separate_depth_head: bool = False


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


def network_from_init(init: str | os.PathLike | None, head: HeadConfig) -> tuple[PoseNet25D, dict]:
    """(2.5D network, description) from a pre-training / fine-tuning checkpoint, or fresh for
    "scratch". The description holds ``init``, ``depth``, ``width`` and ``synthetic_sources``."""
    if init is None or str(init) == "scratch":
        net = build_pose_net(ModelConfig(
            depth=head.backbone_depth, width=head.backbone_width,
            deconv_layers=head.deconv_layers, deconv_filters=head.deconv_filters,
            num_joints=joints.MCPC21.num_joints, backbone_weights=head.backbone_weights,
            shared_depth=head.shared_depth, separate_depth_head=head.separate_depth_head))
        return net, {"depth": head.backbone_depth, "width": head.backbone_width,
                     "init": "scratch", "backbone_weights": head.backbone_weights or None,
                     "synthetic_sources": []}
    path = Path(init)
    if not path.exists():
        raise FileNotFoundError(f"{path}: pre-trained checkpoint not found (run `make pretrain` "
                                "first, or pass INIT=scratch)")
    model, meta = load_model(path)
    net = model.net if isinstance(model, IntegralPose3D) else model
    return net.train(), {"depth": net.backbone.depth, "width": net.backbone.width,
                         "init": str(path.resolve()),
                         "synthetic_sources": list(meta.get("synthetic_sources", []))}


def backbone_from_init(init: str | os.PathLike | None, head: HeadConfig) -> tuple[ResNetBackbone, dict]:
    """(backbone, description) of ``network_from_init``."""
    net, info = network_from_init(init, head)
    return net.backbone, info


@torch.no_grad()
def fit_depth_scale(model: IntegralPose3D, dataset: Pose3DCrops, n: int, root: int) -> tuple[float, float]:
    """Least-squares metric scale of the raw per-joint depths on ``n`` crops.

    Returns (scale mm per raw unit, R^2 of the fit of true root-relative depths mm).
    """
    was = model.training
    model.eval()
    xs, ys = [], []
    for start in range(0, min(n, len(dataset)), 16):
        items = [dataset[i] for i in range(start, min(start + 16, n, len(dataset)))]
        image = torch.from_numpy(np.stack([it["image"] for it in items]))
        out = model(image)
        raw = out["z_rel"] / model.log_depth_scale.exp()
        xs.append((raw - raw[:, root:root + 1]).flatten())
        gt = torch.from_numpy(np.stack([it["joints_rel"] for it in items])).float()
        ys.append(gt[..., 2].flatten())
    model.train(was)
    x, y = torch.cat(xs).double(), torch.cat(ys).double()
    scale = float((x * y).sum() / (x * x).sum().clamp(min=1e-12))
    r2 = 1.0 - float(((y - scale * x) ** 2).sum() / (y ** 2).sum().clamp(min=1e-12))
    return scale, r2


class Finetune3DTask:
    """The engine task of 3D fine-tuning (see ``wsp_model.engine`` for the protocol)."""

    def __init__(self, cfg: FinetuneConfig, train_records: Pose3DRecords,
                 val_records: Pose3DRecords | None, init: str | None):
        self.cfg = cfg
        self.train_records, self.val_records = train_records, val_records
        self.layout = joints.LAYOUTS[train_records.layout]
        self.root = self.layout.joint("pelvis")
        self.init = init
        self.depth_calibration: dict = {}
        self._model = self._build()

    def _build(self) -> IntegralPose3D:
        net, self.backbone_info = network_from_init(self.init, self.cfg.head)
        h = self.cfg.head
        model = IntegralPose3D(net, self.layout.name, h.depth_range_mm)
        scale, r2 = h.depth_range_mm, None
        if h.calibrate_depth and h.calibration_samples > 0:
            ds = Pose3DCrops(self.train_records, self.cfg.data, augment=False)
            fitted, r2 = fit_depth_scale(model, ds, h.calibration_samples, self.root)
            if fitted > 0 and r2 >= h.min_calibration_r2:
                scale = fitted
        with torch.no_grad():
            model.log_depth_scale.fill_(float(np.log(scale)))
        self.depth_calibration = {"scale_mm": float(scale), "fit_r2": r2,
                                  "fitted": scale != h.depth_range_mm}
        return model

    def build_model(self) -> torch.nn.Module:
        return self._model

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
             stop_at_step: int | None = None, synthetic_data: str | None = None) -> engine.TrainResult:
    """Fine-tune on ``cfg.dataset`` (records from ``data_root`` / env / embedded default unless
    given) starting from ``init`` (a pre-training checkpoint path, or "scratch"). Writes
    config.yaml, checkpoint.pt (meta: everything ``head3d.load_finetuned`` needs), logs, curves.

    ``meta["synthetic_sources"]``: the init's synthetic sources plus this run's dataset when its
    records are synthetic: ``synthetic_data`` names them when records are passed in (e.g.
    "synthetic-studio"); else the dataset counts as synthetic when its root is the embedded
    default."""
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
    sources = list(task.backbone_info.get("synthetic_sources", []))
    if synthetic_data is None and root is not None:
        from mcpc_builder.default_data import default_path

        if Path(root).resolve() == default_path(cfg.dataset).resolve():
            synthetic_data = cfg.dataset
    if synthetic_data and synthetic_data not in sources:
        sources.append(synthetic_data)
    mean_crop_mm = float(np.median(train_records.crop_size_mm(cfg.data.padding)))
    meta = {"kind": "finetune", "config": to_dict(cfg), "dataset": cfg.dataset,
            "data_root": str(root) if root else None, "layout": train_records.layout,
            "num_joints": joints.LAYOUTS[train_records.layout].num_joints,
            "backbone": task.backbone_info, "head": to_dict(cfg.head), "crop": to_dict(cfg.data),
            "mean_crop_mm": mean_crop_mm, "model_args": task.build_model().model_args(),
            "depth_calibration": task.depth_calibration, "synthetic_sources": sources}
    return engine.train(task, cfg.train, run_dir, meta=meta, stop_at_step=stop_at_step)


__all__ = ["FinetuneConfig", "HeadConfig", "Finetune3DTask", "finetune", "load_finetune_config",
           "network_from_init", "backbone_from_init", "fit_depth_scale", "from_dict"]
