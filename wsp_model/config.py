"""Configuration as frozen dataclasses, loaded from YAML and copied into every run directory.

``TrainConfig`` holds what the training engine (``wsp_model.engine``) needs and is shared by
pre-training and fine-tuning; ``PretrainConfig`` nests it with the pre-training data, model and
loss settings. ``load_config(PretrainConfig, "pipelines/configs/pretrain_small.yaml")`` builds a
config from a YAML file whose sections mirror the dataclass fields; a key the dataclass does not
know is an error (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mcpc_builder import atomic, config_io

T = TypeVar("T")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop's settings (``wsp_model.engine.train``).

    Arguments:
        max_steps: optimiser steps of the whole run (the LR schedule spans them).
        batch_size: samples per step *per rank*; the global batch is ``batch_size * world_size``.
        lr: peak learning rate at ``reference_batch``; scaled linearly by global batch / reference.
        reference_batch: the global batch ``lr`` is quoted for.
        weight_decay: AdamW decoupled weight decay (not applied to norms and biases).
        warmup_steps: linear warm-up from 0 to the peak LR; cosine decay to
            ``min_lr_ratio * peak`` afterwards.
        grad_clip: clip the global gradient L2 norm to this value (0 disables).
        num_workers: DataLoader worker processes per rank (0 loads in the main process).
        loader_start: how loader workers start: ``forkserver`` (default: workers come from a clean
            server process, so locks held by threads of this process - progress bars, a build
            or renderer that ran in-process - cannot hang them), ``fork`` (fastest start) or
            ``spawn``.
        log_every: steps between log lines / CSV rows (the only host syncs of the loop).
        val_every: steps between validations (0: validate only at the end).
        checkpoint_every: steps between checkpoints (one is always written at the end).
        max_val_batches: cap on validation batches (0: the whole validation set).
        seed: seeds python / numpy / torch and the data stream.
        amp: bf16 autocast (CUDA only; CPU runs in float32).
        channels_last: NHWC memory format for conv nets (CUDA only).
        cpu_threads: torch intra-op threads of a CPU run; 0 = one per core not taken by loader
            workers (``max(1, cores / local ranks - num_workers)``): OpenMP threads competing
            with workers or other processes for the same cores slow training down many-fold.
        resume: continue from ``<run_dir>/checkpoint.pt`` when it exists.
        progress: show a tqdm progress bar on rank 0.
    """

    max_steps: int = 300
    batch_size: int = 16
    lr: float = 1e-3
    reference_batch: int = 32
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    num_workers: int = 2
    loader_start: str = "forkserver"
    log_every: int = 10
    val_every: int = 0
    checkpoint_every: int = 100
    max_val_batches: int = 0
    seed: int = 0
    amp: bool = True
    channels_last: bool = True
    cpu_threads: int = 0
    resume: bool = True
    progress: bool = True


@dataclass(frozen=True)
class DataConfig:
    """How an MCPC build becomes training samples (``wsp_model.mcpc_data``).

    Arguments:
        crop_size: side of the square network input, pixels.
        heatmap_stride: input pixels per heatmap / depth-map pixel.
        sigma: Gaussian heatmap target std, heatmap pixels.
        context: crop side = ``context * max(bbox w, h)``, so neighbours (cross-person pairs) fit.
        max_pairs: pairs kept per sample (a seeded random subset when there are more).
        scale_factor: random zoom in ``[1 - f, 1 + f]``.
        rotation_deg: random in-plane rotation in ``[-r, r]`` degrees, applied with
            probability ``rotation_prob``.
        flip_prob: probability of a horizontal flip (left/right joints swapped).
        colour_jitter: per-channel gain and brightness jitter amplitude (fraction).
        train_splits / val_splits: MCPC ``split`` values of training / held-out persons (split
            names are the sources' own: COCO ``train2017`` / ``val2017``, MPII ``train`` / ``valid``).
        max_val_persons: cap on held-out persons (0: all).
    """

    crop_size: int = 256
    heatmap_stride: int = 4
    sigma: float = 2.0
    context: float = 1.25
    max_pairs: int = 64
    scale_factor: float = 0.25
    rotation_deg: float = 30.0
    rotation_prob: float = 0.5
    flip_prob: float = 0.5
    colour_jitter: float = 0.2
    train_splits: tuple[str, ...] = ("train", "train2017")
    val_splits: tuple[str, ...] = ("val", "valid", "val2017")
    max_val_persons: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """ResNet backbone + deconvolution head (``wsp_model.model``).

    Arguments:
        depth: ResNet depth, 18 / 34 / 50.
        width: channels of the stem and first stage (64 in the standard ResNet; smaller for tests).
        deconv_layers: stride-2 transposed convolutions of the head (3 gives output stride 4).
        deconv_filters: channels of each deconvolution.
        num_joints: joints K (21 = MCPC-21); the head has K heatmaps and K depth maps.
        backbone_weights: a torchvision ResNet checkpoint file to start the backbone from
            (e.g. ImageNet weights the user has; "" = He initialisation). Never downloaded.
        shared_depth: joint j's depth = a scene depth map shared by all joints + joint j's
            residual map (``model.PoseNet25D``); False: K independent depth maps.
        separate_depth_head: the depth maps from a deconvolution head of their own on the
            shared backbone (False: one head gives heatmaps and depth maps).
    """

    depth: int = 18
    width: int = 64
    deconv_layers: int = 3
    deconv_filters: int = 256
    num_joints: int = 21
    backbone_weights: str = ""
    shared_depth: bool = False
    separate_depth_head: bool = False


@dataclass(frozen=True)
class LossConfig:
    """Weights of the pre-training losses (``wsp_model.losses``).

    Arguments:
        heatmap_weight: multiplies the heatmap loss (softmax cross-entropy to the normalised
            Gaussian target, minus the target's entropy: 0 at a perfect fit).
        ranking_weight: multiplies the pairwise ranking loss on per-joint depths (0: 2D-only
            pre-training, the ablation's control arm).
        within_person_weight: share of a within-person pair in the ranking loss relative to a
            cross-person pair (1: every valid pair counts alike).
        depth_grad_ratio: cap on the depth maps' gradient at the features they share with the
            heatmaps, as a multiple of the heatmaps' gradient there (``model.BalancedFork``;
            0: no cap, the losses' gradients add as they are).
    """

    heatmap_weight: float = 1.0
    ranking_weight: float = 1.0
    within_person_weight: float = 1.0
    depth_grad_ratio: float = 0.0


@dataclass(frozen=True)
class PretrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def from_dict(cls: type[T], values: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) dict; unknown keys raise ``ValueError``
    (``mcpc_builder.config_io.from_dict``)."""
    return config_io.from_dict(cls, values, where)


def load_config(cls: type[T], path: str | os.PathLike | None) -> T:
    """Load ``cls`` from a YAML file (``None``: all defaults)."""
    if path is None:
        return cls()
    return config_io.load_yaml(cls, path)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config (tuples become lists, YAML-safe)."""
    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(cfg))


def save_config(cfg: Any, path: str | os.PathLike) -> Path:
    """Write ``cfg`` as YAML atomically (temp file + rename)."""
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    return atomic.write_bytes(path, text.encode("utf-8"))


def replace(cfg: T, **changes: Any) -> T:
    """A copy of a (nested) config with dotted-path overrides: ``replace(c, **{"train.lr": 1e-4})``."""
    return config_io.replace_path(cfg, changes)
